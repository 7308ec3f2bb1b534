"""Read-your-writes while the chDB spool resolves persons after capture (`CLICKHOUSE_SPOOL_PERSONS`).

Capture is acknowledged once its events are on disk; their persons, groups and events are stored
by the spool's flusher a moment later. So that an API request sees everything acknowledged before
it, as when capture stored persons itself, every request other than capture first waits for the
spool (at once when it is idle). Statements on ClickHouse wait for it anyway (the client's
barrier); this covers what lives in the Django database: persons, distinct ids, groups.
"""
from core.faults import unavailable_response

from .clickhouse.client import ClickHouseError
from .clickhouse.spool import wait_for_capture
from .exceptions import EventStoreUnavailable
from .views import CaptureView


class CaptureBarrierMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        view_class = getattr(view_func, "view_class", None)
        if view_class is not None and issubclass(view_class, CaptureView):
            return None
        try:
            wait_for_capture()
        except ClickHouseError:
            return unavailable_response(EventStoreUnavailable())
        return None
