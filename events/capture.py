"""Decoding capture requests as PostHog's SDKs send them.

Bodies may be JSON, gzip (`Content-Encoding: gzip`, `?compression=gzip` / `gzip-js`, or simply
starting with the gzip magic bytes), form-encoded with a `data=` field (JSON or base64 JSON), or a
GET with `?data=`. The payload is a batch object (`{"batch": [...], "api_key", "sent_at"}`), a list
of events, or one event.
"""
import base64
import binascii
import json
import math
import re
import zlib

import orjson
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from urllib.parse import parse_qs

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http.multipartparser import MultiPartParserError

from .exceptions import MalformedRequest, NoData, PayloadTooLarge
from .services import parse_timestamp

MAX_BODY_BYTES = 20 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# JSON escapes PostgreSQL cannot store in jsonb or text: NUL and unpaired surrogates.
UNSTORABLE_ESCAPE = re.compile(r"\\u(0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
UNSTORABLE_ESCAPE_BYTES = re.compile(UNSTORABLE_ESCAPE.pattern.encode())
# Integers orjson would read as floats (past 64 bits) have 20 digits or more: the standard library
# keeps them exact. Found by mapping every digit to "0" and looking for 20 zeros (a regex is slower).
DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
TWENTY_DIGITS = b"0" * 20


@dataclass
class CaptureRequest:
    events: list
    token: object
    sent_at: datetime | None


def _finite_float(text: str):
    value = float(text)
    return value if math.isfinite(value) else None


def _loads(text: str):
    # NaN / Infinity are not JSON any database accepts: they become null.
    return json.loads(text, parse_constant=lambda _: None, parse_float=_finite_float)


def _clean(value):
    if isinstance(value, str):
        value = value.replace("\x00", "")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def decode_json(data: bytes | str):
    """JSON, else base64-encoded JSON; the JSON error is the one reported.

    orjson first (several times faster: capture decodes every byte it receives); what it refuses
    (NaN, numbers out of range, lone surrogates, deep nesting, invalid UTF-8, base64) and integers
    past 64 bits go the standard library's way, whose rules this function defines."""
    if isinstance(data, bytes) and TWENTY_DIGITS not in data.translate(DIGITS_AS_ZERO):
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
        else:
            return _clean(payload) if UNSTORABLE_ESCAPE_BYTES.search(data) else payload
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as error:
        raise MalformedRequest(f"Invalid JSON: {error}") from None
    try:
        payload = _loads(text)
    except (ValueError, RecursionError) as error:
        try:
            text = base64.b64decode(text.strip().replace(" ", "+") + "===").decode("utf-8")
            payload = _loads(text)
        except (ValueError, binascii.Error, RecursionError):
            raise MalformedRequest(f"Invalid JSON: {error}") from None
    return _clean(payload) if UNSTORABLE_ESCAPE.search(text) else payload


def _gunzip(data: bytes) -> bytes:
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        result = decompressor.decompress(data, MAX_BODY_BYTES + 1)
    except zlib.error as error:
        raise MalformedRequest(f"Failed to decompress data. {error}") from None
    if len(result) > MAX_BODY_BYTES:
        raise PayloadTooLarge(MAX_BODY_BYTES)
    if not decompressor.eof:
        raise MalformedRequest("Failed to decompress data. The gzip stream is truncated.")
    return result


def _read_body(request) -> bytes:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY_BYTES:
        raise PayloadTooLarge(MAX_BODY_BYTES)
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(MAX_BODY_BYTES)
    return body


def _form_fields(request) -> dict[str, str]:
    if request.content_type == "multipart/form-data":
        try:
            return {key: request.POST.get(key) for key in request.POST}
        except RequestDataTooBig:
            raise PayloadTooLarge(MAX_BODY_BYTES) from None
        except MultiPartParserError as error:
            raise MalformedRequest(str(error)) from None
    body = _read_body(request).decode("utf-8", "replace")
    return {key: values[0] for key, values in parse_qs(body, keep_blank_values=True).items()}


def _sent_at(value) -> datetime | None:
    if isinstance(value, str) and value:
        return parse_timestamp(value)
    return None


def _epoch_sent_at(value: str | None) -> datetime | None:
    """posthog-js puts the send time in `?_=` as epoch milliseconds (seconds in older versions)."""
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    if number is None or not math.isfinite(number):
        return None
    try:
        return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, tz=dt_timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _token_in(payload) -> object:
    first = payload[0] if isinstance(payload, list) and payload else payload
    if not isinstance(first, dict):
        return None
    for key in ("$token", "token", "api_key"):
        if first.get(key) not in (None, ""):
            return first[key]
    properties = first.get("properties")
    if isinstance(properties, dict) and properties.get("token") not in (None, ""):
        return properties["token"]
    return None


def _bearer_token(request) -> str | None:
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def read_payload(request) -> tuple[object, dict[str, str]]:
    """The decoded JSON payload of an SDK request (capture or flags), and its form fields if any."""
    query = request.GET
    fields: dict[str, str] = {}
    if request.method == "GET":
        raw = query.get("data", "")
    elif request.content_type in FORM_CONTENT_TYPES:
        fields = _form_fields(request)
        raw = fields.get("data", "")
    else:
        raw = _read_body(request)
    compression = (query.get("compression") or fields.get("compression") or request.headers.get("Content-Encoding") or "").lower()
    if compression == "lz64":
        raise MalformedRequest("lz64 compression is not supported; use gzip.")
    if isinstance(raw, bytes) and (compression in ("gzip", "gzip-js") or raw[:2] == GZIP_MAGIC):
        raw = _gunzip(raw)
    if not raw:
        raise NoData()
    payload = decode_json(raw)
    if not payload:
        raise NoData()
    return payload, fields


def read_capture_request(request) -> CaptureRequest:
    """Parse a Django request into the events, token and send time it carries (no database access)."""
    query = request.GET
    payload, fields = read_payload(request)
    sent_at = _epoch_sent_at(query.get("_"))
    if isinstance(payload, dict) and "batch" in payload:
        events = payload["batch"]
        if not isinstance(events, list):
            events = [events]
        sent_at = _sent_at(payload.get("sent_at") or payload.get("sentAt")) or sent_at
    elif isinstance(payload, dict):
        events = [payload]
        sent_at = _sent_at(payload.get("sent_at") or payload.get("sentAt")) or sent_at
    elif isinstance(payload, list):
        events = payload
    else:
        events = [payload]

    token = next(
        (
            value
            for value in (
                query.get("token"),
                query.get("api_key"),
                fields.get("api_key"),
                fields.get("token"),
                payload.get("api_key") if isinstance(payload, dict) else None,
                payload.get("token") if isinstance(payload, dict) else None,
                _token_in(events),
                _bearer_token(request),
            )
            if value not in (None, "")
        ),
        None,
    )
    return CaptureRequest(events=events, token=token, sent_at=sent_at)


def client_ip(request) -> str | None:
    if settings.TRUSTED_PROXIES:  # core.proxy has put the client behind the trusted proxies in REMOTE_ADDR
        return request.META.get("REMOTE_ADDR") or None
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    ip = forwarded.split(",")[0].strip() if forwarded else request.META.get("REMOTE_ADDR", "")
    if ip.count(":") == 1:  # IPv4 with a port, as some proxies forward it
        ip = ip.split(":")[0]
    return ip or None
