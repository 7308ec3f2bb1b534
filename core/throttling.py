"""Rate limits (PostHog's PersonalApiKeyRateThrottle): personal-API-key requests only, except the AI
throttles, which also count session users, since every such request may cost an LLM call."""
import hashlib

from django.conf import settings
from rest_framework import throttling

from accounts.authentication import find_personal_api_key, is_personal_api_key_request


class PersonalApiKeyRateThrottle(throttling.SimpleRateThrottle):
    throttles_sessions = False

    def get_rate(self):
        # Read at request time so deployments (and tests) can change rates without a restart.
        return settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][self.scope]

    def allow_request(self, request, view):
        if not settings.RATE_LIMIT_ENABLED:
            return True
        if not is_personal_api_key_request(request) and not (self.throttles_sessions and request.user.is_authenticated):
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        found = find_personal_api_key(request) if is_personal_api_key_request(request) else None
        ident = hashlib.sha256(found[0].encode()).hexdigest() if found else f"user_{request.user.pk}"
        return f"throttle_{self.scope}_{ident}"


class BurstRateThrottle(PersonalApiKeyRateThrottle):
    scope = "burst"


class SustainedRateThrottle(PersonalApiKeyRateThrottle):
    scope = "sustained"


class AIRateThrottle(PersonalApiKeyRateThrottle):
    throttles_sessions = True


class AIBurstRateThrottle(AIRateThrottle):
    scope = "llm_analytics_summarization_burst"


class AISustainedRateThrottle(AIRateThrottle):
    scope = "llm_analytics_summarization_sustained"


class AIDailyRateThrottle(AIRateThrottle):
    scope = "llm_analytics_summarization_daily"


# Replace the default throttles on endpoints that may call an LLM (insight analyze, suggestions).
AI_THROTTLES = [AIBurstRateThrottle, AISustainedRateThrottle, AIDailyRateThrottle]
