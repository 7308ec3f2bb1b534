"""SQL fragments the paths runner needs that differ per database and that `Engine` does not offer.

Kept here, keyed by the engine's vendor, so the shared engine module stays untouched; an engine
added later (ClickHouse) adds its branch to these functions.
"""
import re

from sqlglot import exp

from .engine import Engine, Params, case

_SQLITE_REGEXP_REPLACE = "paths_regexp_replace"
# ClickHouse replacement strings use \0 for the whole match and \1..\9 for groups.
_WHOLE_MATCH = re.compile(r"\\0")


def epoch_microseconds(engine: Engine, value: exp.Expression) -> exp.Expression:
    """A timestamp column as integer microseconds since 1970 (exact, so differences are exact)."""
    if engine.vendor == "sqlite":
        # Django stores 'YYYY-MM-DD HH:MM:SS[.ffffff]' (UTC); strftime('%s') drops the fraction.
        seconds = exp.Cast(this=exp.Anonymous(this="strftime", expressions=[exp.Literal.string("%s"), value]),
                           to=exp.DataType.build("bigint"))
        fraction = case(
            [(exp.GT(this=exp.Length(this=value.copy()), expression=exp.Literal.number(19)),
              exp.Cast(this=exp.Substring(this=value.copy(), start=exp.Literal.number(21), length=exp.Literal.number(6)),
                       to=exp.DataType.build("bigint")))],
            exp.Literal.number(0),
        )
        return exp.Add(this=exp.Mul(this=seconds, expression=exp.Literal.number(1_000_000)), expression=fraction)
    if engine.vendor == "postgresql":
        epoch = exp.Extract(this=exp.var("EPOCH"), expression=value)
        return exp.Cast(this=exp.Mul(this=epoch, expression=exp.Literal.number(1_000_000)), to=exp.DataType.build("bigint"))
    raise NotImplementedError(f"epoch_microseconds is not implemented for {engine.vendor}")


def regexp_replace(engine: Engine, value: exp.Expression, pattern: str, replacement: str, params: Params) -> exp.Expression:
    """Replace every match of `pattern` (ClickHouse's replaceRegexpAll; `\\0` is the whole match)."""
    if engine.vendor == "sqlite":
        _register_sqlite_function(engine)
        python_replacement = _WHOLE_MATCH.sub(r"\\g<0>", replacement)
        return exp.Anonymous(this=_SQLITE_REGEXP_REPLACE, expressions=[value, params.add(pattern), params.add(python_replacement)])
    if engine.vendor == "postgresql":
        pg_replacement = _WHOLE_MATCH.sub(r"\\&", replacement)
        return exp.Anonymous(this="regexp_replace", expressions=[value, params.add(pattern), params.add(pg_replacement), exp.Literal.string("g")])
    raise NotImplementedError(f"regexp_replace is not implemented for {engine.vendor}")


def _sqlite_regexp_replace(value, pattern, replacement):
    if value is None:
        return None
    return re.sub(pattern, replacement, value)


def _register_sqlite_function(engine: Engine) -> None:
    """SQLite has no regexp_replace: register one on the connection (cheap, idempotent)."""
    engine.connection.ensure_connection()
    engine.connection.connection.create_function(_SQLITE_REGEXP_REPLACE, 3, _sqlite_regexp_replace, deterministic=True)
