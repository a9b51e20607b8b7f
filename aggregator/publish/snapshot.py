"""Read what the renderers need from the store: the I/O edge of publishing.

Every query is bounded (the newest ``limit`` stories of a feed, the last hours of a member), so a
publish costs the same whether the store holds a week or five years of items.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, bindparam, select
from sqlalchemy.engine import Connection

from ..config import Config
from ..db import clusters, item_regions, items
from ..gazetteer import Gazetteer
from .model import Article, Place, Site, Source, Story

# The tagger falls back on a member's home region when an item names no place; such a tag says
# where the outlet is, not what the story is about, so a story takes its places from the copies
# that name them.
_FALLBACK_RULE = "(fallback)"


def site_of(config: Config) -> Site:
    a = config.association
    return Site(name=a.name, base_url=a.base_url, language=a.language, timezone=a.timezone,
                contact_url=a.contact_url, websub_hub=config.publish.websub_hub)


def sources_of(config: Config) -> dict[str, Source]:
    return {m.id: Source(id=m.id, name=m.name, site=m.site, feed_url=m.feeds[0],
                         language=config.member_language(m), publication=m.publication or m.name,
                         region=m.region)
            for m in config.members}


class Reader:
    """Builds model values from rows; one per publish, on one connection (one consistent view
    on PostgreSQL's repeatable read, one read transaction on SQLite).

    A full publish reads every member's newest articles, their recent ones for the sitemaps and
    the stories that list them: the same items several times over.  Places, tags and articles
    are therefore remembered by code and item id for the life of the reader, and the per-member
    statements are built once and executed with new parameters.
    """

    # Members whose articles are read before their tags are fetched in one go: a member's items
    # are few, so tags per member would be a query per member for a handful of rows.
    MEMBER_BATCH = 100

    def __init__(self, conn: Connection, sources: dict[str, Source], g: Gazetteer) -> None:
        self.conn = conn
        self.sources = sources
        self.g = g
        # Stories by cluster id: the front page and the region feeds overlap (Kabupaten Sumenep,
        # Madura, Jawa Timur...), and each story is read once per publish.
        self._stories: dict[int, Story] = {}
        self._places: dict[str, Place | None] = {}
        self._tag_cache: dict[int, list[tuple[Place, bool]]] = {}
        self._built: dict[int, tuple[Article, int | None, bool] | None] = {}
        order = (items.c.published_at.desc(), items.c.id.desc())
        mine = items.c.member_id == bindparam("member_id")
        self._newest_of_member = (select(*self._COLUMNS).where(mine).order_by(*order)
                                  .limit(bindparam("limit", type_=Integer)))
        self._recent_of_member = (select(*self._COLUMNS)
                                  .where(mine, items.c.published_at >= bindparam("since"))
                                  .order_by(*order))

    # --- places ----------------------------------------------------------------------------
    def place(self, code: str) -> Place | None:
        try:
            return self._places[code]
        except KeyError:
            r = self.g.regions.get(code)
            found = Place(r.code, r.name, r.slug, r.level) if r is not None else None
            self._places[code] = found
            return found

    def places_with_items(self) -> list[Place]:
        codes = self.conn.execute(select(item_regions.c.code).distinct()).scalars().all()
        found = [p for p in map(self.place, codes) if p is not None]
        return sorted(found, key=lambda p: p.slug)

    def _tags(self, item_ids: Iterable[int]) -> dict[int, list[tuple[Place, bool]]]:
        """Each item's places, most confident first, flagged when only a fallback."""
        cache = self._tag_cache
        wanted = set(item_ids)
        ids = sorted(wanted.difference(cache))
        for i in ids:
            cache[i] = []
        for start in range(0, len(ids), 500):
            rows = self.conn.execute(
                select(item_regions.c.item_id, item_regions.c.code, item_regions.c.evidence)
                .where(item_regions.c.item_id.in_(ids[start:start + 500]))
                .order_by(item_regions.c.item_id, item_regions.c.confidence.desc(),
                          item_regions.c.code))
            for item_id, code, evidence in rows:
                place = self.place(code)
                if place is not None:
                    cache[item_id].append((place, _FALLBACK_RULE in evidence))
        return {i: cache[i] for i in wanted if cache[i]}

    # --- articles --------------------------------------------------------------------------
    _COLUMNS = (items.c.id, items.c.member_id, items.c.url, items.c.link, items.c.title,
                items.c.summary, items.c.content_html, items.c.author, items.c.published_at,
                items.c.updated_at, items.c.cluster_id)

    def _articles(self, rows: Sequence[Any]) -> list[tuple[Article, int | None, bool]]:
        """(article, cluster id, placed only by fallback) for rows of ``_COLUMNS``.

        Rows are unpacked as tuples (``row[0]`` is the id): reading columns by name costs more
        than building the article."""
        built = self._built
        tags = self._tags(r[0] for r in rows if r[0] not in built)
        out = []
        for r in rows:
            try:
                found = built[r[0]]
            except KeyError:
                found = built[r[0]] = self._article(r, tags.get(r[0], []))
            if found is not None:
                out.append(found)
        return out

    def _article(self, row: Any, own: list[tuple[Place, bool]]
                 ) -> tuple[Article, int | None, bool] | None:
        (item_id, member_id, url, link, title, summary, content_html, author, published_at,
         updated_at, cluster_id) = row
        src = self.sources.get(member_id)
        url = url or link
        if src is None or not url:  # a member removed from feeds.yaml is not published
            return None
        article = Article(
            id=item_id, source=src, url=url, title=title,
            summary=summary, content_html=content_html,
            author=author, published_at=published_at,
            updated_at=updated_at,
            places=tuple(p for p, _ in own))
        return article, cluster_id, any(fb for _, fb in own)

    def member_feeds(self, member_ids: Iterable[str], limit: int, since: datetime
                     ) -> Iterator[tuple[str, list[Article], list[Article]]]:
        """(member, its newest ``limit`` articles, its articles published since ``since``) for
        each member, in the order given, with one query per member where two were needed.

        The recent articles are the newest ones, so they are a prefix of the newest ``limit``
        unless all ``limit`` of those are recent; only then are they read on their own.
        """
        wanted = list(member_ids)
        for start in range(0, len(wanted), self.MEMBER_BATCH):
            batch: list[tuple[str, Sequence[Any], Sequence[Any]]] = []
            for member_id in wanted[start:start + self.MEMBER_BATCH]:
                newest = self.conn.execute(self._newest_of_member,
                                           {"member_id": member_id, "limit": limit}).all()
                if len(newest) == limit and newest[-1][_PUBLISHED] >= since:
                    recent = self.conn.execute(self._recent_of_member,
                                               {"member_id": member_id, "since": since}).all()
                else:
                    recent = [r for r in newest if r[_PUBLISHED] >= since]
                batch.append((member_id, newest, recent))
            self._tags(r[0] for _, newest, recent in batch for r in (*newest, *recent)
                       if r[0] not in self._built)
            for member_id, newest, recent in batch:
                yield (member_id, [a for a, _, _ in self._articles(newest)],
                       [a for a, _, _ in self._articles(recent)])

    # --- stories ---------------------------------------------------------------------------
    def newest_cluster_ids(self, limit: int) -> list[int]:
        return list(self.conn.execute(
            select(clusters.c.id).order_by(clusters.c.first_published_at.desc(),
                                           clusters.c.id.desc()).limit(limit)).scalars())

    def cluster_ids_of_place(self, code: str, limit: int) -> list[int]:
        """The newest stories with a copy tagged ``code``: walks the place's tags newest first
        (an index range) until enough distinct clusters are found."""
        found: dict[int, None] = {}
        offset, page = 0, max(4 * limit, 200)
        while len(found) < limit:
            rows = self.conn.execute(
                select(items.c.cluster_id)
                .select_from(item_regions.join(items, items.c.id == item_regions.c.item_id))
                .where(item_regions.c.code == code, items.c.cluster_id.is_not(None),
                       ~item_regions.c.evidence.contains(_FALLBACK_RULE))
                .order_by(item_regions.c.published_at.desc(), item_regions.c.item_id.desc())
                .offset(offset).limit(page)).scalars().all()
            for cid in rows:
                found.setdefault(cid)
            if len(rows) < page:
                break
            offset += page
        return list(found)[:limit]

    def stories(self, cluster_ids: Sequence[int]) -> list[Story]:
        """The stories of these clusters, newest first."""
        missing = [c for c in cluster_ids if c not in self._stories]
        for start in range(0, len(missing), 500):
            for story in self._read_stories(missing[start:start + 500]):
                self._stories[story.id] = story
        found = [self._stories[c] for c in set(cluster_ids) if c in self._stories]
        found.sort(key=lambda s: (s.published_at, s.id), reverse=True)
        return found

    def _read_stories(self, cluster_ids: Sequence[int]) -> list[Story]:
        heads = {r.id: r for r in self.conn.execute(
            select(clusters.c.id, clusters.c.representative_id, clusters.c.first_published_at,
                   clusters.c.last_published_at).where(clusters.c.id.in_(list(cluster_ids))))}
        rows = self.conn.execute(
            select(*self._COLUMNS).where(items.c.cluster_id.in_(list(heads)))
            .order_by(items.c.published_at, items.c.id)).all()
        members: dict[int, list[tuple[Article, bool]]] = {}
        for article, cid, fallback in self._articles(rows):
            if cid is not None:
                members.setdefault(cid, []).append((article, fallback))
        out = []
        for cid, head in heads.items():
            copies = members.get(cid)
            if not copies:
                continue
            lead = next((a for a, _ in copies if a.id == head.representative_id), copies[0][0])
            out.append(_story(cid, lead, copies, head.last_published_at))
        return out


def _story(cid: int, lead: Article, copies: list[tuple[Article, bool]],
           updated: datetime) -> Story:
    others: dict[str, Article] = {}
    for article, _ in copies:  # earliest first: one copy per other outlet
        if article.source.id != lead.source.id:
            others.setdefault(article.source.id, article)
    places: dict[str, Place] = {}
    for article, fallback in sorted(copies, key=lambda c: c[0].id != lead.id):
        if not fallback:
            for p in article.places:
                places.setdefault(p.code, p)
    if not places:
        places = {p.code: p for p in lead.places}
    return Story(id=cid, lead=lead, copies=tuple(others.values()), places=tuple(places.values()),
                 published_at=lead.published_at, updated_at=max(updated, lead.published_at))


# Where published_at is in a row of ``Reader._COLUMNS`` (rows are read by position).
_PUBLISHED = next(i for i, c in enumerate(Reader._COLUMNS) if c is items.c.published_at)
