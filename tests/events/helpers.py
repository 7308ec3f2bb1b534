import gzip
import json
import uuid
from datetime import datetime, timedelta, timezone

from rest_framework.test import APIClient

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def message(event="$pageview", distinct_id="user-1", properties=None, timestamp=T0, **extra):
    """An event the way posthog-python puts it in a batch."""
    msg = {
        "event": event,
        "distinct_id": distinct_id,
        "properties": {"$lib": "posthog-python", "$lib_version": "7.91.1", **(properties or {})},
        "timestamp": iso(timestamp) if isinstance(timestamp, datetime) else timestamp,
        "uuid": str(uuid.uuid4()),
    }
    msg.update(extra)
    return msg


def post_batch(team, messages, sent_at=None, path="/batch/", client=None, **payload):
    body = {"api_key": team.api_token, "batch": messages, **payload}
    if sent_at is not None:
        body["sent_at"] = iso(sent_at)
    return (client or APIClient()).post(path, json.dumps(body), content_type="application/json")


def post_raw(path, body: bytes | str, content_type="application/json", client=None, **headers):
    return (client or APIClient()).generic("POST", path, body, content_type=content_type, **headers)


def gzipped(payload) -> bytes:
    return gzip.compress(json.dumps(payload).encode())


def capture_error(detail, code="invalid_payload", type_="validation_error"):
    return {"type": type_, "code": code, "detail": detail, "attr": None}


def minutes(n):
    return timedelta(minutes=n)
