"""One poll cycle: claim feeds, fetch them concurrently, parse off the loop, store the results.

The only module that wires stages together.  Database calls run on one dedicated thread so that
the event loop keeps fetching while results are written, and so that this process never competes
with itself for SQLite's write lock.  Parsing runs in a process pool (feedparser is pure Python
and would otherwise hold the GIL against the fetches).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import multiprocessing
import os
import random
import resource
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import httpx
import structlog
from sqlalchemy import Engine

from .config import Config
from .enrich import enrich
from .fetch import FetchResult, build_client, fetch_feed
from .models import Item
from .normalize import MAX_TITLE, normalize_feed
from .parse import ParseError, parse_feed
from .schedule import (
    Bounds,
    failure_interval,
    next_poll,
    publishing_gap,
    retry_after_seconds,
    server_hint_seconds,
    success_interval,
    with_jitter,
)
from .store import (
    FeedState,
    FeedUpdate,
    Poll,
    StoreResult,
    block_host,
    blocked_hosts,
    claim_feeds,
    count_pollable,
    prune_lsh,
    record_polls,
    release_leases,
    sync_config,
)
from .textclean import clean_line
from .urls import host_of

if TYPE_CHECKING:
    from .metrics import Metrics

log = structlog.get_logger("aggregator.poller")
P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class CycleSummary:
    feeds: int = 0
    ok: int = 0
    not_modified: int = 0
    failed: int = 0
    deferred: int = 0
    new_items: int = 0
    updated_items: int = 0
    duration_s: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    # CPU seconds and peak memory of the parse workers, by worker pid, so that a cycle's
    # cost can be reported whole (the workers are not this process's children to wait for).
    worker_cpu_s: dict[int, float] = field(default_factory=dict)
    worker_rss_kb: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"feeds": self.feeds, "ok": self.ok, "not_modified": self.not_modified,
                "failed": self.failed, "deferred": self.deferred, "new_items": self.new_items,
                "updated_items": self.updated_items, "duration_s": round(self.duration_s, 3),
                "errors": dict(self.errors), "cpu_s": round(self.cpu_s, 3),
                "peak_rss_mb": round(self.peak_rss_mb, 1)}

    @property
    def cpu_s(self) -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime + sum(self.worker_cpu_s.values())

    @property
    def peak_rss_mb(self) -> float:
        return (peak_rss_kb() + sum(self.worker_rss_kb.values())) / 1024


def peak_rss_kb() -> int:
    """This process's peak resident memory since it started its program, in KiB.

    Linux's ``ru_maxrss`` keeps the high-water mark of the process that forked and exec'd us:
    started by a test runner holding 460 MB, a small run reported 460 MB.  ``VmHWM`` is the
    peak of our own address space only.
    """
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@dataclass(frozen=True)
class Parsed:
    """What the worker pool sends back: items, or the reason there are none."""

    items: list[Item]
    title: str | None
    ttl_seconds: int | None
    warning: str | None
    gap_s: int
    error_kind: str | None = None
    error: str | None = None
    pid: int = 0
    cpu_s: float = 0.0
    rss_kb: int = 0


def parse_and_normalize(body: bytes, content_type: str, url: str, now: datetime,
                        max_future_s: int, member_name: str, home_region: str | None,
                        max_items: int = 500) -> Parsed:
    """Pure stages run in a worker process: bytes in, normalised, tagged, fingerprinted items
    out.

    A feed listing more than ``max_items`` keeps its newest: a news feed carries tens of items,
    and a runaway export of thousands would otherwise cost minutes and a gigabyte per poll,
    every poll.
    """
    try:
        doc = parse_feed(body, content_type)
    except ParseError as exc:
        parsed = Parsed([], None, None, None, 0, exc.kind, str(exc))
    else:
        normalised = normalize_feed(doc, url, now, timedelta(seconds=max_future_s))
        warning = doc.warning
        if len(normalised) > max_items:
            warning = (f"the feed lists {len(normalised)} items; only the newest {max_items} "
                       "are kept")
            normalised = sorted(normalised, key=lambda i: i.published_at,
                                reverse=True)[:max_items]
        found = [enrich(i, member_name=member_name, home_region=home_region) for i in normalised]
        gap = publishing_gap([i.published_at for i in found if not i.date_missing], now)
        title = clean_line(doc.title, MAX_TITLE) if doc.title else None
        parsed = Parsed(found, title or None, doc.ttl_seconds, warning, gap)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return dataclasses.replace(parsed, pid=os.getpid(), cpu_s=usage.ru_utime + usage.ru_stime,
                               rss_kb=peak_rss_kb())


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _default_parse_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _parse_pool(workers: int) -> ProcessPoolExecutor:
    """Parse workers forked from a server that has imported and loaded what they need."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["aggregator.warmup"])
    return ProcessPoolExecutor(workers, mp_context=context)


class Poller:
    """Owns the process-wide resources: HTTP client, DB thread, parse pool."""

    def __init__(self, config: Config, engine: Engine, *, owner: str | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 rng: random.Random | None = None, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics
        self.engine = engine
        self.owner = owner or worker_id()
        self.progress = progress
        self.rng = rng or random.Random()
        self.bounds = Bounds(config.schedule.min_interval, config.schedule.max_interval,
                             config.schedule.max_backoff)
        self.members = {m.id: m for m in config.members}
        self.cluster_window = timedelta(hours=config.cluster.window_hours)
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aggregator-db")
        workers = config.fetch.parse_workers
        if workers is None:
            workers = _default_parse_workers()
        self._parse: Executor | None = _parse_pool(workers) if workers > 0 else None
        self._client: httpx.AsyncClient | None = None
        self._worker_cpu: dict[int, float] = {}
        self._worker_rss: dict[int, int] = {}
        self._stopping = asyncio.Event()
        self._writer = _GroupWriter(self)

    async def __aenter__(self) -> Poller:
        self._client = build_client(self.config)
        await self.db(sync_config, self.engine, self.config, _now())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
        self._db.shutdown(wait=True)
        if self._parse is not None:
            self._parse.shutdown(wait=True, cancel_futures=True)

    def stop(self) -> None:
        """Finish the feeds in flight, start no more."""
        self._stopping.set()

    async def db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, lambda: fn(*args, **kwargs))

    async def run_cycle(self, *, due_only: bool) -> CycleSummary:
        """Poll every due feed (or every feed), in batches so that leases stay short."""
        started = time.monotonic()
        summary = CycleSummary()
        now = _now()
        lease = timedelta(seconds=self.config.schedule.lease_seconds)
        batch = max(self.config.fetch.concurrency * 4, 64)
        blocked = await self.db(blocked_hosts, self.engine, now)
        global_limit = asyncio.Semaphore(self.config.fetch.concurrency)
        host_limits: dict[str, asyncio.Semaphore] = {}
        total = await self.db(count_pollable, self.engine, now, due_only)

        async def one(feed: FeedState) -> None:
            host = host_of(feed.url)
            sem = host_limits.setdefault(host, asyncio.Semaphore(self.config.fetch.per_host))
            async with sem, global_limit:
                if self._stopping.is_set():
                    return  # claimed but not started: its lease is handed back below
                try:
                    await self._poll_one(feed, summary, blocked)
                except Exception as exc:  # e.g. the database is gone: the lease will expire
                    log.exception("feed poll failed", feed=feed.url, error=str(exc))
                    summary.feeds += 1
                    summary.failed += 1
                    summary.errors["internal"] += 1
                    if self.metrics:
                        self.metrics.feed_crashed()
            if self.progress:
                self.progress(summary.feeds, max(total, summary.feeds))

        # Claim more whenever the queue runs low, so one slow feed never holds up a whole batch.
        pending: set[asyncio.Task[None]] = set()
        exhausted = False
        while True:
            if not exhausted and not self._stopping.is_set() and len(pending) <= batch // 2:
                claimed = await self.db(claim_feeds, self.engine, self.owner, now, lease, batch,
                                        due_only)
                exhausted = not claimed
                pending.update(asyncio.create_task(one(f)) for f in claimed)
            if not pending:
                break
            _done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if self._stopping.is_set():
            # Every poll that started is stored (which ended its lease): what this process
            # still holds it claimed and never started.  Another process, or the next start,
            # may poll those at once rather than when the leases run out.
            await self.db(release_leases, self.engine, self.owner)
        if summary.new_items:
            # Buckets twice the window old can never match a new item again.
            await self.db(prune_lsh, self.engine, now - 2 * self.cluster_window)
        summary.duration_s = time.monotonic() - started
        summary.worker_cpu_s = dict(self._worker_cpu)
        summary.worker_rss_kb = dict(self._worker_rss)
        return summary

    async def _poll_one(self, feed: FeedState, summary: CycleSummary,
                        blocked: dict[str, datetime]) -> None:
        now = _now()
        host = host_of(feed.url)
        until = blocked.get(host)
        if until is not None and until > now:
            change = FeedUpdate(outcome="deferred", now=now, next_poll_at=until)
            await self._writer.write(Poll(feed, change))
            summary.feeds += 1
            summary.deferred += 1
            if self.metrics:
                self.metrics.feed_polled(change.outcome, None, None)
            return
        assert self._client is not None
        f = self.config.fetch
        fetch_started = time.monotonic()
        result = await fetch_feed(self._client, feed.url, etag=feed.etag,
                                  last_modified=feed.last_modified,
                                  validators_url=feed.validators_url or feed.url,
                                  max_bytes=f.max_body_bytes, max_redirects=f.max_redirects,
                                  deadline=f.deadline)
        fetch_s = time.monotonic() - fetch_started
        change, new_items = await self._evaluate(feed, result, now)
        if change.outcome == "error" and result.http_status in (429, 503) and result.retry_after:
            wait = retry_after_seconds(result.retry_after, now)
            if wait:
                until = now + timedelta(seconds=min(wait, self.bounds.max_backoff))
                blocked[host] = until
                await self.db(block_host, self.engine, host, until, change.error or "")
        stored = await self._writer.write(Poll(feed, change, new_items))
        self._count(summary, change, stored)
        if self.metrics:
            self.metrics.feed_polled(change.outcome, fetch_s, change.error_kind, stored.new,
                                     stored.updated)
        log.info("feed polled", feed=feed.url, member=feed.member_id, outcome=change.outcome,
                 status=result.http_status, new=stored.new, updated=stored.updated,
                 error=change.error, kind=change.error_kind)

    async def _evaluate(self, feed: FeedState, result: FetchResult, now: datetime,
                        ) -> tuple[FeedUpdate, list[Item]]:
        """Turn a fetch result into the feed's new state and the items to store."""
        moved = result.permanent_url
        if result.status == "error":
            return self._failure(feed, now, result.error_kind or "error", result.error or "",
                                 result.http_status, result.retry_after, moved), []
        hint = server_hint_seconds(ttl=None, cache_control=result.cache_control,
                                   expires=result.expires, now=now)
        common = dict(now=now, http_status=result.http_status, url=moved, etag=result.etag,
                      last_modified=result.last_modified, validators_url=result.final_url)
        body_hash = hashlib.sha256(result.body).hexdigest() if result.status == "ok" else None
        if result.status == "not_modified" or (body_hash and body_hash == feed.body_hash):
            # Same document as last time: same publishing rate, same RSS ttl (server_hint_s
            # keeps the body's ttl), fresh header hints; all within the configured bounds.
            seconds = success_interval(feed.interval_s or self.bounds.min_interval,
                                       max(hint, feed.server_hint_s), self.bounds)
            outcome = "not_modified" if result.status == "not_modified" else "unchanged"
            return FeedUpdate(outcome=outcome, body_hash=body_hash or feed.body_hash,
                              interval_s=feed.interval_s,
                              next_poll_at=next_poll(now, with_jitter(seconds, self.rng)),
                              **common), []  # type: ignore[arg-type]
        parsed = await self._run_parse(result, now, feed.member_id)
        if parsed.error_kind:
            return self._failure(feed, now, parsed.error_kind, parsed.error or "",
                                 result.http_status, None, moved), []
        interval = success_interval(parsed.gap_s, max(hint, parsed.ttl_seconds or 0),
                                    self.bounds)
        return FeedUpdate(outcome="ok", body_hash=body_hash, interval_s=interval,
                          server_hint_s=parsed.ttl_seconds or 0, title=parsed.title,
                          warning=parsed.warning,
                          next_poll_at=next_poll(now, with_jitter(interval, self.rng)),
                          **common), parsed.items  # type: ignore[arg-type]

    async def _run_parse(self, result: FetchResult, now: datetime, member_id: str) -> Parsed:
        member = self.members.get(member_id)
        args = (result.body, result.content_type, result.final_url, now,
                self.config.schedule.max_future_skew, member.name if member else member_id,
                member.region if member else None, self.config.fetch.max_items_per_feed)
        loop = asyncio.get_running_loop()
        try:
            if self._parse is None:
                return await asyncio.to_thread(parse_and_normalize, *args)
            parsed = await loop.run_in_executor(self._parse, parse_and_normalize, *args)
            self._worker_cpu[parsed.pid] = parsed.cpu_s
            self._worker_rss[parsed.pid] = parsed.rss_kb
            return parsed
        except Exception as exc:  # a crashed worker must cost one feed, not the cycle
            return Parsed([], None, None, None, 0, "parser_crash",
                          f"parser failed: {type(exc).__name__}: {exc}")

    def _failure(self, feed: FeedState, now: datetime, kind: str, message: str,
                 status: int | None, retry_after: str | None, moved: str | None) -> FeedUpdate:
        if kind == "gone":
            return FeedUpdate(outcome="gone", now=now, next_poll_at=now, http_status=status,
                              error_kind=kind, url=moved,
                              error=f"{message}: the feed was removed; disabled until re-enabled")
        wait = min(retry_after_seconds(retry_after, now) or 0, self.bounds.max_backoff)
        backoff = with_jitter(failure_interval(feed.consecutive_errors + 1, None, self.bounds),
                              self.rng, spread=0.25)
        # The server said when: come back then (and a little later, never sooner), not at a
        # backoff jittered past it.
        seconds = backoff if backoff > wait else round(wait * self.rng.uniform(1.0, 1.02)) + 1
        return FeedUpdate(outcome="error", now=now, next_poll_at=next_poll(now, seconds),
                          http_status=status, error_kind=kind, error=message, url=moved)

    @staticmethod
    def _count(summary: CycleSummary, change: FeedUpdate, stored: StoreResult) -> None:
        summary.feeds += 1
        if change.outcome == "ok":
            summary.ok += 1
        elif change.outcome in ("unchanged", "not_modified"):
            summary.not_modified += 1
        else:
            summary.failed += 1
            summary.errors[change.error_kind or "error"] += 1
        summary.new_items += stored.new
        summary.updated_items += stored.updated


class _GroupWriter:
    """Group commit for the database thread: the polls that finish while one transaction runs
    are written together by the next (``store.record_polls``).

    The first poll of a quiet moment is written at once, alone; under load, batches grow by
    themselves up to ``MAX_POLLS`` polls or ``MAX_ITEMS`` items.  Should a batch fail, its polls
    are written again one by one, so that one poll the database refuses costs only that feed.
    """

    MAX_POLLS = 64
    MAX_ITEMS = 2000

    def __init__(self, poller: Poller) -> None:
        self.poller = poller
        self.queue: list[tuple[Poll, asyncio.Future[StoreResult]]] = []
        self.task: asyncio.Task[None] | None = None

    async def write(self, poll: Poll) -> StoreResult:
        future: asyncio.Future[StoreResult] = asyncio.get_running_loop().create_future()
        self.queue.append((poll, future))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self.queue:
            batch = self._take()
            polls = [p for p, _ in batch]
            try:
                results = await self._store(polls)
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc)
                    continue
                for poll, future in batch:
                    try:
                        _settle(future, (await self._store([poll]))[0])
                    except Exception as one:
                        _settle(future, one)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                _settle(future, result)

    def _take(self) -> list[tuple[Poll, asyncio.Future[StoreResult]]]:
        count = items = 0
        for poll, _ in self.queue:
            if count and (count >= self.MAX_POLLS or items + len(poll.items) > self.MAX_ITEMS):
                break
            count += 1
            items += len(poll.items)
        batch, self.queue = self.queue[:count], self.queue[count:]
        return batch

    async def _store(self, polls: list[Poll]) -> list[StoreResult]:
        p = self.poller
        return await p.db(record_polls, p.engine, polls, p.cluster_window)


def _settle(future: asyncio.Future[StoreResult], outcome: StoreResult | BaseException) -> None:
    if future.done():  # the poll's task was cancelled meanwhile
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _now() -> datetime:
    return datetime.now(UTC)
