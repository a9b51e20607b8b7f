"""Incremental story clustering in the database: a new item joins a cluster or starts one.

Exact duplicates first (same canonical URL anywhere; same GUID or same wording within the
window), then near duplicates through MinHash LSH buckets kept in the ``lsh_buckets`` table, so
matching works across restarts and processes, and only items published within the window of each
other are compared.  The decision itself is the pure ``similarity.same_story``.  Clusters are never
rebuilt: each item is placed once, and a cluster's representative is its earliest copy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from .db import clusters, items, lsh_buckets, serialize
from .enrich import facts_from_json
from .identity import similar_titles
from .models import Item
from .similarity import (
    MATCH_THRESHOLD,
    NUM_PERM,
    SIGNATURE_VERSION,
    Facts,
    Signature,
    band_keys,
    same_story,
)


@dataclass(frozen=True, slots=True)
class NewItem:
    id: int
    item: Item


@dataclass
class _Known:
    id: int
    cluster_id: int
    published_at: datetime
    signature: Signature
    facts: Facts
    # The signature as stored: joining these is the cheapest way to stack candidates.
    raw: bytes = dataclasses.field(init=False)
    ts: float = dataclasses.field(init=False)  # published_at, for cheap window checks

    def __post_init__(self) -> None:
        self.raw = self.signature.to_bytes()
        self.ts = self.published_at.timestamp()


class _KnownCache:
    """Recently placed items, so that each poll does not reload and re-parse the same candidates.

    Only items whose cluster can no longer change are cached (the cache is filled after the
    transaction that placed them commits, see ``remember``); the store stays the truth.
    The oldest entries go first: candidates are recent items, and a lookup that also had to
    move its entry to the end cost more than the rest of gathering candidates.
    """

    def __init__(self, size: int = 50_000) -> None:
        self._data: dict[int, _Known] = {}
        self._size = size
        self.get = self._data.get

    def put(self, known: _Known) -> None:
        self._data.pop(known.id, None)
        self._data[known.id] = known
        while len(self._data) > self._size:
            del self._data[next(iter(self._data))]


_CACHE = _KnownCache()


def cluster_items(conn: Connection, new: Sequence[NewItem], window: timedelta,
                  now: datetime) -> Placement:
    """Place freshly inserted items into clusters (one transaction with their insert).

    Returns the placement for ``remember``, to be called once the transaction committed.
    """
    if not new:
        return Placement()
    _lock(conn)
    index = _index_for(conn)
    seq = index.sync(conn, now - 2 * window)
    ordered = sorted(new, key=lambda n: (n.item.published_at, n.id))
    new_ids = [n.id for n in ordered]
    exact = _exact_candidates(conn, ordered, new_ids, window)
    keys = {n.id: band_keys(Signature.from_bytes(n.item.signature)) for n in ordered}
    buckets = {n.id: [bucket for _, bucket in keys[n.id]] for n in ordered}
    stored, pool = _lsh_candidates(conn, index, ordered, buckets, new_ids, window)
    local: dict[int, list[int]] = {}  # buckets of this batch's items, placed one by one
    # Decide every item first (clusters made in this batch get provisional negative keys),
    # then write: a handful of statements per feed instead of several per item.
    placed: dict[int, tuple[int, str]] = {}
    provisional: dict[int, list[NewItem]] = {}
    for n in ordered:
        it = n.item
        sig = Signature.from_bytes(it.signature)
        own_facts = facts_from_json(it.facts)
        target, reason = _exact_match(it, exact, window)
        if target is None:
            target, reason = _near_match(n, sig, own_facts, buckets[n.id], stored[n.id], local,
                                         pool, window)
        if target is None:
            target, reason = -(len(provisional) + 1), "first copy: starts the cluster"
        if target < 0:
            provisional.setdefault(target, []).append(n)
        placed[n.id] = (target, reason)
        pool[n.id] = _Known(n.id, target, it.published_at, sig, own_facts)
        for bucket in buckets[n.id]:
            local.setdefault(bucket, []).append(n.id)
        _remember_exact(exact, it, n.id, target)
    real = _write_clusters(conn, ordered, placed, provisional, now)
    _bulk(conn, "UPDATE items SET cluster_id = {p}, cluster_reason = {p} WHERE id = {p}",
          [(real.get(t, t), r, item_id) for item_id, (t, r) in placed.items()])
    _bulk(conn, "INSERT INTO lsh_buckets (bucket, band, item_id, published_at, seq) "
                "VALUES ({p}, {p}, {p}, {p}, {p})",
          [(bucket, band, n.id, published, seq)
           for n in ordered
           for published in (_db_time(conn, n.item.published_at),)
           for band, bucket in keys[n.id]])
    return Placement(index, seq, [
        (dataclasses.replace(pool[n.id], cluster_id=real.get(placed[n.id][0], placed[n.id][0])),
         [bucket for _, bucket in keys[n.id]])
        for n in ordered])


def _bulk(conn: Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """executemany straight to the driver: the hot writes of clustering (25 bucket rows an
    item) spent most of their time in per-row parameter processing, not in the database."""
    if rows:
        style = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        conn.exec_driver_sql(sql.format(p=style), rows)


def _db_time(conn: Connection, value: datetime) -> Any:
    """A datetime as ``UTCDateTime`` would bind it (naive UTC text on SQLite)."""
    if conn.dialect.name == "sqlite":
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def remember(placement: Placement) -> None:
    """Cache committed placements (an item's cluster never changes once placed) and add their
    buckets to the in-memory index."""
    for known, buckets in placement.placed:
        _CACHE.put(known)
        if placement.index is not None:
            placement.index.add(known.id, known.published_at, buckets)
    if placement.index is not None:
        # The lock was held from the sync to the commit: nothing else came in between.
        placement.index.last_seq = max(placement.index.last_seq, placement.seq)


def _near_match(n: NewItem, sig: Signature, own_facts: Facts, buckets: list[int],
                stored: set[int], local: dict[int, list[int]], pool: dict[int, _Known],
                window: timedelta) -> tuple[int | None, str]:
    """The most similar earlier item that is the same story, among those sharing a bucket
    (``stored``: items stored before this batch; ``local``: this batch's, by bucket)."""
    ids = stored.union(*(local.get(b, ()) for b in buckets))
    published = n.item.published_at.timestamp()
    lo, hi = published - window.total_seconds(), published + window.total_seconds()
    cands = [c for c in map(pool.get, ids) if c is not None and lo <= c.ts <= hi]
    if not cands:
        return None, ""
    # One vectorised look at all neighbours: most share a template, not a story.
    values = np.frombuffer(n.item.signature, dtype="<u4")
    stacked = np.frombuffer(b"".join([c.raw for c in cands]), dtype="<u4")
    agree = np.count_nonzero(stacked.reshape(len(cands), -1) == values, axis=1)
    for i in np.argsort(-agree, kind="stable"):
        if agree[i] < MATCH_THRESHOLD * NUM_PERM:
            break
        cand = cands[int(i)]
        verdict = same_story(sig, own_facts, cand.signature, cand.facts)
        if verdict.same:  # candidates come most similar first: the first match is the best
            return cand.cluster_id, f"near-duplicate of item {cand.id}: {verdict.reason}"
    return None, ""


def _write_clusters(conn: Connection, ordered: Sequence[NewItem],
                    placed: dict[int, tuple[int, str]], provisional: dict[int, list[NewItem]],
                    now: datetime) -> dict[int, int]:
    """Insert this batch's new clusters and grow the existing ones; provisional -> real ids."""
    real: dict[int, int] = {}
    keys = sorted(provisional, reverse=True)
    if keys:
        rows = [{"representative_id": provisional[k][0].id,
                 "first_published_at": provisional[k][0].item.published_at,
                 "last_published_at": max(m.item.published_at for m in provisional[k]),
                 "size": len(provisional[k]), "updated_at": now} for k in keys]
        ids = conn.execute(_NEW_CLUSTERS, rows).scalars().all()
        real = dict(zip(keys, ids, strict=True))
    joined: dict[int, list[NewItem]] = {}
    for n in ordered:
        target = placed[n.id][0]
        if target > 0:
            joined.setdefault(target, []).append(n)
    if not joined:
        return real
    current = {r.id: r for r in conn.execute(_CLUSTER_HEADS, {"ids": list(joined)})}
    updates = []
    for cluster_id, members in joined.items():
        row = current[cluster_id]
        first = min(members, key=lambda m: (m.item.published_at, m.id))
        earlier = first.item.published_at < row.first_published_at
        updates.append({
            "b_id": cluster_id,
            "b_rep": first.id if earlier else row.representative_id,
            "b_first": first.item.published_at if earlier else row.first_published_at,
            "b_last": max(row.last_published_at, *(m.item.published_at for m in members)),
            "b_size": row.size + len(members),
            "b_now": now,
        })
    conn.execute(_GROW_CLUSTERS, updates)
    return real


# Built once: constructing these per batch cost as much as running them.
_NEW_CLUSTERS = insert(clusters).returning(clusters.c.id, sort_by_parameter_order=True)
_CLUSTER_HEADS = (
    select(clusters.c.id, clusters.c.representative_id, clusters.c.first_published_at,
           clusters.c.last_published_at, clusters.c.size)
    .where(clusters.c.id.in_(bindparam("ids", expanding=True)))
)
_GROW_CLUSTERS = update(clusters).where(clusters.c.id == bindparam("b_id")).values(
    representative_id=bindparam("b_rep"), first_published_at=bindparam("b_first"),
    last_published_at=bindparam("b_last"), size=bindparam("b_size"),
    updated_at=bindparam("b_now"))


@dataclass
class _Exact:
    by_url: dict[str, tuple[int, int, datetime]]
    by_guid: dict[str, tuple[int, int, datetime, str]]
    by_text: dict[str, tuple[int, int, datetime]]


# Built once: constructing the expression per batch cost more than running it.
_EXACT = (
    select(items.c.id, items.c.cluster_id, items.c.url, items.c.guid, items.c.text_hash,
           items.c.published_at, items.c.title)
    .where(or_(items.c.url.in_(bindparam("urls", expanding=True)),
               items.c.guid.in_(bindparam("guids", expanding=True)),
               items.c.text_hash.in_(bindparam("texts", expanding=True))),
           items.c.cluster_id.is_not(None),
           items.c.id.not_in(bindparam("new_ids", expanding=True)))
    .order_by(items.c.published_at)
)


def _exact_candidates(conn: Connection, new: Sequence[NewItem], new_ids: list[int],
                      window: timedelta) -> _Exact:
    urls = {n.item.url for n in new if n.item.url}
    guids = {n.item.guid for n in new if n.item.guid}
    texts = {n.item.text_hash for n in new if n.item.text_hash}
    found = _Exact({}, {}, {})
    if not (urls or guids or texts):
        return found
    rows = conn.execute(_EXACT, {"urls": list(urls), "guids": list(guids),
                                 "texts": list(texts), "new_ids": new_ids}).all()
    for r in rows:
        entry = (r.id, r.cluster_id, r.published_at)
        if r.url in urls:
            found.by_url.setdefault(r.url, entry)
        if r.guid in guids:
            found.by_guid.setdefault(r.guid, (*entry, r.title))
        if r.text_hash in texts:
            found.by_text.setdefault(r.text_hash, entry)
    return found


def _exact_match(it: Item, exact: _Exact, window: timedelta) -> tuple[int | None, str]:
    if it.url and it.url in exact.by_url:
        row_id, cluster_id, _ = exact.by_url[it.url]
        return cluster_id, f"exact duplicate of item {row_id}: same canonical URL"
    if it.text_hash and it.text_hash in exact.by_text:
        row_id, cluster_id, published = exact.by_text[it.text_hash]
        if abs(published - it.published_at) <= window:
            return cluster_id, f"exact duplicate of item {row_id}: same wording"
    if it.guid and it.guid in exact.by_guid:
        # One GUID is one article only when the titles agree: CMSs do reuse GUIDs.
        row_id, cluster_id, published, title = exact.by_guid[it.guid]
        if abs(published - it.published_at) <= window and similar_titles(title, it.title):
            return cluster_id, f"exact duplicate of item {row_id}: same GUID and title"
    return None, ""


def _remember_exact(exact: _Exact, it: Item, row_id: int, cluster_id: int) -> None:
    entry = (row_id, cluster_id, it.published_at)
    if it.url:
        exact.by_url.setdefault(it.url, entry)
    if it.guid:
        exact.by_guid.setdefault(it.guid, (*entry, it.title))
    if it.text_hash:
        exact.by_text.setdefault(it.text_hash, entry)


class _BucketIndex:
    """The LSH buckets of items stored since this process started, mirrored in memory from the
    ``lsh_buckets`` table.

    The table is the truth: it survives restarts and is shared by processes.  Reading it for
    every poll cost more than all the rest of clustering, so each process keeps this copy and
    brings it up to date by reading only the rows committed since it last looked: ``seq`` is the
    commit order, assigned under the clustering lock (see ``_lock``), which is held until commit.
    Rows that were already there when the process started (up to ``watermark``) are not loaded
    (a large store took seconds and hundreds of megabytes): they are looked up in the table, bucket
    by bucket, for as long as new items can still fall within their window.
    """

    def __init__(self) -> None:
        self.buckets: dict[int, list[int]] = {}
        self.entries: dict[int, tuple[float, list[int]]] = {}  # item -> (published ts, buckets)
        self.last_seq = 0
        self.pruned_to: datetime | None = None
        self.watermark: int | None = None
        self.old_newest: datetime | None = None  # newest publication time up to the watermark

    def sync(self, conn: Connection, keep_after: datetime) -> int:
        """Read the buckets other processes committed since the last look (under the clustering
        lock, so none can commit meanwhile); returns the ``seq`` for this transaction's rows."""
        newest = conn.execute(select(func.max(lsh_buckets.c.seq))).scalar()
        newest = int(newest or 0)
        if self.watermark is None:
            self.watermark = self.last_seq = newest
            self.old_newest = conn.execute(select(func.max(lsh_buckets.c.published_at))).scalar()
        if newest > self.last_seq:
            self._read_since(conn, keep_after)
        self.last_seq = newest
        if self.pruned_to is None or keep_after - self.pruned_to > timedelta(hours=1):
            self.prune(keep_after)
        return newest + 1

    def _read_since(self, conn: Connection, keep_after: datetime) -> None:
        rows = conn.execute(
            select(lsh_buckets.c.item_id, lsh_buckets.c.bucket, lsh_buckets.c.published_at)
            .where(lsh_buckets.c.seq > self.last_seq,
                   lsh_buckets.c.published_at >= keep_after)
            .order_by(lsh_buckets.c.seq)
        ).all()
        grouped: dict[int, tuple[datetime, list[int]]] = {}
        for r in rows:
            grouped.setdefault(r.item_id, (r.published_at, []))[1].append(r.bucket)
        for item_id, (published, buckets) in grouped.items():
            self.add(item_id, published, buckets)
        if self.pruned_to is None or keep_after - self.pruned_to > timedelta(hours=1):
            self.prune(keep_after)

    def add_old(self, item_id: int, published: datetime, bucket: int) -> None:
        """One bucket of an item stored before this process started, found by a lookup."""
        entry = self.entries.setdefault(item_id, (published.timestamp(), []))
        if bucket not in entry[1]:
            entry[1].append(bucket)
            self.buckets.setdefault(bucket, []).append(item_id)

    def add(self, item_id: int, published: datetime, buckets: Sequence[int]) -> None:
        if item_id in self.entries:
            return
        self.entries[item_id] = (published.timestamp(), list(buckets))
        for bucket in buckets:
            self.buckets.setdefault(bucket, []).append(item_id)

    def prune(self, before: datetime) -> None:
        cut = before.timestamp()
        old = [i for i, (published, _) in self.entries.items() if published < cut]
        for item_id in old:
            for bucket in self.entries.pop(item_id)[1]:
                ids = self.buckets.get(bucket)
                if ids is not None:
                    ids.remove(item_id)
                    if not ids:
                        del self.buckets[bucket]
        self.pruned_to = before

    def candidates(self, buckets: Sequence[int]) -> set[int]:
        get = self.buckets.get
        return set().union(*[found for b in buckets if (found := get(b))])


_INDEXES: dict[str, _BucketIndex] = {}

def _lock(conn: Connection) -> None:
    """Serialise the placing of items across processes until this transaction commits, so that
    two copies of one story stored at the same moment by two workers meet: the second to take the
    lock sees the first's items and buckets."""
    serialize(conn, "sindikasi:clustering")


def _index_for(conn: Connection) -> _BucketIndex:
    key = conn.engine.url.render_as_string(hide_password=False)
    index = _INDEXES.get(key)
    if index is None:
        index = _INDEXES[key] = _BucketIndex()
    return index


@dataclass
class Placement:
    """What one transaction placed, to be remembered once it has committed."""

    index: _BucketIndex | None = None
    seq: int = 0
    placed: list[tuple[_Known, list[int]]] = dataclasses.field(default_factory=list)


def _lsh_candidates(conn: Connection, index: _BucketIndex, new: Sequence[NewItem],
                    buckets: dict[int, list[int]], new_ids: list[int], window: timedelta,
                    ) -> tuple[dict[int, set[int]], dict[int, _Known]]:
    """For each new item, the stored items sharing a bucket with it; and those of them within
    the batch's time span, loaded."""
    lo = min(n.item.published_at for n in new) - window
    hi = max(n.item.published_at for n in new) + window
    if index.watermark and index.old_newest is not None and lo <= index.old_newest:
        wanted = sorted({b for bs in buckets.values() for b in bs})
        for start in range(0, len(wanted), 500):
            old_rows = conn.execute(
                select(lsh_buckets.c.item_id, lsh_buckets.c.bucket, lsh_buckets.c.published_at)
                .where(lsh_buckets.c.bucket.in_(wanted[start:start + 500]),
                       lsh_buckets.c.seq <= index.watermark,
                       lsh_buckets.c.published_at.between(lo, hi))
            ).all()
            for r in old_rows:
                index.add_old(r.item_id, r.published_at, r.bucket)
    batch = set(new_ids)
    per_item = {n.id: index.candidates(buckets[n.id]) - batch for n in new}
    lo_ts, hi_ts = lo.timestamp(), hi.timestamp()
    entries = index.entries
    ids = {i for i in set().union(*per_item.values()) if lo_ts <= entries[i][0] <= hi_ts}
    cached = _CACHE.get
    known = {i: k for i in ids if (k := cached(i)) is not None}
    missing = [i for i in ids if i not in known]
    for start in range(0, len(missing), 500):
        rows = conn.execute(
            select(items.c.id, items.c.cluster_id, items.c.published_at, items.c.signature,
                   items.c.facts)
            .where(items.c.id.in_(missing[start:start + 500]), items.c.cluster_id.is_not(None),
                   items.c.sig_version == SIGNATURE_VERSION)
        ).all()
        for row in rows:
            known[row.id] = _Known(row.id, row.cluster_id, row.published_at,
                                   Signature.from_bytes(row.signature), facts_from_json(row.facts))
            _CACHE.put(known[row.id])  # committed by another transaction: safe to keep
    return per_item, known


def prune_buckets(conn: Connection, before: datetime) -> int:
    """Buckets older than the window can never match again; dropping them keeps lookups flat."""
    result = conn.execute(lsh_buckets.delete().where(lsh_buckets.c.published_at < before))
    return int(result.rowcount or 0)

