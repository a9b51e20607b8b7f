"""Several workers on one PostgreSQL: claims, clustering at the same moment, a killed worker.

These need a real PostgreSQL (``AGGREGATOR_TEST_POSTGRES_URL``); each test works in a schema of
its own.  The processes are real ``aggregator`` processes (or, for clustering at the same moment,
real processes storing through ``store.record_poll``), started together.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import (
    FEEDFARM,
    Farm,
    farm_members,
    generate_corpus,
    make_config,
    serving_farm,
    start_farm,
)

from aggregator.config import load_config
from aggregator.db import make_engine
from aggregator.migrate import upgrade
from aggregator.store import sync_config

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL test")
    return database_url


def _aggregator(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "aggregator", "--config", str(config), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _truth(farm: Farm) -> list[tuple[str, str]]:
    """Every article of the corpus, once per feed (twins fold onto their article)."""
    return sorted({(f"{farm.base}/feeds/{t['feed']}/feed/", t["url"]) for t in farm.truth()})


def _stored(url: str) -> list[tuple[str, str]]:
    """(feed, article URL) of every stored item, repeats kept: a duplicate shows twice."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT f.config_url, i.url FROM items i JOIN feeds f ON f.id = i.feed_id"))
            return sorted((r[0], r[1]) for r in rows)
    finally:
        engine.dispose()


def _check_store(url: str) -> dict[str, int]:
    """The store's invariants; returns counts."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            dup = conn.execute(sa.text(
                "SELECT count(*) FROM (SELECT feed_id, item_key FROM items "
                "GROUP BY feed_id, item_key HAVING count(*) > 1) d")).scalar()
            assert dup == 0
            unplaced = conn.execute(sa.text(
                "SELECT count(*) FROM items WHERE cluster_id IS NULL")).scalar()
            assert unplaced == 0
            bad_size = conn.execute(sa.text(
                "SELECT count(*) FROM clusters c WHERE c.size <> "
                "(SELECT count(*) FROM items i WHERE i.cluster_id = c.id)")).scalar()
            assert bad_size == 0
            bad_rep = conn.execute(sa.text(
                "SELECT count(*) FROM clusters c JOIN items i ON i.id = c.representative_id "
                "WHERE i.cluster_id <> c.id OR i.published_at <> c.first_published_at")).scalar()
            assert bad_rep == 0
            items = conn.execute(sa.text("SELECT count(*) FROM items")).scalar()
            clusters = conn.execute(sa.text("SELECT count(*) FROM clusters")).scalar()
    finally:
        engine.dispose()
    return {"items": int(items or 0), "clusters": int(clusters or 0)}


@pytest.fixture
def big_farm(tmp_path: Path) -> Iterator[Farm]:
    """200 feeds answering after 20 ms: more than one worker's first claim (64 feeds)."""
    if FEEDFARM is None:
        pytest.skip("feedfarm.py not found (set FEEDFARM=path/to/feedfarm.py)")
    with serving_farm(generate_corpus(tmp_path / "corpus", 200, 5), "--latency-ms", "20") as farm:
        yield farm


def test_workers_share_the_feeds_and_poll_each_once_per_due_period(
        big_farm: Farm, tmp_path: Path, pg_url: str) -> None:
    farm = big_farm
    config = make_config(tmp_path, farm_members(farm), database=pg_url,
                         fetch={"parse_workers": 0},
                         schedule={"tick_seconds": 1, "min_interval": 600, "max_interval": 3600})
    farm.stats(reset=True)
    workers = [subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), "--log-format", "json",
         "--log-level", "info", "run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)]
    engine = make_engine(pg_url)
    try:
        deadline = time.monotonic() + 120
        polled = 0
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                with engine.connect() as conn:
                    polled = int(conn.execute(sa.text(
                        "SELECT count(*) FROM feeds WHERE last_fetch_at IS NOT NULL")).scalar()
                        or 0)
            except sa.exc.ProgrammingError:  # the schema is still being created
                continue
            if polled == len(farm.feeds()):
                break
        assert polled == len(farm.feeds())
        time.sleep(3)  # a few more ticks: nothing is due again for at least min_interval
    finally:
        engine.dispose()
        for w in workers:
            w.send_signal(signal.SIGTERM)
    per_worker = []
    for w in workers:
        _, err = w.communicate(timeout=60)
        assert w.returncode == 0, err[-3000:]
        per_worker.append(sum(1 for line in err.splitlines()
                              if line.startswith("{") and '"feed polled"' in line))
    paths = farm.stats()["paths"]
    feed_paths = {p: sum(by_status.values()) for p, by_status in paths.items()
                  if p.startswith("/feeds/")}
    assert len(feed_paths) == len(farm.feeds())
    assert set(feed_paths.values()) == {1}, "a feed was polled twice in one due period"
    assert sum(per_worker) == len(farm.feeds())
    assert sum(1 for n in per_worker if n) >= 2, f"one worker did all the work: {per_worker}"
    _check_store(pg_url)
    assert _stored(pg_url) == _truth(farm), "an item was lost or stored twice"
    assert (tmp_path / "output" / "feed.xml").is_file()


_STORE_COPY = textwrap.dedent("""
    import sys, time
    from datetime import UTC, datetime, timedelta
    from aggregator.db import make_engine
    from aggregator.enrich import enrich
    from aggregator.normalize import normalize_feed
    from aggregator.parse import parse_feed
    from sqlalchemy import select
    from aggregator.db import feeds
    from aggregator.store import _FEED_STATE_COLUMNS, FeedState, FeedUpdate, record_poll

    url, member, feed_xml, start = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    engine = make_engine(url)
    now = datetime.now(UTC)
    with engine.connect() as conn:
        feed = FeedState(*conn.execute(select(*_FEED_STATE_COLUMNS)
                                       .where(feeds.c.member_id == member)).one())
    doc = parse_feed(open(feed_xml, "rb").read())
    items = [enrich(i, member_name=member, home_region=None)
             for i in normalize_feed(doc, "https://%s.example/" % member, now,
                                     timedelta(hours=1))]
    while time.time() < start:
        time.sleep(0.0005)
    for item in items:  # one poll per story: both processes store copy n at the same moment
        record_poll(engine, feed, FeedUpdate(outcome="ok", now=now, next_poll_at=now), [item])
    engine.dispose()
""")


def _copy_feed(member: str, n: int, stories: int) -> str:
    base = ("Pemerintah Kabupaten {place} membagikan {k} ribu bibit mangrove kepada kelompok "
            "nelayan di pesisir utara untuk menahan abrasi yang makin parah tahun ini. "
            "Kepala dinas lingkungan hidup {place} Sugeng Riyadi menyebut penanaman dimulai "
            "pekan depan di {k} desa dan melibatkan pelajar serta relawan. Ia berharap hutan "
            "bakau itu kelak menjadi tempat wisata dan menambah pendapatan warga pesisir. "
            "Program ini dibiayai anggaran daerah sebesar Rp {k}0 juta dan bantuan perusahaan.")
    places = ["Lamongan", "Tuban", "Gresik", "Sidoarjo", "Pasuruan", "Probolinggo", "Situbondo",
              "Bangkalan", "Sampang", "Pamekasan", "Sumenep", "Banyuwangi", "Jember", "Lumajang",
              "Malang", "Blitar", "Tulungagung", "Trenggalek", "Pacitan", "Ngawi"]
    out = ['<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
           f"<title>{member}</title><link>https://{member}.example/</link><description>x"
           "</description>"]
    for s in range(stories):
        text = base.format(place=places[s % len(places)], k=s + 3)
        title = f"Bibit mangrove untuk nelayan {places[s % len(places)]} ({member})"
        date = (datetime.now(UTC) - timedelta(hours=2, minutes=s)).strftime(
            "%a, %d %b %Y %H:%M:%S +0000")
        out.append(f"<item><title>{title}</title><link>https://{member}.example/{s}/</link>"
                   f"<guid>{member}-{s}</guid><pubDate>{date}</pubDate>"
                   f"<description>{member.upper()} - {text}</description></item>")
    out.append("</channel></rss>")
    return "".join(out)


def test_copies_stored_at_the_same_moment_by_two_workers_join_one_cluster(
        tmp_path: Path, pg_url: str) -> None:
    members = [{"id": m, "name": m, "site": f"https://{m}.example/",
                "feeds": [f"https://{m}.example/feed/"]} for m in ("kabara", "kabarb")]
    config = make_config(tmp_path, members, database=pg_url)
    engine = make_engine(pg_url)
    upgrade(engine)
    sync_config(engine, load_config(config), datetime.now(UTC))
    engine.dispose()
    stories = 20
    files = []
    for n, m in enumerate(("kabara", "kabarb")):
        path = tmp_path / f"{m}.xml"
        path.write_text(_copy_feed(m, n, stories), encoding="utf-8")
        files.append(path)
    start = time.time() + 4
    procs = [subprocess.Popen([sys.executable, "-c", _STORE_COPY, pg_url, m, str(f), str(start)],
                              stderr=subprocess.PIPE, text=True)
             for m, f in zip(("kabara", "kabarb"), files, strict=True)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
    counts = _check_store(pg_url)
    assert counts["items"] == 2 * stories
    # Each story's two copies, stored at the same moment by two processes, are one cluster.
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            sizes = Counter(conn.execute(sa.text("SELECT size FROM clusters")).scalars())
    finally:
        engine.dispose()
    assert sizes == {2: stories}, sizes


def test_a_killed_workers_feeds_are_picked_up_by_the_others(farm_corpus: Path, tmp_path: Path,
                                                             pg_url: str) -> None:
    slow = start_farm(farm_corpus, "--latency-ms", "1500")
    try:
        members = farm_members(slow)
        config = make_config(tmp_path, members, database=pg_url,
                             fetch={"parse_workers": 0, "concurrency": 4, "per_host": 4},
                             schedule={"lease_seconds": 10})
        subprocess.run([sys.executable, "-m", "aggregator", "--config", str(config), "feeds",
                        "--json"], check=True, capture_output=True)
        victim = _aggregator(config, "run", "--once", "--no-progress")
        engine = make_engine(pg_url)
        try:
            deadline = time.monotonic() + 30
            leased = 0
            while time.monotonic() < deadline and not leased:
                with engine.connect() as conn:
                    leased = int(conn.execute(sa.text(
                        "SELECT count(*) FROM feeds WHERE lease_owner IS NOT NULL")).scalar() or 0)
                time.sleep(0.05)
            assert leased, "the first worker never claimed a feed"
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            with engine.begin() as conn:
                # As if it had run on another machine: its leases must run out on their own.
                conn.execute(sa.text("UPDATE feeds SET lease_owner = 'elsewhere:1:dead' "
                                     "WHERE lease_owner IS NOT NULL"))
                held = int(conn.execute(sa.text(
                    "SELECT count(*) FROM feeds WHERE lease_owner IS NOT NULL")).scalar() or 0)
            assert held > 0
            first = _aggregator(config, "run", "--once", "--json", "--no-progress")
            out, err = first.communicate(timeout=120)
            assert first.returncode == 0, err
            assert json.loads(out)["feeds"] == len(members) - held, "a live lease was ignored"
            time.sleep(10.5)  # the dead worker's leases expire
            second = _aggregator(config, "run", "--once", "--json", "--no-progress")
            out, err = second.communicate(timeout=120)
            assert second.returncode == 0, err
            with engine.connect() as conn:
                never = int(conn.execute(sa.text(
                    "SELECT count(*) FROM feeds WHERE last_success_at IS NULL")).scalar() or 0)
            assert never == 0, "a dead worker's feed was never polled"
        finally:
            engine.dispose()
        _check_store(pg_url)
    finally:
        slow.process.terminate()
        slow.process.wait(10)
