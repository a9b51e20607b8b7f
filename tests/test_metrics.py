"""Operations: `run --metrics-port` (Prometheus metrics, /healthz) and `feeds --failing`.

The end-to-end test runs `aggregator run` as a real process on schedule, against feeds served on
127.0.0.1 whose outcomes are known in advance, and checks each number against what happened.
The collector and the health check are also tested on their own, with states and clocks that a
short run cannot reach (a feed failing for days, a scheduler stuck for minutes).
"""

from __future__ import annotations

import json
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import Farm, StaticSite, feeds_json, make_config, rss
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select, text, update

from aggregator.cli import feed_rows
from aggregator.config import Config, load_config
from aggregator.db import clusters, feeds, items, make_engine
from aggregator.metrics import STATES, Metrics, MetricsServer, read_engine
from aggregator.migrate import upgrade
from aggregator.publish.publisher import PublishResult

AGGREGATOR = [sys.executable, "-m", "aggregator"]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample of a /metrics page, keyed by name and sorted labels."""
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        page = r.read().decode()
    found: Samples = {}
    for family in text_string_to_metric_families(page):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: v for (n, labels), v in samples.items()
            if n == name and label in dict(labels)}


def health(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def news(site: StaticSite, name: str, count: int) -> str:
    """A feed of ``count`` distinct recent stories (recent, so that their clusters are open)."""
    now = datetime.now(UTC)
    words = ["banjir", "pasar", "festival", "jalan", "sekolah", "panen", "kereta", "pelabuhan"]
    items = [{"title": f"{name} {words[k % len(words)]} {k}: kabar nomor {k} dari {name}",
              "link": f"https://{name}.example/{k}/", "guid": f"{name}-{k}",
              "date": format_datetime(now - timedelta(hours=k + 1)),
              "html": f"<p>Berita {words[k % len(words)]} ke-{k} dari redaksi {name}, "
                      f"ditulis khusus untuk uji metrik nomor {k * 7919 % 1000}.</p>"}
             for k in range(count)]
    return site.write(f"{name}.xml", rss(name, items))


def distinct_clusters(config_path: Path) -> int:
    engine = make_engine(load_config(str(config_path)).database_url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count(items.c.cluster_id.distinct()))) or 0)
    finally:
        engine.dispose()


def member(mid: str, url: str) -> dict[str, Any]:
    return {"id": mid, "name": mid.title(), "site": f"https://{mid}.example/", "feeds": [url]}


class Lines:
    """A process's stderr read on a thread, so that waiting for a line never blocks the test."""

    def __init__(self, stream: Any) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(line)
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"no line matching {pattern!r} in {self.seen}")

    def rest(self) -> list[str]:
        while not self._queue.empty():
            self.seen.append(self._queue.get())
        return self.seen


# ------------------------------------------------------------------------------ end to end

def test_run_serves_metrics_and_health_then_stops_on_sigterm(
        tmp_path: Path, static_site: StaticSite, farm: Farm, cli: Any) -> None:
    served = {"kabar": 3, "warta": 4, "suara": 5}
    members = [member(name, news(static_site, name, n)) for name, n in served.items()]
    members.append(member("hilang", static_site.url("hilang.xml")))  # never written: 404
    faults = {r["name"]: r["url"] for r in farm.feeds(faults=True)}
    # A 429 with Retry-After blocks its host name for a while; under "localhost" it cannot
    # defer the feeds on 127.0.0.1.
    limited = faults["fault-429"].replace("127.0.0.1", "localhost")
    members += [member("sibuk", limited), member("tutup", faults["fault-410"])]
    config = make_config(tmp_path, members, schedule={"tick_seconds": 0.5, "failing_after": 0})
    started = time.time()
    proc = subprocess.Popen([*AGGREGATOR, "--config", str(config), "--log-format", "json",
                             "run", "--metrics-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        lines = Lines(proc.stderr)
        found = lines.wait_for(r'"metrics": "(http://127\.0\.0\.1:\d+/)metrics"', 30)
        base = found.group(1)

        end = time.monotonic() + 60
        code, body = health(base + "healthz")
        while body["status"] != "ok" and time.monotonic() < end:
            assert code == 200 and body["status"] == "starting", body
            time.sleep(0.2)
            code, body = health(base + "healthz")
        assert code == 200 and body["status"] == "ok", body
        assert body["database"] == "ok" and body["problems"] == []
        assert body["feeds"] == {"due": 0, "ok": 3, "new": 0, "error": 0, "failing": 2,
                                 "disabled": 1}
        finished = datetime.fromisoformat(body["last_cycle_finished_at"])
        assert started - 1 <= finished.timestamp() <= time.time() + 1
        assert 0 <= body["seconds_since_last_cycle"] < 30

        time.sleep(1.5)  # a few more ticks: nothing is due, nothing may be counted twice
        m = scrape(base + "metrics")
        status, _ = health(base + "healthz")
        elsewhere = status_of(base + "nothing")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, "".join(lines.rest())
    events = [json.loads(line) for line in lines.rest() if line.startswith("{")]
    assert events[-1]["event"] == "stopped"
    assert status == 200 and elsewhere == 404

    assert m[("sindikasi_database_up", ())] == 1
    assert by_label(m, "sindikasi_feeds", "state") == {
        "ok": 3, "new": 0, "error": 0, "failing": 2, "disabled": 1}
    assert m[("sindikasi_feeds_due", ())] == 0
    # Every item served was stored once, as new, and the store agrees.
    ingested = by_label(m, "sindikasi_items_ingested_total", "kind")
    assert ingested == {"new": sum(served.values()), "updated": 0}
    stored = feeds_json(cli, config)
    assert sum(r["items"] for r in stored.values()) == sum(served.values())
    errors = by_label(m, "sindikasi_fetch_errors_total", "kind")
    assert errors == {"http_status": 1, "rate_limited": 1, "gone": 1}, errors
    assert {r["error_kind"] for r in stored.values() if r["error_kind"]} == set(errors)
    # One fetch per feed, each observed once under its outcome; the farm saw exactly those.
    fetches = by_label(m, "sindikasi_fetch_duration_seconds_count", "outcome")
    assert fetches == {"ok": 3, "error": 2, "gone": 1}, fetches
    assert sum(fetches.values()) == len(members)
    hits = farm.stats()["paths"]
    assert sorted(sum(c.values()) for c in hits.values()) == [1, 1], hits
    assert m[("sindikasi_fetch_duration_seconds_sum", (("outcome", "ok"),))] > 0
    # Every story is a few hours old, so every cluster the items were placed in is open.
    assert m[("sindikasi_clusters_open", ())] == distinct_clusters(config) > 0
    # The first cycle brought news, so it published once; later ticks had nothing to publish.
    assert m[("sindikasi_publish_duration_seconds_count", ())] == 1
    assert m[("sindikasi_publish_duration_seconds_sum", ())] > 0
    output = tmp_path / "output"
    files = [p for p in output.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert m[("sindikasi_publish_files_written_total", ())] == len(files) > 0
    assert m[("sindikasi_publish_errors_total", ())] == 0
    cycles = m[("sindikasi_cycle_duration_seconds_count", ())]
    assert cycles >= 2  # the first and at least one empty tick after it
    assert started <= m[("sindikasi_last_cycle_timestamp_seconds", ())] <= time.time()
    assert m[("sindikasi_build_info", (("version", "0.1.0"),))] == 1


def test_run_once_with_a_taken_metrics_port_fails_before_polling(
        tmp_path: Path, static_site: StaticSite, cli: Any) -> None:
    config = make_config(tmp_path, [member("kabar", news(static_site, "kabar", 2))])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("--config", config, "run", "--once", "--metrics-port", port)
    assert result.code == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.err
    assert all(r["last_success"] is None for r in feeds_json(cli, config).values())


def test_metrics_port_must_be_a_port(tmp_path: Path, cli: Any) -> None:
    config = make_config(tmp_path, [member("kabar", "http://127.0.0.1:9/feed.xml")])
    with pytest.raises(SystemExit) as exc:
        cli("--config", config, "run", "--metrics-port", "70000")
    assert exc.value.code == 2


# ---------------------------------------------------------------------- collector and health

def poll_six(tmp_path: Path, static_site: StaticSite, cli: Any,
             database: str | None = None) -> tuple[Config, Engine]:
    """Six feeds polled once (four good, two 404), to be put into every state by hand.

    Called from the test body, not as a fixture: the CLI points the log at the stderr of the
    phase it runs in, and a fixture's stderr is gone once the test proper starts.
    """
    names = ["satu", "dua", "tiga", "empat"]
    members = [member(n, news(static_site, n, 2)) for n in names]
    members += [member(n, static_site.url(f"{n}.xml")) for n in ("lima", "enam")]
    path = make_config(tmp_path, members, schedule={"failing_after": 3600}, database=database)
    result = cli("--config", path, "run", "--once")
    assert "6 feeds: 4 ok, 0 not modified, 2 failed" in result.out, result.out
    config = load_config(str(path))
    engine = make_engine(config.database_url)
    upgrade(engine)
    return config, engine


def _set(engine: Engine, url: str, **values: Any) -> None:
    with engine.begin() as conn:
        assert conn.execute(update(feeds).where(feeds.c.config_url == url)
                            .values(**values)).rowcount == 1


def test_feed_gauges_agree_with_aggregator_feeds_in_every_state(
        tmp_path: Path, static_site: StaticSite, cli: Any, database_url: str) -> None:
    config, engine = poll_six(tmp_path, static_site, cli, database_url)
    now = datetime.now(UTC)
    url = {n: static_site.url(f"{n}.xml") for n in ("satu", "dua", "tiga", "empat", "lima",
                                                    "enam")}
    # satu stays ok; dua was never polled; tiga is disabled (410); lima has failed for two
    # hours, past failing_after; enam only for a minute (error); empat is due again now.
    _set(engine, url["dua"], last_success_at=None, next_poll_at=now - timedelta(seconds=5))
    _set(engine, url["tiga"], disabled_reason="HTTP 410", next_poll_at=now - timedelta(hours=1))
    _set(engine, url["lima"], failing_since=now - timedelta(hours=2))
    _set(engine, url["enam"], failing_since=now - timedelta(minutes=1))
    _set(engine, url["empat"], next_poll_at=now - timedelta(minutes=1))
    reader = read_engine(config.database_url)
    try:
        metrics = Metrics(config, reader)
        expected = Counter(r["state"] for r in feed_rows(config, engine, now))
        assert expected == {"ok": 2, "new": 1, "disabled": 1, "failing": 1, "error": 1}
        got = {s: metrics.registry.get_sample_value("sindikasi_feeds", {"state": s})
               for s in STATES}
        assert got == {s: expected.get(s, 0) for s in STATES}
        # dua and empat; tiga is past due too, but disabled feeds are never polled.
        assert metrics.registry.get_sample_value("sindikasi_feeds_due") == 2
        assert metrics.registry.get_sample_value("sindikasi_database_up") == 1
    finally:
        reader.dispose()
        engine.dispose()


def test_open_clusters_are_those_within_the_window(
        tmp_path: Path, static_site: StaticSite, cli: Any) -> None:
    config, engine = poll_six(tmp_path, static_site, cli)
    reader = read_engine(config.database_url)
    try:
        metrics = Metrics(config, reader)
        with engine.connect() as conn:
            total = conn.scalar(select(func.count()).select_from(clusters))
            oldest = conn.scalar(select(func.min(clusters.c.id)))
        assert total and total >= 2
        assert metrics.registry.get_sample_value("sindikasi_clusters_open") == total
        window = timedelta(hours=config.cluster.window_hours)
        with engine.begin() as conn:
            conn.execute(update(clusters).where(clusters.c.id == oldest).values(
                last_published_at=datetime.now(UTC) - window - timedelta(minutes=1)))
        assert metrics.registry.get_sample_value("sindikasi_clusters_open") == total - 1
    finally:
        reader.dispose()
        engine.dispose()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_health_starting_ok_then_degraded_when_nothing_finishes(
        tmp_path: Path, static_site: StaticSite, cli: Any) -> None:
    config, engine = poll_six(tmp_path, static_site, cli)
    engine.dispose()
    clock = FakeClock()
    reader = read_engine(config.database_url)
    try:
        metrics = Metrics(config, reader, clock=clock)
        code, body = metrics.health()
        assert (code, body["status"], body["last_cycle_finished_at"]) == (200, "starting", None)
        clock.now += metrics.stale_after + 1  # the first cycle never ends
        code, body = metrics.health()
        assert (code, body["status"]) == (503, "degraded")
        assert "no cycle, feed or publish finished" in body["problems"][0]
        metrics.cycle_finished(2.0)
        code, body = metrics.health()
        assert (code, body["status"], body["seconds_since_last_cycle"]) == (200, "ok", 0)
        assert body["feeds"]["error"] == 2 and body["database"] == "ok"
        # A long cycle that keeps finishing feeds is busy, not stuck.
        clock.now += metrics.stale_after - 1
        metrics.feed_polled("ok", 0.5, None, new=1)
        clock.now += metrics.stale_after - 1
        assert metrics.health()[0] == 200
        clock.now += 2
        code, body = metrics.health()
        assert (code, body["status"]) == (503, "degraded")
        assert body["seconds_since_last_cycle"] == pytest.approx(2 * metrics.stale_after)
        metrics.published(PublishResult(written=["feed.xml"], duration_s=0.3))
        assert metrics.health()[0] == 200
    finally:
        reader.dispose()


def test_health_and_scrape_when_the_database_fails(
        tmp_path: Path, static_site: StaticSite, cli: Any, database_url: str) -> None:
    config, engine = poll_six(tmp_path, static_site, cli, database_url)
    reader = read_engine(config.database_url)
    try:
        metrics = Metrics(config, reader)
        metrics.cycle_finished(1.0)
        with MetricsServer(metrics, "127.0.0.1", 0) as server:
            assert health(server.url + "healthz")[0] == 200
            with engine.begin() as conn:
                conn.execute(text("ALTER TABLE feeds RENAME TO feeds_gone"))
            code, body = health(server.url + "healthz")
            assert (code, body["status"], body["database"]) == (503, "degraded", "error")
            assert body["problems"] in (["database: OperationalError"],  # SQLite
                                        ["database: ProgrammingError"])  # PostgreSQL
            # The process's own metrics still come out, with the database marked down.
            m = scrape(server.url + "metrics")
            assert m[("sindikasi_database_up", ())] == 0
            assert ("sindikasi_feeds", (("state", "ok"),)) not in m
            assert m[("sindikasi_cycle_duration_seconds_count", ())] == 1
    finally:
        reader.dispose()
        engine.dispose()


def test_scrape_reads_do_not_wait_for_the_write_lock(
        tmp_path: Path, static_site: StaticSite, cli: Any) -> None:
    """A publish holds SQLite's write lock while it renders; scrapes must answer meanwhile."""
    config, engine = poll_six(tmp_path, static_site, cli)
    reader = read_engine(config.database_url)
    try:
        metrics = Metrics(config, reader)
        with engine.connect() as conn:  # BEGIN IMMEDIATE: the write lock, held
            conn.execute(select(feeds.c.id)).all()
            started = time.monotonic()
            assert metrics.health()[0] == 200
            assert metrics.registry.get_sample_value("sindikasi_database_up") == 1
            assert time.monotonic() - started < 2
    finally:
        reader.dispose()
        engine.dispose()


def test_recorded_outcomes(
        tmp_path: Path, static_site: StaticSite, cli: Any) -> None:
    config, engine = poll_six(tmp_path, static_site, cli)
    engine.dispose()
    reader = read_engine(config.database_url)
    try:
        metrics = Metrics(config, reader)
        value = metrics.registry.get_sample_value
        metrics.feed_polled("ok", 0.2, None, new=3, updated=1)
        metrics.feed_polled("not_modified", 0.05, None)
        metrics.feed_polled("error", 1.5, "timeout")
        metrics.feed_polled("error", 0.1, "not_a_feed")
        metrics.feed_polled("error", 0.1, "timeout")
        metrics.feed_polled("deferred", None, None)
        metrics.feed_crashed()
        metrics.published(PublishResult(skipped="another process is publishing"))
        metrics.publish_failed()
        assert value("sindikasi_items_ingested_total", {"kind": "new"}) == 3
        assert value("sindikasi_items_ingested_total", {"kind": "updated"}) == 1
        assert value("sindikasi_fetch_errors_total", {"kind": "timeout"}) == 2
        assert value("sindikasi_fetch_errors_total", {"kind": "not_a_feed"}) == 1
        assert value("sindikasi_fetch_errors_total", {"kind": "internal"}) == 1
        assert value("sindikasi_fetch_duration_seconds_count", {"outcome": "error"}) == 3
        assert value("sindikasi_fetch_duration_seconds_sum", {"outcome": "error"}) == \
            pytest.approx(1.7)
        assert value("sindikasi_fetch_duration_seconds_bucket",
                     {"outcome": "error", "le": "1.0"}) == 2
        assert value("sindikasi_fetch_duration_seconds_count", {"outcome": "deferred"}) is None
        assert value("sindikasi_publish_skipped_total") == 1
        assert value("sindikasi_publish_errors_total") == 1
        assert value("sindikasi_publish_duration_seconds_count") == 0
        assert value("sindikasi_last_cycle_timestamp_seconds") == 0
        # A registry of its own: a second instance starts from zero, and nothing clashes.
        other = Metrics(config, reader)
        assert other.registry.get_sample_value("sindikasi_items_ingested_total",
                                               {"kind": "new"}) == 0
    finally:
        reader.dispose()


# ---------------------------------------------------------------------------- feeds --failing

def test_feeds_failing_lists_the_error_and_since_when(
        tmp_path: Path, static_site: StaticSite, cli: Any) -> None:
    good = news(static_site, "kabar", 2)
    bad = static_site.url("hilang.xml")
    config = make_config(tmp_path, [member("kabar", good), member("hilang", bad)],
                         schedule={"failing_after": 0})
    before = datetime.now(UTC).replace(microsecond=0)
    assert cli("--config", config, "run", "--once").code == 0
    listed = cli("--config", config, "feeds", "--failing", "--json")
    assert listed.code == 0, listed.err
    (row,) = listed.json()
    assert row["config_url"] == bad and row["state"] == "failing"
    assert row["error_kind"] == "http_status" and "404" in row["last_error"]
    since = datetime.fromisoformat(row["failing_since"])
    assert before <= since <= datetime.now(UTC)
    # A second failure keeps the start of the streak: "since when" is not "last tried".
    time.sleep(1.1)
    assert cli("--config", config, "run", "--once").code == 0
    (again,) = cli("--config", config, "feeds", "--failing", "--json").json()
    assert again["failing_since"] == row["failing_since"]
    assert again["consecutive_errors"] == 2
    table = cli("--config", config, "feeds", "--failing")
    assert table.code == 0
    assert "hilang" in table.out and "404" in table.out and "kabar" not in table.out
    assert "failing since" in table.out
