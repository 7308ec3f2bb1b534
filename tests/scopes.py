"""One battery of personal-API-key scope tests for any team-nested API resource.

The shape is NetBox's `APIViewTestCases`: a test class declares its resource and inherits the
tests. Each test runs once per declared action (the action's name is the test id):

    class TestDashboardScopes(ScopeTestCases.ReadActions, ScopeTestCases.WriteActions):
        url = "/api/projects/{team.id}/dashboards/"
        unrelated_scope = "insight:read"
        actions = {
            "list": Action("get", "", "dashboard:read"),
            "create": Action("post", "", "dashboard:write", status=201, body={"name": "x"}),
        }

        def make_object(self, team, user):
            return DashboardFactory(team=team)

Hooks to declare:
- `url`: the resource's URL, formatted with `team` and `obj` (the object `make_object` made);
  each action's `path` is appended to it and formatted the same way.
- `actions`: name -> `Action`. `scope=None` declares an action PostHog refuses to every scoped key.
- `unrelated_scope`: a scope that grants nothing on this resource.
- `make_object(team, user)`: the object the actions work on (default: nothing).

Every class gets: each action's own scope suffices, other scopes get PostHog's 403 body, keys
restricted to another project get theirs, anonymous requests get the 401. `ReadActions` adds
"a :write scope also reads", `WriteActions` "a :read scope cannot write", `UnscopedActions`
"scoped keys (even `*`) are refused where PostHog maps no scope; legacy unscoped keys pass".
"""
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from tests.conftest import error
from tests.factories import make_team

NOT_SUPPORTED = "This action does not support Personal API Key access"


@dataclass(frozen=True)
class Action:
    method: str
    path: str
    scope: str | None
    status: int = 200  # the answer once the scope check has passed
    body: dict | Callable[[Any, Any], dict] | None = None  # a dict, or made from (obj, user)


def applies_to(kind: Callable[[Action], bool]):
    """Marks a test as running once per action of this kind."""

    def mark(test):
        test.applies_to = kind
        return test

    return mark


def _is_read(action):
    return action.scope is not None and action.scope.endswith(":read")


def _is_write(action):
    return action.scope is not None and action.scope.endswith(":write")


class ScopeTestCases:
    """`Base` holds the tests every resource gets; mix in `ReadActions`, `WriteActions` and
    `UnscopedActions` for the kinds of action the resource has."""

    @pytest.mark.django_db
    class Base:
        url: str
        actions: dict[str, Action]
        unrelated_scope: str

        def make_object(self, team, user):
            return None

        def pytest_generate_tests(self, metafunc):
            if "action" in metafunc.fixturenames:
                kind = metafunc.function.applies_to
                names = [name for name, action in self.actions.items() if kind(action)]
                metafunc.parametrize("action", [self.actions[name] for name in names], ids=names)

        @pytest.fixture
        def call(self, team, user):
            """`call(api, action)`: the action's request on this team's object."""
            obj = self.make_object(team, user)

            def request(api, action: Action):
                url = (self.url + action.path).format(team=team, obj=obj)
                body = action.body(obj, user) if callable(action.body) else action.body
                method = getattr(api, action.method)
                return method(url) if body is None else method(url, body, format="json")

            return request

        @applies_to(lambda action: action.scope is not None)
        def test_its_scope_is_enough(self, api_client, call, action):
            assert call(api_client([action.scope]), action).status_code == action.status

        @applies_to(lambda action: action.scope is not None)
        def test_other_scopes_are_refused(self, api_client, call, action):
            response = call(api_client([self.unrelated_scope]), action)
            assert response.status_code == 403
            assert response.json() == error("authentication_error", "permission_denied", f"API key missing required scope '{action.scope}'")

        def test_keys_restricted_to_another_project_are_refused(self, api_client, call, team):
            api = api_client(["*"], team=make_team(team.organization))
            detail = f"API key does not have access to the requested project: ID {team.id}."
            for name, action in self.actions.items():
                response = call(api, action)
                assert response.status_code == 403, name
                assert response.json() == error("authentication_error", "permission_denied", detail), name

        def test_anonymous_requests_are_refused(self, anon_client, call):
            for name, action in self.actions.items():
                response = call(anon_client, action)
                assert response.status_code == 401, name
                assert response.json() == error("authentication_error", "not_authenticated", "Authentication credentials were not provided."), name

    class ReadActions(Base):
        @applies_to(_is_read)
        def test_write_scope_implies_read(self, api_client, call, action):
            write_scope = action.scope.replace(":read", ":write")
            assert call(api_client([write_scope]), action).status_code == action.status

    class WriteActions(Base):
        @applies_to(_is_write)
        def test_read_scope_cannot_write(self, api_client, call, action):
            response = call(api_client([action.scope.replace(":write", ":read")]), action)
            assert response.status_code == 403
            assert response.json() == error("authentication_error", "permission_denied", f"API key missing required scope '{action.scope}'")

    class UnscopedActions(Base):
        @applies_to(lambda action: action.scope is None)
        def test_scoped_keys_are_refused_where_no_scope_applies(self, api_client, call, action):
            response = call(api_client(["*"]), action)
            assert response.status_code == 403
            assert response.json() == error("authentication_error", "permission_denied", NOT_SUPPORTED)
            assert call(api_client(None), action).status_code == action.status  # a legacy unscoped key passes
