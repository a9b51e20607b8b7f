"""Prometheus metrics and a health check for ``aggregator run --metrics-port``.

Counters and histograms are fed by the running process (the poller and the publish step call
:class:`Metrics`); the feed and cluster gauges are read from the database at scrape time instead,
so that they agree with ``aggregator feeds`` even when several processes poll the same database.

Every metric lives in a registry of its own rather than prometheus_client's global one: tests
and several runs in one interpreter must not see each other's numbers or clash on names.

The scrape-time queries go through an engine of their own (:func:`read_engine`). The run's main
engine begins every SQLite transaction with ``BEGIN IMMEDIATE``, and a publish keeps one open
while it renders, so a scrape through it would wait behind the publisher for the write lock; a
plain read in WAL mode waits for nobody and holds up nobody.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from . import __version__
from .db import clusters, feeds

if TYPE_CHECKING:
    from .config import Config
    from .publish.publisher import PublishResult

log = structlog.get_logger("aggregator.metrics")

# The states of `aggregator feeds`, in the order a person reads them.
STATES = ("ok", "new", "error", "failing", "disabled")

# A scrape or a health check must answer while the database is slow, not hang with it.
QUERY_TIMEOUT_S = 5

FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
PUBLISH_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
CYCLE_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


def feed_state(*, disabled_reason: str | None, failing_since: datetime | None,
               consecutive_errors: int, last_success_at: datetime | None, now: datetime,
               failing_after: timedelta) -> str:
    """The one-word state of a feed, as ``aggregator feeds`` shows it.

    A feed in error is only "failing" (a member's problem) once it has failed for
    ``failing_after``: an outlet's server being down for an hour is not worth a call.
    """
    if disabled_reason:
        return "disabled"
    if failing_since and now - failing_since >= failing_after:
        return "failing"
    if consecutive_errors:
        return "error"
    if last_success_at is None:
        return "new"
    return "ok"


@dataclass(frozen=True)
class FeedCounts:
    states: dict[str, int]
    due: int


def feed_counts(engine: Engine, now: datetime, failing_after: timedelta) -> FeedCounts:
    """Active feeds by state, and how many are due: a few narrow columns of one small table."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(feeds.c.disabled_reason, feeds.c.failing_since, feeds.c.consecutive_errors,
                   feeds.c.last_success_at, feeds.c.next_poll_at)
            .where(feeds.c.active.is_(True))
        ).all()
    states = Tally({s: 0 for s in STATES})
    due = 0
    for r in rows:
        states[feed_state(disabled_reason=r.disabled_reason, failing_since=r.failing_since,
                          consecutive_errors=r.consecutive_errors,
                          last_success_at=r.last_success_at, now=now,
                          failing_after=failing_after)] += 1
        if r.disabled_reason is None and r.next_poll_at <= now:
            due += 1
    return FeedCounts(dict(states), due)


def open_clusters(engine: Engine, since: datetime) -> int:
    """Clusters with a copy published since ``since`` (an index range, however old the store)."""
    with engine.connect() as conn:
        found = conn.scalar(select(func.count()).select_from(clusters)
                            .where(clusters.c.last_published_at >= since))
    return int(found or 0)


def read_engine(url: str) -> Engine:
    """A small engine for scrape-time reads that neither takes nor waits for the write lock."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": QUERY_TIMEOUT_S})

        def sqlite_reader(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA query_only=ON")
            cursor.close()

        event.listen(engine, "connect", sqlite_reader)
        return engine
    engine = create_engine(url, pool_size=1, max_overflow=2, pool_pre_ping=True)

    def postgres_reader(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET statement_timeout = {QUERY_TIMEOUT_S * 1000}")
        cursor.close()
        dbapi_connection.commit()

    event.listen(engine, "connect", postgres_reader)
    return engine


class DatabaseCollector:
    """The gauges read from the database when Prometheus scrapes."""

    def __init__(self, engine: Engine, config: Config,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine = engine
        self.failing_after = timedelta(seconds=config.schedule.failing_after)
        self.window = timedelta(hours=config.cluster.window_hours)
        self.now = now

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("sindikasi_database_up",
                               "1 when the scrape-time database queries answered, else 0")
        now = self.now()
        try:
            counts = feed_counts(self.engine, now, self.failing_after)
            open_count = open_clusters(self.engine, now - self.window)
        except SQLAlchemyError as exc:
            # One failed scrape must not hide the process's own metrics; the gauge says why
            # the database ones are missing.
            log.warning("metrics: database query failed", error=_describe(exc))
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        by_state = GaugeMetricFamily("sindikasi_feeds",
                                     "Active feeds by state, as `aggregator feeds` names them",
                                     labels=["state"])
        for state in STATES:
            by_state.add_metric([state], counts.states.get(state, 0))
        yield by_state
        yield GaugeMetricFamily("sindikasi_feeds_due",
                                "Enabled feeds whose next poll time has passed", value=counts.due)
        yield GaugeMetricFamily(
            "sindikasi_clusters_open",
            "Clusters (stories) with a copy published within cluster.window_hours",
            value=open_count)


@dataclass
class _Activity:
    """Monotonic times of what shows the scheduler is alive, with wall time for people."""

    started: float
    last_cycle: float | None = None
    last_cycle_wall: datetime | None = None
    last_progress: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Metrics:
    """What one ``aggregator run`` process records, and the health it reports from that."""

    def __init__(self, config: Config, engine: Engine, *,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.config = config
        self.engine = engine
        self.clock = clock
        self.wall = wall
        # A cycle may legitimately run long (every fetch may use its whole deadline) but it keeps
        # finishing feeds; this long without a finished cycle, feed or publish means stuck.
        self.stale_after = max(3 * config.schedule.tick_seconds, 3 * config.fetch.deadline, 60.0)
        now = clock()
        self._activity = _Activity(started=now, last_progress=now)
        self.registry = r = CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        Info("sindikasi_build", "The running aggregator's version", registry=r).info(
            {"version": __version__})
        self.fetch_duration = Histogram(
            "sindikasi_fetch_duration_seconds",
            "Time to fetch one feed (request to last body byte, or the failure), by poll outcome",
            ["outcome"], buckets=FETCH_BUCKETS, registry=r)
        self.fetch_errors = Counter(
            "sindikasi_fetch_errors", "Feed polls that failed, by error kind as `aggregator "
            "feeds` reports it (http_status, timeout, not_a_feed, gone, ...)",
            ["kind"], registry=r)
        self.items_ingested = Counter(
            "sindikasi_items_ingested", "Items stored from polled feeds: new, or updated copies "
            "of items already stored", ["kind"], registry=r)
        for kind in ("new", "updated"):
            self.items_ingested.labels(kind)
        self.publish_duration = Histogram(
            "sindikasi_publish_duration_seconds", "Time of each publish that ran",
            buckets=PUBLISH_BUCKETS, registry=r)
        self.publish_files = Counter(
            "sindikasi_publish_files_written", "Published files written (changed ones only)",
            registry=r)
        self.publish_skipped = Counter(
            "sindikasi_publish_skipped", "Publishes skipped: another process held the lease",
            registry=r)
        self.publish_errors = Counter(
            "sindikasi_publish_errors", "Publishes that failed (retried after the next cycle)",
            registry=r)
        self.cycle_duration = Histogram(
            "sindikasi_cycle_duration_seconds", "Time of each poll cycle (fetch, parse, store)",
            buckets=CYCLE_BUCKETS, registry=r)
        self.last_cycle = Gauge(
            "sindikasi_last_cycle_timestamp_seconds",
            "Unix time the last cycle (and its publish) finished; 0 before the first",
            registry=r)
        r.register(DatabaseCollector(engine, config, wall))

    # ----------------------------------------------------------------------- recording
    def feed_polled(self, outcome: str, fetch_s: float | None, error_kind: str | None,
                    new: int = 0, updated: int = 0) -> None:
        """One feed's poll is over; ``fetch_s`` is None when it was deferred, not fetched."""
        if fetch_s is not None:
            self.fetch_duration.labels(outcome).observe(fetch_s)
        if outcome in ("error", "gone"):
            self.fetch_errors.labels(error_kind or "error").inc()
        if new:
            self.items_ingested.labels("new").inc(new)
        if updated:
            self.items_ingested.labels("updated").inc(updated)
        self._progress()

    def feed_crashed(self) -> None:
        """A poll that raised (the database went away, a bug): counted as the summary does."""
        self.fetch_errors.labels("internal").inc()

    def published(self, result: PublishResult) -> None:
        if result.skipped:
            self.publish_skipped.inc()
            return
        self.publish_duration.observe(result.duration_s)
        self.publish_files.inc(len(result.written))
        self._progress()

    def publish_failed(self) -> None:
        self.publish_errors.inc()

    def cycle_finished(self, duration_s: float) -> None:
        self.cycle_duration.observe(duration_s)
        wall = self.wall()
        self.last_cycle.set(wall.timestamp())
        with self._activity.lock:
            self._activity.last_cycle = self.clock()
            self._activity.last_cycle_wall = wall
            self._activity.last_progress = self._activity.last_cycle

    def _progress(self) -> None:
        with self._activity.lock:
            self._activity.last_progress = self.clock()

    # -------------------------------------------------------------------------- health
    def health(self) -> tuple[int, dict[str, Any]]:
        """HTTP status and body of ``/healthz``.

        200 while the scheduler is alive and the database answers. "starting" (also 200) covers
        the first cycle, which polls every feed and may take a while; after ``stale_after``
        without a finished cycle, feed or publish it is "degraded" and 503, so that a probe
        restarts a process whose loop is stuck rather than one that is merely busy.
        """
        a = self._activity
        now = self.clock()
        with a.lock:
            last_cycle, last_wall, last_progress = a.last_cycle, a.last_cycle_wall, a.last_progress
        problems = []
        idle = now - last_progress
        if idle > self.stale_after:
            problems.append(f"no cycle, feed or publish finished for {idle:.0f} s")
        body: dict[str, Any] = {
            "last_cycle_finished_at": last_wall.isoformat(timespec="seconds")
            if last_wall else None,
            "seconds_since_last_cycle": round(now - last_cycle, 3) if last_cycle else None,
            "seconds_since_progress": round(idle, 3),
            "stale_after_seconds": self.stale_after,
            "version": __version__,
        }
        try:
            counts = feed_counts(self.engine, self.wall(),
                                 timedelta(seconds=self.config.schedule.failing_after))
        except SQLAlchemyError as exc:
            log.warning("health: database query failed", error=_describe(exc))
            problems.append(f"database: {type(exc).__name__}")
            body["database"] = "error"
            body["feeds"] = None
        else:
            body["database"] = "ok"
            body["feeds"] = {"due": counts.due, **counts.states}
        if problems:
            return 503, {"status": "degraded", "problems": problems, **body}
        return 200, {"status": "ok" if last_cycle is not None else "starting", "problems": [],
                     **body}

    # ---------------------------------------------------------------------------- HTTP
    def wsgi_app(self) -> WSGIApplication:
        """``/metrics`` in the Prometheus text format, ``/healthz`` as JSON, 404 elsewhere."""
        metrics_app: WSGIApplication = make_wsgi_app(self.registry)

        def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO") or "/"
            if path == "/metrics":
                return metrics_app(environ, start_response)
            if path == "/healthz":
                code, body = self.health()
                data = json.dumps(body).encode()
                start_response(f"{code} {'OK' if code == 200 else 'Service Unavailable'}",
                               [("Content-Type", "application/json"),
                                ("Content-Length", str(len(data))),
                                ("Cache-Control", "no-store")])
                return [data]
            data = b"not found: try /metrics or /healthz\n"
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8"),
                                             ("Content-Length", str(len(data)))])
            return [data]

        return app


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


class _Server(ThreadingMixIn, WSGIServer):
    # A slow scrape (a database query waiting its timeout) must not hold up the next request,
    # and handler threads must never keep the process alive after `run` returns.
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """Scrapes every few seconds would flood the log; the metrics say what happened instead."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class MetricsServer:
    """The ``/metrics`` and ``/healthz`` endpoint, served from a daemon thread."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = _Server6 if family == socket.AF_INET6 else _Server
        try:
            self._server = server_class((host, port), _QuietHandler)
        except OSError as exc:
            raise OSError(f"cannot serve metrics on {host}:{port}: "
                          f"{exc.strerror or exc}") from exc
        self._server.set_app(metrics.wsgi_app())
        bound = self._server.server_address[1]
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        self.url = f"http://{shown}:{bound}/"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2}, daemon=True,
                                        name="aggregator-metrics")
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
