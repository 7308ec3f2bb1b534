"""Settings for server processes started by the coalescing tests: the real ones plus a slow endpoint."""
from insights_api.settings import *  # noqa: F401,F403

ROOT_URLCONF = "tests.core.coalescing_urls"
