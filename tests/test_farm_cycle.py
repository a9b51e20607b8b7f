"""End to end against the feed farm: a full cycle stores every article once; a second is all 304."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from conftest import Farm, farm_members, feeds_json, make_config


def _stored(db: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return set(conn.execute(
            "SELECT f.config_url, i.url FROM items i JOIN feeds f ON f.id = i.feed_id"))


def test_cold_then_warm_cycle(tmp_path: Path, farm: Farm, cli: Any) -> None:
    config = make_config(tmp_path, farm_members(farm))
    first = cli("--config", config, "run", "--once")
    assert first.code == 0, first.err
    assert "20 ok" in first.out

    # Every article of the corpus is stored exactly once per feed: twins (/amp/, utm_) fold onto
    # their article, two stories sharing one GUID stay two, relative links resolve to the site.
    expected = {(f"{farm.base}/feeds/{t['feed']}/feed/", t["url"]) for t in farm.truth()}
    assert _stored(tmp_path / "var" / "aggregator.db") == expected

    farm.stats(reset=True)
    second = cli("--config", config, "run", "--once")
    assert second.code == 0, second.err
    assert "0 new items, 0 updated" in second.out
    statuses = farm.stats()["paths"]
    assert statuses and all(set(c) == {"304"} for c in statuses.values()), statuses
    assert len(statuses) == 20
    rows = feeds_json(cli, config)
    assert all(r["state"] == "ok" and r["consecutive_errors"] == 0 for r in rows.values())
    assert sum(r["items"] for r in rows.values()) == len(expected)
