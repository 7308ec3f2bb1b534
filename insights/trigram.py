"""Trigram similarity with pg_trgm's semantics on every database.

PostgreSQL answers `SIMILARITY(a, b)` and `WORD_SIMILARITY(a, b)` with the pg_trgm extension.
Other databases (SQLite) get Python implementations of the same two functions, registered on
each new connection, so one ORM expression serves both.
"""
import re
import struct
from functools import lru_cache

from django.db.backends.signals import connection_created
from django.db.models import FloatField, Func

from core.database import for_connection

_WORD = re.compile(r"[^\W_]+")  # runs of letters and digits, as pg_trgm splits words


class Similarity(Func):
    function = "SIMILARITY"
    output_field = FloatField()


class WordSimilarity(Func):
    """Greatest similarity between the first argument's trigrams and any extent of the second's."""

    function = "WORD_SIMILARITY"
    output_field = FloatField()


def _float4(value: float) -> float:
    # pg_trgm computes in single precision; rounding the same way keeps threshold comparisons
    # (e.g. a similarity of exactly 0.3 against `> 0.3`) identical on every database.
    return struct.unpack("f", struct.pack("f", value))[0]


@lru_cache(maxsize=65536)
def _ratio(count: int, len1: int, len2: int) -> float:
    denominator = len1 + len2 - count
    return _float4(count / denominator) if denominator else 0.0


# A search evaluates the same texts (in SELECT and WHERE) and the same needle for every row.
@lru_cache(maxsize=16384)
def trigrams(text: str) -> tuple[str, ...]:
    """Trigrams of each lower-cased word padded with two spaces before and one after, in order."""
    result = []
    for word in _WORD.findall(text.lower()):
        padded = f"  {word} "
        result.extend(padded[i : i + 3] for i in range(len(padded) - 2))
    return tuple(result)


def similarity(a: str | None, b: str | None) -> float | None:
    if a is None or b is None:
        return None
    left, right = set(trigrams(a)), set(trigrams(b))
    if not left or not right:
        return 0.0
    common = len(left & right)
    return _ratio(common, len(left), len(right))


def word_similarity(query: str | None, text: str | None) -> float | None:
    if query is None or text is None:
        return None
    wanted = set(trigrams(query))
    text_trigrams = trigrams(text)
    if wanted.isdisjoint(text_trigrams):
        return 0.0
    ulen1 = len(wanted)
    # Number the distinct trigrams of the text; `found` marks those that occur in the query.
    ids: dict[str, int] = {}
    positions = [ids.setdefault(t, len(ids)) for t in text_trigrams]
    found = [False] * len(ids)
    for trigram, index in ids.items():
        found[index] = trigram in wanted

    # Slide over the text's trigrams: each time one of the query's trigrams is met, it closes
    # a candidate extent; the lower bound is then moved right while that improves the score.
    last_position = [-1] * len(ids)
    best = 0.0
    count = ulen2 = 0
    lower = -1
    for i, index in enumerate(positions):
        if lower >= 0 or found[index]:
            if last_position[index] < 0:
                ulen2 += 1
                if found[index]:
                    count += 1
            last_position[index] = i
        if not found[index]:
            continue
        if lower == -1:
            lower = i
            ulen2 = 1
        current = _ratio(count, ulen1, ulen2)
        tmp_count, tmp_ulen2, previous_lower = count, ulen2, lower
        for tmp_lower in range(lower, i + 1):
            candidate = _ratio(tmp_count, ulen1, tmp_ulen2)
            if candidate > current:
                current, ulen2, lower, count = candidate, tmp_ulen2, tmp_lower, tmp_count
            tmp_index = positions[tmp_lower]
            if last_position[tmp_index] == tmp_lower:
                tmp_ulen2 -= 1
                if found[tmp_index]:
                    tmp_count -= 1
        best = max(best, current)
        for tmp_lower in range(previous_lower, lower):
            tmp_index = positions[tmp_lower]
            if last_position[tmp_index] == tmp_lower:
                last_position[tmp_index] = -1
    return best


def register_sqlite_functions(sender, connection, **kwargs):
    """pg_trgm's functions in Python, on databases that lack them (SQLite)."""
    database = for_connection(connection)
    database.define_function("SIMILARITY", 2, similarity)
    database.define_function("WORD_SIMILARITY", 2, word_similarity)


def connect_signals():
    connection_created.connect(register_sqlite_functions, dispatch_uid="insights.trigram.sqlite_functions")
