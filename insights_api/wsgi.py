import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "insights_api.settings")
application = get_wsgi_application()

# With chDB this process alone can read events: it also runs the periodic jobs (core/periodic.py).
from core.periodic import start_in_server  # noqa: E402  (needs the configured apps)

start_in_server()

from core.memory import tune_for_server  # noqa: E402

tune_for_server()
