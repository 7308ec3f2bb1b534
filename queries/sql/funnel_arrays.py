"""Ordered funnels on per-actor arrays (engines with `Engine.funnel_on_arrays`: ClickHouse).

The window passes of queries.sql.funnels sort all step events once per step; here each actor's
events are gathered into arrays (a hash aggregation and a sort of each actor's few events) and the
same passes run on the arrays, ending in the same `per_actor` CTE.
"""
import re
from typing import TYPE_CHECKING

from .funnel_text import ORDER_SLOTS, comma_list, flag

if TYPE_CHECKING:  # queries.sql.funnels imports this module
    from .funnels import FunnelSQL

# NULL in the per-actor arrays: below and above any value the passes carry.
NONE, FAR = -(2**62), 2**62


def array_per_actor(funnel: "FunnelSQL", source: str, columns: list[tuple[str, str, str]], renamed: dict[str, str]) -> None:
    """`per_actor` from the same passes run on per-actor arrays (engines with `funnel_on_arrays`):
    a hash aggregation and a sort of each actor's few events instead of sorts of all events.

    Every value a pass carries (a MAX over earlier rows) is non-decreasing along the events, so
    it is the last value defined before the element: arrayFill carries it forward. RANGE frames
    make "before" mean "at a smaller pos": events at the same pos take the value of the first
    of them. Arrays are named as the window form's columns, so its row expressions apply to
    their elements as they are; NONE and FAR stand for NULL (below and above any value)."""
    n, keys = funnel.n, comma_list(funnel.keys)
    flags = [f"s{k}" for k in range(n)] + [f"x{k}" for k in funnel.excluded]
    touched = [f"t{c}" for c in funnel.bv] if funnel.touch else []
    # One array per column (an array of tuples aggregates slower), the flags as bits of one.
    mask = " + ".join(f"{1 << i} * {c}" for i, c in enumerate(flags))
    by_pos = "groupArray(pos)"
    gathered = [f"MAX({c}) AS {c}" for c in touched] + [
        f"arraySort({by_pos}) AS pos", f"arraySort((v, p) -> p, groupArray({mask}), {by_pos}) AS mask"]

    def gather(grouped_by: list[str], where: str) -> str:
        selected = [c if c in grouped_by else f"'' AS {c}" for c in funnel.keys]
        return f"SELECT {comma_list(selected + gathered)} FROM {source}{where} GROUP BY {comma_list(grouped_by)}"

    if len(funnel.actor) == 2:
        # A person is its first column alone (the second is ''): one key column hashes much faster.
        second = funnel.actor[1]
        funnel._cte("actor_events", gather([c for c in funnel.keys if c != second], f" WHERE {second} = ''")
                  + " UNION ALL " + gather(funnel.keys, f" WHERE {second} <> ''"))
    else:
        funnel._cte("actor_events", gather(funnel.keys, ""))
    arrays = ["pos"]  # the arrays defined so far

    def stage(name: str, source: str, defined: list[tuple[str, str]]) -> str:
        """A CTE adding arrays (one level per stage, so that each array is computed once)."""
        funnel._cte(name, f"SELECT {comma_list(['*'] + [f'{body} AS {array}' for array, body in defined])} FROM {source}")
        arrays.extend(array for array, _ in defined)
        return name

    def each(body: str) -> str:
        """`body` on each element: a lambda over the arrays it names."""
        used = [name for name in arrays if re.search(rf"\b{name}\b", body)]
        return f"arrayMap(({comma_list(used)}) -> {body}, {comma_list(used)})"

    # The times (pos less its slot: one array fewer to sort), the flags, and whether an element
    # is the first (last) of the events at its pos.
    slot = f"(p % {ORDER_SLOTS} + {ORDER_SLOTS}) % {ORDER_SLOTS}"
    defined = [("t", f"arrayMap(p -> (p - {slot}) / {ORDER_SLOTS}, pos)")]
    defined += [(c, f"arrayMap(m -> (m / {1 << i}) % 2, mask)") for i, c in enumerate(flags)]
    defined.append(("first_at_pos", f"arrayMap((p, q) -> p <> q, pos, arrayPushFront(arrayPopBack(pos), {NONE}))"))
    if funnel.excluded:
        defined.append(("last_at_pos", f"arrayMap((p, q) -> p <> q, pos, arrayPushBack(arrayPopFront(pos), {FAR}))"))
    source = stage("actor_arrays", "actor_events", defined)

    def prior(body: str) -> str:
        """MAX(body) over the elements at a smaller pos (body is NONE where the window form's is NULL)."""
        carried = f"arrayPushFront(arrayPopBack(arrayFill(v -> v <> {NONE}, {each(body)})), {NONE})"
        return f"arrayFill((v, f) -> f, {carried}, first_at_pos)"

    def later(body: str) -> str:
        """MIN(body) over the elements at a larger pos (body is FAR where the window form's is NULL)."""
        carried = f"arrayPushBack(arrayPopFront(arrayReverseFill(v -> v <> {FAR}, {each(body)})), {FAR})"
        return f"arrayReverseFill((v, l) -> l, {carried}, last_at_pos)"

    for k in range(1, n):
        reached = "(s0 = 1)" if k == 1 else f"(e{k - 1} = 1)"
        carried = [(f"c{k}", prior(f"CASE WHEN {reached} THEN 2 * pos + 1 WHEN s{k} = 1 THEN 2 * pos ELSE {NONE} END"))]
        if k > 1:
            carried.append((f"st{k}", prior(f"CASE WHEN {reached} THEN {funnel._start(k - 1)} ELSE {NONE} END")))
        carried += [(f"p{k}_{j}", prior(f"CASE WHEN {reached} THEN {funnel._path(k - 1, j)} ELSE {NONE} END")) for j in range(1, k - 1)]
        if k in funnel.excluded:
            carried.append((f"xl{k}", prior(f"CASE WHEN x{k} = 1 THEN pos ELSE {NONE} END")))
            carried.append((f"next_exclusion{k - 1}", later(f"CASE WHEN x{k} = 1 THEN t ELSE {FAR} END")))
        source = stage(f"step{k}_arrays", source, carried)
        outcomes = [(f"e{k}", each(flag(funnel._reached(k))))]
        if k in funnel.excluded:
            outcomes.append((f"b{k}", each(flag(funnel._blocked(k)))))
        source = stage(f"step{k}_reached", source, outcomes)
    # The touch values are one per actor already.
    aggregates = [f"{name} AS {renamed[name]}" if name in touched else f"array{aggregate.title()}({each(expression)}) AS {renamed.get(name, name)}"
                  for aggregate, expression, name in columns]
    funnel._cte("per_actor", f"SELECT {keys}, {comma_list(aggregates)} FROM {source}")
