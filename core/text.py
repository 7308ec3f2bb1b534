"""Text PostgreSQL cannot store or compare never reaches it: NUL characters are rejected (400).

One rule, two places: the middleware checks the path, query parameters, headers and cookies of
every request; the parsers check request bodies (JSON, forms). Capture has its own decoder
(events/capture.py), which strips NUL from event payloads instead, so an SDK's batch is not lost
for one bad character.
"""
from django.http import JsonResponse
from rest_framework import parsers
from rest_framework.exceptions import ErrorDetail, ValidationError

NUL = "\x00"
DETAIL = "Null characters are not allowed."
CODE = "null_characters_not_allowed"


def find_nul(data) -> tuple[str, ...] | None:
    """The path (keys and indexes) to the first string or key in `data` holding a NUL, or None."""
    stack = [((), data)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return path
        elif isinstance(item, dict):
            for key, value in item.items():
                if isinstance(key, str) and NUL in key:
                    return path
                stack.append((path + (str(key),), value))
        elif isinstance(item, (list, tuple)):
            stack.extend((path + (str(index),), value) for index, value in enumerate(item))
    return None


def _reject_nul(data):
    path = find_nul(data)
    if path is None:
        return data
    detail = [ErrorDetail(DETAIL, code=CODE)]
    for key in reversed(path):
        detail = {key: detail}
    raise ValidationError(detail)


def _reject_nul_in_form(data):
    for key, values in data.lists():
        if NUL in key or any(isinstance(value, str) and NUL in value for value in values):
            raise ValidationError({key.replace(NUL, ""): [ErrorDetail(DETAIL, code=CODE)]})
    return data


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return _reject_nul(super().parse(stream, media_type, parser_context))


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return _reject_nul_in_form(super().parse(stream, media_type, parser_context))


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _reject_nul_in_form(data.data)
        return data


def _first_nul_in_request(request) -> str | None:
    """The name of the first request part holding a NUL: a parameter, a header, or the path."""
    if NUL in request.path:
        return "path"
    for key, values in request.GET.lists():
        if NUL in key or any(NUL in value for value in values):
            return key.replace(NUL, "")
    for key, value in request.META.items():
        if key.startswith("HTTP_") and isinstance(value, str) and NUL in value:
            return key[5:].lower().replace("_", "-")
    for key, value in request.COOKIES.items():
        if NUL in key or NUL in value:
            return key.replace(NUL, "")
    return None


class RejectNulBytesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        attr = _first_nul_in_request(request)
        if attr is not None:
            return JsonResponse({"type": "validation_error", "code": CODE, "detail": DETAIL, "attr": attr}, status=400)
        return self.get_response(request)
