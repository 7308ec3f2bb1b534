"""Brute-force protection for share passwords (failed attempts counted per share and client address
in fixed windows) and the limit on computations started by public pages, both in the cache
(shared across processes when it is Redis)."""
import hashlib

from django.core.cache import cache
from django.utils import timezone

MAX_FAILED_ATTEMPTS = 10
WINDOW_SECONDS = 300


def _window() -> tuple[int, int]:
    """(current window number, seconds left in it)."""
    now = int(timezone.now().timestamp())
    return now // WINDOW_SECONDS, WINDOW_SECONDS - now % WINDOW_SECONDS


def _key(access_token: str, client_ip: str, window: int) -> str:
    token_hash = hashlib.sha256(access_token.encode()).hexdigest()[:32]
    return f"share_password_failures:{token_hash}:{client_ip}:{window}"


def seconds_until_allowed(access_token: str, client_ip: str) -> int:
    """0 when another attempt may be made now."""
    window, left = _window()
    return left if cache.get(_key(access_token, client_ip, window), 0) >= MAX_FAILED_ATTEMPTS else 0


def record_failure(access_token: str, client_ip: str) -> None:
    window, _ = _window()
    key = _key(access_token, client_ip, window)
    cache.add(key, 0, timeout=WINDOW_SECONDS + 5)
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=WINDOW_SECONDS + 5)


# Computing a shared insight's result for its public page: one computation at a time per shared
# insight (concurrent viewers wait for that one), and at most COMPUTATIONS_PER_WINDOW of them per
# COMPUTE_WINDOW_SECONDS, so a popular or hostile link cannot keep the database busy.
COMPUTATIONS_PER_WINDOW = 5
COMPUTE_WINDOW_SECONDS = 60
# Longer than the query timeout, so that only a crashed computation's lock ever expires.
COMPUTE_LOCK_SECONDS = 150


def _compute_lock_key(insight_id: int) -> str:
    return f"shared_insight_computing:{insight_id}"


def begin_computation(insight_id: int) -> bool:
    """Take the right to compute the insight now; False when another viewer is computing it or the
    share has used up its computations for this window. Pair with `end_computation`."""
    lock = _compute_lock_key(insight_id)
    if not cache.add(lock, 1, timeout=COMPUTE_LOCK_SECONDS):
        return False
    now = int(timezone.now().timestamp())
    counter = f"shared_insight_computations:{insight_id}:{now // COMPUTE_WINDOW_SECONDS}"
    cache.add(counter, 0, timeout=COMPUTE_WINDOW_SECONDS + 5)
    try:
        count = cache.incr(counter)
    except ValueError:  # expired between add and incr
        cache.add(counter, 1, timeout=COMPUTE_WINDOW_SECONDS + 5)
        count = 1
    if count > COMPUTATIONS_PER_WINDOW:
        cache.delete(lock)
        return False
    return True


def end_computation(insight_id: int) -> None:
    cache.delete(_compute_lock_key(insight_id))


def computation_running(insight_id: int) -> bool:
    return cache.get(_compute_lock_key(insight_id)) is not None
