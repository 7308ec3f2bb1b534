"""User regular expressions, run by RE2: linear time in the text, whatever the pattern.

Every pattern a user gives (property `regex` filters, `=~`/`match()` in HogQL and SQL insights,
path-cleaning rules) is checked here before any SQL is built, so that every engine accepts the
same patterns: RE2's syntax, without backreferences or lookaround, which are what make a
backtracking engine take exponential time. SQLite runs the patterns with RE2 itself (registered
as its REGEXP); PostgreSQL runs them with its own engine under `statement_timeout`.
"""
import functools
import re
from typing import Optional

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
_HINT = "lookaround and backreferences are not supported"


@functools.lru_cache(maxsize=512)
def compile_regex(pattern: str):
    """The RE2 program for a pattern (re2.error when RE2 cannot run it)."""
    return re2.compile(pattern, _OPTIONS)


def regex_problem(pattern: str) -> Optional[str]:
    """Why `pattern` cannot be used, or None. Syntax errors read as Python's `re` words them;
    patterns valid there that RE2 cannot run (lookaround, backreferences) say so."""
    try:
        re.compile(pattern)
    except re.error as error:
        return str(error)
    except (OverflowError, RecursionError):
        return "the pattern is too complex"
    try:
        compile_regex(pattern)
    except re2.error as error:
        reason = error.args[0] if error.args else error
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        return f"{reason} ({_HINT})"
    return None


def regex_search(pattern: Optional[str], value) -> Optional[bool]:
    """SQL `value REGEXP pattern` (NULL in, NULL out)."""
    if pattern is None or value is None:
        return None
    return compile_regex(pattern).search(str(value)) is not None


def regex_replace(value, pattern: Optional[str], replacement: Optional[str]) -> Optional[str]:
    """Every match of `pattern` in `value` replaced (Python template: `\\1`, `\\g<0>`)."""
    if value is None or pattern is None or replacement is None:
        return None
    return compile_regex(pattern).sub(replacement, str(value))
