"""Capture errors, rendered by core's exception handler as PostHog's capture error bodies."""
from rest_framework import status
from rest_framework.exceptions import APIException


class CaptureError(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    exception_type = "validation_error"
    default_code = "invalid_payload"


class InvalidPayload(CaptureError):
    """An event of the request breaks the capture contract; nothing of the request is written."""

    def __init__(self, detail: str):
        super().__init__(f"Invalid payload: {detail}", code="invalid_payload")


class MalformedRequest(CaptureError):
    def __init__(self, detail: str):
        super().__init__(f"Malformed request data: {detail}", code="invalid_payload")


class NoData(CaptureError):
    def __init__(self):
        super().__init__(
            "No data found. Make sure to use a POST request when sending the payload in the body of the request.",
            code="no_data",
        )


class PayloadTooLarge(CaptureError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    exception_type = "invalid_request"

    def __init__(self, limit: int):
        super().__init__(f"Request body exceeds the limit of {limit} bytes.", code="payload_too_large")


class TokenError(CaptureError):
    status_code = status.HTTP_401_UNAUTHORIZED
    exception_type = "authentication_error"


def missing_token() -> TokenError:
    return TokenError(
        "API key not provided. You can find your project API key in PostHog project settings.", code="missing_api_key"
    )


def invalid_token() -> TokenError:
    return TokenError(
        "Project API key invalid. You can find your project API key in PostHog project settings.", code="invalid_api_key"
    )


def unusable_token(reason: str) -> TokenError:
    return TokenError(f"Provided API key is not valid: {reason}", code=reason)


class EventStoreUnavailable(APIException):
    """The events store (ClickHouse) refused or could not take the request's events: the request's
    transaction rolled back, so nothing of it was stored and the SDK should retry."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The events store is temporarily unavailable. Please retry shortly."
    default_code = "database_unavailable"
    default_type = "server_error"
    wait = 5
