"""Query coalescing: identical expensive requests arriving together are computed once.

The first request for a key becomes the leader and runs normally; identical requests that
arrive while it runs wait for its response and replay it, but only after their own
authentication, permission, throttle and object checks pass (QueryCoalescingMixin). Requests
with a credential whose answer differs by holder (a share token) only coalesce with the same
credential. 4xx responses are
user-specific and never shared; 2xx/3xx and 5xx are. Two backends share one interface: Redis
(across processes) when REDIS_URL is set, and an in-process one otherwise.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from django.conf import settings

logger = logging.getLogger(__name__)

LOCK_TTL_SECONDS = 60
DONE_TTL_SECONDS = 5
ERROR_TTL_SECONDS = 5
HEARTBEAT_SECONDS = 5.0
POLL_SECONDS = 0.2
CRASH_AFTER_SECONDS = 2 * HEARTBEAT_SECONDS
HEADER = "X-Query-Coalescing"
META_KEY = "_coalesced_response"

QUERY_PATH = re.compile(r"^/api/(?:environments|projects)/(?P<team_id>\d+)/query/$")
# Their bodies carry the requesting user's access levels: one key per credential.
OBJECT_PATHS = [
    re.compile(r"^/api/(?:environments|projects)/(?P<team_id>\d+)/insights/\d+/$"),
    re.compile(r"^/api/(?:environments|projects)/(?P<team_id>\d+)/dashboards/\d+/$"),
]
ELIGIBLE_PATHS = [QUERY_PATH, *OBJECT_PATHS]
IGNORED_PARAMS = {"client_query_id", "session_id"}


class BackendError(Exception):
    """The coordination store failed: serve the request normally."""


@dataclass
class Outcome:
    state: str  # done | error | crashed | timeout
    payload: dict | None = None


# --- Request key ------------------------------------------------------------------------------

def _has_truthy_key(data, name: str) -> bool:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get(name):
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _credential_part(request, per_member: bool) -> str:
    """Part of the key for credentials that change the response itself. A share token (a JWT from
    a password-protected share) sees the shared serialization and refresh modes, not a member's.
    On `/query/` members' credentials (`phx_` personal API keys, sessions) share responses, as in
    PostHog; insight and dashboard bodies carry the requesting user's access levels
    (`effective_privilege_level`, `user_access_level`), so there each credential has its own key."""
    parts = request.META.get("HTTP_AUTHORIZATION", "").split(None, 1)
    if len(parts) == 2 and parts[0].lower() == "bearer" and (per_member or not parts[1].strip().startswith("phx_")):
        return hashlib.sha256(parts[1].strip().encode()).hexdigest()
    if per_member and (session := request.COOKIES.get(settings.SESSION_COOKIE_NAME)):
        return hashlib.sha256(f"session:{session}".encode()).hexdigest()
    return ""


def request_key(request) -> str | None:
    """The coalescing key of an eligible request, or None when it must pass straight through."""
    if request.method not in ("GET", "POST"):
        return None
    match = next((m for p in ELIGIBLE_PATHS if (m := p.match(request.path))), None)
    if match is None:
        return None
    team_id = match.group("team_id")
    if request.method == "GET":
        pairs = [(k, v) for k, v in parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True) if k not in IGNORED_PARAMS]
        normalized = urlencode(sorted(pairs, key=lambda pair: pair[0]))
    else:
        body = request.body
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            normalized = body.decode("latin-1")
        else:
            if _has_truthy_key(data, "experiment_exposure"):
                return None
            if isinstance(data, dict):
                data = {k: v for k, v in data.items() if k not in IGNORED_PARAMS}
            normalized = json.dumps(data, sort_keys=True)
    credential = _credential_part(request, per_member=match.re in OBJECT_PATHS)
    return hashlib.sha256(f"{team_id}:{request.method}:{request.path}:{normalized}:{credential}".encode()).hexdigest()


# --- Backends -----------------------------------------------------------------------------------

class RedisBackend:
    _EXTEND = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) else return 0 end"
    _RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"

    def __init__(self, url: str):
        import redis

        self._redis_errors = (redis.RedisError, OSError)
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self._extend = self.client.register_script(self._EXTEND)
        self._release = self.client.register_script(self._RELEASE)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except self._redis_errors as exc:
            raise BackendError(str(exc)) from exc

    def acquire(self, key: str) -> str | None:
        token = secrets.token_hex(16)
        return token if self._call(self.client.set, f"http_qc:{key}", token, nx=True, ex=LOCK_TTL_SECONDS) else None

    def heartbeat(self, key: str, token: str) -> bool:
        held = bool(self._call(self._extend, keys=[f"http_qc:{key}"], args=[token, LOCK_TTL_SECONDS]))
        if held:
            self._call(self.client.publish, f"http_qc_ch:{key}", "heartbeat")
        return held

    def release(self, key: str, token: str) -> None:
        self._call(self._release, keys=[f"http_qc:{key}"], args=[token])

    def publish_done(self, key: str, payload: dict) -> None:
        self._call(self.client.set, f"http_qc_done:{key}", json.dumps(payload), ex=DONE_TTL_SECONDS)
        self._call(self.client.publish, f"http_qc_ch:{key}", "done")

    def publish_error(self, key: str) -> None:
        self._call(self.client.set, f"http_qc_err:{key}", json.dumps({"error": True}), ex=ERROR_TTL_SECONDS)
        self._call(self.client.publish, f"http_qc_ch:{key}", "error")

    def wait(self, key: str, max_wait: float) -> Outcome:
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            self._call(pubsub.subscribe, f"http_qc_ch:{key}")
            deadline = time.monotonic() + max_wait
            last_signal = time.monotonic()
            while time.monotonic() < deadline:
                done = self._call(self.client.get, f"http_qc_done:{key}")
                if done is not None:
                    return Outcome("done", _load(done))
                if self._call(self.client.exists, f"http_qc_err:{key}"):
                    return Outcome("error")
                if time.monotonic() - last_signal > CRASH_AFTER_SECONDS:
                    return Outcome("crashed")
                if self._call(pubsub.get_message, timeout=POLL_SECONDS):
                    last_signal = time.monotonic()
            return Outcome("timeout")
        finally:
            try:
                pubsub.close()
            except self._redis_errors:
                pass

    def incr(self, counter: str) -> None:
        self._call(self.client.hincrby, "http_qc_counters", counter, 1)

    def counters(self) -> dict[str, int]:
        raw = self._call(self.client.hgetall, "http_qc_counters")
        return {k.decode(): int(v) for k, v in raw.items()}


class InProcessBackend:
    """Threading equivalent of the Redis backend, for one server process (the embedded default)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._locks: dict[str, tuple[str, float]] = {}  # key -> (token, expires at)
        self._records: dict[str, tuple[str, dict | None, float]] = {}  # key -> (state, payload, expires at)
        self._signals: dict[str, float] = {}  # key -> time of the leader's last message
        self._counters: dict[str, int] = {}

    def _live(self, table: dict, key: str):
        entry = table.get(key)
        if entry is not None and entry[-1] < time.monotonic():
            del table[key]
            return None
        return entry

    def acquire(self, key: str) -> str | None:
        with self._cond:
            if self._live(self._locks, key):
                return None
            token = secrets.token_hex(16)
            self._locks[key] = (token, time.monotonic() + LOCK_TTL_SECONDS)
            self._records.pop(key, None)
            return token

    def heartbeat(self, key: str, token: str) -> bool:
        with self._cond:
            lock = self._live(self._locks, key)
            if not lock or lock[0] != token:
                return False
            self._locks[key] = (token, time.monotonic() + LOCK_TTL_SECONDS)
            self._signals[key] = time.monotonic()
            self._cond.notify_all()
            return True

    def release(self, key: str, token: str) -> None:
        with self._cond:
            lock = self._locks.get(key)
            if lock and lock[0] == token:
                del self._locks[key]

    def _publish(self, key: str, state: str, payload: dict | None, ttl: int) -> None:
        with self._cond:
            self._records[key] = (state, payload, time.monotonic() + ttl)
            self._signals[key] = time.monotonic()
            self._cond.notify_all()

    def publish_done(self, key: str, payload: dict) -> None:
        self._publish(key, "done", payload, DONE_TTL_SECONDS)

    def publish_error(self, key: str) -> None:
        self._publish(key, "error", None, ERROR_TTL_SECONDS)

    def wait(self, key: str, max_wait: float) -> Outcome:
        deadline = time.monotonic() + max_wait
        started = time.monotonic()
        with self._cond:
            while time.monotonic() < deadline:
                record = self._live(self._records, key)
                if record:
                    return Outcome(record[0], record[1])
                if time.monotonic() - max(self._signals.get(key, 0.0), started) > CRASH_AFTER_SECONDS:
                    return Outcome("crashed")
                self._cond.wait(timeout=POLL_SECONDS)
            return Outcome("timeout")

    def incr(self, counter: str) -> None:
        with self._cond:
            self._counters[counter] = self._counters.get(counter, 0) + 1

    def counters(self) -> dict[str, int]:
        with self._cond:
            return dict(self._counters)


def _load(raw: bytes) -> dict | None:
    try:
        payload = json.loads(raw)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) and "status" in payload else None


_backend = None
_backend_lock = threading.Lock()


def get_backend():
    global _backend
    with _backend_lock:
        url = settings.REDIS_URL
        wanted = RedisBackend if url else InProcessBackend
        if not isinstance(_backend, wanted) or (url and getattr(_backend, "url", None) != url):
            _backend = RedisBackend(url) if url else InProcessBackend()
            _backend.url = url
        return _backend


def read_counters() -> dict[str, int]:
    names = ("leader", "follower_served", "fallthrough")
    try:
        counters = get_backend().counters()
    except BackendError:
        counters = {}
    return {name: counters.get(name, 0) for name in names}


def _count(backend, counter: str) -> None:
    try:
        backend.incr(counter)
    except BackendError:
        pass


# --- Middleware ----------------------------------------------------------------------------------

class _Heartbeat(threading.Thread):
    def __init__(self, backend, key: str, token: str):
        super().__init__(daemon=True)
        self.backend, self.key, self.token = backend, key, token
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(HEARTBEAT_SECONDS):
            try:
                if not self.backend.heartbeat(self.key, self.token):
                    return
            except BackendError:
                return


class QueryCoalescingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not settings.QUERY_COALESCING_ENABLED:
            return self.get_response(request)
        key = request_key(request)
        if key is None:
            return self.get_response(request)
        backend = get_backend()
        try:
            token = backend.acquire(key)
        except BackendError:
            logger.warning("query coalescing store unavailable; serving without coalescing")
            return self.get_response(request)
        if token:
            return self._lead(request, backend, key, token)
        return self._follow(request, backend, key)

    def _lead(self, request, backend, key, token):
        _count(backend, "leader")
        heartbeat = _Heartbeat(backend, key, token)
        heartbeat.start()
        try:
            response = self.get_response(request)
        except BaseException:
            self._safely(backend.publish_error, key)
            raise
        finally:
            heartbeat.stopped.set()
        try:
            if getattr(response, "streaming", False) or 400 <= response.status_code < 500:
                self._safely(backend.publish_error, key)
            else:
                if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                    response.render()
                payload = {
                    "status": response.status_code,
                    "body": response.content.decode("utf-8", errors="replace"),
                    "content_type": response.get("Content-Type", "application/json"),
                }
                self._safely(backend.publish_done, key, payload)
        finally:
            self._safely(backend.release, key, token)
        response[HEADER] = "leader"
        return response

    def _follow(self, request, backend, key):
        try:
            outcome = backend.wait(key, float(settings.QUERY_COALESCING_MAX_WAIT_SECONDS))
        except BackendError:
            outcome = Outcome("error")
        if outcome.state == "done" and outcome.payload:
            request.META[META_KEY] = outcome.payload
            response = self.get_response(request)
            if response.get(HEADER) == "replayed":
                _count(backend, "follower_served")
            return response
        _count(backend, "fallthrough")
        response = self.get_response(request)
        response[HEADER] = "fallthrough"
        return response

    @staticmethod
    def _safely(fn, *args):
        try:
            fn(*args)
        except BackendError:
            logger.warning("query coalescing store unavailable while publishing")


# --- View gate -------------------------------------------------------------------------------------

class QueryCoalescingMixin:
    """First base of coalesced viewsets: a follower replays the leader's response only after
    its own authentication, permission and throttle checks (`initial()`) pass and, on a detail
    route, the object lookup and object permissions (`get_object()`) a leader goes through."""

    def dispatch(self, request, *args, **kwargs):
        from django.http import HttpResponse
        from rest_framework.exceptions import Throttled

        payload = request.META.pop(META_KEY, None)
        if payload is None:
            return super().dispatch(request, *args, **kwargs)
        self.args, self.kwargs = args, kwargs
        drf_request = self.initialize_request(request, *args, **kwargs)
        self.request = drf_request
        self.headers = self.default_response_headers
        try:
            try:
                self.initial(drf_request, *args, **kwargs)
            except Throttled:
                pass  # a replay costs nothing
            self._check_object_access(kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
            return self.finalize_response(drf_request, response, *args, **kwargs)
        response = HttpResponse(payload["body"], status=payload["status"], content_type=payload["content_type"])
        response[HEADER] = "replayed"
        return response

    def _check_object_access(self, kwargs) -> None:
        """Object-level checks for detail routes: the queryset restriction and has_object_permission."""
        lookup = getattr(self, "lookup_url_kwarg", None) or getattr(self, "lookup_field", None)
        if lookup and lookup in kwargs and hasattr(self, "get_object"):
            self.get_object()
