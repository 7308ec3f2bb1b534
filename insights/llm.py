"""Optional client of an OpenAI-compatible chat completions endpoint (LLM_API_BASE, LLM_API_KEY, LLM_MODEL).

Nothing here is required: without the three settings the insight analysis and suggestions are
computed on the server alone. With them, organizations must have approved AI data processing
(PostHog's `is_ai_data_processing_approved`), and any provider failure — refused connection,
timeout, HTTP error, an answer that is not a chat completion — is logged and reported as None so
that callers fall back to their deterministic output.
"""
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from typing import Optional

from django.conf import settings
from rest_framework.exceptions import PermissionDenied

logger = logging.getLogger(__name__)

AI_APPROVAL_MESSAGE = "AI data processing must be approved by your organization"
# A chat answer bigger than this is not an analysis; stop reading rather than hold the worker.
MAX_RESPONSE_BYTES = 1_000_000
MAX_ANSWER_CHARS = 8_000


class LLMError(Exception):
    """The provider could not give a usable answer."""


def is_configured() -> bool:
    return bool(settings.LLM_API_BASE and settings.LLM_API_KEY and settings.LLM_MODEL)


def ensure_ai_allowed(organization) -> None:
    """The LLM path sends insight data out of the server: only for organizations that approved it."""
    if is_configured() and not organization.is_ai_data_processing_approved:
        raise PermissionDenied(AI_APPROVAL_MESSAGE)


def complete(messages: list[dict], *, temperature: float = 0.2) -> str:
    """The provider's answer to a chat, stripped; LLMError on any failure."""
    url = settings.LLM_API_BASE.rstrip("/") + "/chat/completions"
    body = json.dumps({"model": settings.LLM_MODEL, "messages": messages, "temperature": temperature}).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {settings.LLM_API_KEY}"},
    )
    timeout = float(settings.LLM_TIMEOUT_SECONDS)
    deadline = time.monotonic() + timeout
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = _read_until(response, deadline)
    except urllib.error.HTTPError as error:
        raise LLMError(f"HTTP {error.code} from the provider") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:  # refused, timeout, cut off
        raise LLMError(f"provider unreachable: {error}") from None
    return _answer(raw)


def complete_or_none(messages: list[dict]) -> Optional[str]:
    try:
        return complete(messages)
    except LLMError as error:
        logger.warning("LLM request failed, using the deterministic output: %s", error)
        return None


def _read_until(response, deadline: float) -> bytes:
    """Read the body, giving up at the deadline (the socket timeout alone applies per read)."""
    chunks, size = [], 0
    while True:
        if time.monotonic() > deadline:
            raise LLMError("provider timed out")
        chunk = response.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise LLMError("provider answer too large")
        chunks.append(chunk)


def _answer(raw: bytes) -> str:
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise LLMError("the provider's answer is not a chat completion") from None
    if not isinstance(content, str) or not content.strip():
        raise LLMError("the provider's answer is empty")
    return content.strip()[:MAX_ANSWER_CHARS]
