"""Incremental story clustering in the database: a new item joins a cluster or starts one.

Exact duplicates first (same canonical URL anywhere; same GUID or same wording within the
window), then near duplicates through MinHash LSH buckets kept in the ``lsh_buckets`` table, so
matching works across restarts and processes, and only items published within the window of each
other are compared.  The decision itself is the pure ``similarity.same_story``.  Clusters are never
rebuilt: each item is placed once, and a cluster's representative is its earliest copy.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sqlalchemy import Float, bindparam, extract, func, select, type_coerce, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from .db import any_key, clusters, items, lsh_keys, serialize
from .enrich import facts_from_json
from .identity import similar_titles
from .models import Item
from .similarity import (
    MATCH_THRESHOLD,
    NUM_PERM,
    SIGNATURE_VERSION,
    Facts,
    Signature,
    bucket_keys,
    same_story,
)


@dataclass(frozen=True, slots=True)
class NewItem:
    id: int
    item: Item


class _Known:
    """A placed item as clustering compares it.

    The signature and facts are decoded only when a comparison needs them: most items are
    never anyone's candidate above the threshold, and decoding every item cost more than all
    the comparisons.
    """

    __slots__ = (
        "_facts",
        "_facts_json",
        "_signature",
        "cluster_id",
        "id",
        "published_at",
        "raw",
        "ts",
    )

    def __init__(self, id: int, cluster_id: int, published_at: datetime, raw: bytes,
                 facts_json: str) -> None:
        self.id = id
        self.cluster_id = cluster_id
        self.published_at = published_at
        self.raw = raw  # the signature as stored: joining these stacks candidates cheaply
        self.ts = published_at.timestamp()  # for cheap window checks
        self._facts_json = facts_json
        self._facts: Facts | None = None
        self._signature: Signature | None = None

    @property
    def signature(self) -> Signature:
        if self._signature is None:
            self._signature = Signature.from_bytes(self.raw)
        return self._signature

    @property
    def facts(self) -> Facts:
        if self._facts is None:
            self._facts = facts_from_json(self._facts_json)
        return self._facts


class _KnownCache:
    """Recently placed items, so that each poll does not reload and re-parse the same candidates.

    Only items whose cluster can no longer change are cached (the cache is filled after the
    transaction that placed them commits, see ``remember``); the store stays the truth.
    The oldest entries go first: candidates are recent items, and a lookup that also had to
    move its entry to the end cost more than the rest of gathering candidates.
    """

    def __init__(self, size: int = 50_000) -> None:
        # An OrderedDict because of evictions: finding a plain dict's first key walks over the
        # slots of every key deleted before it, so evicting one entry a put grew slower with
        # each put, and took a third of a 10,000-feed cold cycle.
        self._data: OrderedDict[int, _Known] = OrderedDict()
        self._size = size
        self.get = self._data.get

    def put(self, known: _Known) -> None:
        self._data.pop(known.id, None)
        self._data[known.id] = known
        while len(self._data) > self._size:
            self._data.popitem(last=False)


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
    buckets = [bucket_keys(n.item.signature) for n in ordered]
    batch = _Batch.of(ordered, buckets, window)
    stored = _stored_pairs(conn, index, batch)
    local = _local_pairs(batch)
    # Decide every item first (clusters made in this batch get provisional negative keys),
    # then write: a handful of statements per feed instead of several per item.
    placed: dict[int, tuple[int, str]] = {}
    provisional: dict[int, list[NewItem]] = {}
    pool: list[_Known] = []
    for pos, n in enumerate(ordered):
        it = n.item
        own = _Known(n.id, 0, it.published_at, it.signature, it.facts)
        target, reason = _exact_match(it, exact, window)
        if target is None:
            cands = stored.get(pos, []) + [(agree, pool[other])
                                           for agree, other in local.get(pos, ())]
            target, reason = _near_match(own, cands)
        if target is None:
            target, reason = -(len(provisional) + 1), "first copy: starts the cluster"
        if target < 0:
            provisional.setdefault(target, []).append(n)
        placed[n.id] = (target, reason)
        own.cluster_id = target
        pool.append(own)
        _remember_exact(exact, it, n.id, target)
    real = _write_clusters(conn, ordered, placed, provisional, now)
    _bulk(conn, "UPDATE items SET cluster_id = {p}, cluster_reason = {p} WHERE id = {p}",
          [(real.get(t, t), r, item_id) for item_id, (t, r) in placed.items()])
    packed = [struct.pack(f"<{len(keys)}q", *keys) for keys in buckets]
    _bulk(conn, "INSERT INTO lsh_keys (item_id, published_at, seq, bucket_keys) "
                "VALUES ({p}, {p}, {p}, {p})",
          [(n.id, _db_time(conn, n.item.published_at), seq, keys)
           for n, keys in zip(ordered, packed, strict=True)])
    for known in pool:
        known.cluster_id = real.get(known.cluster_id, known.cluster_id)
    return Placement(index, seq, list(zip(pool, packed, strict=True)))


def _bulk(conn: Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """executemany straight to the driver: the hot writes of clustering (25 bucket rows an
    item) spent most of their time in per-row parameter processing, not in the database."""
    if rows:
        style = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        conn.exec_driver_sql(sql.format(p=style), rows)


def _db_time(conn: Connection, value: datetime) -> Any:
    """A datetime as ``UTCDateTime`` would bind it (naive UTC text on SQLite)."""
    if conn.dialect.name == "sqlite":  # isoformat: a fifth of strftime's time, same text
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return value


def remember(placement: Placement) -> None:
    """Cache committed placements (an item's cluster never changes once placed) and add their
    buckets to the in-memory index."""
    for known, _ in placement.placed:
        _CACHE.put(known)
    if placement.index is not None:
        placement.index.add([(known.id, known.ts, keys, known.raw)
                             for known, keys in placement.placed])
        # The lock was held from the sync to the commit: nothing else came in between.
        placement.index.last_seq = max(placement.index.last_seq, placement.seq)


def _near_match(own: _Known, cands: list[tuple[int, _Known]]) -> tuple[int | None, str]:
    """The most similar earlier item that is the same story, among the candidates whose
    signatures agree with the item's in at least MATCH_THRESHOLD of their values."""
    cands.sort(key=lambda c: (-c[0], c[1].id))
    for _, cand in cands:
        verdict = same_story(own.signature, own.facts, cand.signature, cand.facts)
        if verdict.same:  # candidates come most similar first: the first match is the best
            return cand.cluster_id, f"near-duplicate of item {cand.id}: {verdict.reason}"
    return None, ""


_STRONG: Final = math.ceil(MATCH_THRESHOLD * NUM_PERM)  # agreeing values a candidate needs


@dataclass(frozen=True)
class _Batch:
    """A batch's items as arrays, in placing order: what finding candidates works on."""

    signatures: npt.NDArray[np.uint32]  # one row an item
    sketches: npt.NDArray[np.uint8]  # one row an item
    ts: npt.NDArray[np.float64]
    keys: npt.NDArray[np.int64]  # every item's bucket keys, one after the other
    owner: npt.NDArray[np.intp]  # the position of each key's item
    window: float

    @classmethod
    def of(cls, ordered: Sequence[NewItem], buckets: list[list[int]],
           window: timedelta) -> _Batch:
        raw = b"".join(n.item.signature for n in ordered)
        return cls(
            signatures=np.frombuffer(raw, dtype="<u4").reshape(len(ordered), NUM_PERM),
            sketches=sketches_of(raw),
            ts=np.array([n.item.published_at.timestamp() for n in ordered], dtype=np.float64),
            keys=np.fromiter((k for keys in buckets for k in keys), dtype=np.int64),
            owner=np.repeat(np.arange(len(ordered)), [len(keys) for keys in buckets]),
            window=window.total_seconds())


def _unique_pairs(first: npt.NDArray[np.int64], second: npt.NDArray[np.int64],
                  ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(first, second) pairs without repeats (two items sharing several buckets meet once)."""
    order = np.lexsort((second, first))
    first, second = first[order], second[order]
    keep = np.ones(len(first), dtype=bool)
    keep[1:] = (first[1:] != first[:-1]) | (second[1:] != second[:-1])
    return first[keep], second[keep]


def _stored_pairs(conn: Connection, index: _BucketIndex, batch: _Batch,
                  ) -> dict[int, list[tuple[int, _Known]]]:
    """For each position in the batch, the stored items that share a bucket with it, were
    published within the window of it and agree with it enough: (agreeing values, item).

    One vectorised pass for the whole batch: most items meet dozens of template stories in
    their buckets, and judging them one item at a time cost more than all the rest.  The
    index's sketches leave only the few candidates that can agree enough to be loaded."""
    if not len(batch.keys):
        return {}
    lo = float(batch.ts.min()) - batch.window
    hi = float(batch.ts.max()) + batch.window
    hits, found, found_ts = index.candidates(batch.keys, batch.sketches[batch.owner], lo, hi,
                                             _STRONG)
    pos = batch.owner[hits]
    near = np.abs(found_ts - batch.ts[pos]) <= batch.window
    pos, found = _unique_pairs(pos[near].astype(np.int64), found[near])
    if not len(pos):
        return {}
    known = _load_known(conn, np.unique(found).tolist())
    out: dict[int, list[tuple[int, _Known]]] = {}
    for p, other in zip(pos.tolist(), found.tolist(), strict=True):
        cand = known.get(other)
        if cand is None:
            continue
        agree = int(np.count_nonzero(np.frombuffer(cand.raw, dtype="<u4")
                                     == batch.signatures[p]))
        if agree >= _STRONG:
            out.setdefault(p, []).append((agree, cand))
    return out


def _local_pairs(batch: _Batch) -> dict[int, list[tuple[int, int]]]:
    """For each position, the earlier positions of the same batch that share a bucket with it,
    were published within the window of it and agree with it enough: (agreeing values, pos)."""
    if not len(batch.keys):
        return {}
    order = np.argsort(batch.keys, kind="stable")
    keys, owner = batch.keys[order], batch.owner[order]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    sizes = np.diff(np.append(starts, len(keys)))
    later: list[int] = []
    earlier: list[int] = []
    for start, size in zip(starts[sizes > 1].tolist(), sizes[sizes > 1].tolist(),
                           strict=True):
        members = sorted(set(owner[start:start + size].tolist()))
        for i, b in enumerate(members):
            later += [b] * i
            earlier += members[:i]
    if not later:
        return {}
    b_pos, a_pos = _unique_pairs(np.array(later, dtype=np.int64),
                                 np.array(earlier, dtype=np.int64))
    agree = np.count_nonzero(batch.signatures[b_pos] == batch.signatures[a_pos], axis=1)
    keep = (agree >= _STRONG) & (np.abs(batch.ts[b_pos] - batch.ts[a_pos]) <= batch.window)
    out: dict[int, list[tuple[int, int]]] = {}
    for b, a, n in zip(b_pos[keep].tolist(), a_pos[keep].tolist(), agree[keep].tolist(),
                       strict=True):
        out.setdefault(b, []).append((n, a))
    return out


def _write_clusters(conn: Connection, ordered: Sequence[NewItem],
                    placed: dict[int, tuple[int, str]], provisional: dict[int, list[NewItem]],
                    now: datetime) -> dict[int, int]:
    """Insert this batch's new clusters and grow the existing ones; provisional -> real ids."""
    real: dict[int, int] = {}
    keys = sorted(provisional, reverse=True)
    # One multi-row INSERT ... RETURNING per chunk.  Each new cluster's representative is a
    # distinct new item, so the returned rows are matched by it, whatever their order (an
    # executemany with ordered RETURNING ran one statement a row on SQLite).
    by_rep = {provisional[k][0].id: k for k in keys}
    style = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    for start in range(0, len(keys), 200):
        chunk = keys[start:start + 200]
        values: list[Any] = []
        for k in chunk:
            members = provisional[k]
            values += (members[0].id, _db_time(conn, members[0].item.published_at),
                       _db_time(conn, max(m.item.published_at for m in members)),
                       len(members), _db_time(conn, now))
        row_sql = "(" + ", ".join([style] * 5) + ")"
        found = conn.exec_driver_sql(
            "INSERT INTO clusters (representative_id, first_published_at, last_published_at, "
            f"size, updated_at) VALUES {', '.join([row_sql] * len(chunk))} "
            "RETURNING id, representative_id", tuple(values)).all()
        real.update((by_rep[rep], cluster_id) for cluster_id, rep in found)
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


# Unplaced items and this batch's own are left out by the caller: "cluster_id IS NOT NULL" in the
# WHERE made PostgreSQL walk every placed item for each batch (40 ms at 30,000 items, a sixth of
# a cold cycle, and growing with the store) until autovacuum had analysed the table.
_EXACT_UNION = any_key(
    (items.c.id, items.c.cluster_id, items.c.url, items.c.guid, items.c.text_hash,
     items.c.published_at, items.c.title),
    ((items.c.url, "urls"), (items.c.guid, "guids"), (items.c.text_hash, "texts")))
_EXACT = _EXACT_UNION.order_by(_EXACT_UNION.selected_columns.published_at)


def _exact_candidates(conn: Connection, new: Sequence[NewItem], new_ids: list[int],
                      window: timedelta) -> _Exact:
    urls = {n.item.url for n in new if n.item.url}
    guids = {n.item.guid for n in new if n.item.guid}
    texts = {n.item.text_hash for n in new if n.item.text_hash}
    found = _Exact({}, {}, {})
    if not (urls or guids or texts):
        return found
    rows = conn.execute(_EXACT, {"urls": sorted(urls), "guids": sorted(guids),
                                 "texts": sorted(texts)}).all()
    fresh = set(new_ids)
    for r in rows:
        if r.cluster_id is None or r.id in fresh:  # not placed (yet): nothing to join
            continue
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


_KEY_BYTES = 8  # a bucket key: a little-endian signed 64-bit integer
# Candidate entries compared at once: bounds the temporaries when a batch meets big buckets.
_CHUNK_ENTRIES: Final = 1 << 16


def sketches_of(raw: bytes) -> npt.NDArray[np.uint8]:
    """The low byte of every value of stored signatures (``Signature.to_bytes``, one after the
    other): one row of NUM_PERM bytes a signature.

    Two signatures agree in at most as many values as their sketches agree in bytes (equal
    values have equal low bytes), so counting agreeing bytes rules out, without loss, the
    candidates that cannot reach the threshold: nearly all of those that share a bucket only
    through boilerplate.  Unrelated values agree in a byte one time in 256, so the count is
    seldom more than one or two above the true agreement.
    """
    values = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 4 * NUM_PERM)
    return np.ascontiguousarray(values[:, ::4])  # little-endian: the low byte comes first


@dataclass(frozen=True, slots=True)
class _Run:
    """Bucket entries sorted by key, and the items they belong to: a bucket's items are found
    with two binary searches, and their sketches are at hand to rule most of them out."""

    keys: npt.NDArray[np.int64]
    rows: npt.NDArray[np.int32]  # each entry's item: a row of the arrays below
    ids: npt.NDArray[np.int64]
    ts: npt.NDArray[np.float64]  # the item's publication time, for the window
    sketches: npt.NDArray[np.uint8]  # (items, NUM_PERM)

    @classmethod
    def of(cls, keys: npt.NDArray[np.int64], rows: npt.NDArray[np.int32],
           ids: npt.NDArray[np.int64], ts: npt.NDArray[np.float64],
           sketches: npt.NDArray[np.uint8]) -> _Run:
        order = np.argsort(keys, kind="stable")
        return cls(keys[order], rows[order], ids, ts, sketches)

    def merged(self, other: _Run, keep_after: float) -> _Run:
        a, b = self.pruned(keep_after), other.pruned(keep_after)
        return _Run.of(np.concatenate((a.keys, b.keys)),
                       np.concatenate((a.rows, b.rows + np.int32(len(a.ids)))),
                       np.concatenate((a.ids, b.ids)), np.concatenate((a.ts, b.ts)),
                       np.concatenate((a.sketches, b.sketches)))

    def pruned(self, keep_after: float) -> _Run:
        keep = self.ts >= keep_after
        if keep.all():
            return self
        renumbered = (np.cumsum(keep) - 1).astype(np.int32)
        kept = keep[self.rows]
        return _Run(self.keys[kept], renumbered[self.rows[kept]], self.ids[keep],
                    self.ts[keep], self.sketches[keep])


class _BucketIndex:
    """The LSH buckets of the window's items, mirrored in memory from the ``lsh_keys`` table.

    The table is the truth: it survives restarts and is shared by processes.  Reading it for
    every poll cost more than all the rest of clustering, so each process keeps this copy and
    brings it up to date by reading only the rows committed since it last looked: ``seq`` is the
    commit order, assigned under the clustering lock (see ``_lock``), which is held until commit.
    The first look reads every row still within reach of new items.

    Entries are kept as numpy arrays sorted by bucket key, in a few runs of decreasing size
    (each batch adds a small run; runs of similar size are merged, dropping entries that left
    the window): 12 bytes an entry and 144 an item, where dicts of lists took over a hundred
    an entry, and a batch's lookups are a few vectorised binary searches per run.  Each item
    keeps its sketch (``sketches_of``): boilerplate puts thousands of unrelated items in one
    bucket, and loading and comparing their signatures took a third of a cold cycle.
    """

    def __init__(self) -> None:
        self.runs: list[_Run] = []
        self.last_seq = 0
        self.pruned_to: datetime | None = None
        self.keep_after = float("-inf")

    def sync(self, conn: Connection, keep_after: datetime) -> int:
        """Read the buckets other processes committed since the last look (under the clustering
        lock, so none can commit meanwhile); returns the ``seq`` for this transaction's rows."""
        newest = int(conn.execute(select(func.max(lsh_keys.c.seq))).scalar() or 0)
        if self.pruned_to is None or keep_after - self.pruned_to > timedelta(hours=1):
            self.prune(keep_after)
        if newest > self.last_seq:
            rows = conn.execute(
                select(lsh_keys.c.item_id, _epoch(conn, lsh_keys.c.published_at),
                       lsh_keys.c.bucket_keys, items.c.signature)
                .join(items, items.c.id == lsh_keys.c.item_id)
                .where(lsh_keys.c.seq > self.last_seq, lsh_keys.c.published_at >= keep_after,
                       items.c.signature.is_not(None))
            ).all()
            self.add([(r[0], float(r[1]), r[2], r[3]) for r in rows])
        self.last_seq = newest
        return newest + 1

    def add(self, entries: Sequence[tuple[int, float, bytes, bytes]]) -> None:
        """Items' (id, publication timestamp, packed bucket keys, signature as stored)."""
        entries = [e for e in entries if e[1] >= self.keep_after and e[2]]
        if not entries:
            return
        keys = np.frombuffer(b"".join(e[2] for e in entries), dtype="<i8").astype(np.int64)
        counts = [len(e[2]) // _KEY_BYTES for e in entries]
        self.runs.append(_Run.of(
            keys, np.repeat(np.arange(len(entries), dtype=np.int32), counts),
            np.array([e[0] for e in entries], dtype=np.int64),
            np.array([e[1] for e in entries], dtype=np.float64),
            sketches_of(b"".join(e[3] for e in entries))))
        # Merge while the newest run is at least half its elder's size: sizes stay geometric,
        # so there are only logarithmically many runs to search and each entry is copied
        # logarithmically often.
        # Runs are never empty: a merge that left the window entirely is dropped.
        while len(self.runs) > 1 and 2 * len(self.runs[-1].keys) >= len(self.runs[-2].keys):
            newer = self.runs.pop()
            merged = self.runs.pop().merged(newer, self.keep_after)
            if len(merged.keys):
                self.runs.append(merged)

    def prune(self, before: datetime) -> None:
        self.keep_after = before.timestamp()
        pruned = (run.pruned(self.keep_after) for run in self.runs)
        self.runs = [run for run in pruned if len(run.keys)]
        self.pruned_to = before

    def candidates(self, queries: npt.NDArray[np.int64], sketches: npt.NDArray[np.uint8],
                   lo: float, hi: float, least: int,
                   ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64],
                              npt.NDArray[np.float64]]:
        """For bucket keys ``queries`` (the sketch of each key's item in ``sketches``):
        (query index, item id, publication time) of every entry sharing a key whose item was
        published within [lo, hi] and whose sketch agrees with the query's in ``least`` bytes
        or more."""
        found_q: list[npt.NDArray[np.intp]] = []
        found_ids: list[npt.NDArray[np.int64]] = []
        found_ts: list[npt.NDArray[np.float64]] = []
        # Sorted needles: numpy's binary search starts from the previous needle's place.
        order = np.argsort(queries, kind="stable")
        queries = queries[order]
        for run in self.runs:
            start = np.searchsorted(run.keys, queries, side="left")
            # Most keys are in no bucket of the run: the second search is only for the hits.
            hit = np.flatnonzero(run.keys[np.minimum(start, len(run.keys) - 1)] == queries)
            if not len(hit):
                continue
            counts = np.searchsorted(run.keys, queries[hit], side="right") - start[hit]
            start = start[hit]
            # Hits a chunk at a time, each chunk about _CHUNK_ENTRIES entries (or one hit).
            ends = np.cumsum(counts)
            cuts = np.searchsorted(ends, np.arange(_CHUNK_ENTRIES, int(ends[-1]),
                                                   _CHUNK_ENTRIES), side="left")
            for part in np.split(np.arange(len(hit)), np.unique(cuts + 1)):
                if not len(part):
                    continue
                n = counts[part]
                # Positions start[h], start[h] + 1, ... stop[h] - 1 of every hit, in one array.
                offsets = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
                positions = np.repeat(start[part], n) + offsets
                rows = run.rows[positions]
                q = order[np.repeat(hit[part], n)]
                at = run.ts[rows]
                keep = (at >= lo) & (at <= hi)
                if least > 0:
                    keep &= np.count_nonzero(run.sketches[rows] == sketches[q], axis=1) >= least
                found_q.append(q[keep])
                found_ids.append(run.ids[rows[keep]])
                found_ts.append(at[keep])
        if not found_q:
            return (np.empty(0, dtype=np.intp), np.empty(0, dtype=np.int64),
                    np.empty(0, dtype=np.float64))
        return np.concatenate(found_q), np.concatenate(found_ids), np.concatenate(found_ts)


def _epoch(conn: Connection, column: ColumnElement[datetime]) -> ColumnElement[float]:
    """A UTC time column as Unix seconds, computed by the database: the first look of a process
    reads every row of the window, and turning each into a datetime first cost most of it."""
    if conn.dialect.name == "sqlite":  # naive UTC text
        return type_coerce((func.julianday(column) - 2440587.5) * 86400.0, Float)
    return type_coerce(extract("epoch", column), Float)


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
    """What one transaction placed (items and their packed bucket keys), to be remembered once
    it has committed."""

    index: _BucketIndex | None = None
    seq: int = 0
    placed: list[tuple[_Known, bytes]] = dataclasses.field(default_factory=list)


def _load_known(conn: Connection, ids: list[int]) -> dict[int, _Known]:
    """Stored items by id, from the cache or else the database (placed, current signature)."""
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
            known[row.id] = _Known(row.id, row.cluster_id, row.published_at, row.signature,
                                   row.facts)
            _CACHE.put(known[row.id])  # committed by another transaction: safe to keep
    return known


def prune_buckets(conn: Connection, before: datetime) -> int:
    """Buckets older than the window can never match again; dropping them keeps lookups flat."""
    result = conn.execute(lsh_keys.delete().where(lsh_keys.c.published_at < before))
    return int(result.rowcount or 0)
