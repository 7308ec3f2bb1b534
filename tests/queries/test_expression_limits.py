"""Every parser of user expressions has length and depth limits and refuses huge numbers: a 400
naming the problem, never a RecursionError or ValueError turned into a 500."""
import pytest

from tests.conftest import error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

TRENDS = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}
DEEP = "(" * 150 + "1" + ")" * 150
DEEPER = "(" * 3000 + "1" + ")" * 3000
HUGE = "9" * 5000
HOGQL_DEEP = "The HogQL expression is nested too deeply (more than 64 levels)."
HOGQL_HUGE = "The number 9999999999999999999999999999999999999999... is out of range."
EXPRESSION_DEEP = "The expression '((((((((((((((((((((((((((((((((((((((((...' is nested too deeply (more than 64 levels)."


def breakdown(expression):
    return {**TRENDS, "breakdownFilter": {"breakdown_type": "hogql", "breakdown": expression}}


def hogql_filter(expression):
    return {**TRENDS, "properties": [{"key": expression, "type": "hogql"}]}


def formula(text):
    return {**TRENDS, "series": TRENDS["series"] * 2, "trendsFilter": {"formula": text}}


CASES = [
    # HogQL expressions: breakdowns, property filters, math and aggregation expressions.
    (breakdown(DEEP), HOGQL_DEEP),
    (breakdown(DEEPER), HOGQL_DEEP),
    (breakdown("-" * 3000 + "1"), "The HogQL expression is nested too deeply."),
    (breakdown(" + ".join(["1"] * 100)), HOGQL_DEEP),
    (breakdown("NOT " * 3000 + "1"), "The HogQL expression is too long (more than 10000 characters)."),
    (breakdown(HUGE), HOGQL_HUGE),
    (breakdown("1e999"), "The number 1e999 is out of range."),
    (breakdown("99999999999999999999"), "The number 99999999999999999999 is out of range."),
    (hogql_filter(f"{DEEP} = 1"), HOGQL_DEEP),
    (hogql_filter(f"{HUGE}.5 = 1"), HOGQL_HUGE),
    ({**TRENDS, "series": [{"kind": "EventsNode", "event": "$pageview", "math": "hogql", "math_hogql": f"sum({DEEP})"}]},
     HOGQL_DEEP),
    # Trends formulas.
    (formula("(" * 150 + "A" + ")" * 150), "The formula is nested too deeply (more than 64 levels)."),
    (formula("-" * 5000 + "A"), "The formula is nested too deeply."),
    (formula("A" + "*B" * 5000), "The formula is too long (more than 10000 characters)."),
    (formula("A" + "+B" * 100), "The formula is nested too deeply (more than 64 levels)."),
    (formula("A * 1" + "0" * 400), "The number 1000000000000000000000000000000000000000... is out of range."),
    # SQL insights.
    ({"kind": "HogQLQuery", "query": f"SELECT {DEEP}"}, "The query is nested too deeply."),
    ({"kind": "HogQLQuery", "query": f"SELECT {HUGE}"}, "Invalid number: 9999999999999999999999999999999999999999..."),
    ({"kind": "HogQLQuery", "query": "SELECT 1" + "0" * 400}, "Integer out of range: 1000000000000000000000000000000000000000..."),
    # EventsQuery select / where / orderBy.
    ({"kind": "EventsQuery", "select": [DEEP]}, EXPRESSION_DEEP),
    ({"kind": "EventsQuery", "select": [DEEPER]}, EXPRESSION_DEEP),
    ({"kind": "EventsQuery", "select": ["event"], "where": [f"{DEEP} = 1"]}, EXPRESSION_DEEP),
    ({"kind": "EventsQuery", "select": ["event"], "orderBy": [DEEP]}, EXPRESSION_DEEP),
    ({"kind": "EventsQuery", "select": ["- " * 3000 + "1"]},
     "The expression '- - - - - - - - - - - - - - - - - - - - ...' is nested too deeply."),
    ({"kind": "EventsQuery", "select": ["1" + "+1" * 6000]},
     "The expression '1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+...' is too long (more than 10000 characters)."),
    ({"kind": "EventsQuery", "select": [HUGE]}, "Invalid number: 9999999999999999999999999999999999999999..."),
]


@pytest.mark.parametrize("query, detail", CASES)
def test_query_endpoint_answers_400(client, team, query, detail):
    response = client.post(f"/api/projects/{team.id}/query/", {"query": query, "refresh": "force_blocking"}, format="json")
    assert (response.status_code, response.json()) == (400, error("validation_error", "invalid_input", detail))


def test_expressions_within_the_limits_run(client, team):
    nested = "(" * 60 + "1" + ")" * 60
    for query in (breakdown(nested), hogql_filter(f"{nested} = 1"), formula("(" * 60 + "A + B" + ")" * 60),
                  {"kind": "EventsQuery", "select": ["(" * 30 + "1" + ")" * 30]},
                  {"kind": "HogQLQuery", "query": "SELECT " + "(" * 30 + "1" + ")" * 30}):
        response = client.post(f"/api/projects/{team.id}/query/", {"query": query, "refresh": "force_blocking"}, format="json")
        assert response.status_code == 200, (query, response.json())


@pytest.mark.parametrize("query, detail", [CASES[0], CASES[5], CASES[11], CASES[16], CASES[19]])
def test_saved_insight_shows_the_error_and_the_list_still_answers(client, team, query, detail):
    node = {"kind": "DataTableNode" if query["kind"] in ("HogQLQuery", "EventsQuery") else "InsightVizNode", "source": query}
    response = client.post(f"/api/projects/{team.id}/insights/", {"query": node}, format="json")
    assert response.status_code == 201, response.json()
    insight_id = response.json()["id"]
    response = client.get(f"/api/projects/{team.id}/insights/{insight_id}/?refresh=blocking")
    assert response.status_code == 200
    assert response.json()["query_status"]["error_message"] == detail
    listed = client.get(f"/api/projects/{team.id}/insights/?refresh=blocking")
    assert listed.status_code == 200
    [item] = listed.json()["results"]
    assert item["query_status"]["error"] is True
    assert item["query_status"]["error_message"] == detail
