"""RawEntry to Item: one model for every feed format, cleaned and with canonical URLs and times.

Pure: the same entry, base URL and clock give the same Item, which is what makes re-polling an
unchanged feed a no-op.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from .models import Item, ParsedFeed, RawEntry
from .textclean import clean_line, html_to_text, sanitize_html
from .urls import canonical_url

MAX_TITLE = 500
MAX_AUTHOR = 200
MAX_SUMMARY = 1000
MAX_CONTENT = 512 * 1024
MAX_CATEGORIES = 30
# A lone surrogate (JSON Feed can say "\ud800") cannot be encoded: the database, nh3 and every
# renderer raise on one, so a single such character would cost the member the whole feed.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def normalize_feed(
    feed: ParsedFeed, base_url: str, now: datetime, max_future: timedelta
) -> list[Item]:
    """Normalise every entry of a document; entries with nothing to show are dropped."""
    site = feed.link if feed.link and _usable_base(feed.link) else base_url
    items = [normalize_entry(e, site, now, max_future) for e in feed.entries]
    return [i for i in items if i is not None]


def normalize_entry(
    entry: RawEntry, site_url: str, now: datetime, max_future: timedelta
) -> Item | None:
    """``site_url`` resolves relative links: the channel's link, else the feed's own URL."""
    site_url = _SURROGATE.sub("", site_url)
    url = canonical_url(entry.link or "", site_url) if entry.link else None
    if url is None and entry.guid and entry.guid.startswith(("http://", "https://")):
        url = canonical_url(entry.guid)
    base = url or site_url
    content_html = sanitize_html(entry.content_html[:MAX_CONTENT], base)
    summary_html = sanitize_html(entry.summary_html[:MAX_CONTENT], base)
    content_text = html_to_text(content_html) or html_to_text(summary_html)
    if not content_html:
        content_html = summary_html
    summary = _shorten(html_to_text(summary_html) or content_text, MAX_SUMMARY)
    title = clean_line(entry.title, MAX_TITLE)
    if not title and not content_text and url is None:
        return None
    if not title:
        title = _shorten(content_text, 120) or (url or "")
    author = clean_line(entry.author, MAX_AUTHOR) if entry.author else None
    categories = tuple(dict.fromkeys(
        c for c in (clean_line(c, 100) for c in entry.categories[:MAX_CATEGORIES]) if c
    ))
    now = _utc(now)
    ceiling = now + max_future
    entry_updated = _utc(entry.updated) if entry.updated else None
    published = (_utc(entry.published) if entry.published else None) or entry_updated
    date_missing = published is None
    if published is None or published > ceiling:
        published = now
    updated = entry_updated if entry_updated and entry_updated <= ceiling else None
    if updated is not None and updated <= published:
        updated = None
    fallback = _digest(title, content_text)[:32]
    content_hash = _digest(
        title, summary, content_html, author or "", "\x1f".join(categories), url or "",
        updated.isoformat() if updated else "",
    )
    guid = _SURROGATE.sub("", entry.guid)[:1000] if entry.guid else None
    return Item(
        guid=guid or None,
        url=url,
        link=_SURROGATE.sub("", entry.link) if entry.link else entry.link,
        title=title,
        summary=summary,
        content_html=content_html,
        content_text=content_text,
        author=author or None,
        categories=categories,
        published_at=published,
        updated_at=updated,
        date_missing=date_missing,
        content_hash=content_hash,
        fallback_key=fallback,
    )


def _usable_base(link: str) -> bool:
    """A channel link that relative links can be joined to ('http://[::1' cannot)."""
    if not link.startswith(("http://", "https://")):
        return False
    try:
        return bool(urlsplit(link).hostname)
    except ValueError:
        return False


def _utc(value: datetime) -> datetime:
    """Stored times are UTC; a naive time from a sloppy source is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x1e")
    return h.hexdigest()


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut + "…"
