"""Per-user limits on the prompt APIs: requests per minute and generated tokens per minute.

Both count in Redis (``REDIS_URL``), so every web process sees the same totals. Counters
are fixed one-minute buckets: the request rate is a sliding-window estimate over the
current and the previous bucket, the token budget is the current bucket. Each request
costs two pipelined round trips and O(1) work, where a list of timestamps per user would
grow with the rate. Rates are read from settings on every request.
"""

from __future__ import annotations

import time

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from inference.serving import redis_client

WINDOW_S = 60
# Kept for the token accounting's callers and tests.
TOKEN_WINDOW_S = WINDOW_S


def _request_key(user_id: int, window: int) -> str:
    return f"sy:throttle:prompts:{user_id}:{window}"


def _token_key(user_id: int, window: int) -> str:
    return f"sy:throttle:tokens:{user_id}:{window}"


def _client():
    return redis_client(settings.REDIS_URL)


def _add(key: str, amount: int) -> None:
    client = _client()
    if client.incrby(key, amount) == amount:
        # The bucket's first count: give it a lifetime (one round trip on every later count).
        client.expire(key, WINDOW_S * 2)


def tokens_used(user_id: int) -> int:
    """Return how many tokens the user generated in the current minute bucket."""
    return int(_client().get(_token_key(user_id, int(time.time() // WINDOW_S))) or 0)


def tokens_charge(user_id: int, count: int) -> None:
    """Add generated tokens to the user's current minute bucket."""
    if count > 0:
        _add(_token_key(user_id, int(time.time() // WINDOW_S)), count)


class PromptRateThrottle(BaseThrottle):
    """Refuse a user's request when PROMPT_RATE_PER_MINUTE or PROMPT_TOKENS_PER_MINUTE is used up.

    Requests: this minute's count plus the previous minute's, weighted by how much of it
    still lies inside the last 60 s. Tokens are charged after generation (the count is only
    known then), so one request may cross the budget; the next is refused until the minute
    turns.
    """

    def allow_request(self, request, view) -> bool:
        user_id = getattr(request.user, "pk", None)
        if user_id is None:
            return True
        now = time.time()
        window = int(now // WINDOW_S)
        current_key = _request_key(user_id, window)
        previous, current, tokens = _client().mget(
            [_request_key(user_id, window - 1), current_key, _token_key(user_id, window)]
        )
        overlap = 1.0 - (now % WINDOW_S) / WINDOW_S
        estimate = int(previous or 0) * overlap + int(current or 0)
        if (
            estimate >= settings.PROMPT_RATE_PER_MINUTE
            or int(tokens or 0) >= settings.PROMPT_TOKENS_PER_MINUTE
        ):
            return False
        _add(current_key, 1)
        return True

    def wait(self) -> float:
        return WINDOW_S - (time.time() % WINDOW_S)
