"""Everything the aggregator reads from and writes to its database.

Each public function is one transaction.  Feeds are claimed with a lease (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), fetched outside any transaction, and their
result written back in one transaction with the feed's new state, so a crash at any point leaves
either the old state (the feed is polled again when its lease expires, or at once when its
holder is known to be dead) or the new one, never half.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Engine,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import Update

from . import leases
from .clustering import NewItem, Placement, cluster_items, prune_buckets, remember
from .config import Config
from .db import (
    CHANGES_KEY,
    any_key,
    clusters,
    feeds,
    hosts,
    item_regions,
    items,
    members,
    prefer_indexes,
    publish_state,
    serialize,
)
from .gazetteer import load as load_gazetteer
from .identity import Stored, match_items
from .models import Item
from .similarity import SIGNATURE_VERSION
from .tagger import RegionTag
from .urls import canonical_url


@dataclass(frozen=True, slots=True)
class FeedState:
    id: int
    member_id: str
    config_url: str
    url: str
    etag: str | None
    last_modified: str | None
    validators_url: str | None
    body_hash: str | None
    consecutive_errors: int
    failing_since: datetime | None
    interval_s: int | None
    server_hint_s: int


@dataclass(frozen=True, slots=True)
class FeedUpdate:
    """The new state of a feed after one poll, computed by the poller."""

    outcome: str  # ok | unchanged | not_modified | error | deferred | gone
    now: datetime
    next_poll_at: datetime
    interval_s: int | None = None
    http_status: int | None = None
    url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    validators_url: str | None = None
    body_hash: str | None = None
    server_hint_s: int | None = None
    title: str | None = None
    error_kind: str | None = None
    error: str | None = None
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class StoreResult:
    new: int
    updated: int


_FEED_STATE_COLUMNS = (
    feeds.c.id, feeds.c.member_id, feeds.c.config_url, feeds.c.url, feeds.c.etag,
    feeds.c.last_modified, feeds.c.validators_url, feeds.c.body_hash,
    feeds.c.consecutive_errors, feeds.c.failing_since, feeds.c.interval_s, feeds.c.server_hint_s,
)


def sync_config(engine: Engine, config: Config, now: datetime) -> None:
    """Make the members and feeds tables follow feeds.yaml; history of removed ones is kept."""
    with engine.begin() as conn:
        serialize(conn, "sindikasi:sync-config")  # workers starting together insert once
        known_members = set(conn.scalars(select(members.c.id)))
        listed_members = set()
        for m in config.members:
            listed_members.add(m.id)
            values = dict(name=m.name, site=m.site, region=m.region,
                          language=config.member_language(m), active=True)
            if m.id in known_members:
                conn.execute(update(members).where(members.c.id == m.id).values(**values))
            else:
                conn.execute(insert(members).values(id=m.id, **values))
        stale = known_members - listed_members
        if stale:
            conn.execute(update(members).where(members.c.id.in_(stale)).values(active=False))
        known_feeds = dict(conn.execute(select(feeds.c.config_url, feeds.c.id)).all())
        listed = set()
        for m in config.members:
            for url in m.feeds:
                listed.add(url)
                if url in known_feeds:
                    conn.execute(update(feeds).where(feeds.c.id == known_feeds[url])
                                 .values(member_id=m.id, active=True))
                else:
                    conn.execute(insert(feeds).values(
                        member_id=m.id, config_url=url, url=url, active=True, next_poll_at=now,
                        server_hint_s=0, consecutive_errors=0, items_total=0, last_new=0,
                        last_updated=0))
        gone = [fid for url, fid in known_feeds.items() if url not in listed]
        if gone:
            conn.execute(update(feeds).where(feeds.c.id.in_(gone)).values(active=False))


def claim_feeds(
    engine: Engine, owner: str, now: datetime, lease: timedelta, limit: int, due_only: bool
) -> list[FeedState]:
    """Lease up to ``limit`` pollable feeds to ``owner``: each is held by one process at a time.

    ``now`` is the cycle's start: with ``due_only`` false every feed not yet handled since then is
    taken, which is how a full cycle (``run --once``) walks all feeds in batches.
    """
    conditions = [*_pollable(),
                  or_(feeds.c.lease_until.is_(None), feeds.c.lease_until < now)]
    conditions.append(feeds.c.next_poll_at <= now if due_only else
                      or_(feeds.c.last_fetch_at.is_(None), feeds.c.last_fetch_at < now))
    candidates = (
        select(feeds.c.id).where(and_(*conditions)).order_by(feeds.c.next_poll_at, feeds.c.id)
        .limit(limit).with_for_update(skip_locked=True)
    )
    with engine.begin() as conn:
        _free_abandoned(conn, now)
        rows = conn.execute(
            update(feeds).where(feeds.c.id.in_(candidates.scalar_subquery()))
            .values(lease_owner=owner, lease_until=now + lease)
            .returning(*_FEED_STATE_COLUMNS)
        ).all()
    return sorted((FeedState(*row) for row in rows), key=lambda f: f.id)


def _free_abandoned(conn: Connection, now: datetime) -> None:
    """Drop the leases of processes on this host that died holding them (``kill -9``, OOM):
    a restart polls their feeds at once instead of skipping them until the leases run out."""
    holders = conn.scalars(select(feeds.c.lease_owner).distinct()
                           .where(feeds.c.lease_owner.is_not(None), feeds.c.lease_until >= now))
    dead = [owner for owner in holders if owner and leases.abandoned(owner)]
    if dead:
        conn.execute(update(feeds).where(feeds.c.lease_owner.in_(dead))
                     .values(lease_owner=None, lease_until=None))


def _pollable() -> list[Any]:
    return [feeds.c.active.is_(True), feeds.c.disabled_reason.is_(None)]


def count_pollable(engine: Engine, now: datetime, due_only: bool) -> int:
    where = _pollable()
    if due_only:
        where.append(feeds.c.next_poll_at <= now)
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(feeds).where(*where)) or 0)


def release_leases(engine: Engine, owner: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(feeds).where(feeds.c.lease_owner == owner)
                     .values(lease_owner=None, lease_until=None))


def blocked_hosts(engine: Engine, now: datetime) -> dict[str, datetime]:
    with engine.begin() as conn:
        conn.execute(delete(hosts).where(hosts.c.blocked_until <= now))
        return dict(conn.execute(select(hosts.c.host, hosts.c.blocked_until)).all())


def block_host(engine: Engine, host: str, until: datetime, reason: str) -> None:
    with engine.begin() as conn:
        current = conn.scalar(select(hosts.c.blocked_until).where(hosts.c.host == host))
        if current is None:
            conn.execute(insert(hosts).values(host=host, blocked_until=until, reason=reason))
        elif current < until:
            conn.execute(update(hosts).where(hosts.c.host == host)
                         .values(blocked_until=until, reason=reason))


@dataclass(frozen=True, slots=True)
class Poll:
    """One feed's poll, as it is to be written: the feed's new state and the items it gave."""

    feed: FeedState
    change: FeedUpdate
    items: Sequence[Item] = ()


def record_poll(
    engine: Engine, feed: FeedState, change: FeedUpdate, new_items: Sequence[Item] = (),
    cluster_window: timedelta = timedelta(hours=72),
) -> StoreResult:
    """Write one poll's items, their clusters and regions, and the feed's new state, in a
    single transaction."""
    return record_polls(engine, [Poll(feed, change, new_items)], cluster_window)[0]


def record_polls(engine: Engine, polls: Sequence[Poll],
                 cluster_window: timedelta = timedelta(hours=72)) -> list[StoreResult]:
    """Write several polls in one transaction (group commit), all or nothing.

    A cycle's polls finish faster than the database commits them one by one: each transaction
    has a fixed cost (the commit, clustering's look at what other processes stored, the cluster
    rows), so the poller hands over every poll that finished while the last transaction ran.
    New items of all the polls are placed into clusters together, earliest first.
    """
    results: list[StoreResult] = []
    fresh: list[NewItem] = []
    placement = Placement()
    with engine.begin() as conn:
        prefer_indexes(conn)
        # The items' changed_at, taken once the transaction has begun: on SQLite writers and
        # the publisher take turns, so whatever commits after a publish read is newer than
        # everything that publish saw (it renders exactly what changed since, see publisher).
        stored_at = datetime.now(UTC)
        for poll in polls:
            result = StoreResult(0, 0)
            if poll.items:
                result, new = _store_items(conn, poll.feed, poll.items, poll.change.now,
                                           stored_at)
                fresh += new
            results.append(result)
        _update_feeds(conn, [(poll.feed.id, _feed_values(poll.feed, poll.change, result))
                             for poll, result in zip(polls, results, strict=True)])
        if fresh:
            placement = cluster_items(conn, fresh, cluster_window,
                                      max(p.change.now for p in polls))
        if any(r.new or r.updated for r in results):
            _note_change(conn)
    remember(placement)
    return results



def _note_change(conn: Connection) -> None:
    """Give the store's items a new version in ``publish_state``, committed with them.

    The publisher compares it with the version it last published to know whether anything is
    still unpublished.  Times cannot tell that alone: ``changed_at`` is when a transaction
    began, and on PostgreSQL an older transaction may commit after a publish read newer ones.
    Last in the transaction, to hold the row (a lock on PostgreSQL) as briefly as possible.
    """
    version = uuid.uuid4().hex
    row = publish_state.c.key == CHANGES_KEY
    if conn.execute(update(publish_state).where(row).values(value=version)).rowcount:
        return
    try:
        with conn.begin_nested():
            conn.execute(insert(publish_state).values(key=CHANGES_KEY, value=version))
    except IntegrityError:  # another process inserted it meanwhile
        conn.execute(update(publish_state).where(row).values(value=version))


_ITEMS_ADDED = "items_added"  # not a column: added to items_total by the update


def _update_feeds(conn: Connection, rows: list[tuple[int, dict[str, Any]]]) -> None:
    """One executemany for each shape of update (the columns it sets): a group commit of
    hundreds of polls, most of them 304s with the same few columns, cost a statement built and
    run for each."""
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for feed_id, values in rows:
        shapes.setdefault(tuple(sorted(values)), []).append(
            {"b_id": feed_id, **{f"b_{k}": v for k, v in values.items()}})
    for keys, params in shapes.items():
        conn.execute(_feed_update(keys), params)


@functools.lru_cache(maxsize=64)
def _feed_update(keys: tuple[str, ...]) -> Update:
    values: dict[str, Any] = {k: bindparam(f"b_{k}") for k in keys if k != _ITEMS_ADDED}
    if _ITEMS_ADDED in keys:
        values["items_total"] = feeds.c.items_total + bindparam(f"b_{_ITEMS_ADDED}")
    return update(feeds).where(feeds.c.id == bindparam("b_id")).values(values)


def _feed_values(feed: FeedState, c: FeedUpdate, result: StoreResult) -> dict[str, Any]:
    values: dict[str, Any] = dict(
        lease_owner=None, lease_until=None, next_poll_at=c.next_poll_at, last_fetch_at=c.now,
    )
    if c.outcome == "deferred":
        return values
    values["last_status"] = c.http_status
    if c.interval_s is not None:
        values["interval_s"] = c.interval_s
    if c.outcome in ("ok", "unchanged", "not_modified"):
        values.update(last_success_at=c.now, consecutive_errors=0, failing_since=None,
                      last_error=c.warning, last_error_kind="warning" if c.warning else None,
                      last_error_at=c.now if c.warning else None,
                      last_new=result.new, last_updated=result.updated)
        if c.server_hint_s is not None:
            values["server_hint_s"] = c.server_hint_s
        if c.outcome != "not_modified":
            values.update(etag=c.etag, last_modified=c.last_modified, body_hash=c.body_hash,
                          validators_url=c.validators_url)
        elif c.etag or c.last_modified:
            # A 304 may refresh validators (RFC 9111 4.3.4); keep the old ones otherwise.
            values.update(etag=c.etag or feed.etag,
                          last_modified=c.last_modified or feed.last_modified)
        if c.title:
            values["title"] = c.title
        if result.new:
            values[_ITEMS_ADDED] = result.new
    else:
        values.update(consecutive_errors=feed.consecutive_errors + 1, last_error=c.error,
                      last_error_kind=c.error_kind, last_error_at=c.now,
                      failing_since=feed.failing_since or c.now, last_new=0, last_updated=0)
        if c.outcome == "gone":
            values["disabled_reason"] = c.error
    if c.url and c.url != feed.url:
        values["url"] = c.url
    return values


def _store_items(conn: Connection, feed: FeedState, incoming: Sequence[Item], now: datetime,
                 changed_at: datetime) -> tuple[StoreResult, list[NewItem]]:
    """Insert the poll's new items and update the changed ones; the new ones, with their ids,
    are left for clustering."""
    rows = conn.execute(_STORED_ROWS, {
        "feed_id": feed.id, "guids": sorted({i.guid for i in incoming if i.guid}),
        "urls": sorted({i.url for i in incoming if i.url}),
        "fallbacks": sorted({i.fallback_key for i in incoming})}).all()
    stored = [Stored(r.id, r.guid, r.url, r.fallback_key, r.title, r.content_hash) for r in rows]
    published = {r.id: r.published_at for r in rows}
    new_rows: list[dict[str, Any]] = []
    new_items: list[Item] = []
    seen_ids: list[int] = []
    updated = 0
    for match in match_items(incoming, stored):
        item, existing = match.item, match.existing
        if existing is None:
            new_rows.append(dict(_item_values(item, now), feed_id=feed.id,
                                 member_id=feed.member_id, item_key=match.key,
                                 first_seen_at=now, last_seen_at=now, changed_at=changed_at,
                                 revision=1, guid=item.guid))
            new_items.append(item)
        elif existing.content_hash != item.content_hash:
            values = _item_values(item, now)
            if item.date_missing:
                values["published_at"] = published[existing.id]
            conn.execute(update(items).where(items.c.id == existing.id).values(
                **values, last_seen_at=now, changed_at=changed_at, revision=items.c.revision + 1))
            # An edit keeps the item in its cluster; its places may change with the text.
            _write_regions(conn, existing.id, item, values["published_at"], replace=True)
            updated += 1
        else:
            seen_ids.append(existing.id)
    if seen_ids:
        conn.execute(update(items).where(items.c.id.in_(seen_ids)).values(last_seen_at=now))
    fresh: list[NewItem] = []
    if new_rows:
        ids = _insert_items(conn, new_rows)
        regions = [_region_row(row_id, r, item.published_at)
                   for row_id, item in zip(ids, new_items, strict=True) for r in item.regions]
        if regions:
            conn.execute(_INSERT_REGIONS, regions)
        fresh = [NewItem(i, it) for i, it in zip(ids, new_items, strict=True) if it.signature]
    return StoreResult(new=len(new_rows), updated=updated), fresh


# The feed's stored items that share a GUID, URL or fallback key with incoming ones: a feed of
# 9,000 items cost 29 ms a poll, growing with its history, when the lookup walked them all.
_STORED_ROWS = any_key(
    (items.c.id, items.c.guid, items.c.url, items.c.fallback_key, items.c.title,
     items.c.content_hash, items.c.published_at),
    ((items.c.guid, "guids"), (items.c.url, "urls"), (items.c.fallback_key, "fallbacks")),
    items.c.feed_id == bindparam("feed_id"))


_INSERT_ITEMS = insert(items).returning(items.c.id, sort_by_parameter_order=True)


def _insert_items(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert new items; their ids, in the order of ``rows``.

    SQLite does not say in which order RETURNING gives rows back, so SQLAlchemy ran one INSERT a
    row to learn each id, most of the cost of storing a poll.  There the ids are handed out
    here instead: the transaction holds the database's write lock from its start (BEGIN
    IMMEDIATE), so the ids after the largest are ours, and one executemany inserts them all.
    PostgreSQL returns ids in order for a batch of rows.
    """
    if conn.dialect.name != "sqlite":
        return list(conn.execute(_INSERT_ITEMS, rows).scalars().all())
    first = int(conn.execute(select(func.max(items.c.id))).scalar() or 0) + 1
    ids = list(range(first, first + len(rows)))
    conn.execute(insert(items), [{**row, "id": i} for row, i in zip(rows, ids, strict=True)])
    return ids


_INSERT_REGIONS = insert(item_regions)


def _region_row(item_id: int, r: RegionTag, published: datetime) -> dict[str, Any]:
    return {"item_id": item_id, "code": r.code, "confidence": r.confidence,
            "published_at": published,
            "evidence": json.dumps([str(e) for e in r.evidence], ensure_ascii=False)}


def _write_regions(conn: Connection, item_id: int, item: Item, published: datetime,
                   replace: bool) -> None:
    if replace:
        conn.execute(delete(item_regions).where(item_regions.c.item_id == item_id))
    if item.regions:
        conn.execute(_INSERT_REGIONS, [_region_row(item_id, r, published) for r in item.regions])


def _item_values(item: Item, now: datetime) -> dict[str, Any]:
    return dict(
        url=item.url, link=item.link, title=item.title, summary=item.summary,
        content_html=item.content_html, content_text=item.content_text, author=item.author,
        categories=json.dumps(list(item.categories), ensure_ascii=False),
        published_at=item.published_at, updated_at=item.updated_at,
        date_missing=item.date_missing, content_hash=item.content_hash,
        fallback_key=item.fallback_key, text_hash=item.text_hash or None,
        signature=item.signature or None, facts=item.facts or None,
        sig_version=SIGNATURE_VERSION if item.signature else None,
    )


def feed_table(engine: Engine) -> list[dict[str, Any]]:
    """One row per configured feed, for `aggregator feeds`."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(feeds, members.c.name.label("member_name"))
            .join(members, members.c.id == feeds.c.member_id)
            .where(feeds.c.active.is_(True))
            .order_by(feeds.c.member_id, feeds.c.id)
        ).mappings().all()
    return [dict(r) for r in rows]


def explain_item(engine: Engine, ref: str) -> dict[str, Any] | None:
    """Everything `aggregator explain` shows: the item, its regions, its cluster's copies."""
    cols = (items.c.id, items.c.member_id.label("member"), items.c.title, items.c.url,
            items.c.published_at, items.c.cluster_id, items.c.cluster_reason)
    with engine.connect() as conn:
        if ref.isdigit():
            row = conn.execute(select(*cols).where(items.c.id == int(ref))).mappings().first()
        else:
            url = canonical_url(ref) or ref
            row = conn.execute(select(*cols).where(or_(items.c.url == url, items.c.link == ref))
                               .order_by(items.c.published_at)).mappings().first()
        if row is None:
            return None
        regions = [
            {"code": r.code, "confidence": r.confidence, "evidence": json.loads(r.evidence)}
            for r in conn.execute(select(item_regions).where(item_regions.c.item_id == row["id"])
                                  .order_by(item_regions.c.confidence.desc()))
        ]
        cluster = None
        if row["cluster_id"] is not None:
            c = conn.execute(select(clusters).where(clusters.c.id == row["cluster_id"])).one()
            copies = conn.execute(select(*cols).where(items.c.cluster_id == c.id)
                                  .order_by(items.c.published_at, items.c.id)).mappings().all()
            cluster = {"id": c.id, "size": c.size, "representative_id": c.representative_id,
                       "members": [_jsonable(m) for m in copies]}
    g = load_gazetteer()
    for r in regions:
        r["name"] = g.regions[r["code"]].name if r["code"] in g.regions else r["code"]
    return {"item": _jsonable(row), "regions": regions, "cluster": cluster}


def _jsonable(row: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in dict(row).items()}


def prune_lsh(engine: Engine, before: datetime) -> int:
    """Drop LSH buckets of items published before ``before``: they can no longer match."""
    with engine.begin() as conn:
        return prune_buckets(conn, before)

