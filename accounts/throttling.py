"""Rate limits of the JSON API, counted in Django's cache (locmem in the embedded portal, Redis with REDIS_URL).

A limit is "N/period" ("60/minute", "1000/hour", "5/second", "200/day"; "off" or empty: none). Requests are counted
in fixed windows of one period with the cache's atomic add/incr, so every web process behind Redis shares the count.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from ninja.throttling import BaseThrottle

_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}
_RATE = re.compile(r"^(\d+)\s*/\s*(\d*)\s*([a-z]+?)s?$")
_OFF = {"", "off", "none", "0"}


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int


@functools.lru_cache(maxsize=32)
def rate_parse(text: str) -> Rate | None:
    """The limit a setting describes, or None for no limit; ImproperlyConfigured names what a valid one looks like."""
    cleaned = text.strip().lower()
    if cleaned in _OFF:
        return None
    match = _RATE.match(cleaned)
    unit = match and _PERIODS.get(match.group(3))
    if not match or not unit or int(match.group(1)) < 1:
        raise ImproperlyConfigured(
            f"{text!r} is not a rate limit: write requests per period, like '60/minute', '1000/hour' or '5/10s', or 'off'."
        )
    return Rate(count=int(match.group(1)), seconds=int(match.group(2) or 1) * unit)


def now() -> float:
    """The clock the windows follow (tests move it instead of sleeping)."""
    return time.time()


def rate_hit(*, key: str, rate: Rate) -> float | None:
    """Count one request against `key`. None while within the rate; otherwise the seconds until the window resets."""
    moment = now()
    window = int(moment // rate.seconds)
    cache_key = f"lantern:rate:{key}:{rate.seconds}:{window}"
    count = 1
    if not cache.add(cache_key, 1, timeout=rate.seconds + 1):
        try:
            count = cache.incr(cache_key)
        except ValueError:  # expired between add and incr: this request opens the window again
            cache.add(cache_key, 1, timeout=rate.seconds + 1)
    if count <= rate.count:
        return None
    return max((window + 1) * rate.seconds - moment, 1.0)


class RateLimit(BaseThrottle):
    """A django-ninja throttle over `rate_hit`: per user (all their tokens and their browser session together) or per
    token (a runaway script cannot use up its owner's whole budget). The limit is read from the named setting on
    each request."""

    def __init__(self, *, setting: str, per: str, scope: str = "api") -> None:
        if per not in ("user", "token"):
            raise ValueError("per is 'user' or 'token'")
        self.setting, self.per, self.scope = setting, per, scope
        self._wait = threading.local()

    def allow_request(self, request) -> bool:
        self._wait.seconds = None
        rate = rate_parse(getattr(settings, self.setting))
        user = getattr(request, "auth", None)
        token = getattr(request, "api_token", None)
        if rate is None or user is None or (self.per == "token" and token is None):
            return True
        ident = f"user:{user.pk}" if self.per == "user" else f"token:{token.pk}"
        self._wait.seconds = rate_hit(key=f"{self.scope}:{ident}", rate=rate)
        return self._wait.seconds is None

    def wait(self) -> float | None:
        return getattr(self._wait, "seconds", None)


# Every API call counts per user (tokens and session together) and per token; asking runs the model, so it also
# counts against its own, lower limit.
API_THROTTLES = [
    RateLimit(setting="API_RATE_LIMIT", per="user"),
    RateLimit(setting="API_TOKEN_RATE_LIMIT", per="token"),
]
ASK_THROTTLES = [*API_THROTTLES, RateLimit(setting="API_ASK_RATE_LIMIT", per="user", scope="ask")]
