"""Rewrite ``output_dir`` from the store: after a poll cycle that changed something, and on
``aggregator publish``.

Renderers are pure, so the same store gives the same bytes: a file is rewritten only when its
bytes differ (each write atomic: temporary file, fsync, rename), and a publish after a cycle
renders only what the cycle's changes can have touched (their members, their stories' places,
the members' sitemaps, and the front page), found from ``items.changed_at`` since the last
publish.  A full publish (the first one, ``aggregator publish``, a changed config or renderer)
renders everything and removes files nothing produces any more.  One process publishes at a time
(a lease in the database), so two workers never interleave their writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection, Engine

from .. import leases
from ..config import Config
from ..db import item_regions, items, publish_state
from ..files import write_atomic
from ..gazetteer import load as load_gazetteer
from . import websub
from .feeds import (
    render_articles_rss,
    render_stories_atom,
    render_stories_json,
    render_stories_rss,
)
from .html import Page, render_page
from .model import FeedInfo, Place, Site, Source, Story
from .sitemaps import news_sitemaps, sitemap_index
from .snapshot import Reader, site_of, sources_of
from .sources import render_sources_opml

log = structlog.get_logger("aggregator.publish")

# Bump when a renderer's output changes: the next publish is then a full one.
RENDER_VERSION = 1
# Items changed this long before the last publish's newest change are looked at again: a poll
# transaction that started earlier may have committed after that publish read the store.
OVERLAP = timedelta(minutes=15)
LEASE = timedelta(minutes=10)
LOCK_NAME = "publish"

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
    the publish lease."""
    started = time.perf_counter()
    if not leases.acquire(engine, LOCK_NAME, owner, now, LEASE):
        return PublishResult(skipped="another process is publishing")
    try:
        result = _publish(engine, config, now, full)
    finally:
        leases.release(engine, LOCK_NAME, owner)
    hub = config.publish.websub_hub
    feeds = [site_of(config).url(p) for p in result.written if _is_feed(p)]
    if hub and feeds:
        result.announced = announce(hub, feeds)
    result.duration_s = time.perf_counter() - started
    log.info("published", **result.as_dict())
    return result


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
        files, sitemaps = _render(reader, site, sources, places, plan, config, now, old_sitemaps)
    result = PublishResult(full=full, rendered=len(files))
    for path, data in files.items():
        try:
            if _write_if_changed(out / path, data):
                result.written.append(path)
        except OSError as exc:
            # Nothing recorded as published: the next publish tries the same files again,
            # and every file already in place stays whole (each write is a rename).
            raise PublishError(f"cannot write {out / path}: {exc.strerror or exc}") from exc
    if full:
        result.deleted = _remove_stale(out, files)
    mark = newest_change if newest_change is not None else now
    _save_state(engine, {"key": key, "mark": mark.isoformat(), "now": now.isoformat(),
                         "sitemaps": json.dumps(sitemaps, sort_keys=True)})
    return result


def _render(reader: Reader, site: Site, sources: dict[str, Source], places: list[Place],
            plan: _Plan, config: Config, now: datetime,
            old_sitemaps: dict[str, str]) -> tuple[dict[str, bytes], dict[str, str]]:
    limit = config.publish.max_items
    files: dict[str, bytes] = {}
    lang = site.language

    def stories_feeds(stem: str, home: str, title: str, description: str,
                      stories: list[Story], json_feed: bool) -> list[tuple[str, str]]:
        atom_path = "atom.xml" if stem == "feed" else f"{stem}.atom"
        rss = FeedInfo(f"{stem}.xml", title, description, home, lang)
        atom = FeedInfo(atom_path, title, description, home, lang)
        files[rss.path] = render_stories_rss(site, rss, stories)
        files[atom.path] = render_stories_atom(site, atom, stories)
        links = [("RSS", rss.path), ("Atom", atom.path)]
        if json_feed:
            info = FeedInfo(f"{stem}.json", title, description, home, lang)
            files[info.path] = render_stories_json(site, info, stories)
            links.append(("JSON Feed", info.path))
        return links

    front = reader.stories(reader.newest_cluster_ids(limit))
    links = stories_feeds("feed", "index.html", site.name,
                          f"Berita gabungan dari {len(sources)} media anggota {site.name}",
                          front, json_feed=True)
    files["index.html"] = render_page(site, Page(path="index.html", title=site.name, place=None,
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
        files[home] = render_page(site, Page(path=home, title=title, place=place,
                                             stories=tuple(stories), places=tuple(places),
                                             feeds=tuple(links)))
    for member_id in sorted(plan.members):
        src = sources[member_id]
        info = FeedInfo(f"members/{member_id}.xml", f"{src.name} · {site.name}",
                        f"Berita terbaru {src.name}", "index.html", src.language)
        files[info.path] = render_articles_rss(site, info, reader.member_articles(member_id,
                                                                                  limit))
    sitemaps = {p: m for p, m in old_sitemaps.items()
                if _sitemap_member(p) in sources and _sitemap_member(p) not in plan.sitemaps}
    since = now - timedelta(hours=config.publish.sitemap_hours)
    for member_id in sorted(plan.sitemaps):
        recent = reader.recent_articles(member_id, since)
        lastmod = max((a.published_at for a in recent), default=None)
        for path, data in news_sitemaps(site, sources[member_id], recent, now,
                                        hours=config.publish.sitemap_hours):
            files[path] = data
            sitemaps[path] = lastmod.isoformat() if lastmod else ""
    files["sitemap.xml"] = sitemap_index(
        site, [(p, datetime.fromisoformat(m) if m else None) for p, m in sorted(sitemaps.items())])
    files["sources.opml"] = render_sources_opml(site, list(sources.values()))
    return files, sitemaps


def _sitemap_member(path: str) -> str:
    """``sitemaps/news-<id>.xml`` or ``sitemaps/news-<id>.2.xml`` -> ``<id>``."""
    return path.removeprefix("sitemaps/news-").split(".", 1)[0]


def _dirty(conn: Connection, state: dict[str, str], now: datetime, hours: timedelta) -> _Plan:
    since = datetime.fromisoformat(state["mark"]) - OVERLAP
    changed = conn.execute(select(items.c.member_id, items.c.cluster_id)
                           .where(items.c.changed_at >= since)).all()
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
        .where(items.c.published_at >= last_now - hours - OVERLAP,
               items.c.published_at < now - hours)).scalars())
    return _Plan(members, places, members | aged)


def _config_key(site: Site, sources: dict[str, Source], config: Config,
                places: Iterable[Place]) -> str:
    """Everything besides the items that shows in many files: when it changes, publish all."""
    blob = json.dumps([RENDER_VERSION, repr(site), [repr(s) for s in sources.values()],
                       config.publish.model_dump(), [p.code for p in places]], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _write_if_changed(path: Path, data: bytes) -> bool:
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    write_atomic(path, data)
    return True


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
