"""Group commit: polls that finish together are written in one transaction, and a poll the
database refuses costs only its own feed."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import StaticSite, make_config, rss

from aggregator import poller
from aggregator.store import Poll, StoreResult, record_polls


def _feeds(site: StaticSite, count: int) -> list[dict[str, Any]]:
    members = []
    now = datetime.now(UTC)
    for n in range(count):
        mid = f"kabar{n:02d}"
        url = site.write(f"{mid}.xml", rss(mid, [
            {"title": f"Berita {k} dari {mid}", "link": f"https://{mid}.example/{k}/",
             "guid": f"{mid}-{k}", "date": format_datetime(now - timedelta(hours=k + 1)),
             "html": f"<p>Warga desa {mid} menggelar kerja bakti ke-{k} di jalan kampung.</p>"}
            for k in range(3)]))
        members.append({"id": mid, "name": mid, "site": f"https://{mid}.example/",
                        "feeds": [url]})
    return members


def test_polls_are_written_in_batches_and_a_refused_one_costs_only_its_feed(
        static_site: StaticSite, tmp_path: Path, cli: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    members = _feeds(static_site, 40)
    config = make_config(tmp_path, members, fetch={"concurrency": 16, "per_host": 16})
    real = record_polls
    batches: list[int] = []
    bad = members[7]["feeds"][0]

    with_bad: list[int] = []

    def flaky(engine: Any, polls: Sequence[Poll], window: timedelta) -> list[StoreResult]:
        if not batches:
            time.sleep(0.3)  # a slow first transaction: the polls finishing meanwhile queue up
        batches.append(len(polls))
        if any(p.feed.config_url == bad for p in polls):
            with_bad.append(len(polls))
            raise RuntimeError("the database refused this poll")
        return real(engine, polls, window)

    monkeypatch.setattr(poller, "record_polls", flaky)
    result = cli("--config", config, "run", "--once", "--json")
    assert result.code == 0, result.err
    summary = result.json()
    assert summary["errors"] == {"internal": 1}
    assert summary["new_items"] == 39 * 3
    assert max(batches) > 1, "every poll had a transaction of its own"
    # The batch holding the refused poll failed whole; its polls were then written one by one.
    assert with_bad[-1] == 1
    assert sum(batches) == 40 + (with_bad[0] if len(with_bad) == 2 else 0)
    with sqlite3.connect(tmp_path / "var" / "aggregator.db") as conn:
        stored = dict(conn.execute("SELECT f.config_url, count(i.id) FROM feeds f "
                                   "LEFT JOIN items i ON i.feed_id = f.id GROUP BY f.id"))
    assert stored[bad] == 0
    assert all(n == 3 for url, n in stored.items() if url != bad)
