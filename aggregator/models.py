"""The data that flows between pipeline stages.

Plain frozen dataclasses, so that stages stay pure functions and results can cross a process
boundary (parsing runs in a worker pool) by pickling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .tagger import RegionTag


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One entry as the feed format gave it, before any cleaning."""

    guid: str | None
    link: str | None
    title: str
    summary_html: str
    content_html: str
    author: str | None
    categories: tuple[str, ...]
    published: datetime | None
    updated: datetime | None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A parsed feed document: channel metadata and its entries in document order."""

    format: str
    title: str
    link: str | None
    ttl_seconds: int | None
    entries: tuple[RawEntry, ...]
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """A normalised item, ready to store; every later stage (cluster, tag, publish) reads these."""

    guid: str | None
    url: str | None
    link: str | None
    title: str
    summary: str
    content_html: str
    content_text: str
    author: str | None
    categories: tuple[str, ...]
    published_at: datetime
    updated_at: datetime | None
    date_missing: bool
    content_hash: str
    # Hash of title and text: identifies an item that has neither GUID nor URL.
    fallback_key: str = field(default="")
    # Set by enrich: the places the item is about, its MinHash signature and its facts (JSON),
    # and a hash of its wording for exact duplicates across feeds.
    regions: tuple[RegionTag, ...] = field(default=())
    signature: bytes = field(default=b"")
    facts: str = field(default="")
    text_hash: str = field(default="")
