"""`?search=`: exact substring and trigram similarity, on SQLite and PostgreSQL alike (spec §2.2)."""
import pytest

from tests.conftest import error
from tests.factories import make_team

from .conftest import BASIC_KEYS, ids, make_insight

pytestmark = pytest.mark.django_db

PROSE = "Tracks how many people complete onboarding"


def search(client, base, term, **params):
    response = client.get(base, {"search": term, **params})
    assert response.status_code == 200, response.json()
    return {row["id"]: row["search_match_type"] for row in response.json()["results"]}, response


@pytest.mark.parametrize("term", ["pageview", "PAGEVIEWS PER", "rev", "onboarding", "Marketing", "ket"])
def test_substring_matches_are_exact(client, base, team, term):
    insight = make_insight(team, name="Pageviews per day", derived_name="Revenue by country", description=PROSE, tags=["marketing"])
    make_insight(team, name="Unrelated", derived_name=None, description=None)
    matches, _ = search(client, base, term)
    assert matches == {insight.id: "exact"}


@pytest.mark.parametrize(
    "term, field",
    [("pagevews", "name"), ("revenu by contry", "derived_name"), ("peple complete", "description")],
)
def test_typos_match_as_similar(client, base, team, term, field):
    values = {"name": "Pageviews per day", "derived_name": "Revenue by country", "description": PROSE}
    insight = make_insight(team, **{key: (value if key == field else None) for key, value in values.items()})
    matches, _ = search(client, base, term)
    assert matches == {insight.id: "similar"}


def test_descriptions_need_a_closer_match_than_names(client, base, team):
    # word similarity of "comlpete" with the prose is 0.385: above the name threshold (0.3),
    # below the description threshold (0.4).
    by_name = make_insight(team, name=PROSE, description=None)
    make_insight(team, name="Other", description=PROSE)
    matches, _ = search(client, base, "comlpete")
    assert matches == {by_name.id: "similar"}


def test_exact_matches_come_first_then_relevance(client, base, team):
    fuzzy = make_insight(team, name="Funel analysis")
    exact_weak = make_insight(team, name="Old checkout funnel draft for the team")
    exact_strong = make_insight(team, name="Funnel")
    make_insight(team, name="Retention")
    matches, response = search(client, base, "funnel")
    assert ids(response) == [exact_strong.id, exact_weak.id, fuzzy.id]
    assert matches == {exact_strong.id: "exact", exact_weak.id: "exact", fuzzy.id: "similar"}


def test_order_param_overrides_relevance(client, base, team):
    first = make_insight(team, name="Funnel b")
    second = make_insight(team, name="Funnel a")
    _, response = search(client, base, "funnel", order="name")
    assert ids(response) == [second.id, first.id]


def test_search_combines_with_other_filters_and_basic(client, base, team):
    favorite = make_insight(team, name="Signup funnel", favorited=True)
    make_insight(team, name="Signup funnel")
    matches, response = search(client, base, "signup", favorited="1", basic="true")
    assert matches == {favorite.id: "exact"}
    assert list(response.json()["results"][0]) == [*BASIC_KEYS, "search_match_type"]
    assert response.json()["count"] == 1


def test_a_row_matching_several_tags_is_listed_once(client, base, team):
    insight = make_insight(team, name="x", tags=["growth-a", "growth-b"])
    matches, response = search(client, base, "growth")
    assert matches == {insight.id: "exact"}
    assert response.json()["count"] == 1


def test_search_match_type_only_when_searching(client, base, team):
    make_insight(team, name="Signup funnel")
    assert "search_match_type" not in client.get(base).json()["results"][0]
    for blank in ("", "   ", "\x00"):
        assert "search_match_type" not in client.get(base, {"search": blank}).json()["results"][0]


def test_nul_bytes_are_stripped(client, base, team):
    insight = make_insight(team, name="Signup funnel")
    matches, _ = search(client, base, "sign\x00up")
    assert matches == {insight.id: "exact"}


def test_search_is_at_most_200_characters(client, base, team):
    make_insight(team, name="x" * 200)
    assert search(client, base, "x" * 200)[0] != {}
    response = client.get(base, {"search": "x" * 201})
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", "Search query must be 200 characters or fewer.", "search")


def test_search_never_crosses_tenants(client, base, team):
    make_insight(make_team(), name="Signup funnel", tags=["signup"])
    assert search(client, base, "signup")[0] == {}


def test_no_match(client, base, team):
    make_insight(team, name="Revenue", description=PROSE, tags=["finance"])
    matches, response = search(client, base, "zzzz")
    assert matches == {} and response.json()["count"] == 0
