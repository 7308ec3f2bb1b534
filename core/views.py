from django.http import JsonResponse

from .exceptions import server_error_body


def server_error(request, *args, **kwargs):
    """500s outside DRF views answer in the API's error shape too."""
    return JsonResponse(server_error_body(), status=500)


def not_found(request, exception=None, *args, **kwargs):
    return JsonResponse({"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}, status=404)
