"""One exception handler: every error body is {type, code, detail, attr} (+ extra)."""
import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from .faults import as_unavailable

logger = logging.getLogger(__name__)

_TYPES = [
    (exceptions.ValidationError, "validation_error"),
    ((exceptions.NotAuthenticated, exceptions.AuthenticationFailed, exceptions.PermissionDenied), "authentication_error"),
    (
        (exceptions.NotFound, exceptions.MethodNotAllowed, exceptions.ParseError, exceptions.NotAcceptable, exceptions.UnsupportedMediaType),
        "invalid_request",
    ),
    (exceptions.Throttled, "throttled_error"),
]


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"
    default_type = "invalid_request"


def _exception_type(exc) -> str:
    override = getattr(exc, "exception_type", None)
    if override:
        return override
    for classes, name in _TYPES:
        if isinstance(exc, classes):
            return name
    return getattr(exc, "default_type", "server_error")


def _first_error(detail, path=()):
    """Depth-first first error in DRF's nested detail: (attr path, ErrorDetail)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if value not in ({}, []):
                return _first_error(value, path + (str(key),))
        return path, ""
    if isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                if value:  # errors of a nested list item: the index joins the attr path
                    return _first_error(value, path + (str(index),))
                continue
            return path, value
        return path, ""
    return path, detail


def _error_body(exc: exceptions.APIException) -> dict:
    attr_path, first = _first_error(exc.detail)
    code = getattr(first, "code", None) or exc.default_code
    if code == "invalid":
        code = "invalid_input"
    attr = "__".join(attr_path) if attr_path else None
    if attr in ("non_field_errors", "__all__"):
        attr = None
    body = {"type": _exception_type(exc), "code": code, "detail": str(first), "attr": attr}
    if getattr(exc, "extra", None) is not None:
        body["extra"] = exc.extra
    return body


def server_error_body() -> dict:
    return {"type": "server_error", "code": "error", "detail": "A server error occurred.", "attr": None}


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, SuspiciousOperation):  # too many fields or files, a malformed multipart body
        exc = exceptions.ParseError(str(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(*(exc.args or ()))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*(exc.args or ()))

    if not isinstance(exc, exceptions.APIException):
        unavailable = as_unavailable(exc)
        if unavailable is not None:
            logger.warning("%s: %s", unavailable.default_code, exc)
            exc = unavailable
    if not isinstance(exc, exceptions.APIException):
        logger.exception("Unhandled exception in API view", exc_info=exc)
        set_rollback()
        return Response(server_error_body(), status=status.HTTP_500_INTERNAL_SERVER_ERROR)

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = "%d" % exc.wait
    set_rollback()
    return Response(_error_body(exc), status=exc.status_code, headers=headers)


class ErrorBodyMiddleware:
    """API errors raised in views outside DRF (public share pages) get the same body and status:
    an outage is 503 with Retry-After, a NUL in a parameter 400 (core.text)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exc):
        unavailable = as_unavailable(exc)
        if unavailable is not None:
            logger.warning("%s %s: %s (%s)", request.method, request.path, unavailable.default_code, exc)
            exc = unavailable
        if not isinstance(exc, exceptions.APIException):
            return None
        response = JsonResponse(_error_body(exc), status=exc.status_code)
        if getattr(exc, "wait", None):
            response["Retry-After"] = "%d" % exc.wait
        return response
