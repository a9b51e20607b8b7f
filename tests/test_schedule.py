"""Poll intervals: adaptive to publishing, raised to what servers ask, backing off on failure."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conftest import farm_members, feeds_json, make_config, start_farm

from aggregator.schedule import (
    WEEK,
    Bounds,
    failure_interval,
    publishing_gap,
    retry_after_seconds,
    server_hint_seconds,
    success_interval,
    with_jitter,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
BOUNDS = Bounds(min_interval=300, max_interval=86400, max_backoff=86400)


def test_busy_feed_is_polled_more_often_than_a_quiet_one() -> None:
    busy = [NOW - timedelta(minutes=48 * i) for i in range(30)]  # 30 a day
    quiet = [NOW - timedelta(hours=5 * i) for i in range(30)]  # a week's worth
    assert publishing_gap(busy, NOW) < publishing_gap(quiet, NOW)
    assert success_interval(publishing_gap(busy, NOW), 0, BOUNDS) == 29 * 48 * 60 // 30
    assert publishing_gap([], NOW) == WEEK
    assert success_interval(WEEK, 0, BOUNDS) == 86400  # clamped to max_interval
    assert success_interval(10, 0, BOUNDS) == 300  # clamped to min_interval


def test_server_hints_raise_the_interval() -> None:
    assert server_hint_seconds(ttl=3600, cache_control=None, expires=None, now=NOW) == 3600
    assert server_hint_seconds(ttl=None, cache_control="public, max-age=7200", expires=None,
                               now=NOW) == 7200
    expires = "Sun, 29 Nov 2026 14:00:00 GMT"
    assert server_hint_seconds(ttl=None, cache_control=None, expires=expires, now=NOW) == 7200
    assert success_interval(600, 7200, BOUNDS) == 7200
    assert success_interval(600, 10 * 86400, BOUNDS) == 86400  # never beyond a day


def test_retry_after_in_both_forms() -> None:
    assert retry_after_seconds("120", NOW) == 120
    assert retry_after_seconds("Sun, 29 Nov 2026 12:10:00 GMT", NOW) == 600
    assert retry_after_seconds("soon", NOW) is None


def test_failures_back_off_exponentially_to_a_cap() -> None:
    steps = [failure_interval(n, None, BOUNDS) for n in range(1, 12)]
    assert steps[:4] == [300, 600, 1200, 2400]
    assert steps[-1] == 86400 and all(a <= b for a, b in itertools.pairwise(steps))
    assert failure_interval(1, 3600, BOUNDS) == 3600  # Retry-After wins when longer


def test_jitter_stays_within_its_spread() -> None:
    rng = random.Random(1)
    values = [with_jitter(1000, rng) for _ in range(1000)]
    assert min(values) >= 900 and max(values) <= 1100 and len(set(values)) > 50


def test_cache_control_max_age_of_the_server_sets_the_next_poll(
        tmp_path: Path, farm_corpus: Path, cli: Any) -> None:
    farm = start_farm(farm_corpus, "--max-age", "80000")
    try:
        config = make_config(tmp_path, farm_members(farm)[:3])
        cli("--config", config, "run", "--once")
        for row in feeds_json(cli, config).values():
            wait = datetime.fromisoformat(row["next_poll"]) - datetime.now(UTC)
            assert timedelta(seconds=80000 * 0.89) < wait < timedelta(seconds=80000 * 1.11)
    finally:
        farm.process.terminate()
        farm.process.wait(10)
