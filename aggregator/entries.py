"""RawEntry from a parser's entry dict: feedparser's, or fastfeedparser's, which has its shape.

Both parsing routes pick the same things the same way (the longest content, the alternate link,
non-empty category terms, ISO dates in UTC), so that they give the same items.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .models import RawEntry


def raw_entry(e: Any, *, guid: Any, summary: Any, published: datetime | None,
              updated: datetime | None) -> RawEntry:
    content = ""
    for part in e.get("content") or ():
        value = part.get("value") or ""
        if len(value) > len(content):
            content = value
    link = e.get("link")
    if not link:
        for candidate in e.get("links") or ():
            if candidate.get("rel", "alternate") == "alternate" and candidate.get("href"):
                link = candidate["href"]
                break
    tags = tuple(t["term"].strip() for t in (e.get("tags") or ())
                 if t.get("term") and t["term"].strip())
    return RawEntry(
        guid=guid.strip() if isinstance(guid, str) and guid.strip() else None,
        link=link,
        title=e.get("title") or "",
        summary_html=summary or "",
        content_html=content,
        author=e.get("author") or None,
        categories=tags,
        published=published,
        updated=updated,
    )


def iso_time(value: Any) -> datetime | None:
    """An ISO 8601 time in UTC (a zone-less one read as UTC), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 shifted out of range
        return None
