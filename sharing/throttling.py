"""Brute-force protection for share passwords: failed attempts counted per share and client address
in fixed windows, in the cache (shared across processes when it is Redis)."""
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
