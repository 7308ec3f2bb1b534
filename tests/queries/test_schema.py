"""validate_query: the query schema every insight create/update goes through."""
import pytest
from rest_framework.exceptions import ParseError

from queries import validate_query

SERIES = [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}]
VALID = [
    {"kind": "TrendsQuery", "series": SERIES, "breakdownFilter": {"breakdown": "$browser"}, "compareFilter": {"compare": True}},
    {"kind": "FunnelsQuery", "series": SERIES * 2, "funnelsFilter": {"funnelOrderType": "strict", "funnelWindowInterval": 7}},
    {"kind": "RetentionQuery", "retentionFilter": {"period": "Week", "totalIntervals": 4, "targetEntity": {"id": "$pageview", "type": "events"}}},
    {"kind": "LifecycleQuery", "series": SERIES, "lifecycleFilter": {"toggledLifecycles": ["new", "dormant"]}},
    {"kind": "StickinessQuery", "series": SERIES, "intervalCount": 2, "stickinessFilter": {"computedAs": "cumulative"}},
    {"kind": "PathsQuery", "pathsFilter": {"includeEventTypes": ["$pageview"], "stepLimit": 4}},
    {"kind": "HogQLQuery", "query": "select count() from events"},
    {"kind": "EventsQuery", "select": ["*", "event"], "where": ["event = '$pageview'"]},
    {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": SERIES}, "showHeader": True},
    {"kind": "DataVisualizationNode", "source": {"kind": "HogQLQuery", "query": "select 1"}, "display": "ActionsTable"},
    {"kind": "DataTableNode", "source": {"kind": "EventsQuery", "select": ["*"]}, "columns": ["*"]},
    {"kind": "TrendsQuery", "series": SERIES, "properties": {"type": "OR", "values": [{"type": "AND", "values": [
        {"key": "$browser", "value": ["Chrome"], "operator": "exact", "type": "event"},
        {"type": "OR", "values": [{"key": "email", "operator": "is_set", "type": "person"}]},
    ]}]}},
]


@pytest.mark.parametrize("query", VALID, ids=[q["kind"] for q in VALID])
def test_valid_queries(query):
    validate_query(query)


def test_unknown_keys_are_allowed_everywhere():
    validate_query({"kind": "InsightVizNode", "futureProp": 1, "source": {"kind": "TrendsQuery", "newFilter": {"x": 1},
                    "series": [{"kind": "EventsNode", "event": None, "newKey": True}]}})


@pytest.mark.parametrize(
    "query, message",
    [
        ({"kind": "TrendsQuery"}, "1 validation error for QuerySchemaRoot\nTrendsQuery.series\n  Field required"),
        ({"kind": "Unknown"}, "1 validation error for QuerySchemaRoot\n  Input tag 'Unknown' found using 'kind' does not match"),
        ({}, "1 validation error for QuerySchemaRoot\n  Unable to extract tag using discriminator 'kind'"),
        ([], "1 validation error for QuerySchemaRoot\n  Input should be a valid dictionary"),
        ({"kind": "TrendsQuery", "series": SERIES, "interval": "year"}, "1 validation error for QuerySchemaRoot\nTrendsQuery.interval\n  Input should be"),
        ({"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "math": "most"}]}, "1 validation error for QuerySchemaRoot\nTrendsQuery.series.0.EventsNode.math\n"),
        ({"kind": "TrendsQuery", "series": SERIES, "properties": [{"key": "a", "operator": "almost"}]}, "TrendsQuery.properties"),
        ({"kind": "InsightVizNode", "source": {"kind": "HogQLQuery", "query": "x"}}, "InsightVizNode.source\n  Input tag 'HogQLQuery'"),
        ({"kind": "TrendsQuery", "series": SERIES, "breakdownFilter": {"breakdown_limit": 0}}, "TrendsQuery.breakdownFilter.breakdown_limit\n  Input should be greater than or equal to 1"),
    ],
)
def test_invalid_queries_raise_parse_error(query, message):
    with pytest.raises(ParseError) as raised:
        validate_query(query)
    assert message in str(raised.value.detail)
    assert raised.value.get_codes() == "parse_error"
