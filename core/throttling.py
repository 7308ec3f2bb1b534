"""Rate limits for personal-API-key requests only (PostHog's PersonalApiKeyRateThrottle)."""
import hashlib

from django.conf import settings
from rest_framework import throttling

from accounts.authentication import find_personal_api_key, is_personal_api_key_request


class PersonalApiKeyRateThrottle(throttling.SimpleRateThrottle):
    def get_rate(self):
        # Read at request time so deployments (and tests) can change rates without a restart.
        return settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][self.scope]

    def allow_request(self, request, view):
        if not settings.RATE_LIMIT_ENABLED or not is_personal_api_key_request(request):
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        found = find_personal_api_key(request)
        ident = hashlib.sha256(found[0].encode()).hexdigest() if found else str(request.user.pk)
        return f"throttle_{self.scope}_{ident}"


class BurstRateThrottle(PersonalApiKeyRateThrottle):
    scope = "burst"


class SustainedRateThrottle(PersonalApiKeyRateThrottle):
    scope = "sustained"


class AIBurstRateThrottle(PersonalApiKeyRateThrottle):
    scope = "llm_analytics_summarization_burst"


class AISustainedRateThrottle(PersonalApiKeyRateThrottle):
    scope = "llm_analytics_summarization_sustained"


class AIDailyRateThrottle(PersonalApiKeyRateThrottle):
    scope = "llm_analytics_summarization_daily"


# Replace the default throttles on endpoints that may call an LLM (insight analyze, suggestions).
AI_THROTTLES = [AIBurstRateThrottle, AISustainedRateThrottle, AIDailyRateThrottle]
