"""Ordered and strict funnels with optional steps (`optionalInFunnel`): PostHog's state machine, in SQL.

With optional steps the closed form of queries.sql.funnels no longer holds (a step event extends the
attempt of the nearest earlier step still inside its conversion window, skipping optional steps), so
the machine of PostHog's funnel UDF is run as a recursive CTE: one recursion step per event of an
actor, in time order, carrying per step the attempt that last reached it (start, steps passed as a
bit field, excluded flag, time at each step) and the furthest attempt so far. As in PostHog:

* an event at step k extends the attempt last at step k-1 when it is in the window (measured from
  the attempt's start); when step k-1 is optional and has no attempt in the window, step k-2, and
  so on down to the previous required step; not when that attempt already reached step k;
* the counted attempt is the first to reach the furthest step (optional steps included); an actor
  counts at each step whose bit its attempt has;
* conversion times are the gaps between the attempt's consecutive required steps, reported in
  order from step 1 on (PostHog's `timings`: with optional steps the i-th gap is step i's);
* exclusions mark the attempt they interrupt as excluded; strict funnels reset every step the event
  does not match; an actor's events stop being read once the last step is reached.

The recursion reads each actor's events once; its cost grows with the longest actor history.
"""


class OptionalStepsMachine:
    """SQL text of the CTEs that compute each actor's furthest step for a funnel with optional steps."""

    def __init__(self, *, steps: int, window_us: int, optional: list[int], excluded: list[int], strict: bool,
                 keys: list[str], carried: list[str]):
        self.n = steps
        self.w = window_us
        self.optional = set(optional)
        self.excluded = excluded  # steps k with an exclusion flag x{k} (transition into k)
        self.strict = strict
        self.keys = keys  # the actor (and split) keys
        self.carried = carried  # per-actor constants carried along (touch breakdown values)

    # --- Expressions over the previous state `m` and the event `e` ---------------------------

    def _chain(self, k: int) -> list[int]:
        """Candidate predecessors of step k: k-1, then below while the candidate is optional."""
        chain, p = [], k - 1
        while True:
            chain.append(p)
            if p not in self.optional or p == 0:
                return chain
            p -= 1

    def _valid(self, p: int) -> str:
        return f"(m.st{p} IS NOT NULL AND e.t - m.st{p} <= {self.w})"

    def _choose(self, k: int, value) -> str:
        """`value(p)` for the predecessor step k extends from (the first valid in the chain, else the last)."""
        chain = self._chain(k)
        if len(chain) == 1:
            return value(chain[0])
        branches = " ".join(f"WHEN {self._valid(p)} THEN {value(p)}" for p in chain[:-1])
        return f"(CASE {branches} ELSE {value(chain[-1])} END)"

    def _hit(self, k: int, flag: str) -> str:
        """The event (flag) reaches step k's transition: predecessor in window, attempt not already there."""
        if k == 0:
            return f"({flag} AND NOT (m.st0 IS NOT NULL AND m.st0 = e.t))"
        start = self._choose(k, lambda p: f"m.st{p}")
        in_window = self._choose(k, lambda p: f"CASE WHEN {self._valid(p)} THEN 1 ELSE 0 END")
        return f"({flag} AND {in_window} = 1 AND NOT (m.st{k} IS NOT NULL AND m.st{k} = {start}))"

    def _excluded_after(self, p: int) -> str:
        """ex{p} once this event's exclusions are applied."""
        marks = [f"({self._hit(k, f'e.x{k} = 1')} AND {self._choose(k, lambda q, p=p: '1' if q == p else '0')} = 1)"
                 for k in self.excluded if p in self._chain(k)]
        return f"(CASE WHEN m.ex{p} = 1 {''.join(' OR ' + mark for mark in marks)} THEN 1 ELSE 0 END)"

    def _max_excluded_after(self) -> str:
        marks = []
        for k in self.excluded:
            pstar = self._choose(k, lambda q: str(q))
            fresh = self._choose(k, lambda q: f"m.ex{q}")
            marks.append(f"({self._hit(k, f'e.x{k} = 1')} AND {fresh} = 0 AND m.mk = {pstar} AND e.t - m.mst <= {self.w})")
        return f"(CASE WHEN m.mex = 1 {''.join(' OR ' + mark for mark in marks)} THEN 1 ELSE 0 END)"

    def _extends(self, k: int) -> str:
        return self._hit(k, f"e.s{k} = 1")

    def _new(self, k: int, column: str, j: int = 0) -> str:
        """A column of the attempt an event at step k makes (before the excluded check)."""
        if k == 0:
            return {"st": "e.t", "bi": "1", "ex": "0", "tt": "e.t"}[column]
        if column == "st":
            return self._choose(k, lambda p: f"m.st{p}")
        if column == "bi":
            return f"({self._choose(k, lambda p: f'm.bi{p}')} + {1 << k})"
        if column == "ex":
            return self._choose(k, lambda p: self._excluded_after(p))
        if j == k:
            return "e.t"
        return self._choose(k, lambda p: f"m.tt{p}_{j}" if j <= p else "CAST(NULL AS BIGINT)")

    def _step_column(self, k: int, column: str, j: int = 0) -> str:
        old = f"m.{column}{k}" + (f"_{j}" if column == "tt" else "")
        if column == "ex":
            old = self._excluded_after(k)
        replaced = f"({self._extends(k)} AND {self._new(k, 'ex')} = 0)"
        value = f"CASE WHEN {replaced} THEN {self._new(k, column, j) if column != 'ex' else '0'} ELSE {old} END"
        if self.strict:
            reset = {"st": "CAST(NULL AS BIGINT)", "bi": "0", "ex": "0", "tt": "CAST(NULL AS BIGINT)"}[column]
            value = f"CASE WHEN e.s{k} = 1 THEN ({value}) ELSE {reset} END"
        return f"{value} AS {column}{k}" + (f"_{j}" if column == "tt" else "")

    def _max_column(self, column: str, j: int = 0) -> str:
        old = {"mk": "m.mk", "mst": "m.mst", "mbi": "m.mbi", "mex": self._max_excluded_after(), "mt": f"m.mt{j}"}[column]
        mex = self._max_excluded_after()
        branches = []
        for k in reversed(range(self.n)):
            if column == "mk":
                new = str(k)
            elif column == "mt":
                new = self._new(k, "tt", j) if j <= k else "CAST(NULL AS BIGINT)"
            else:
                new = self._new(k, {"mst": "st", "mbi": "bi", "mex": "ex"}[column])
            beats = f"({k} > m.mk OR ({k} = m.mk AND {mex} = 1))"
            branches.append(f"WHEN {self._extends(k)} THEN (CASE WHEN {beats} THEN {new} ELSE {old} END)")
        name = f"mt{j}" if column == "mt" else column
        return f"CASE {' '.join(branches)} ELSE {old} END AS {name}"

    # --- CTEs -------------------------------------------------------------------------------

    def ctes(self, source: str) -> list[tuple[str, str]]:
        """(name, body) of the CTEs ending in `optional_actors`: keys, carried, r (-1: excluded), bits, mt0..."""
        n, keys = self.n, self.keys
        key_list = ", ".join(keys)
        # BIGINT: the recursion compares and carries `rn` with the signed start row (ClickHouse's
        # ROW_NUMBER is unsigned and has no common type with it).
        numbered = (f"SELECT *, CAST(ROW_NUMBER() OVER (PARTITION BY {key_list} ORDER BY pos) AS BIGINT) AS rn, "
                    f"COUNT(*) OVER (PARTITION BY {key_list}) AS cnt FROM {source}")
        # Typed as the recursive term computes them (PostgreSQL checks that they agree).
        null, zero = "CAST(NULL AS BIGINT)", "CAST(0 AS BIGINT)"
        start_columns = []
        for k in range(n):
            start_columns += [f"{null} AS st{k}", f"{zero} AS bi{k}", f"{zero} AS ex{k}"] + [f"{null} AS tt{k}_{j}" for j in range(k + 1)]
        start_columns += ["CAST(-1 AS BIGINT) AS mk", f"{null} AS mst", f"{zero} AS mbi", f"{zero} AS mex"] + [f"{null} AS mt{j}" for j in range(n)]
        base = f"SELECT DISTINCT {', '.join(keys + self.carried)}, cnt, {zero} AS rn, {', '.join(start_columns)} FROM optional_events"
        step_columns = []
        for k in range(n):
            step_columns += [self._step_column(k, "st"), self._step_column(k, "bi"), self._step_column(k, "ex")]
            step_columns += [self._step_column(k, "tt", j) for j in range(k + 1)]
        step_columns += [self._max_column("mk"), self._max_column("mst"), self._max_column("mbi"), self._max_column("mex")]
        step_columns += [self._max_column("mt", j) for j in range(n)]
        same = " AND ".join(f"e.{c} = m.{c}" for c in keys)
        recursive = (f"SELECT {', '.join(f'm.{c}' for c in keys + self.carried)}, m.cnt, e.rn, {', '.join(step_columns)} "
                     f"FROM optional_machine AS m JOIN optional_events AS e ON {same} AND e.rn = m.rn + 1 "
                     f"WHERE m.st{n - 1} IS NULL")
        final = (f"SELECT {', '.join(keys + self.carried)}, CASE WHEN mex = 1 THEN -1 ELSE mk END AS r, mbi AS bits, "
                 f"{', '.join(f'mt{j}' for j in range(n))} FROM optional_machine WHERE rn = cnt OR st{n - 1} IS NOT NULL")
        return [("optional_events", numbered), ("optional_machine", f"{base} UNION ALL {recursive}"), ("optional_actors", final)]

    def delays(self) -> list[str]:
        """d1..d(n-1): the gaps between consecutive required steps of the counted attempt, in order."""
        required = [k for k in range(self.n) if k not in self.optional]
        delays = []
        for i in range(1, self.n):
            if i < len(required):
                delays.append(f"CASE WHEN r >= {required[i]} THEN mt{required[i]} - mt{required[i - 1]} END AS d{i}")
            else:
                delays.append(f"CAST(NULL AS BIGINT) AS d{i}")
        return delays
