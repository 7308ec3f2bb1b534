"""Garbage collection tuned for a long-running server process.

What a server imports at start (Django, the apps, chDB's bindings: hundreds of thousands of
objects) lives as long as the process. Frozen out of the collector, a full collection no longer
walks it all, a pause that otherwise lands on whichever request allocates at that moment. And
capture allocates dozens of containers per event that die with their request: collecting the
youngest generation every few thousand allocations instead of every 700 costs less, for the same
garbage (reference counting frees nearly all of it anyway; the collector only finds cycles).
"""
import gc

YOUNGEST_GENERATION_THRESHOLD = 10_000


def tune_for_server() -> None:
    """Call once the process has imported what it serves with."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNGEST_GENERATION_THRESHOLD, older, oldest)
