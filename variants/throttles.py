"""Per-user limits on the prompt APIs: requests per minute and generated tokens per minute.

Both count in the shared cache (Redis), so every web process sees the same totals. Rates
are read from settings on every request, so an operator's change (or a test's) applies
without a restart of the throttle classes.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle, UserRateThrottle

TOKEN_WINDOW_S = 60


class PromptRateThrottle(UserRateThrottle):
    """At most PROMPT_RATE_PER_MINUTE prompt requests per user per sliding minute."""

    scope = "prompts"

    def get_rate(self) -> str:
        return f"{settings.PROMPT_RATE_PER_MINUTE}/min"


def _token_key(user_id: int, window: int) -> str:
    return f"throttle:tokens:{user_id}:{window}"


def tokens_used(user_id: int) -> int:
    """Return how many tokens the user generated in the current minute window."""
    return int(cache.get(_token_key(user_id, int(time.time() // TOKEN_WINDOW_S)), 0))


def tokens_charge(user_id: int, count: int) -> None:
    """Add generated tokens to the user's current minute window."""
    if count <= 0:
        return
    key = _token_key(user_id, int(time.time() // TOKEN_WINDOW_S))
    # add() is a no-op when the key exists; incr() is atomic in Redis.
    cache.add(key, 0, timeout=TOKEN_WINDOW_S * 2)
    try:
        cache.incr(key, count)
    except ValueError:  # expired between add and incr
        cache.set(key, count, timeout=TOKEN_WINDOW_S * 2)


class GeneratedTokensThrottle(BaseThrottle):
    """Refuse new requests once a user generated PROMPT_TOKENS_PER_MINUTE tokens this minute.

    Tokens are charged after generation (the count is only known then), so one request
    may cross the limit; the next one is refused until the window turns.
    """

    def allow_request(self, request, view) -> bool:
        user_id = getattr(request.user, "pk", None)
        if user_id is None:
            return True
        return tokens_used(user_id) < settings.PROMPT_TOKENS_PER_MINUTE

    def wait(self) -> float:
        return TOKEN_WINDOW_S - (time.time() % TOKEN_WINDOW_S)
