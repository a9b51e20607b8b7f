"""Storage on SQLite and PostgreSQL alike: migrations, item upserts, leases."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import Farm, farm_members, feeds_json, make_config

from aggregator.config import parse_config
from aggregator.db import make_engine, metadata, prefer_indexes
from aggregator.enrich import enrich
from aggregator.migrate import current_revision, head_revision, upgrade
from aggregator.models import Item
from aggregator.store import (
    FeedUpdate,
    claim_feeds,
    record_poll,
    release_leases,
    sync_config,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
CONFIG = """
association: {name: T, base_url: "https://x.example/"}
members:
  - {id: a, name: A, site: "https://a.example/", feeds: ["https://a.example/feed/"]}
  - {id: b, name: B, site: "https://b.example/", feeds: ["https://b.example/feed/",
                                                         "https://b.example/feed/atom/"]}
"""


@pytest.fixture
def engine(database_url: str) -> Any:
    eng = make_engine(database_url)
    upgrade(eng)
    sync_config(eng, parse_config(CONFIG), NOW)
    yield eng
    eng.dispose()


def _item(guid: str | None, url: str | None, title: str, body: str = "isi berita",
          published: datetime = NOW) -> Item:
    return Item(guid=guid, url=url, link=url, title=title, summary=body,
                content_html=f"<p>{body}</p>", content_text=body, author=None,
                categories=("Berita",), published_at=published,
                updated_at=None, date_missing=False, content_hash=f"{title}|{body}",
                fallback_key=f"fb-{title}")


def _ok(now: datetime = NOW) -> FeedUpdate:
    return FeedUpdate(outcome="ok", now=now, next_poll_at=now + timedelta(minutes=5),
                      http_status=200, body_hash="h")


def _claim_all(engine: Any, owner: str = "w1", now: datetime = NOW) -> list[Any]:
    return claim_feeds(engine, owner, now, timedelta(minutes=10), 100, due_only=True)


def test_migrations_record_version_and_match_the_model(engine: Any) -> None:
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    upgrade(engine)  # a second upgrade is a no-op
    assert current_revision(engine) == head_revision()


def test_upgrade_from_the_first_revision_keeps_the_data(tmp_path: Path) -> None:
    from alembic import command

    from aggregator.migrate import _alembic_config

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO members (id, name, site, language, active) "
                             "VALUES ('a', 'A', 'https://a.example/', 'id', 1)"))
        conn.execute(sa.text(
            "INSERT INTO feeds (member_id, config_url, url, active, etag, server_hint_s, "
            "next_poll_at, consecutive_errors, items_total, last_new, last_updated) VALUES "
            "('a', 'https://a.example/feed/', 'https://a.example/feed/', 1, '\"e1\"', 0, "
            "'2026-11-29 12:00:00', 0, 7, 0, 0)"))
    assert current_revision(engine) == "0001"
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT etag, items_total, validators_url FROM feeds")).one()
    assert tuple(row) == ('"e1"', 7, None)
    engine.dispose()


def test_changed_item_updates_in_place_never_twice(engine: Any) -> None:
    feed = _claim_all(engine)[0]
    first = record_poll(engine, feed, _ok(), [_item("g1", "https://a.example/1/", "Judul"),
                                              _item("g2", "https://a.example/2/", "Lain")])
    assert (first.new, first.updated) == (2, 0)
    feed = _claim_all(engine, now=NOW + timedelta(hours=1))[0]
    again = record_poll(engine, feed, _ok(NOW + timedelta(hours=1)),
                        [_item("g1", "https://a.example/1/", "Judul", "isi diperbarui"),
                         _item("g2", "https://a.example/2/", "Lain")])
    assert (again.new, again.updated) == (0, 1)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT guid, content_text, revision, first_seen_at, changed_at FROM items "
            "ORDER BY guid")).all()
    assert [(r[0], r[1], r[2]) for r in rows] == [("g1", "isi diperbarui", 2),
                                                  ("g2", "isi berita", 1)]


def test_a_poll_looks_up_its_keys_not_the_whole_store(engine: Any) -> None:
    """Finding a poll's stored items and its exact duplicates goes through one index per kind
    of key: a lookup that walked the feed's items (29 ms a poll at 9,000 items on SQLite), or
    every placed item (40 ms a batch at 30,000 on PostgreSQL), grew slower every day."""
    lookups: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
             executemany: bool) -> None:
        if statement.lstrip().startswith("SELECT") and " UNION " in statement:
            lookups.append((statement, parameters))

    for hour in range(3):
        now = NOW + timedelta(hours=hour)
        feed = _claim_all(engine, now=now)[0]
        batch = [enrich(_item(f"g{hour}-{n}", f"https://a.example/{hour}/{n}/",
                              f"Rob hari {hour} pos {n}", f"Warga {n} mengungsi jam {hour}"),
                        member_name="A", home_region=None)
                 for n in range(20)] + [_item(None, None, f"Tanpa tautan {hour}")]
        sa.event.listen(engine, "before_cursor_execute", seen)
        try:
            assert record_poll(engine, feed, _ok(now), batch).new == 21
        finally:
            sa.event.remove(engine, "before_cursor_execute", seen)
    stored = {"ix_items_feed_guid", "ix_items_feed_url", "ix_items_feed_fallback"}
    exact = {"ix_items_url", "ix_items_guid", "ix_items_text_hash"}
    found = []
    with engine.begin() as conn:
        prefer_indexes(conn)  # as storing a poll does
        for statement, parameters in lookups:
            explain = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
            plan = "\n".join(str(row[-1]) for row in conn.exec_driver_sql(
                explain + statement, parameters))
            assert "SCAN items" not in plan and "Seq Scan on items" not in plan, plan
            used = set(re.findall(r"(?:USING INDEX|Index Scan using|Index Scan on) (\w+)", plan))
            if conn.dialect.name == "sqlite":
                assert used in (stored, exact), plan
            else:  # on a table this small PostgreSQL may read one index for all three keys
                assert used and (used <= stored or used <= exact), plan
            found.append(used <= stored)
    assert found.count(True) == 3 and found.count(False) >= 2  # the first batch has no past


def test_two_stories_under_one_guid_are_both_kept(engine: Any) -> None:
    feed = _claim_all(engine)[0]
    result = record_poll(engine, feed, _ok(), [
        _item("dup", "https://a.example/banjir-sampang/", "Banjir di Sampang"),
        _item("dup", "https://a.example/pasar-murah/", "Pasar murah Pamekasan"),
    ])
    assert result.new == 2
    # Later only one of them is still in the feed: it must match its own row, not the other.
    feed = _claim_all(engine, now=NOW + timedelta(hours=1))[0]
    later = record_poll(engine, feed, _ok(NOW + timedelta(hours=1)), [
        _item("dup", "https://a.example/pasar-murah/", "Pasar murah Pamekasan")])
    assert (later.new, later.updated) == (0, 0)


def test_a_feed_is_claimed_by_one_worker_until_its_lease_expires(engine: Any) -> None:
    first = claim_feeds(engine, "w1", NOW, timedelta(minutes=10), 2, due_only=True)
    second = claim_feeds(engine, "w2", NOW, timedelta(minutes=10), 10, due_only=True)
    assert len(first) == 2 and len(second) == 1
    assert not {f.id for f in first} & {f.id for f in second}
    assert claim_feeds(engine, "w3", NOW, timedelta(minutes=10), 10, due_only=True) == []
    # w1 dies: after its lease, its feeds go to another worker.
    later = NOW + timedelta(minutes=11)
    taken = claim_feeds(engine, "w3", later, timedelta(minutes=10), 10, due_only=True)
    assert {f.id for f in taken} == {f.id for f in first} | {f.id for f in second}
    release_leases(engine, "w3")
    assert len(claim_feeds(engine, "w4", later, timedelta(minutes=10), 10, due_only=True)) == 3


def test_config_sync_keeps_history_of_removed_feeds(engine: Any) -> None:
    feed = _claim_all(engine)[0]
    record_poll(engine, feed, _ok(), [_item("g1", "https://a.example/1/", "Judul")])
    smaller = CONFIG.split("  - {id: b")[0]
    sync_config(engine, parse_config(smaller), NOW)
    with engine.connect() as conn:
        active = conn.execute(sa.text("SELECT config_url FROM feeds WHERE active")).scalars().all()
        assert conn.execute(sa.text("SELECT count(*) FROM items")).scalar() == 1
    assert active == ["https://a.example/feed/"]


def test_full_cycle_on_each_backend(tmp_path: Path, farm: Farm, cli: Any,
                                    database_url: str) -> None:
    config = make_config(tmp_path, farm_members(farm)[:5], database=database_url)
    assert cli("--config", config, "run", "--once").code == 0
    rows = feeds_json(cli, config)
    stored = sum(r["items"] for r in rows.values())
    assert stored > 0
    second = cli("--config", config, "run", "--once")
    assert "5 not modified" in second.out and "0 new items" in second.out
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM items")).scalar() == stored
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()
