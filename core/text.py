"""Text PostgreSQL cannot store or compare (NUL characters) is never sent to the database.

One guard at the database boundary covers every way text arrives — query parameters, headers,
tokens, JSON and form bodies: each statement's parameters are checked before it runs, and a NUL
answers 400 instead of psycopg's DataError (a 500). SQLite gets the same rule, so both databases
answer alike. Places that can do better earlier keep doing so: capture strips NUL from events
(an SDK cannot fix one character, and dropping the batch would lose good events), insight search
ignores it, and the SQL sandbox names the offending literal.
"""
from django.db.backends.signals import connection_created
from rest_framework.exceptions import ValidationError

NUL = "\x00"


class NulCharacters(ValidationError):
    default_detail = "Null characters are not allowed."
    default_code = "null_characters_not_allowed"

    def __init__(self):
        super().__init__(self.default_detail, self.default_code)


def contains_nul(value) -> bool:
    """Whether a statement parameter holds a NUL: strings, JSON values (Jsonb), lists, dicts."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif hasattr(item, "obj") and type(item).__module__.startswith("psycopg"):
            stack.append(item.obj)  # psycopg's Jsonb/Json wrappers of JSONField values
    return False


def reject_nul_parameters(execute, sql, params, many, context):
    if params is not None and contains_nul(params):
        raise NulCharacters()
    return execute(sql, params, many, context)


def _install(sender, connection, **kwargs):
    if reject_nul_parameters not in connection.execute_wrappers:
        connection.execute_wrappers.append(reject_nul_parameters)


def install() -> None:
    """Guard every database connection this process opens (called from CoreConfig.ready)."""
    connection_created.connect(_install, dispatch_uid="core.text.reject_nul_parameters")

