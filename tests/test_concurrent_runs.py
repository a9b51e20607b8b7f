"""Two ``aggregator run`` processes on one SQLite database and one feed farm: they cooperate.

Feed leases give each feed to one process at a time, SQLite's write lock (BEGIN IMMEDIATE) takes
their transactions one after the other, and the publish lease lets one of them write output_dir
at a time, the holder publishing afterwards what the other stored meanwhile.  Checked from the
outside: the farm's request counts, the store, and the published files.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    FEEDFARM,
    Farm,
    farm_members,
    generate_corpus,
    make_config,
    serving_farm,
)
from test_crash import (
    OutputChecker,
    Run,
    advance,
    served_articles,
    store_problems,
    stored_articles,
    unpublished_members,
)

from aggregator.config import load_config
from aggregator.db import make_engine
from aggregator.migrate import upgrade
from aggregator.publish import publisher
from aggregator.store import sync_config


@pytest.fixture
def big_farm(tmp_path: Path) -> Iterator[Farm]:
    """More feeds than one claim takes (64): both processes get a share of a cycle."""
    if FEEDFARM is None:
        pytest.skip("feedfarm.py not found (set FEEDFARM=path/to/feedfarm.py)")
    with serving_farm(generate_corpus(tmp_path / "corpus", feeds=150, items=8, seed=9)) as farm:
        yield farm


def _fetches(farm: Farm) -> dict[str, Counter[str]]:
    return {path: Counter({k: int(v) for k, v in codes.items()})
            for path, codes in farm.stats()["paths"].items()}


def _assert_store_and_output_sound(config: Path, farm: Farm) -> None:
    db = config.parent / "var" / "aggregator.db"
    assert store_problems(db) == []
    served, stored = served_articles(farm), stored_articles(db)
    assert set(stored) == served and max(stored.values()) == 1
    assert OutputChecker(config.parent / "output").check(allow_temporary=False) == []
    assert unpublished_members(config) == []


def test_two_runs_started_together_share_the_cycle(tmp_path: Path, big_farm: Farm) -> None:
    config = make_config(tmp_path, farm_members(big_farm), publish={"max_items": 30})
    # A fresh database: the two also race to create the schema and the feeds.
    runs = [Run.start(config, "--once", "--json", feeds=150) for _ in range(2)]
    assert [r.finish() for r in runs] == [0, 0], [r.errors for r in runs]
    summaries = [json.loads(r.out.splitlines()[-1]) for r in runs]
    assert all(s["feeds"] > 0 and s["failed"] == 0 for s in summaries), summaries
    # One of them published; the other found the lease taken, and the holder published what
    # that one stored (the output is complete below).
    assert any(s["published"] and not s["published"]["skipped"] for s in summaries)

    fetched = _fetches(big_farm)
    assert len(fetched) == 150 and sum(s["feeds"] for s in summaries) == \
        sum(sum(c.values()) for c in fetched.values())
    # Never two fetches of one feed at once: a second fetch, if any, came after the first had
    # stored the feed's ETag, and was answered 304.  Only a feed that one process polled before
    # the other's cycle began is fetched again: `run --once` polls every feed not polled since
    # its own cycle began (the processes start a fraction of a second apart).
    again = {p: c for p, c in fetched.items() if sum(c.values()) > 1}
    assert all(c == Counter({"200": 1, "304": 1}) for c in again.values()), again
    print(f"\ntwo runs at once: {[s['feeds'] for s in summaries]} feeds polled, "
          f"{len(again)} of 150 fetched again (304) by the later cycle")
    _assert_store_and_output_sound(config, big_farm)


@pytest.fixture
def farm40(tmp_path: Path) -> Iterator[Farm]:
    if FEEDFARM is None:
        pytest.skip("feedfarm.py not found (set FEEDFARM=path/to/feedfarm.py)")
    with serving_farm(generate_corpus(tmp_path / "corpus", feeds=40, items=8, seed=11)) as farm:
        yield farm


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_two_scheduled_runs_poll_each_feed_once_per_change(tmp_path: Path,
                                                           farm40: Farm) -> None:
    """Polled every second or two by either process for a while, each feed is fetched whole
    (HTTP 200) once, and once more after it changed: never by both at once."""
    # Feeds fall due whole seconds after a poll, and a due feed goes to whichever process ticks
    # first: on one tick period, two processes started together would tick in step, the same
    # one always a few milliseconds ahead, and the other might never get a feed.  Different
    # periods let their ticks drift past each other, as two real deployments' would.
    configs = [make_config(tmp_path, farm_members(farm40), publish={"max_items": 30},
                           schedule={"tick_seconds": tick, "min_interval": 1, "max_interval": 2},
                           name=name)
               for tick, name in ((0.3, "feeds.yaml"), (0.37, "feeds-b.yaml"))]
    config = configs[0]
    runs = [Run.start(c, feeds=40) for c in configs]
    try:
        _wait(lambda: sum(c["200"] > 0 for c in _fetches(farm40).values()) == 40, 60,
              "the first poll of every feed")
        advance(farm40.dir, new=2, fraction=0.3)
        changed = {f"/feeds/{t['feed']}/feed/" for t in farm40.truth() if t["cycle"] > 0}
        _wait(lambda: all(_fetches(farm40)[p]["200"] == 2 for p in changed), 60,
              "the changed feeds' second poll")
        time.sleep(2.5)  # more ticks, more polls: all of them 304
    finally:
        for run in runs:
            run.proc.send_signal(signal.SIGTERM)
    assert [r.finish(60) for r in runs] == [0, 0], [list(r.tail) for r in runs]
    assert [r.last_event for r in runs] == ["stopped", "stopped"]
    assert [r.errors for r in runs] == [[], []]
    assert all(r.polled > 0 for r in runs), "one process did all the work"
    fetched = _fetches(farm40)
    wrong = {p: c for p, c in fetched.items() if c["200"] != 1 + (p in changed)}
    assert not wrong, wrong
    assert sum(c["304"] for c in fetched.values()) >= 40  # each feed was polled again
    polled = sum((r.polled_feeds for r in runs), Counter())
    unlogged = {p: (sum(c.values()), polled[u]) for p, c in fetched.items()
                for u in [f"http://127.0.0.1:{farm40.port}{p}"] if sum(c.values()) != polled[u]}
    assert not unlogged, (unlogged, [r.errors for r in runs])
    _assert_store_and_output_sound(config, farm40)


def test_a_publish_refused_the_lease_is_done_by_the_holder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The protocol behind the cooperation above, step by step: B stores while A publishes,
    finds the lease taken and leaves; A, giving the lease back, publishes once more for B."""
    config = load_config(make_config(tmp_path, [
        {"id": "a", "name": "A", "site": "https://a.example/", "feeds": ["http://127.0.0.1:9/a"]}]))
    engine = make_engine(config.database_url)
    upgrade(engine)
    sync_config(engine, config, datetime.now(UTC))
    real = publisher._publish
    rounds: list[str] = []
    b_comes = [True]

    def publishing(*args: Any) -> publisher.PublishResult:
        rounds.append("A")
        if b_comes.pop() if b_comes else False:  # B, meanwhile
            skipped = publisher.publish(engine, config, datetime.now(UTC), owner="B")
            assert skipped.skipped == "another process is publishing"
        return real(*args)

    monkeypatch.setattr(publisher, "_publish", publishing)
    try:
        result = publisher.publish(engine, config, datetime.now(UTC), owner="A")
        assert result.skipped is None and rounds == ["A", "A"]
        rounds.clear()  # nothing owed any more: one round
        publisher.publish(engine, config, datetime.now(UTC), owner="A")
        assert rounds == ["A"]
    finally:
        engine.dispose()
