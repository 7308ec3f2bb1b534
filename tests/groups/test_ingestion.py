"""Capture registers group types from `$groups` (index 0..4 per project) and upserts groups from `$groupidentify`."""
from datetime import timedelta

import pytest

from groups.models import Group, GroupTypeMapping
from tests.events.helpers import T0, message, post_batch
from tests.factories import make_environment

pytestmark = pytest.mark.django_db


def identify(group_type, key, group_set=None, timestamp=T0):
    return message("$groupidentify", "team-uuid", {"$group_type": group_type, "$group_key": key, "$group_set": group_set or {},
                                                   "$groups": {group_type: key}}, timestamp=timestamp)


def types(team):
    return list(GroupTypeMapping.objects.filter(project_id=team.project_id).values_list("group_type", "group_type_index"))


def test_group_types_are_registered_first_come_up_to_five(team):
    names = ["company", "org", "instance", "project", "workspace", "sixth"]
    response = post_batch(team, [message(properties={"$groups": {name: f"{name}-1"}}) for name in names])
    assert response.status_code == 200
    assert types(team) == [(name, index) for index, name in enumerate(names[:5])]
    post_batch(team, [message(properties={"$groups": {"company": "c2", "seventh": "x"}})])
    assert len(types(team)) == 5


def test_non_object_groups_are_ignored(team):
    post_batch(team, [message(properties={"$groups": "company"}), message(properties={"$groups": ["company"]})])
    assert types(team) == []


def test_group_types_are_per_project(team):
    staging = make_environment(team)
    post_batch(team, [message(properties={"$groups": {"company": "c1"}})])
    post_batch(staging, [message(properties={"$groups": {"org": "o1", "company": "c1"}})])
    assert types(staging) == [("company", 0), ("org", 1)]


def test_groupidentify_creates_then_merges_properties(team):
    post_batch(team, [identify("company", "acme", {"name": "Acme", "plan": "free"}, T0)])
    post_batch(team, [identify("company", "acme", {"plan": "paid", "seats": 10}, T0 + timedelta(hours=1)),
                      identify("company", "globex", {"name": "Globex"}, T0 + timedelta(hours=2))])
    groups = {g.group_key: g for g in Group.objects.filter(team=team)}
    assert groups["acme"].group_properties == {"name": "Acme", "plan": "paid", "seats": 10}
    assert groups["acme"].group_type_index == 0
    assert groups["acme"].created_at == T0
    assert groups["globex"].group_properties == {"name": "Globex"}


def test_groupidentify_in_one_batch_applies_in_time_order(team):
    post_batch(team, [identify("company", "acme", {"plan": "paid"}, T0 + timedelta(minutes=1)),
                      identify("company", "acme", {"plan": "free", "name": "Acme"}, T0)])
    assert Group.objects.get(team=team).group_properties == {"plan": "paid", "name": "Acme"}


def test_groupidentify_without_key_is_stored_as_an_event_only(team):
    response = post_batch(team, [message("$groupidentify", "x", {"$group_type": "company", "$group_set": {"a": 1}})])
    assert response.status_code == 200
    assert Group.objects.count() == 0


def test_ingestion_query_count_does_not_grow_with_groups(team, django_assert_max_num_queries):
    post_batch(team, [identify("company", "warmup")])
    batch = [identify("company", f"c{i}", {"i": i}) for i in range(50)]
    with django_assert_max_num_queries(20):
        post_batch(team, batch)
    assert Group.objects.filter(team=team).count() == 51


def test_identified_groups_are_mirrored_into_clickhouse(clickhouse, team):
    """On ClickHouse, queries join the `groups` mirror: it holds each group's newest properties."""
    from queries.sql.engine import get_engine
    from queries.sql.engine.base import Params
    from sqlglot import exp

    post_batch(team, [identify("company", "acme", {"plan": "free"}), identify("org", "o1", {"seats": 3})])
    post_batch(team, [identify("company", "acme", {"plan": "pro"}, timestamp=T0 + timedelta(minutes=1))])
    engine = get_engine()
    source = engine.groups_source(team.id, "g")
    rows = engine.execute(exp.select("group_type_index", "group_key", "group_properties").from_(source)
                          .order_by("group_type_index"), Params())
    assert rows == [(0, "acme", '{"plan": "pro"}'), (1, "o1", '{"seats": 3}')]
    from groups.services import delete_group_type

    delete_group_type(team=team, group_type_index=1)
    assert engine.execute(exp.select("group_key").from_(engine.groups_source(team.id, "g")), Params()) == [("acme",)]
