"""When to poll a feed next: pure functions of what the last fetch told us.

Miniflux's rule, mostly: the interval follows how often the feed publishes, within bounds, raised
to whatever the server asked for (RSS ttl, Cache-Control max-age, Expires, Retry-After).  Unlike
Miniflux, failures never switch a feed off (only 410 Gone does): they back off exponentially with
jitter up to a cap, and a feed failing for long is flagged for a human.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

WEEK = 7 * 86400
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*\"?([0-9]+)", re.IGNORECASE)
# RFC 9111 1.2.2: a delta-seconds too large to represent counts as 2**31.  Saturating also keeps
# int() away from a hostile 5,000-digit value, which it refuses with ValueError.
_DELTA_MAX = 2**31


@dataclass(frozen=True)
class Bounds:
    min_interval: int
    max_interval: int
    max_backoff: int


def parse_http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):  # "06-Nov-9999999999999999999"
        return None
    return parsed if parsed.tzinfo is not None else None


def retry_after_seconds(value: str | None, now: datetime) -> int | None:
    """Retry-After as seconds from now: either delay-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit() also accepts "²", which int() refuses
        return _delta_seconds(value)
    when = parse_http_date(value)
    if when is None:
        return None
    return max(0, int((when - now).total_seconds()))


def _delta_seconds(digits: str) -> int:
    return _DELTA_MAX if len(digits) > 10 else min(int(digits), _DELTA_MAX)


def server_hint_seconds(
    *, ttl: int | None, cache_control: str | None, expires: str | None, now: datetime
) -> int:
    """The longest wait the server asked for (0 when it asked for none)."""
    hints = [ttl or 0]
    match = _MAX_AGE.search(cache_control or "")
    if match:
        hints.append(_delta_seconds(match.group(1)))
    when = parse_http_date(expires)
    if when is not None:
        hints.append(int((when - now).total_seconds()))
    return int(max(0, *hints))


def publishing_gap(published: list[datetime], now: datetime) -> int:
    """Mean seconds between the dated items of the last week (a week when there are none).

    A feed shows only its newest N items, so "items in the last week" saturates at N for a busy
    outlet; the span those items cover is what tells a 30-a-day outlet from a 30-a-week one.
    """
    recent = [p for p in published if now - timedelta(seconds=WEEK) <= p <= now]
    if not recent:
        return WEEK
    span = max((now - min(recent)).total_seconds(), 3600.0)
    return int(span / len(recent))


def success_interval(gap: int, server_hint: int, bounds: Bounds) -> int:
    """Seconds to wait after a successful poll, given the feed's publishing gap."""
    adaptive = gap
    interval = min(max(adaptive, bounds.min_interval), bounds.max_interval)
    # The server's wishes win over our bounds' lower end, but not over a day's silence.
    return min(max(interval, server_hint), max(bounds.max_interval, bounds.min_interval))


def failure_interval(consecutive_errors: int, retry_after: int | None, bounds: Bounds) -> int:
    """Exponential backoff: min_interval, 2x, 4x ... capped at max_backoff, at least Retry-After."""
    exponent = min(max(consecutive_errors - 1, 0), 30)
    backoff = min(bounds.min_interval << exponent, bounds.max_backoff)
    return max(backoff, min(retry_after or 0, bounds.max_backoff))


def with_jitter(seconds: int, rng: random.Random, spread: float = 0.1) -> int:
    """Spread polls so that feeds added together do not stay in lockstep forever."""
    return max(1, round(seconds * rng.uniform(1 - spread, 1 + spread)))


def next_poll(now: datetime, seconds: int) -> datetime:
    return now + timedelta(seconds=seconds)
