"""Reading the ids of a static cohort's CSV upload (PostHog's rules): one column of distinct ids,
person UUIDs or emails (told by its header), or several columns with a header naming the id column."""
import csv
import io

from rest_framework.exceptions import ValidationError

PERSON_ID_HEADERS = ("person_id", "person-id", "person.id", "personid")
DISTINCT_ID_HEADERS = ("distinct_id", "distinct-id")
EMAIL_HEADERS = ("email", "e-mail")
KIND_NAMES = {"uuid": "person ids", "distinct_id": "distinct ids", "email": "emails"}


def _normalized(cell: str) -> str:
    return cell.strip().lower().replace(" ", "")


def read_ids(uploaded) -> tuple[str, list[str]]:
    """(key, ids): key is `uuid`, `distinct_id` or `email`; 400 for files PostHog refuses."""
    raw = uploaded.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError({"csv": ["CSV file encoding is not supported. Save the file as UTF-8 and upload it again."]}) from None
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as error:
        raise ValidationError({"csv": [f"The CSV file cannot be read: {error}."]}) from None
    while rows and not any(cell.strip() for cell in rows[0]):
        rows.pop(0)
    if not rows:
        raise ValidationError({"csv": ["CSV file is empty. Upload a file with one id per row."]})
    header = [_normalized(cell) for cell in rows[0]]
    if len([cell for cell in rows[0] if cell.strip()]) <= 1:
        first = header[0] if header else ""
        if first in PERSON_ID_HEADERS:
            key, values = "uuid", [row[0] for row in rows[1:] if row]
        elif first in EMAIL_HEADERS:
            key, values = "email", [row[0] for row in rows[1:] if row]
        else:
            key, values = "distinct_id", [row[0] for row in rows if row]
    else:
        column = None
        for key, names in (("uuid", PERSON_ID_HEADERS), ("distinct_id", DISTINCT_ID_HEADERS), ("email", EMAIL_HEADERS)):
            column = next((index for index, name in enumerate(header) if name in names), None)
            if column is not None:
                break
        if column is None:
            raise ValidationError({"csv": [
                "Multi-column CSV must contain at least one column with a supported ID header: "
                "person_id, distinct_id or email."]})
        values = [row[column] for row in rows[1:] if len(row) > column]
    values = [value.strip() for value in values if value and value.strip()]
    if not values:
        raise ValidationError({"csv": [f"CSV file contains no valid {KIND_NAMES[key]}."]})
    return key, values
