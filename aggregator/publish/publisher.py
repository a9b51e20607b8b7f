"""Rewrite ``output_dir`` from the store: after a poll cycle that changed something, and on
``aggregator publish``.

Renderers are pure, so the same store gives the same bytes: a file is rewritten only when its
bytes differ (each write atomic: temporary file, fsync, rename; every changed file is written
before any is renamed, so a full disk leaves the old output as it was), and a publish after a cycle
renders only what the cycle's changes can have touched (their members, their stories' places,
the members' sitemaps, and the front page), found from ``items.changed_at`` since the last
publish.  A full publish (the first one, ``aggregator publish``, a changed config or renderer)
renders everything and removes files nothing produces any more.  One process publishes at a time
(a lease in the database), so two workers never interleave their writes; one that finds the lease
taken leaves its publish to the holder, which publishes again before it is done.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from .. import leases
from ..config import Config
from ..db import CHANGES_KEY, item_regions, items, publish_state, serialize
from ..files import discard, is_temporary, stage, sync_dirs
from ..gazetteer import load as load_gazetteer
from . import websub
from .feeds import FeedRenderer
from .html import Page, PageRenderer
from .model import FeedInfo, Place, Site, Source, Story
from .sitemaps import news_sitemaps, sitemap_index
from .snapshot import Reader, site_of, sources_of
from .sources import render_sources_opml

log = structlog.get_logger("aggregator.publish")

# Bump when a renderer's output changes: the next publish is then a full one.
RENDER_VERSION = 1
# Items changed this long before the last publish's newest change are looked at again: on
# PostgreSQL a transaction that took its changed_at earlier may commit after a publish read the
# store (transactions run side by side).  On SQLite writers and readers take turns and
# changed_at is taken inside the transaction, so nothing can slip behind the mark.
OVERLAP = {"sqlite": timedelta(0), "postgresql": timedelta(minutes=2)}
LEASE = timedelta(minutes=10)
LOCK_NAME = "publish"
# Publishes in a row at most, while other processes that found the lease taken keep leaving
# their publish to this one (a note in publish_state under OWED_KEY).
ROUNDS = 10
OWED_KEY = "publish_owed"
# The store's version (db.CHANGES_KEY) that the last finished publish rendered.
PUBLISHED_KEY = "published_changes"

# Our own file names under output_dir: a full publish removes those nothing produced.
_OWNED_DIRS = ("regions", "members", "sitemaps")


class PublishError(Exception):
    """The output could not be written (read-only folder, full disk): a clear message, and the
    previous files left in place."""


@dataclass
class PublishResult:
    full: bool = False
    rendered: int = 0
    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    announced: int = 0
    skipped: str | None = None
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"full": self.full, "rendered": self.rendered, "written": len(self.written),
                "deleted": len(self.deleted), "announced": self.announced,
                "skipped": self.skipped, "duration_s": round(self.duration_s, 3)}


@dataclass
class _Plan:
    """What one publish renders besides the front page, the index, and the OPML."""

    members: set[str]
    places: set[str]  # codes
    sitemaps: set[str]  # member ids


Announcer = Callable[[str, Sequence[str]], int]


def publish(engine: Engine, config: Config, now: datetime, *, owner: str, full: bool = False,
            announce: Announcer = websub.announce) -> PublishResult:
    """Publish what changed (everything when ``full``); a no-op while another process holds
    the publish lease, for that process then owes this one a publish, and does it."""
    started = time.perf_counter()
    result: PublishResult | None = None
    for _ in range(ROUNDS):
        if not _take_lease(engine, owner, now):
            break
        try:
            step = _publish(engine, config, now, full)
        finally:
            owed = _give_back_lease(engine, owner)
        result = step if result is None else _merged(result, step)
        if not owed:
            break
        now, full = now + timedelta(seconds=time.perf_counter() - started), False
    if result is None:
        return PublishResult(skipped="another process is publishing")
    hub = config.publish.websub_hub
    feeds = [site_of(config).url(p) for p in result.written if _is_feed(p)]
    if hub and feeds:
        result.announced = announce(hub, feeds)
    result.duration_s = time.perf_counter() - started
    log.info("published", **result.as_dict())
    return result


def _take_lease(engine: Engine, owner: str, now: datetime) -> bool:
    """The publish lease; or, while another process holds it, a note that the holder owes a
    publish: whatever this process stored is committed already, and the holder's publish may
    have read the store before that.

    Taking (or owing) and giving back (and reading what is owed) are transactions one after
    the other, so a note is never written after the holder last looked.
    """
    with engine.begin() as conn:
        serialize(conn, "sindikasi:publish-lease")
        taken = leases.take(conn, LOCK_NAME, owner, now, LEASE)
        # Taken: this publish reads the store after every change of those who owed it.
        _put(conn, OWED_KEY, "" if taken else owner)
    return taken


def _give_back_lease(engine: Engine, owner: str) -> bool:
    """Release the lease; whether another process found it taken meanwhile (see above)."""
    with engine.begin() as conn:
        serialize(conn, "sindikasi:publish-lease")
        leases.give_back(conn, LOCK_NAME, owner)
        return bool(conn.scalar(select(publish_state.c.value)
                                .where(publish_state.c.key == OWED_KEY)))


def _put(conn: Connection, key: str, value: str) -> None:
    row = publish_state.c.key == key
    if not conn.execute(update(publish_state).where(row).values(value=value)).rowcount:
        conn.execute(insert(publish_state).values(key=key, value=value))


def _merged(first: PublishResult, then: PublishResult) -> PublishResult:
    first.rendered += then.rendered
    first.written += [p for p in then.written if p not in first.written]
    first.deleted += then.deleted
    return first


def _publish(engine: Engine, config: Config, now: datetime, full: bool) -> PublishResult:
    site, sources = site_of(config), sources_of(config)
    out = config.output_path
    with engine.connect() as conn:
        state = {k: v for k, v in conn.execute(select(publish_state.c.key, publish_state.c.value))}
        reader = Reader(conn, sources, load_gazetteer())
        places = reader.places_with_items()
        key = _config_key(site, sources, config, places)
        full = (full or state.get("key") != key or "mark" not in state
                or not (out / "feed.xml").exists())
        newest_change = conn.execute(select(func.max(items.c.changed_at))).scalar()
        hours = timedelta(hours=config.publish.sitemap_hours)
        if full:
            plan = _Plan(set(sources), {p.code for p in places}, set(sources))
        else:
            plan = _dirty(conn, state, now, hours)
        old_sitemaps: dict[str, str] = {} if full else json.loads(state.get("sitemaps", "{}"))
        # Before staging starts: these are a killed publisher's, never this one's.
        _remove_leftovers(out)
        with _Stager(out) as stager:  # each file is staged while the next ones are rendered
            files, sitemaps = _render(reader, site, sources, places, plan, config, now,
                                      old_sitemaps, stager.offer)
            staged = stager.finish()
    result = PublishResult(full=full, rendered=len(files))
    # Nothing is recorded as published until every file is in place: after a failure (or a
    # crash) the next publish renders the same changes again.
    result.written = _rename_all(out, staged)
    if full:
        result.deleted = _remove_stale(out, files)
    mark = newest_change if newest_change is not None else now
    _save_state(engine, {"key": key, "mark": mark.isoformat(), "now": now.isoformat(),
                         "sitemaps": json.dumps(sitemaps, sort_keys=True),
                         PUBLISHED_KEY: state.get(CHANGES_KEY, "")})
    return result


def _render(reader: Reader, site: Site, sources: dict[str, Source], places: list[Place],
            plan: _Plan, config: Config, now: datetime, old_sitemaps: dict[str, str],
            emit: Callable[[str, bytes], None]) -> tuple[dict[str, bytes], dict[str, str]]:
    """Every file of the plan by path, and the sitemaps' last changes; each file is also handed
    to ``emit`` as soon as it is rendered."""
    limit = config.publish.max_items
    files = _Emitting(emit)
    lang = site.language
    feeds = FeedRenderer(site)
    pages = PageRenderer(site)

    def stories_feeds(stem: str, home: str, title: str, description: str,
                      stories: list[Story], json_feed: bool) -> list[tuple[str, str]]:
        atom_path = "atom.xml" if stem == "feed" else f"{stem}.atom"
        rss = FeedInfo(f"{stem}.xml", title, description, home, lang)
        atom = FeedInfo(atom_path, title, description, home, lang)
        files[rss.path] = feeds.stories_rss(rss, stories)
        files[atom.path] = feeds.stories_atom(atom, stories)
        links = [("RSS", rss.path), ("Atom", atom.path)]
        if json_feed:
            info = FeedInfo(f"{stem}.json", title, description, home, lang)
            files[info.path] = feeds.stories_json(info, stories)
            links.append(("JSON Feed", info.path))
        return links

    front = reader.stories(reader.newest_cluster_ids(limit))
    links = stories_feeds("feed", "index.html", site.name,
                          f"Berita gabungan dari {len(sources)} media anggota {site.name}",
                          front, json_feed=True)
    files["index.html"] = pages.render(Page(path="index.html", title=site.name, place=None,
                                            stories=tuple(front), places=tuple(places),
                                            feeds=tuple(links)))
    for place in places:
        if place.code not in plan.places:
            continue
        stories = [s for s in reader.stories(reader.cluster_ids_of_place(place.code, limit))
                   if any(p.code == place.code for p in s.places)]
        home = f"regions/{place.slug}.html"
        title = f"{place.name} · {site.name}"
        links = stories_feeds(f"regions/{place.slug}", home, title,
                              f"Berita tentang {place.name} dari media anggota {site.name}",
                              stories, json_feed=False)
        files[home] = pages.render(Page(path=home, title=title, place=place,
                                        stories=tuple(stories), places=tuple(places),
                                        feeds=tuple(links)))
    sitemaps = {p: m for p, m in old_sitemaps.items()
                if _sitemap_member(p) in sources and _sitemap_member(p) not in plan.sitemaps}
    since = now - timedelta(hours=config.publish.sitemap_hours)
    # A member's feed and its sitemaps are read together: the sitemap's articles are the newest.
    for member_id, newest, recent in reader.member_feeds(sorted(plan.members | plan.sitemaps),
                                                         limit, since):
        src = sources[member_id]
        if member_id in plan.members:
            info = FeedInfo(f"members/{member_id}.xml", f"{src.name} · {site.name}",
                            f"Berita terbaru {src.name}", "index.html", src.language)
            files[info.path] = feeds.articles_rss(info, newest)
        if member_id in plan.sitemaps:
            lastmod = max((a.published_at for a in recent), default=None)
            for path, data in news_sitemaps(site, src, recent, now,
                                            hours=config.publish.sitemap_hours):
                files[path] = data
                sitemaps[path] = lastmod.isoformat() if lastmod else ""
    files["sitemap.xml"] = sitemap_index(
        site, [(p, datetime.fromisoformat(m) if m else None) for p, m in sorted(sitemaps.items())])
    files["sources.opml"] = render_sources_opml(site, list(sources.values()))
    return files, sitemaps


class _Emitting(dict[str, bytes]):
    """The rendered files, each also handed on as it is added (to be staged meanwhile)."""

    def __init__(self, emit: Callable[[str, bytes], None]) -> None:
        super().__init__()
        self._emit = emit

    def __setitem__(self, path: str, data: bytes) -> None:
        super().__setitem__(path, data)
        self._emit(path, data)


def _sitemap_member(path: str) -> str:
    """``sitemaps/news-<id>.xml`` or ``sitemaps/news-<id>.2.xml`` -> ``<id>``."""
    return path.removeprefix("sitemaps/news-").split(".", 1)[0]


def _dirty(conn: Connection, state: dict[str, str], now: datetime, hours: timedelta) -> _Plan:
    overlap = OVERLAP.get(conn.dialect.name, max(OVERLAP.values()))
    since = datetime.fromisoformat(state["mark"]) - overlap
    # The store's version is what the last publish read before reading the items: no commit
    # that changed items came after it, so nothing can have slipped behind the mark, and the
    # overlap has nothing to catch.  Without this, a publish on PostgreSQL re-rendered whatever
    # changed in the two minutes before the last one (every file, after a cold cycle) even when
    # it only came because sitemaps age.
    settled = state.get(CHANGES_KEY, "") == state.get(PUBLISHED_KEY, "")
    changed = [] if settled else conn.execute(
        select(items.c.member_id, items.c.cluster_id).where(items.c.changed_at >= since)).all()
    members = {r.member_id for r in changed}
    cluster_ids = sorted({r.cluster_id for r in changed if r.cluster_id is not None})
    places: set[str] = set()
    for start in range(0, len(cluster_ids), 500):
        places.update(conn.execute(
            select(item_regions.c.code).distinct()
            .select_from(item_regions.join(items, items.c.id == item_regions.c.item_id))
            .where(items.c.cluster_id.in_(cluster_ids[start:start + 500]))).scalars())
    # Articles that left the sitemaps' window since the last publish.
    last_now = datetime.fromisoformat(state.get("now", state["mark"]))
    aged = set(conn.execute(
        select(items.c.member_id).distinct()
        .where(items.c.published_at >= last_now - hours - overlap,
               items.c.published_at < now - hours)).scalars())
    return _Plan(members, places, members | aged)


def _config_key(site: Site, sources: dict[str, Source], config: Config,
                places: Iterable[Place]) -> str:
    """Everything besides the items that shows in many files: when it changes, publish all."""
    blob = json.dumps([RENDER_VERSION, repr(site), [repr(s) for s in sources.values()],
                       config.publish.model_dump(), [p.code for p in places]], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _differs(path: Path, data: bytes) -> bool:
    try:
        return not (path.stat().st_size == len(data) and path.read_bytes() == data)
    except OSError:  # missing, or something in the way: writing it will say what is wrong
        return True


# Files staged at once.  Staging is mostly waiting for fsync, which releases the GIL; the file
# system commits fsyncs that overlap together, so a full publish (thousands of files, each
# fsynced before it may be renamed over the old one) waits for far fewer disk flushes, and the
# waiting happens while the next files are rendered.
STAGERS = 8


class _Stager:
    """Writes each changed file beside its target (``files.stage``) as soon as it is offered.

    Nothing is renamed here: ``finish`` returns the staged files once every one is on disk, and
    the caller renames them all (``_rename_all``).  A full disk or a read-only folder therefore
    fails before any file is replaced, and the previous output stays as it was, not half old and
    half new.  On a failure, or when the block is left early (rendering failed), every staged
    file is discarded.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self._pool = ThreadPoolExecutor(STAGERS, thread_name_prefix="publish-stage")
        self._work: dict[str, Future[Path | None]] = {}

    def __enter__(self) -> _Stager:
        return self

    def __exit__(self, *exc: object) -> None:
        self._abandon()

    def offer(self, path: str, data: bytes) -> None:
        """Stage ``data`` for ``path`` unless the file already holds exactly these bytes."""
        earlier = self._work.pop(path, None)
        if earlier is not None:  # offered twice: the last one counts
            self._discard([earlier])
        self._work[path] = self._pool.submit(_stage_changed, self.out / path, data)

    def finish(self) -> dict[str, Path]:
        """The staged files (only those whose bytes changed) in the order offered, once all
        are on disk; after a failure none, and PublishError naming the first file (in that
        order) that failed."""
        staged: dict[str, Path] = {}
        for path, future in self._work.items():
            try:
                tmp = future.result()
            except OSError as exc:
                self._abandon()
                raise PublishError(f"cannot write {self.out / path}: {exc.strerror or exc}") \
                    from exc
            if tmp is not None:
                staged[path] = tmp
        self._work = {}
        self._pool.shutdown()
        return staged

    def _abandon(self) -> None:
        """Stop staging and discard whatever was staged (nothing after ``finish``)."""
        for future in self._work.values():
            future.cancel()
        self._pool.shutdown(wait=True)
        self._discard(self._work.values())
        self._work = {}

    @staticmethod
    def _discard(futures: Iterable[Future[Path | None]]) -> None:
        for future in futures:
            with contextlib.suppress(Exception):  # a failed or cancelled one staged nothing
                tmp = future.result()
                if tmp is not None:
                    discard([tmp])


def _stage_changed(target: Path, data: bytes) -> Path | None:
    return stage(target, data) if _differs(target, data) else None


def _rename_all(out: Path, staged: dict[str, Path]) -> list[str]:
    """Rename the staged files into place: each file stays whole (readers and a crash never see
    a torn one), and the renames are made durable together."""
    current = ""
    try:
        for current, tmp in staged.items():
            os.replace(tmp, out / current)
        sync_dirs((out / p).parent for p in staged)
    except OSError as exc:
        discard(staged.values())
        raise PublishError(f"cannot write {out / current}: {exc.strerror or exc}") from exc
    return list(staged)


def _remove_leftovers(out: Path) -> None:
    """Temporary files of a publisher that was killed while writing: they are never renamed
    now (one publisher at a time, and this one holds the lease)."""
    folders = [out, *(out / d for d in _OWNED_DIRS)]
    for path in (p for folder in folders if folder.is_dir() for p in folder.iterdir()):
        if is_temporary(path.name) and path.is_file():
            with contextlib.suppress(OSError):  # a read-only folder fails clearly below
                path.unlink()


def _remove_stale(out: Path, files: dict[str, bytes]) -> list[str]:
    removed = []
    for folder in _OWNED_DIRS:
        for path in _walk(out / folder):
            rel = path.relative_to(out).as_posix()
            if rel not in files and not path.name.startswith("."):
                path.unlink()
                removed.append(rel)
    return sorted(removed)


def _walk(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        for base, _, names in os.walk(folder):
            for name in names:
                yield Path(base) / name


def _is_feed(path: str) -> bool:
    return not path.startswith("sitemaps/") and path != "sitemap.xml" and \
        path.endswith((".xml", ".atom", ".json"))


def _save_state(engine: Engine, values: dict[str, str]) -> None:
    with engine.begin() as conn:
        conn.execute(delete(publish_state).where(publish_state.c.key.in_(list(values))))
        conn.execute(insert(publish_state), [{"key": k, "value": v} for k, v in values.items()])


def unpublished(engine: Engine) -> bool:
    """Whether the store holds changes that no publish has finished writing out.

    A cycle that finds nothing new publishes nothing; after a crash (in a cycle, after storing,
    or in the middle of a publish) or a failed publish, this is how the next run knows it still
    has to.  The store's version (see ``db.CHANGES_KEY``) changes with every commit that
    changes items; a publish records the version it rendered.
    """
    keys = (CHANGES_KEY, PUBLISHED_KEY)
    with engine.connect() as conn:
        state: dict[str, str] = {k: v for k, v in conn.execute(
            select(publish_state.c.key, publish_state.c.value)
            .where(publish_state.c.key.in_(keys)))}
    return state.get(CHANGES_KEY, "") != state.get(PUBLISHED_KEY, "")
