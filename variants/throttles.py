"""Per-user limits on the prompt APIs: requests per minute and generated tokens per minute.

Both count in Redis (``REDIS_URL``), so every web process sees the same totals. Counters
are fixed one-minute buckets: the request rate is a sliding-window estimate over the
current and the previous bucket, the token budget is the current bucket. Each request
costs one round trip (a Lua script) and O(1) work, where a list of timestamps per user would
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


# Both scripts run in one round trip each (EVALSHA), atomically.
_ADMIT = """
local previous = tonumber(redis.call('GET', KEYS[1]) or '0')
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
local tokens = tonumber(redis.call('GET', KEYS[3]) or '0')
if previous * tonumber(ARGV[1]) + current >= tonumber(ARGV[2]) or tokens >= tonumber(ARGV[3]) then
  return 0
end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""
_CHARGE = """
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
"""
_scripts: dict[str, object] = {}


def _script(name: str, source: str):
    script = _scripts.get(name)
    if script is None:
        script = _scripts[name] = _client().register_script(source)
    return script


def tokens_used(user_id: int) -> int:
    """Return how many tokens the user generated in the current minute bucket."""
    return int(_client().get(_token_key(user_id, int(time.time() // WINDOW_S))) or 0)


def tokens_charge(user_id: int, count: int) -> None:
    """Add generated tokens to the user's current minute bucket."""
    if count > 0:
        key = _token_key(user_id, int(time.time() // WINDOW_S))
        _script("charge", _CHARGE)(keys=[key], args=[count, WINDOW_S * 2])


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
        overlap = 1.0 - (now % WINDOW_S) / WINDOW_S
        admitted = _script("admit", _ADMIT)(
            keys=[
                _request_key(user_id, window - 1),
                _request_key(user_id, window),
                _token_key(user_id, window),
            ],
            args=[overlap, settings.PROMPT_RATE_PER_MINUTE, settings.PROMPT_TOKENS_PER_MINUTE, WINDOW_S * 2],
        )
        return bool(admitted)

    def wait(self) -> float:
        return WINDOW_S - (time.time() % WINDOW_S)
