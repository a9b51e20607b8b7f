"""Which stored item is an incoming item?  A pure decision, separate from the SQL that feeds it.

GUID first, as feeds intend; but members do publish two different stories under one GUID (a CMS
bug), and some publish no GUID at all.  So: a GUID matches the stored item with the same GUID and
URL; failing that, the only stored item with that GUID if the title still looks like the same story
(an edited slug) and no other entry of this document claims it; then the URL; then a hash of title
and text.  The key stored with a new item records what identified it, unique per feed by
construction.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .models import Item

_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Stored:
    id: int
    guid: str | None
    url: str | None
    fallback_key: str
    title: str
    content_hash: str


@dataclass(frozen=True, slots=True)
class Match:
    item: Item
    existing: Stored | None
    key: str


def item_key(item: Item) -> str:
    if item.guid:
        basis = f"g\x1f{item.guid}\x1f{item.url or item.fallback_key}"
    elif item.url:
        basis = f"u\x1f{item.url}"
    else:
        basis = f"h\x1f{item.fallback_key}"
    return hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()


def similar_titles(a: str, b: str) -> bool:
    wa, wb = set(_WORD.findall(a.lower())), set(_WORD.findall(b.lower()))
    if not wa or not wb:
        return a == b
    return len(wa & wb) / len(wa | wb) >= 0.5


def match_items(incoming: Sequence[Item], stored: Sequence[Stored]) -> list[Match]:
    """Pair each distinct incoming item with its stored row (or None for a new one).

    An entry that repeats an article already paired in this document (the same URL under another
    GUID, as /amp/ and utm_ twins do) is dropped: one article is stored once per feed.
    """
    by_guid: dict[str, list[Stored]] = {}
    by_url: dict[str, list[Stored]] = {}
    by_fallback: dict[str, Stored] = {}
    for s in stored:
        if s.guid:
            by_guid.setdefault(s.guid, []).append(s)
        if s.url:
            by_url.setdefault(s.url, []).append(s)
        by_fallback.setdefault(s.fallback_key, s)
    doc_pairs: set[tuple[str | None, str | None]] = {(i.guid, i.url) for i in incoming if i.guid}
    found: dict[int, Stored] = {}
    claimed: set[int] = set()
    # Pass 1: exact GUID and URL, so that the order of entries cannot change the pairing.
    for n, item in enumerate(incoming):
        for candidate in by_guid.get(item.guid or "", ()):
            if candidate.url == item.url and candidate.id not in claimed:
                found[n] = candidate
                claimed.add(candidate.id)
                break
    out: list[Match] = []
    new_urls: set[str] = set()
    new_keys: set[str] = set()
    for n, item in enumerate(incoming):
        row: Stored | None = found.get(n) or _loose(item, by_guid, doc_pairs, claimed)
        if row is None and item.url:
            candidates = by_url.get(item.url, ())
            row = next((r for r in candidates if r.id not in claimed), None)
            if row is None and (candidates or item.url in new_urls):
                continue  # the same article again in this document
        if row is None and not item.url and not item.guid:
            row = by_fallback.get(item.fallback_key)
            if row is not None and row.id in claimed:
                continue
        key = item_key(item)
        if row is None:
            if key in new_keys:
                continue
            new_keys.add(key)
            if item.url:
                new_urls.add(item.url)
        else:
            claimed.add(row.id)
        out.append(Match(item, row, key))
    return out


def _loose(
    item: Item,
    by_guid: dict[str, list[Stored]],
    doc_pairs: set[tuple[str | None, str | None]],
    claimed: set[int],
) -> Stored | None:
    """The stored item whose slug was edited: one GUID, a new URL, a similar title."""
    if not item.guid:
        return None
    loose = [r for r in by_guid.get(item.guid, ())
             if r.id not in claimed and (item.guid, r.url) not in doc_pairs]
    if len(loose) == 1 and similar_titles(loose[0].title, item.title):
        return loose[0]
    return None
