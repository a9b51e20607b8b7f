"""What the renderers read: plain frozen data, built from the store by ``snapshot``.

Renderers are pure functions of these values (no clock, no database): the same store gives the
same bytes, which is what lets the publisher skip files whose content did not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Place:
    """A region as published: official name, slug for its files, level from the gazetteer."""

    code: str
    name: str  # "Kabupaten Malang", "Kota Surabaya", "Jawa Timur", "Madura"
    slug: str  # "kabupaten-malang": regions/<slug>.xml
    level: str  # kabupaten | kota | province | other_province | national | grouping


@dataclass(frozen=True, slots=True)
class Source:
    """A member outlet as published."""

    id: str
    name: str
    site: str
    feed_url: str  # the member's first feed: RSS <source url=...>, Atom <source>
    language: str
    publication: str  # Google News publication name
    region: str | None  # home region as written in feeds.yaml, for grouping the OPML


@dataclass(frozen=True, slots=True)
class Article:
    """One member's item."""

    id: int
    source: Source
    url: str  # the article's address on the member's site
    title: str
    summary: str  # plain text
    content_html: str  # sanitised at ingestion
    author: str | None
    published_at: datetime  # aware, UTC
    updated_at: datetime | None
    places: tuple[Place, ...]  # most confident first


@dataclass(frozen=True, slots=True)
class Story:
    """A story cluster: the earliest copy represents it; other outlets' copies are listed."""

    id: int  # cluster id: stable, so entry ids stay put when an earlier copy turns up
    lead: Article
    copies: tuple[Article, ...]  # other members' copies, earliest first, one per member
    places: tuple[Place, ...]
    published_at: datetime  # the lead's
    updated_at: datetime  # the newest copy's


@dataclass(frozen=True, slots=True)
class Site:
    """The association's own details, from feeds.yaml."""

    name: str
    base_url: str  # ends with "/"
    language: str
    timezone: str
    contact_url: str | None
    websub_hub: str | None

    def url(self, path: str) -> str:
        return self.base_url + path


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """What one published feed says about itself."""

    path: str  # relative to output_dir and base_url: "feed.xml", "regions/kota-malang.atom"
    title: str
    description: str
    home_path: str  # the HTML page this feed belongs to: "index.html", "regions/kota-malang.html"
    language: str
