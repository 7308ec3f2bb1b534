"""Sessions: one row per `$session_id`, computed in SQL from the session's events (PostHog's `sessions` table).

The one place that defines the sessions subquery and its fields. Insights read session fields
(`type: session` filters and breakdowns, `$session_duration` math) through the events table, which
then joins this subquery on the event's session id (queries.sql.joined_events); SQL insights read it
as the `sessions` table. As in PostHog, only ids that are UUIDv7 form sessions, and every field is
an aggregate over all the session's events, not only those in a query's date range (insights read
the sessions with events within a few days of their range, as PostHog does).
"""
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterable, Optional

from rest_framework.exceptions import ValidationError
from sqlglot import exp

from events.models import Event

from .context import SESSION_COLUMN_PREFIX, SQLContext
from .engine import case, paren

SESSION_ID_V7_REGEX = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-7[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
# A session with one pageview, no autocapture and shorter than this is a bounce (PostHog's default).
BOUNCE_RATE_DURATION_SECONDS = 10
SESSIONS_ALIAS = "s"
# Epoch microseconds plus 10^16 have 17 digits from 1653 to 5138: their texts sort like the times.
TIME_KEY_SHIFT = 10 ** 16
TIME_KEY_DIGITS = 17
SESSION_BUFFER = timedelta(days=3)

TEXT, NUMBER, TIMESTAMP, BOOLEAN, TEXT_LIST = "text", "number", "timestamp", "boolean", "text_list"
# Properties of the session's first event that sessions carry as `$entry_<property>`.
ENTRY_PROPERTIES = ["utm_source", "utm_campaign", "utm_medium", "utm_term", "utm_content", "gclid", "gad_source", "fbclid"]
URL_PATH_REGEX = r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*([^?#]*).*$"
URL_HOST_REGEX = r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#@]*@)?([^/?#:]*).*$"


@dataclass(frozen=True)
class SessionField:
    column: str
    kind: str


FIELDS: dict[str, SessionField] = {
    "session_id": SessionField("session_id", TEXT),
    "distinct_id": SessionField("distinct_id", TEXT),
    "$start_timestamp": SessionField("start_timestamp", TIMESTAMP),
    "$end_timestamp": SessionField("end_timestamp", TIMESTAMP),
    "$session_duration": SessionField("duration", NUMBER),
    "$entry_current_url": SessionField("entry_url", TEXT),
    "$entry_pathname": SessionField("entry_pathname", TEXT),
    "$entry_hostname": SessionField("entry_hostname", TEXT),
    "$end_current_url": SessionField("end_url", TEXT),
    "$end_pathname": SessionField("end_pathname", TEXT),
    "$end_hostname": SessionField("end_hostname", TEXT),
    "$entry_referring_domain": SessionField("entry_referring_domain", TEXT),
    **{f"$entry_{name}": SessionField(f"entry_{name}", TEXT) for name in ENTRY_PROPERTIES},
    "$urls": SessionField("urls", TEXT_LIST),
    "$num_uniq_urls": SessionField("num_uniq_urls", NUMBER),
    "$pageview_count": SessionField("pageview_count", NUMBER),
    "$autocapture_count": SessionField("autocapture_count", NUMBER),
    "$screen_count": SessionField("screen_count", NUMBER),
    "$is_bounce": SessionField("is_bounce", BOOLEAN),
    "$channel_type": SessionField("channel_type", TEXT),
}
FIELD_COLUMNS = [field.column for field in FIELDS.values()]
ALIASES = {"id": "session_id", "duration": "$session_duration", "$exit_current_url": "$end_current_url",
           "$exit_pathname": "$end_pathname"}


def session_field(name: str) -> SessionField:
    field = FIELDS.get(ALIASES.get(name, name))
    if field is None:
        raise ValidationError(f"Unknown session property: {name!r}")
    return field


# --- The sessions subquery ---------------------------------------------------------------------


# Columns of the sessions subquery that other columns are computed from.
_CHANNEL_INPUTS = ["entry_utm_campaign", "entry_utm_medium", "entry_utm_source", "entry_referring_domain", "entry_gclid",
                   "entry_fbclid", "entry_gad_source"]


def sessions_select(context: SQLContext, columns: Optional[Iterable[str]] = None) -> exp.Select:
    """SELECT one row per session of the context's team: `session_id` and a column per field of
    FIELDS (by `column`); only `columns` (and what they are computed from) when given.

    One GROUP BY over the team's session events, no window: the value of the first (last) event is
    read from MIN (MAX) of "<time key><value>" texts, where the time key is the event's epoch
    microseconds shifted to a fixed 17 digits, so that texts sort in time order. Like ClickHouse's
    argMin/argMax, events without the value are skipped. With `context.events_time_range`, only the
    sessions with an event in that range are computed, from their events within a few days of it.
    """
    engine, params = context.engine, context.params
    alias = "se"
    wanted = set(FIELD_COLUMNS if columns is None else columns)
    with_channel = "channel_type" in wanted
    wanted = (wanted - {"channel_type"}) | ({*_CHANNEL_INPUTS} if with_channel else set())

    def col(name: str) -> exp.Column:
        return exp.column(Event._meta.get_field(name).column, table=alias)

    def prop(key: str) -> exp.Expression:
        return exp.Nullif(this=engine.json_text(col("properties"), key, params), expression=exp.Literal.string(""))

    # Values of each event, built only when an aggregate reads them (building binds parameters).
    inputs = {
        "ts": lambda: col("timestamp"),
        "event": lambda: col("event"),
        "time_key": lambda: engine.to_text(exp.Add(this=engine.epoch_microseconds(col("timestamp")),
                                                   expression=exp.Literal.number(TIME_KEY_SHIFT))),
        "distinct_id": lambda: col("distinct_id"),
        "url": lambda: exp.Nullif(this=prop("$current_url"), expression=exp.Literal.string("null")),
        "referring_domain": lambda: prop("$referring_domain"),
        **{name: (lambda name=name: prop(name)) for name in ENTRY_PROPERTIES},
    }
    used_inputs = {"session_id"}

    def value(name: str) -> exp.Column:
        used_inputs.add(name)
        return exp.column(name)

    def keyed(name: str, aggregate) -> exp.Expression:
        """`name` of the first (MIN) or last (MAX) event that has one."""
        text = exp.DPipe(this=value("time_key"), expression=value(name), safe=True)
        picked = aggregate(this=case([(exp.Not(this=exp.Is(this=value(name), expression=exp.null())), text)]))
        return exp.Substring(this=picked, start=exp.Literal.number(TIME_KEY_DIGITS + 1))

    def first(name: str) -> exp.Expression:
        return keyed(name, exp.Min)

    def last(name: str) -> exp.Expression:
        return keyed(name, exp.Max)

    def count_of(event: str) -> exp.Expression:
        return exp.Count(this=case([(exp.EQ(this=value("event"), expression=context.param(event)), exp.Literal.number(1))]))

    def duration() -> exp.Expression:
        seconds = [engine.floor_divide(engine.epoch_microseconds(aggregate(this=value("ts"))), 1_000_000) for aggregate in (exp.Max, exp.Min)]
        return engine.truncate_to_integer(exp.Sub(this=seconds[0], expression=seconds[1]))

    def is_bounce() -> exp.Expression:
        """Not a bounce: more than one pageview, any autocapture, or long enough (NULL without pageviews)."""
        engaged = exp.or_(
            exp.GT(this=count_of("$pageview"), expression=exp.Literal.number(1)),
            exp.GT(this=count_of("$autocapture"), expression=exp.Literal.number(0)),
            exp.GTE(this=duration(), expression=context.param(BOUNCE_RATE_DURATION_SECONDS)),
        )
        return case([(exp.EQ(this=count_of("$pageview"), expression=exp.Literal.number(0)), exp.null()),
                     (engaged, exp.Literal.number(0))], exp.Literal.number(1))

    builders = {
        "distinct_id": lambda: last("distinct_id"),
        "start_timestamp": lambda: exp.Min(this=value("ts")),
        "end_timestamp": lambda: exp.Max(this=value("ts")),
        "duration": duration,
        "entry_url": lambda: first("url"),
        "entry_pathname": lambda: engine.regex_replace(first("url"), URL_PATH_REGEX, "\\1", params),
        "entry_hostname": lambda: engine.regex_replace(first("url"), URL_HOST_REGEX, "\\2", params),
        "end_url": lambda: last("url"),
        "end_pathname": lambda: engine.regex_replace(last("url"), URL_PATH_REGEX, "\\1", params),
        "end_hostname": lambda: engine.regex_replace(last("url"), URL_HOST_REGEX, "\\2", params),
        "entry_referring_domain": lambda: first("referring_domain"),
        **{f"entry_{name}": (lambda name=name: first(name)) for name in ENTRY_PROPERTIES},
        "urls": lambda: engine.distinct_texts_json(value("url")),
        "num_uniq_urls": lambda: exp.Count(this=exp.Distinct(expressions=[value("url")])),
        "pageview_count": lambda: count_of("$pageview"),
        "autocapture_count": lambda: count_of("$autocapture"),
        "screen_count": lambda: count_of("$screen"),
        "is_bounce": is_bounce,
    }
    aggregated = [exp.alias_(exp.column("session_id"), "session_id")]
    aggregated += [exp.alias_(build(), name) for name, build in builders.items() if name in wanted]

    team = exp.EQ(this=col("team"), expression=context.param(context.team.id))
    if context.events_time_range is not None:
        # Like PostHog, read the sessions around the query's range only (sessions last at most a day;
        # a few days of margin keep every session touching the range whole).
        lower, upper = context.events_time_range  # either may be None: unbounded
        if lower is not None:
            team = exp.and_(team, exp.GTE(this=col("timestamp"), expression=engine.timestamp(lower - SESSION_BUFFER, params)))
        if upper is not None:
            team = exp.and_(team, exp.LT(this=col("timestamp"), expression=engine.timestamp(upper + SESSION_BUFFER, params)))
        if lower is not None and upper is not None and upper - lower <= 2 * SESSION_BUFFER:
            # A short range: the margin holds many more sessions than the range touches, so compute
            # only those (over long ranges the extra lookup costs more than it saves).
            team = exp.and_(team, exp.In(this=col("session_id"), query=exp.Subquery(this=_sessions_in_range(context, lower, upper))))
    events = (
        exp.select(exp.alias_(col("session_id"), "session_id"),
                   *[exp.alias_(build(), name) for name, build in inputs.items() if name in used_inputs])
        .from_(engine.events_source(context.team.id, alias))
        .where(exp.and_(team, engine.regex(col("session_id"), context.param(SESSION_ID_V7_REGEX))))
    )
    source = exp.Subquery(this=events, alias=exp.TableAlias(this=exp.to_identifier("session_events")))
    grouped = exp.select(*aggregated).from_(source).group_by(exp.column("session_id"))
    if not with_channel:
        return grouped
    sessions = exp.Subquery(this=grouped, alias=exp.TableAlias(this=exp.to_identifier("session_rows")))
    return exp.select(exp.Star(), exp.alias_(channel_type(context), "channel_type")).from_(sessions)


def _sessions_in_range(context: SQLContext, lower, upper) -> exp.Select:
    """The session ids of the team's events in [lower, upper)."""
    engine, params, alias = context.engine, context.params, "sr"
    column = exp.column(Event._meta.get_field("session_id").column, table=alias)
    timestamp = exp.column(Event._meta.get_field("timestamp").column, table=alias)
    conditions = [exp.EQ(this=exp.column(Event._meta.get_field("team").column, table=alias), expression=context.param(context.team.id))]
    if lower is not None:
        conditions.append(exp.GTE(this=timestamp, expression=engine.timestamp(lower, params)))
    if upper is not None:
        conditions.append(exp.LT(this=timestamp.copy(), expression=engine.timestamp(upper, params)))
    return exp.select(column).from_(engine.events_source(context.team.id, alias)).where(exp.and_(*conditions))


PAID_MEDIUMS = ["cpc", "cpm", "cpv", "cpa", "ppc", "retargeting"]
SOCIAL_MEDIUMS = ["social", "social-network", "social-media", "sm", "social network", "social media"]
EMAIL_MEDIUMS = ["email", "e-mail", "e_mail", "e mail"]
DIRECT_SOURCES = ["(direct)", "direct", "$direct"]


def channel_type(context: SQLContext) -> exp.Expression:
    """A simplified `$channel_type` from the entry UTM fields, click ids and referring domain.

    PostHog's rules also look sources and referring domains up in tables of known search engines,
    social networks, shopping and video sites (e.g. google -> Paid/Organic Search); those tables are
    not reproduced: such sessions fall to "Paid Unknown", "Referral" or "Unknown" here.
    """
    param = context.param

    def lowered(column: str) -> exp.Expression:
        return exp.Nullif(this=exp.Lower(this=exp.column(column)), expression=exp.Literal.string(""))

    campaign, medium, source = lowered("entry_utm_campaign"), lowered("entry_utm_medium"), lowered("entry_utm_source")
    referrer = lowered("entry_referring_domain")

    def present(value: exp.Expression) -> exp.Expression:
        return exp.Not(this=exp.Is(this=value.copy(), expression=exp.null()))

    def missing(value: exp.Expression) -> exp.Expression:
        return exp.Is(this=value.copy(), expression=exp.null())

    def is_in(value: exp.Expression, options: list[str]) -> exp.Expression:
        return exp.In(this=value.copy(), expressions=[param(option) for option in options])

    def like(value: exp.Expression, pattern: str) -> exp.Expression:
        return exp.Like(this=value.copy(), expression=param(pattern))

    gclid, fbclid, gad_source = present(exp.column("entry_gclid")), present(exp.column("entry_fbclid")), exp.column("entry_gad_source")
    paid = exp.or_(is_in(medium, PAID_MEDIUMS), like(medium, "paid%"), gclid.copy(), present(gad_source))
    direct = exp.and_(exp.EQ(this=referrer.copy(), expression=param("$direct")), missing(medium),
                      exp.or_(missing(source), is_in(source, DIRECT_SOURCES)), exp.Not(this=fbclid.copy()))
    whens = [
        (like(campaign, "%cross-network%"), "Cross Network"),
        (exp.and_(paid, exp.or_(gclid.copy(), exp.EQ(this=gad_source.copy(), expression=param("1")))), "Paid Search"),
        (exp.and_(paid.copy(), fbclid.copy()), "Paid Social"),
        (exp.and_(paid.copy(), like(medium, "%video%")), "Paid Video"),
        (paid.copy(), "Paid Unknown"),
        (direct, "Direct"),
        (exp.or_(is_in(medium, SOCIAL_MEDIUMS), fbclid.copy()), "Organic Social"),
        (like(medium, "%video%"), "Organic Video"),
        (like(medium, "%push"), "Push"),
        (is_in(medium, EMAIL_MEDIUMS), "Email"),
        (exp.EQ(this=medium.copy(), expression=param("affiliate")), "Affiliate"),
        (exp.EQ(this=medium.copy(), expression=param("organic")), "Organic Search"),
        (exp.or_(exp.EQ(this=medium.copy(), expression=param("referral")), present(referrer)), "Referral"),
    ]
    return case([(paren(condition), param(label)) for condition, label in whens], param("Unknown"))


def used_columns(context: SQLContext) -> list[str]:
    """The sessions subquery's columns of the session fields the query used."""
    return sorted({FIELDS[name].column for name in context.session_fields})


def session_columns(context: SQLContext) -> list[exp.Expression]:
    """The used session fields as columns of the joined events table (see queries.sql.joined_events)."""
    columns = used_columns(context)
    return [exp.alias_(exp.column(column, table=SESSIONS_ALIAS), SESSION_COLUMN_PREFIX + column) for column in columns]


def session_join_condition(context: SQLContext) -> exp.Expression:
    return exp.EQ(this=exp.column("session_id", table=SESSIONS_ALIAS), expression=context.event_column("session_id"))


# --- Session fields in insights ------------------------------------------------------------------


def session_value(context: SQLContext, name: str) -> exp.Column:
    """The raw value of a session field for each event (NULL when the event has no session)."""
    canonical = ALIASES.get(name, name)
    return context.session_column(canonical, session_field(canonical).column)


def session_text(context: SQLContext, name: str) -> exp.Expression:
    """A session field in its text form (what filters compare and breakdowns group by)."""
    field = session_field(name)
    if field.kind == TEXT_LIST:
        raise ValidationError(f"The session property {name} is a list of URLs: filter or break down by $entry_current_url, "
                              "$end_current_url or $num_uniq_urls instead.")
    value = session_value(context, name)
    if field.kind == TEXT:
        return value
    if field.kind == TIMESTAMP:
        return context.engine.to_text(value)
    return context.engine.to_text(value)


class SessionPropertyField:
    """A `type: session` property filter's field: its text, number and timestamp forms."""

    def __init__(self, context: SQLContext, key: str):
        self.context = context
        self.key = key
        self.kind = session_field(key).kind
        self.text = session_text(context, key)

    def number(self) -> exp.Expression:
        if self.kind in (NUMBER, BOOLEAN):
            return session_value(self.context, self.key)
        return self.context.engine.text_to_number(self.text.copy(), self.context.params)

    def timestamp(self) -> exp.Expression:
        if self.kind == TIMESTAMP:
            return session_value(self.context, self.key)
        return self.context.engine.text_to_timestamp(self.text.copy(), self.context.params)


def is_session_duration(series) -> bool:
    """A property math over `$session_duration`: computed per session (trends)."""
    return series.math_property == "$session_duration" and series.math_property_type != "person_properties"
