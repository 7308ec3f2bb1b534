"""An insight's result as table rows (PostHog's CSV layout, spec/vocabulary.md §7.4), and the rows
or the chart as file bytes."""
import csv
import io
import json
from typing import Any, Optional

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from queries.api import source_of

# PostHog's CSV_EXPORT_LIMIT: the most rows a CSV or XLSX export holds.
CSV_EXPORT_LIMIT = 300_000
NO_DATA = [{"error": "No data available or unable to format for export."}]
BREAKDOWN_OTHER = "$$_posthog_breakdown_other_$$"
BREAKDOWN_NULL = "$$_posthog_breakdown_null_$$"
MAX_DISTINCT_IDS = 10


def rows_for(query: dict, results: Any, columns: Optional[list] = None) -> list[dict]:
    """One dict per CSV row, in PostHog's layout for the query's kind."""
    kind = source_of(query).get("kind")
    if not results:
        return NO_DATA
    if isinstance(results, list) and columns and all(isinstance(row, (list, tuple)) for row in results):
        rows = _table_rows(results, columns)
    elif kind == "FunnelsQuery" or _is_funnel(results):
        rows = _funnel_rows(results)
    elif kind == "RetentionQuery":
        rows = _retention_rows(results)
    elif isinstance(results, list) and results and isinstance(results[0], dict) and ("data" in results[0] or "aggregated_value" in results[0]):
        rows = _series_rows(source_of(query), results)
    elif isinstance(results, list) and all(isinstance(row, dict) for row in results):
        rows = [_flat(row) for row in results]
    else:
        rows = []
    return rows[:CSV_EXPORT_LIMIT] or NO_DATA


def _table_rows(results: list, columns: list) -> list[dict]:
    names = [str(name) if name not in (None, "") else f"column_{index}" for index, name in enumerate(columns)]
    rows = []
    for result in results:
        row = {}
        for name, value in zip(names, result):
            if isinstance(value, dict) and isinstance(value.get("distinct_ids"), list) and len(value["distinct_ids"]) > MAX_DISTINCT_IDS:
                total = len(value["distinct_ids"])
                value = {**value, "distinct_ids": value["distinct_ids"][:MAX_DISTINCT_IDS]}
                row.update(_flat(value, name))
                row[f"{name}.distinct_ids.total"] = f"Note: {total} distinct_ids in total"
                continue
            row.update(_flat(value, name) if isinstance(value, dict) else {name: value})
        rows.append(row)
    return rows


def _breakdown_properties(source: dict) -> list[str]:
    breakdown = source.get("breakdownFilter") or {}
    if breakdown.get("breakdowns"):
        return [str(item.get("property")) for item in breakdown["breakdowns"] if isinstance(item, dict)]
    value = breakdown.get("breakdown")
    if isinstance(value, list):
        return [str(item) for item in value]
    return [str(value)] if value not in (None, "") else []


def _breakdown_text(value: Any) -> Any:
    if value == BREAKDOWN_OTHER:
        return "Other (i.e. all remaining values)"
    if value == BREAKDOWN_NULL:
        return "None (i.e. no value)"
    return value


def _series_rows(source: dict, results: list) -> list[dict]:
    properties = _breakdown_properties(source)
    current_labels = next((item.get("labels") for item in results if item.get("compare_label") == "current"), None)
    rows = []
    for item in results:
        label = str(item.get("label") or "")
        if item.get("compare_label"):
            label = f"{label} - {item['compare_label']}"
        row = {"series": label}
        custom_name = (item.get("action") or {}).get("custom_name")
        if custom_name:
            row["custom name"] = custom_name
        if "breakdown_value" in item:
            values = item["breakdown_value"] if isinstance(item["breakdown_value"], list) else [item["breakdown_value"]]
            names = properties if len(properties) == len(values) else [f"breakdown_value{'' if i == 0 else f'_{i}'}" for i in range(len(values))]
            row.update({name: _breakdown_text(value) for name, value in zip(names, values)})
        if "aggregated_value" in item and "data" not in item:
            row["Total Sum"] = item["aggregated_value"]
        else:
            labels = current_labels or item.get("labels") or item.get("days") or []
            row.update({str(label): value for label, value in zip(labels, item.get("data") or [])})
        rows.append(row)
    return rows


def _is_funnel(results: Any) -> bool:
    first = results[0] if isinstance(results, list) and results else None
    if isinstance(first, list) and first:
        first = first[0]
    return isinstance(first, dict) and "action_id" in first


def _funnel_rows(results: list) -> list[dict]:
    groups = results if results and isinstance(results[0], list) else [results]
    rows = []
    for group in groups:
        for step in group:
            if not isinstance(step, dict):
                continue
            breakdown = step.get("breakdown_value")
            rows.append({
                "name": step.get("custom_name") or step.get("action_id"),
                "breakdown_value": "::".join(map(str, breakdown)) if isinstance(breakdown, list) else (breakdown if breakdown is not None else ""),
                "action_id": step.get("action_id"),
                "count": step.get("count"),
                "median_conversion_time (seconds)": step.get("median_conversion_time"),
                "average_conversion_time (seconds)": step.get("average_conversion_time"),
            })
    return rows


def _retention_rows(results: list) -> list[dict]:
    rows = []
    for cohort in results:
        if not isinstance(cohort, dict):
            continue
        values = cohort.get("values") or []
        row = {"cohort": cohort.get("date") or cohort.get("label"),
               "cohort size": values[0].get("count") if values and isinstance(values[0], dict) else None}
        for index, value in enumerate(values):
            if isinstance(value, dict):
                name = value.get("label") if cohort.get("date") and value.get("label") else f"Period {index}"
                row[str(name)] = value.get("count")
        rows.append(row)
    return rows


def _flat(value: Any, prefix: str = "") -> dict:
    """Nested objects as `a.b` columns; lists as JSON text."""
    if isinstance(value, dict):
        flat = {}
        for key, inner in value.items():
            flat.update(_flat(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, list):
        return {prefix: json.dumps(value, default=str)}
    return {prefix: value}


def header_of(rows: list[dict], columns: Optional[list] = None) -> list[str]:
    if columns:
        return [str(column) for column in columns]
    header: dict[str, None] = {}
    for row in rows:
        header.update(dict.fromkeys(row))
    return list(header)


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, default=str)


def to_csv(rows: list[dict], columns: Optional[list] = None) -> bytes:
    output = io.StringIO()
    writer = csv.DictWriter(output, fieldnames=header_of(rows, columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: _cell(value) for key, value in row.items()} for row in rows)
    return output.getvalue().encode()


def to_xlsx(rows: list[dict], columns: Optional[list] = None) -> bytes:
    header = header_of(rows, columns)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(header)
    for row in rows:
        sheet.append([_xlsx_cell(sheet, _cell(row.get(name))) for name in header])
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


def _xlsx_cell(sheet, value: Any):
    if not isinstance(value, str):
        return value
    cell = WriteOnlyCell(sheet, ILLEGAL_CHARACTERS_RE.sub("", value))
    cell.data_type = "s"  # text stays text: a value starting with "=" is not a formula
    return cell


def to_xlsx_sheets(sheets: list[tuple[str, list[dict]]]) -> bytes:
    """One worksheet per (title, rows): a dashboard's tiles side by side in one workbook."""
    workbook = Workbook(write_only=True)
    used: set[str] = set()
    for title, rows in sheets:
        sheet = workbook.create_sheet(title=_sheet_title(title, used))
        header = header_of(rows)
        sheet.append(header)
        for row in rows:
            sheet.append([_xlsx_cell(sheet, _cell(row.get(name))) for name in header])
    if not sheets:
        workbook.create_sheet().append(header_of(NO_DATA))
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


# Characters Excel refuses in sheet names, and its length limit.
_SHEET_FORBIDDEN = str.maketrans({character: " " for character in "[]:*?/\\"})
MAX_SHEET_TITLE = 31


def _sheet_title(title: str, used: set[str]) -> str:
    base = ILLEGAL_CHARACTERS_RE.sub("", title).translate(_SHEET_FORBIDDEN).strip().strip("'")[:MAX_SHEET_TITLE] or "Insight"
    name, number = base, 2
    while name.lower() in used:
        suffix = f" ({number})"
        name, number = base[: MAX_SHEET_TITLE - len(suffix)] + suffix, number + 1
    used.add(name.lower())
    return name
