"""Incremental story clustering in the database: a new item joins a cluster or starts one.

Exact duplicates first (same canonical URL anywhere; same GUID or same wording within the
window), then near duplicates through MinHash LSH buckets kept in the ``lsh_buckets`` table, so
matching works across restarts and processes, and only items published within the window of each
other are compared.  The decision itself is the pure ``similarity.same_story``.  Clusters are never
rebuilt: each item is placed once, and a cluster's representative is its earliest copy.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.engine import Connection

from .db import clusters, items, lsh_buckets
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
    values: npt.NDArray[np.uint32] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.values = np.frombuffer(self.signature.to_bytes(), dtype="<u4")


class _KnownCache:
    """Recently placed items, so that each poll does not reload and re-parse the same candidates.

    Only items whose cluster can no longer change are cached (the cache is filled after the
    transaction that placed them commits, see ``remember``); the store stays the truth.
    """

    def __init__(self, size: int = 50_000) -> None:
        self._data: OrderedDict[int, _Known] = OrderedDict()
        self._size = size

    def get(self, item_id: int) -> _Known | None:
        found = self._data.get(item_id)
        if found is not None:
            self._data.move_to_end(item_id)
        return found

    def put(self, known: _Known) -> None:
        self._data[known.id] = known
        self._data.move_to_end(known.id)
        while len(self._data) > self._size:
            self._data.popitem(last=False)


_CACHE = _KnownCache()


def cluster_items(conn: Connection, new: Sequence[NewItem], window: timedelta,
                  now: datetime) -> list[_Known]:
    """Place freshly inserted items into clusters (one transaction with their insert).

    Returns the placed items for ``remember``, to be called once the transaction committed.
    """
    if not new:
        return []
    ordered = sorted(new, key=lambda n: (n.item.published_at, n.id))
    new_ids = [n.id for n in ordered]
    exact = _exact_candidates(conn, ordered, new_ids, window)
    keys = {n.id: band_keys(Signature.from_bytes(n.item.signature)) for n in ordered}
    pool, hits = _lsh_candidates(conn, ordered, keys, new_ids, window)
    bucket_index: dict[tuple[int, int], list[int]] = {}
    for row_id, key in hits:
        bucket_index.setdefault(key, []).append(row_id)
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
            target, reason = _near_match(n, sig, own_facts, keys[n.id], bucket_index, pool,
                                         window)
        if target is None:
            target, reason = -(len(provisional) + 1), "first copy: starts the cluster"
        if target < 0:
            provisional.setdefault(target, []).append(n)
        placed[n.id] = (target, reason)
        pool[n.id] = _Known(n.id, target, it.published_at, sig, own_facts)
        for key in keys[n.id]:
            bucket_index.setdefault(key, []).append(n.id)
        _remember_exact(exact, it, n.id, target)
    real = _write_clusters(conn, ordered, placed, provisional, now)
    conn.execute(
        update(items).where(items.c.id == bindparam("b_id"))
        .values(cluster_id=bindparam("b_cluster"), cluster_reason=bindparam("b_reason")),
        [{"b_id": item_id, "b_cluster": real.get(t, t), "b_reason": r}
         for item_id, (t, r) in placed.items()],
    )
    conn.execute(insert(lsh_buckets), [
        {"band": band, "bucket": bucket, "item_id": n.id, "published_at": n.item.published_at}
        for n in ordered for band, bucket in keys[n.id]
    ])
    return [dataclasses.replace(pool[n.id], cluster_id=real.get(placed[n.id][0],
                                                                 placed[n.id][0]))
            for n in ordered]


def remember(placed: Sequence[_Known]) -> None:
    """Cache committed placements (an item's cluster never changes once placed)."""
    for known in placed:
        _CACHE.put(known)


def _near_match(n: NewItem, sig: Signature, own_facts: Facts, keys: list[tuple[int, int]],
                bucket_index: dict[tuple[int, int], list[int]], pool: dict[int, _Known],
                window: timedelta) -> tuple[int | None, str]:
    """The most similar earlier item that is the same story, among those sharing a bucket."""
    values = np.frombuffer(n.item.signature, dtype="<u4")
    seen: set[int] = set()
    best: tuple[float, _Known, str] | None = None
    for key in keys:
        for cand_id in bucket_index.get(key, ()):
            if cand_id in seen:
                continue
            seen.add(cand_id)
            cand = pool[cand_id]
            if abs(cand.published_at - n.item.published_at) > window:
                continue
            # A vectorised first look: most bucket neighbours share a template, not a story.
            if np.count_nonzero(cand.values == values) < MATCH_THRESHOLD * NUM_PERM:
                continue
            verdict = same_story(sig, own_facts, cand.signature, cand.facts)
            if verdict.same and (best is None or verdict.jaccard > best[0]):
                best = (verdict.jaccard, cand, verdict.reason)
    if best is None:
        return None, ""
    return best[1].cluster_id, f"near-duplicate of item {best[1].id}: {best[2]}"


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
        ids = conn.execute(insert(clusters).returning(clusters.c.id,
                                                      sort_by_parameter_order=True),
                           rows).scalars().all()
        real = dict(zip(keys, ids, strict=True))
    joined: dict[int, list[NewItem]] = {}
    for n in ordered:
        target = placed[n.id][0]
        if target > 0:
            joined.setdefault(target, []).append(n)
    if not joined:
        return real
    current = {r.id: r for r in conn.execute(
        select(clusters.c.id, clusters.c.representative_id, clusters.c.first_published_at,
               clusters.c.last_published_at, clusters.c.size)
        .where(clusters.c.id.in_(list(joined))))}
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
    conn.execute(
        update(clusters).where(clusters.c.id == bindparam("b_id")).values(
            representative_id=bindparam("b_rep"), first_published_at=bindparam("b_first"),
            last_published_at=bindparam("b_last"), size=bindparam("b_size"),
            updated_at=bindparam("b_now")),
        updates,
    )
    return real


@dataclass
class _Exact:
    by_url: dict[str, tuple[int, int, datetime]]
    by_guid: dict[str, tuple[int, int, datetime, str]]
    by_text: dict[str, tuple[int, int, datetime]]


def _exact_candidates(conn: Connection, new: Sequence[NewItem], new_ids: list[int],
                      window: timedelta) -> _Exact:
    urls = {n.item.url for n in new if n.item.url}
    guids = {n.item.guid for n in new if n.item.guid}
    texts = {n.item.text_hash for n in new if n.item.text_hash}
    found = _Exact({}, {}, {})
    conditions = []
    if urls:
        conditions.append(items.c.url.in_(urls))
    if guids:
        conditions.append(items.c.guid.in_(guids))
    if texts:
        conditions.append(items.c.text_hash.in_(texts))
    if not conditions:
        return found
    rows = conn.execute(
        select(items.c.id, items.c.cluster_id, items.c.url, items.c.guid, items.c.text_hash,
               items.c.published_at, items.c.title)
        .where(or_(*conditions), items.c.cluster_id.is_not(None), items.c.id.not_in(new_ids))
        .order_by(items.c.published_at)
    ).all()
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


def _lsh_candidates(conn: Connection, new: Sequence[NewItem],
                    keys: dict[int, list[tuple[int, int]]], new_ids: list[int],
                    window: timedelta,
                    ) -> tuple[dict[int, _Known], list[tuple[int, tuple[int, int]]]]:
    """Stored items sharing a bucket with any new item, within the batch's time span."""
    wanted = {k for ks in keys.values() for k in ks}
    lo = min(n.item.published_at for n in new) - window
    hi = max(n.item.published_at for n in new) + window
    hits: list[tuple[int, tuple[int, int]]] = []
    buckets = sorted({bucket for _, bucket in wanted})
    for start in range(0, len(buckets), 500):
        bucket_rows = conn.execute(
            select(lsh_buckets.c.item_id, lsh_buckets.c.band, lsh_buckets.c.bucket)
            .where(lsh_buckets.c.bucket.in_(buckets[start:start + 500]),
                   lsh_buckets.c.published_at.between(lo, hi))
        ).all()
        hits.extend((r.item_id, (r.band, r.bucket)) for r in bucket_rows
                    if (r.band, r.bucket) in wanted)
    ids = sorted({h[0] for h in hits} - set(new_ids))
    known: dict[int, _Known] = {}
    missing = []
    for item_id in ids:
        cached = _CACHE.get(item_id)
        if cached is None:
            missing.append(item_id)
        else:
            known[item_id] = cached
    for start in range(0, len(missing), 500):
        rows = conn.execute(
            select(items.c.id, items.c.cluster_id, items.c.published_at, items.c.signature,
                   items.c.facts)
            .where(items.c.id.in_(missing[start:start + 500]), items.c.cluster_id.is_not(None),
                   items.c.sig_version == SIGNATURE_VERSION)
        ).all()
        for r in rows:
            known[r.id] = _Known(r.id, r.cluster_id, r.published_at,
                                 Signature.from_bytes(r.signature), facts_from_json(r.facts))
    return known, [h for h in hits if h[0] in known]


def prune_buckets(conn: Connection, before: datetime) -> int:
    """Buckets older than the window can never match again; dropping them keeps lookups flat."""
    result = conn.execute(lsh_buckets.delete().where(lsh_buckets.c.published_at < before))
    return int(result.rowcount or 0)

