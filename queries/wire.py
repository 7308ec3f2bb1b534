"""Values as they go out on the wire: JSON-ready, datetimes as DRF formats them."""
from datetime import datetime
from typing import Any


def response_value(value: Any) -> Any:
    """JSON-ready values, datetimes formatted as DRF does (ISO-8601, 'Z' for UTC)."""
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, dict):
        return {key: response_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [response_value(item) for item in value]
    return value
