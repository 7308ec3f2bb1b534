"""Actions as SQL conditions: one condition per action (an OR of its steps), used by every runner.

An event matches an action when any step matches; a step matches when all its set conditions
hold (PostHog's `action_to_expr`). An action without steps, and a step without conditions,
match every event. Element conditions (selector, tag_name, href, text) apply to `$autocapture`
steps only and read the event's elements chain (`$elements_chain`: elements joined by `;`, the
clicked one first, each `tag.class1.class2:key="value"...` with sorted classes and keys).

Derived values of the chain that PostHog materializes are computed from the chain string:
its first href (`elements_chain_href`) with the engine's `regex_replace`, its texts with
regexes over the chain (exact, contains) or the engine's `regex_any_group` (regex).
"""
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from pydantic import ValidationError as PydanticValidationError
from rest_framework.exceptions import ValidationError
from sqlglot import exp

from actions.models import Action

from ..schema import PropertyFilter, PropertyOperator
from .context import SQLContext
from .engine import case, is_not_false, is_true, paren
from .properties import and_all, properties_condition
from .regex import regex_problem

ELEMENTS_CHAIN = "$elements_chain"
CURRENT_URL = "$current_url"
AUTOCAPTURE = "$autocapture"
_SPECIAL = set("\\^$.|?*+()[]{}")
# A value of one `key="..."` in the chain, as ClickHouse's `(.*?)"` reads it: up to the next quote.
_TEXTS = r'[:"]text="([^"]*)"'
_FIRST_HREF = r'^[\s\S]*?[:"]href="([^"]*)"[\s\S]*$'
_HAS_HREF = r'[:"]href="[^"]*"'


def regex_literal(text: str) -> str:
    """`text` as a regex matching itself, in the syntax RE2 and PostgreSQL share."""
    return "".join("\\" + char if char in _SPECIAL else char for char in text)


def _like_to_regex(pattern: str, any_char: str) -> str:
    """A LIKE pattern (`%`, `_`, backslash escapes) as a regex fragment; `any_char` is what `_` matches."""
    out, escaped = [], False
    for char in pattern:
        if escaped:
            out.append(regex_literal(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            out.append(any_char + "*")
        elif char == "_":
            out.append(any_char)
        else:
            out.append(regex_literal(char))
    return "".join(out)


def _checked(pattern: str, what: str) -> str:
    problem = regex_problem(pattern)
    if problem:
        raise ValidationError(f"Invalid regular expression in an action's {what} {pattern!r}: {problem}")
    return pattern


# --- Selectors ---------------------------------------------------------------------------------

_PART = re.compile(
    r"""(?P<tag>[A-Za-z*][\w-]*)?(?P<rest>(?:\.[\w-]+|\#[\w-]+|\[[^\]=]+(?:=(?:"[^"]*"|'[^']*'|[^\]]*))?\]|:[\w-]+(?:\([^)]*\))?)*)$"""
)
_TOKENS = re.compile(r""">|(?:\[[^\]]*\]|\([^)]*\)|[^\s>\[(])+""")
_PIECE = re.compile(r"""\.([\w-]+)|\#([\w-]+)|\[([^\]=]+)(?:=("[^"]*"|'[^']*'|[^\]]*))?\]|:([\w-]+)(?:\(([^)]*)\))?""")


@dataclass
class SelectorPart:
    tag: Optional[str] = None
    classes: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)  # chain keys: attr_id, attr__<name>, nth-child...
    direct_child: bool = False  # this part is the direct child of the next one (`parent > this`)


def parse_selector(selector: str) -> list[SelectorPart]:
    """The parts of a CSS selector, the clicked element's part first (as the chain is ordered)."""
    tokens = _TOKENS.findall(selector)
    if re.sub(r"\s+", "", "".join(tokens)) != re.sub(r"\s+", "", selector):
        raise ValueError("cannot read the selector")
    parts: list[SelectorPart] = []
    direct = False
    for token in tokens:
        if token == ">":
            if not parts or direct:
                raise ValueError("misplaced '>'")
            direct = True
            continue
        match = _PART.match(token)
        if not match:
            raise ValueError(f"cannot read {token!r}")
        part = SelectorPart(tag=match.group("tag"))
        for cls, id_, attr, value, pseudo, argument in _PIECE.findall(match.group("rest")):
            if cls:
                part.classes.append(cls)
            elif id_:
                part.attributes["attr_id"] = id_
            elif attr:
                value = value[1:-1] if value[:1] in ("'", '"') else value
                part.attributes[_chain_key(attr)] = value
            elif pseudo in ("nth-child", "nth-of-type") and argument.strip().isdigit():
                part.attributes[pseudo] = argument.strip()
        part.direct_child = direct
        parts.append(part)
        direct = False
    if direct:
        raise ValueError("misplaced '>'")
    if not parts:
        raise ValueError("empty selector")
    return list(reversed(parts))


# Chain keys of element fields; any other attribute is stored as attr__<name>.
_CHAIN_FIELDS = {"id": "attr_id", "attr_id": "attr_id", "href": "href", "text": "text", "nth-child": "nth-child",
                 "nth-of-type": "nth-of-type"}
# Inside an element: quoted values may hold `;` and escaped quotes (`\"`), so they are skipped whole.
_QUOTED = r'"(?:\\.|[^"\\])*"'
_REST_OF_ELEMENT = r'(?:[^;"]|' + _QUOTED + ")*"
_WHOLE_PAIRS = r'(?:[^;"]*' + _QUOTED + ")*"  # key="value" pairs, ending after a closing quote


def _chain_key(attribute: str) -> str:
    return _CHAIN_FIELDS.get(attribute, f"attr__{attribute}")


def _chain_value(value: str) -> str:
    """A value as the chain writes it: quotes escaped as \\" (whether the selector escaped them or not)."""
    return value.replace('\\"', '"').replace('"', '\\"')


def _element_regex(part: SelectorPart) -> str:
    tag = regex_literal(part.tag) if part.tag and part.tag != "*" else "[^.:;]*"
    other_classes = r"(?:\.[^.:;]*)*"
    classes = other_classes + "".join(r"\." + regex_literal(name) + other_classes for name in sorted(set(part.classes)))
    if part.attributes:
        # Keys are sorted in the chain; each pair follows the `:` or the closing quote of another value.
        pairs = "".join(
            _WHOLE_PAIRS + regex_literal(key) + '="' + regex_literal(_chain_value(value)) + '"'
            for key, value in sorted(part.attributes.items())
        )
        attributes = ":" + pairs + _REST_OF_ELEMENT
    else:
        attributes = "(?::" + _REST_OF_ELEMENT + ")?"
    return tag + classes + attributes


def selector_regex(selector: Optional[str]) -> Optional[str]:
    """The regex over the elements chain that a selector stands for; None without a readable selector.

    Each part must match one whole element, in chain order (child first); `a > b` puts `a`
    right after `b`, `a b` any number of whole elements later.
    """
    if not selector or not selector.strip():
        return None
    try:
        parts = parse_selector(selector)
    except ValueError:
        return None
    pattern = "(?:^|;)" + _element_regex(parts[0])
    for child, parent in zip(parts, parts[1:]):
        pattern += (";" if child.direct_child else ";(?:" + _REST_OF_ELEMENT + ";)*") + _element_regex(parent)
    return pattern + "(?:;|$)"


# --- Steps and actions -------------------------------------------------------------------------


def _matching(step: dict, key: str, default: Optional[str]) -> str:
    value = step.get(key) or default
    return value if value in ("exact", "contains", "regex") else "exact"


def _step_properties(step: dict) -> list[PropertyFilter]:
    raw = step.get("properties") or []
    if not isinstance(raw, list):
        raise ValidationError("An action step's properties must be a list of property filters.")
    try:
        return [PropertyFilter.model_validate(item) for item in raw]
    except PydanticValidationError as error:
        raise ValidationError(f"An action step has an invalid property filter: {error.errors()[0]['msg']}") from None


class _StepCompiler:
    def __init__(self, context: SQLContext):
        self.context = context
        self._chain: Optional[exp.Expression] = None

    @property
    def chain(self) -> exp.Expression:
        return self.context.event_property(ELEMENTS_CHAIN)

    def regex(self, value: exp.Expression, pattern: str) -> exp.Expression:
        return is_true(self.context.engine.regex(value, self.context.param(pattern)))

    def step(self, step: dict) -> Optional[exp.Expression]:
        context = self.context
        conditions: list[Optional[exp.Expression]] = []
        event = step.get("event")
        if event:
            conditions.append(exp.EQ(this=context.event_column("event"), expression=context.param(str(event))))
        if event == AUTOCAPTURE:
            conditions.extend(self.elements(step))
        url = step.get("url")
        if url:
            conditions.append(self.url(str(url), _matching(step, "url_matching", "contains")))
        conditions.append(properties_condition(_step_properties(step), context))
        return and_all(conditions)

    def url(self, url: str, matching: str) -> exp.Expression:
        context = self.context
        value = context.event_property(CURRENT_URL)
        if matching == "exact":
            return is_true(exp.EQ(this=value, expression=context.param(url)))
        if matching == "regex":
            return self.regex(value, _checked(url, "URL"))
        pattern = f"%{url}%"  # case-sensitive, the URL's own % and _ are wildcards (PostHog's LIKE)
        return is_true(context.engine.like(value, context.param(pattern), pattern, context.params))

    def elements(self, step: dict) -> list[exp.Expression]:
        conditions = []
        selector = step.get("selector")
        if selector and str(selector).strip():
            pattern = selector_regex(str(selector))
            if pattern is None:
                raise ValidationError(f"An action step's selector {selector!r} could not be read.")
            conditions.append(self.regex(self.chain, _checked(pattern, "selector")))
        tag_name = step.get("tag_name")
        if tag_name is not None:
            conditions.append(self.regex(self.chain, _checked(f"(^|;){tag_name}(\\.|$|;|:)", "tag name")))
        href = step.get("href")
        if href is not None:
            conditions.append(self.href(str(href), _matching(step, "href_matching", None)))
        text = step.get("text")
        if text is not None:
            conditions.append(self.text(str(text), _matching(step, "text_matching", None)))
        return conditions

    def first_href(self) -> exp.Expression:
        engine, params = self.context.engine, self.context.params
        extracted = engine.regex_replace(self.chain, _FIRST_HREF, "\\1", params)
        return case([(self.regex(self.chain, _HAS_HREF), extracted)], exp.Literal.string(""))

    def href(self, href: str, matching: str) -> exp.Expression:
        context = self.context
        value = self.first_href()
        if matching == "regex":
            return self.regex(value, _checked(href, "href"))
        if matching == "contains":
            return is_true(context.engine.icontains(value, context.param(f"%{href}%")))
        return is_true(exp.EQ(this=value, expression=context.param(href)))

    def element_match(self, key: str, operator: PropertyOperator, value: Optional[str]) -> exp.Expression:
        """The positive condition of an element filter (see element_condition)."""
        if key == "selector":
            return self.elements({"selector": value})[0] if value.strip() else exp.true()
        if key == "tag_name":
            return self.elements({"tag_name": value})[0]
        if operator == PropertyOperator.is_set:
            return self.regex(self.chain, '[:"]text="[^"]')
        return self.text(value, {PropertyOperator.icontains: "contains", PropertyOperator.regex: "regex"}.get(operator, "exact"))

    def text(self, text: str, matching: str) -> exp.Expression:
        if matching == "regex":
            pattern = self.context.param(_checked(text, "text"))
            return is_true(self.context.engine.regex_any_group(self.chain, _TEXTS, pattern, self.context.params))
        if '"' in text:
            return exp.false()  # a chain's text values never hold a quote as they are read
        if matching == "contains":
            return self.regex(self.chain, '(?i)[:"]text="[^"]*' + _like_to_regex(text, '[^"]'))
        return self.regex(self.chain, '[:"]text="' + regex_literal(text) + '"')


# --- Element property filters ------------------------------------------------------------------

# `type: "element"` keys compiled here; `href` and `$elements_chain` are plain text fields (element_field).
ELEMENT_CONDITION_KEYS = ("selector", "tag_name", "text")
ELEMENT_KEYS = (*ELEMENT_CONDITION_KEYS, "href", ELEMENTS_CHAIN)


def element_field(context: SQLContext, key: str) -> exp.Expression:
    """The text compared by an element filter on `href` (the chain's first href, NULL without one,
    PostHog's `elements_chain_href`) or on `$elements_chain` (the whole chain)."""
    if key == "href":
        return exp.Nullif(this=_StepCompiler(context).first_href(), expression=exp.Literal.string(""))
    if key == ELEMENTS_CHAIN:
        return context.event_property(ELEMENTS_CHAIN)
    raise ValidationError(f"Element property filters take the keys {', '.join(ELEMENT_KEYS)}, not {key!r}.")


def element_condition(prop: PropertyFilter, context: SQLContext) -> Optional[exp.Expression]:
    """A `type: "element"` filter on `selector`, `tag_name` or `text` (PostHog's `property_to_expr`):
    selector and tag name take `exact`/`is_not` (the chain matches, or not); `text` holds when any
    element's text compares (exact, icontains, regex, is_set and their negations). Any element of the
    chain counts, whatever the event. A list of values is an OR (negative operators: an AND)."""
    operator = (prop.operator or PropertyOperator.exact)
    values = prop.value if isinstance(prop.value, list) else [prop.value]
    if not values and operator not in (PropertyOperator.is_set, PropertyOperator.is_not_set):
        return None
    negative = operator in (PropertyOperator.is_not, PropertyOperator.not_icontains, PropertyOperator.not_regex,
                            PropertyOperator.is_not_set, PropertyOperator.not_in)
    positive = _POSITIVE.get(operator)
    if positive is None or (prop.key != "text" and positive != PropertyOperator.exact):
        allowed = "exact, is_not" if prop.key != "text" else "exact, is_not, icontains, not_icontains, regex, not_regex, is_set, is_not_set"
        raise ValidationError(f"Element filters on {prop.key} take the operators {allowed}; {operator.value!r} is not supported.")
    compiler = _StepCompiler(context)
    if positive == PropertyOperator.is_set:
        values = [None]
    parts = []
    for value in values:
        if value is None and positive != PropertyOperator.is_set:
            raise ValidationError(f"The element filter on {prop.key} needs a value.")
        matched = compiler.element_match(prop.key, positive, None if value is None else str(value))
        parts.append(is_not_false(exp.Not(this=matched)) if negative else matched)
    if len(parts) == 1:
        return parts[0]
    return paren(exp.and_(*parts) if negative else exp.or_(*parts))


_POSITIVE = {
    PropertyOperator.exact: PropertyOperator.exact, PropertyOperator.in_: PropertyOperator.exact,
    PropertyOperator.is_not: PropertyOperator.exact, PropertyOperator.not_in: PropertyOperator.exact,
    PropertyOperator.icontains: PropertyOperator.icontains, PropertyOperator.not_icontains: PropertyOperator.icontains,
    PropertyOperator.regex: PropertyOperator.regex, PropertyOperator.not_regex: PropertyOperator.regex,
    PropertyOperator.is_set: PropertyOperator.is_set, PropertyOperator.is_not_set: PropertyOperator.is_set,
}


def action_condition(action: Action, context: SQLContext) -> exp.Expression:
    """The SQL condition of an action: TRUE for an event that one of its steps matches."""
    compiler = _StepCompiler(context)
    steps = [compiler.step(step) for step in action.steps]
    if not steps or any(step is None for step in steps):
        return exp.true()
    return steps[0] if len(steps) == 1 else paren(exp.or_(*steps))


def step_event_names(action: Action) -> Optional[set[str]]:
    """The event names the action can match, or None when a step matches any event."""
    names = set()
    for step in action.steps or [None]:
        if not step or not step.get("event"):
            return None
        names.add(str(step["event"]))
    return names


# --- What a query references -------------------------------------------------------------------


def referenced_action_ids(node: Any) -> set[int]:
    """Ids of the actions a query (a model or its JSON) references: ActionsNode series, funnel
    exclusions, retention entities of type `actions`, an EventsQuery's `actionId`."""
    found: set[int] = set()

    def walk(value):
        if isinstance(value, dict):
            kind = value.get("kind")
            if kind in ("ActionsNode", "FunnelExclusionActionsNode") or (kind is None and value.get("type") == "actions"):
                identifier = value.get("id")
                if isinstance(identifier, int) or (isinstance(identifier, str) and identifier.isdigit()):
                    found.add(int(identifier))
            if kind == "EventsQuery" and isinstance(value.get("actionId"), int):
                found.add(value["actionId"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(node.model_dump(mode="json") if hasattr(node, "model_dump") else node)
    return found


class ActionCatalog:
    """The actions a query references, loaded once (project-wide, deleted ones included, as PostHog)."""

    def __init__(self, team, ids: Iterable[int]):
        ids = {i for i in ids if isinstance(i, int) and -(2 ** 63) < i < 2 ** 63}
        self.actions: dict[int, Action] = (
            {action.id: action for action in Action.objects.filter(team__project_id=team.project_id, id__in=ids)} if ids else {}
        )

    @classmethod
    def for_query(cls, team, query: Any) -> "ActionCatalog":
        return cls(team, referenced_action_ids(query))

    def get(self, action_id: Any) -> Optional[Action]:
        try:
            return self.actions.get(int(action_id))
        except (TypeError, ValueError):
            return None

    def condition(self, action_id: Any, context: SQLContext) -> exp.Expression:
        """The action's condition; a missing action matches nothing (PostHog's `1 = 2`)."""
        action = self.get(action_id)
        return action_condition(action, context) if action is not None else exp.false()

    def require(self, action_id: Any) -> Action:
        action = self.get(action_id)
        if action is None:
            raise ValidationError(f"Action ID {action_id} does not exist!")
        return action

    def versions(self) -> dict[str, str]:
        """What the cache key needs: each action's last change (editing an action changes results)."""
        return {str(pk): action.updated_at.isoformat() for pk, action in sorted(self.actions.items())}


def entity_condition(node: Any, context: SQLContext, catalog: ActionCatalog) -> Optional[exp.Expression]:
    """The event part of a series node (no property filters): `event = X`, an action's condition,
    or None for "all events"."""
    if getattr(node, "kind", None) == "ActionsNode":
        return catalog.condition(node.id, context)
    event = getattr(node, "event", None)
    if event is None:
        return None
    return exp.EQ(this=context.event_column("event"), expression=context.param(event))


def series_condition(node: Any, context: SQLContext, catalog: ActionCatalog) -> Optional[exp.Expression]:
    """A series node's event or action AND its own property filters."""
    return and_all([entity_condition(node, context, catalog), properties_condition(node.properties, context)])


def series_label(node: Any, catalog: ActionCatalog) -> str:
    """The label of a series: the action's name (it must exist), the event, or "All events"."""
    if getattr(node, "kind", None) == "ActionsNode":
        return catalog.require(node.id).name
    return node.event if node.event is not None else "All events"


def earliest_names(nodes: Iterable[Any], catalog: ActionCatalog) -> set:
    """Event names for QueryRunner.earliest_event: None among them means any event."""
    names: set = set()
    for node in nodes:
        events = entity_event_names(node, catalog)
        names |= {None} if events is None else events
    return names


def entity_event_names(node: Any, catalog: ActionCatalog) -> Optional[set[str]]:
    """Event names a node can match (for pre-filters and the start of an "all time" range); None = any."""
    if getattr(node, "kind", None) == "ActionsNode":
        action = catalog.get(node.id)
        return step_event_names(action) if action is not None else set()
    event = getattr(node, "event", None)
    return None if event is None else {event}
