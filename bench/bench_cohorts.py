"""Calculation time of each behavioral cohort type on the same seeded events, in one run.

    .venv/bin/python bench/bench_cohorts.py                      # a fresh SQLite file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/bench_cohorts.py

Seeds events as bench_trends.py does (pageviews and other events of --persons persons over --days
days), then for each behavioral type creates a cohort and times `calculate_cohort` (the one
INSERT ... SELECT that computes its members), printing the median of --repeat runs and the member
count. No hand-written comparison: each number is what one membership statement costs.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _common  # noqa: E402  (bench/ is the script directory)
import bench_trends  # noqa: E402


def leaf(value, **extra):
    return {"type": "behavioral", "key": "$pageview", "value": value, "event_type": "events", **extra}


LEAVES = {
    "performed_event": leaf("performed_event", time_value=7, time_interval="day"),
    "performed_event_multiple": leaf("performed_event_multiple", time_value=7, time_interval="day", operator="gte", operator_value=5),
    "performed_event_first_time": leaf("performed_event_first_time", time_value=7, time_interval="day"),
    "performed_event_sequence": leaf("performed_event_sequence", time_value=14, time_interval="day", seq_event="signed_up",
                                     seq_event_type="events", seq_time_value=1, seq_time_interval="day"),
    "performed_event_regularly": leaf("performed_event_regularly", time_value=1, time_interval="week", operator="gte", operator_value=2,
                                      min_periods=3, total_periods=4),
    "stopped_performing_event": leaf("stopped_performing_event", time_value=28, time_interval="day", seq_time_value=7, seq_time_interval="day"),
    "restarted_performing_event": leaf("restarted_performing_event", time_value=14, time_interval="day", seq_time_value=3,
                                       seq_time_interval="day"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--persons", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    database = _common.setup_django(os.environ.get("DATABASE_URL"), "cohorts")
    from django.db import connection

    from cohorts.calculation import calculate_cohort
    from cohorts.models import Cohort

    team, user, _key = _common.bench_team("Bench")
    print(f"database: {connection.vendor} ({database.split('@')[-1]}), team {team.id}")
    try:
        started = time.perf_counter()
        bench_trends.seed(team, args.events, args.persons, args.days, args.seed)
        print(f"seeded {args.events:,} events / {args.persons:,} persons in {time.perf_counter() - started:.1f}s")
        for name, value in LEAVES.items():
            cohort = Cohort.objects.create(team=team, name=name, filters={"properties": {"type": "AND", "values": [value]}})
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                calculate_cohort(cohort.id)
                times.append(time.perf_counter() - t)
            cohort.refresh_from_db()
            if cohort.last_error:
                sys.exit(f"{name} failed: {cohort.last_error}")
            print(f"{name + ':':30} median {statistics.median(times) * 1000:8.1f} ms  {cohort.count:>7,} members")
    finally:
        from cohorts.models import CohortPeople

        CohortPeople.objects.filter(cohort__team=team).delete()
        Cohort.objects.filter(team=team).delete()
        _common.remove_team(team, user)


if __name__ == "__main__":
    main()
