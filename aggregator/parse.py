"""Bytes to ParsedFeed: RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 through feedparser, JSON Feed directly.

Pure and CPU-bound: the poller runs it in a worker pool, off the event loop.  Every failure is a
ParseError with a message a member's webmaster can act on ("HTML page instead of a feed", "truncated
document"), never a bare exception from deep inside a parser.
"""

from __future__ import annotations

import calendar
import io
import json
import re
from datetime import UTC, datetime
from typing import Any

import feedparser
import feedparser.encodings
import feedparser.sanitizer
from feedparser.encodings import convert_to_utf8

from .entries import iso_time, raw_entry
from .fastparse import parse_well_formed
from .models import ParsedFeed, RawEntry


class ParseError(Exception):
    """The body is not a usable feed; ``kind`` is a short machine-readable category."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>]|head[\s>]|body[\s>])",
                         re.IGNORECASE | re.DOTALL)
_ROOT_CLOSE = {
    "rss": re.compile(rb"</rss\s*>\s*$"),
    "atom": re.compile(rb"</(\w+:)?feed\s*>\s*$"),
    "rdf": re.compile(rb"</(\w+:)?RDF\s*>\s*$"),
}
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_MAX_TAIL = 4096
_MAX_TTL_MINUTES = 7 * 24 * 60

# feedparser reads the encoding declaration and strips DOCTYPE and ENTITY lines with regular
# expressions that backtrack without bound on a hostile prolog: 26 kB of 'encoding="x"' repeated
# on the first line cost 38 s of CPU (twice the size, 300 s), and 40,000 blank lines before the
# root element 4 s, growing with the square.  These equivalents look only as far as a real
# declaration reaches, so each runs in linear time; they are read from the modules at each parse.
feedparser.encodings.RE_XML_PI_ENCODING = re.compile(
    rb"^<\?[^\n]{0,512}?encoding=['\"]([^'\"\n]{0,128})['\"][^\n]{0,512}?\?>")
feedparser.sanitizer.RE_ENTITY_PATTERN = re.compile(rb"^[^\S\n]*<!ENTITY([^<>]{0,4096}?)>",
                                                    re.MULTILINE)
feedparser.sanitizer.RE_DOCTYPE_PATTERN = re.compile(rb"^[^\S\n]*<!DOCTYPE([^<>]{0,4096}?)>",
                                                     re.MULTILINE)


def parse_feed(body: bytes, content_type: str = "") -> ParsedFeed:
    """Parse one feed document; relative links are left for normalize to resolve."""
    head = body[:2048].removeprefix(b"\xef\xbb\xbf").lstrip()
    if not head:
        raise ParseError("empty", "empty response body")
    # The body decides, not the Content-Type: servers label feeds every which way.
    if head[:1] in (b"{", b"["):
        return _parse_json_feed(body.removeprefix(b"\xef\xbb\xbf"))
    if head[:1] != b"<" and "json" in content_type.lower():
        return _parse_json_feed(body)
    if _HTML_START.match(head):
        raise ParseError("not_a_feed", "an HTML page instead of a feed (a block page, or the wrong "
                                       "URL)")
    # No content-location: relative item links stay relative here, and normalize resolves them
    # against the site (the channel's link), which is what WordPress means by them.
    headers = {"content-type": content_type or "application/xml"}
    if _declares_entities(body, headers):
        # Entity declarations are the vehicle of billion-laughs and external-entity attacks and no
        # real news feed needs them.
        raise ParseError("unsafe_xml", "the document declares XML entities (refused)")
    kind = _root_kind(head)
    if kind and not _ROOT_CLOSE[kind].search(body[-_MAX_TAIL:]):
        raise ParseError("truncated", f"truncated document: no closing </{_root_name(kind)}>")
    if kind in ("rss", "atom"):
        fast = parse_well_formed(body)  # well-formed RSS 2.0 and Atom 1.0: 20-50x quicker
        if fast is not None:
            return fast
    try:
        result = feedparser.parse(io.BytesIO(body), response_headers=headers,
                                  sanitize_html=False, resolve_relative_uris=False)
    except Exception as exc:  # feedparser's own bugs must not take the poller down
        raise ParseError("parser_crash", f"parser failed: {type(exc).__name__}: {exc}") from None
    version = result.get("version") or ""
    entries = result.get("entries") or []
    warning = None
    if result.get("bozo"):
        problem = result.get("bozo_exception")
        detail = f"{type(problem).__name__}: {problem}" if problem is not None \
            else "ill-formed document"
        if not version and not entries:
            raise ParseError("malformed", f"not a feed: {detail}")
        warning = detail
    if not version and not entries:
        raise ParseError("not_a_feed", "no RSS or Atom document found")
    feed = result.get("feed", {})
    ttl = _int_or_none(feed.get("ttl"))
    return ParsedFeed(
        format=version or "unknown",
        title=str(feed.get("title") or ""),
        link=feed.get("link"),
        # RSS ttl is in minutes; more than a week is a typo or a trap, not a wish.
        ttl_seconds=min(ttl, _MAX_TTL_MINUTES) * 60 if ttl is not None and ttl > 0 else None,
        entries=tuple(_entry(e) for e in entries),
        warning=warning,
    )


def _declares_entities(body: bytes, headers: dict[str, str]) -> bool:
    """Whether ``<!ENTITY`` occurs anywhere in the characters either parser will read.

    The raw bytes alone are not enough: a declaration can sit after megabytes of padding, or be
    spelled in UTF-16, UTF-7 or EBCDIC, and feedparser keeps the declarations it thinks harmless
    (plain text values) and expands them in both of its parsers, so one 50 kB entity referenced
    20,000 times in a 300 kB document became a gigabyte string.  Decoding with feedparser's own
    function means the search sees exactly the text that will be parsed: once as feedparser reads
    it (the Content-Type's charset first), once as the document declares itself, which is how lxml
    on the fast route reads it.  The price is that an article quoting ``<!ENTITY`` in a CDATA
    section is refused too.
    """
    if _ENTITY_DECL.search(body):
        return True
    for view in (headers, {}):
        try:
            text = convert_to_utf8(dict(view), body, {})
        except Exception:  # the parse proper meets the same failure and reports it
            continue
        if _ENTITY_DECL.search(text):
            return True
    return False


def _root_kind(head: bytes) -> str | None:
    """Which root element opens the document, skipping the prolog and comments."""
    match = re.search(rb"<(?!\?|!)([\w:.-]+)", head)
    if not match:
        return None
    name = match.group(1).split(b":")[-1].lower()
    return {b"rss": "rss", b"feed": "atom", b"rdf": "rdf"}.get(name)


def _root_name(kind: str) -> str:
    return {"rss": "rss", "atom": "feed", "rdf": "rdf:RDF"}[kind]


def _int_or_none(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _time(parsed: Any) -> datetime | None:
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _entry(e: Any) -> RawEntry:
    return raw_entry(
        e, guid=e.get("id"), summary=e.get("summary"),
        published=_time(e.get("published_parsed")) or _time(e.get("created_parsed")),
        # dict.get: FeedParserDict maps a missing updated_parsed onto published_parsed.
        updated=_time(dict.get(e, "updated_parsed")),
    )


def _parse_json_feed(body: bytes) -> ParsedFeed:
    """JSON Feed 1.0/1.1 (feedparser 6 does not read JSON)."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        # RecursionError: a document nested deeper than the interpreter's stack ('[[[[...').
        raise ParseError("malformed", f"invalid JSON: {exc}") from None
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith(
        "https://jsonfeed.org/version/"
    ):
        raise ParseError("not_a_feed", "JSON document without a JSON Feed version")
    items = doc.get("items")
    if not isinstance(items, list):
        raise ParseError("malformed", "JSON Feed without an items array")
    entries = [_json_entry(i) for i in items if isinstance(i, dict)]
    version = str(doc["version"]).rsplit("/", 1)[-1]
    return ParsedFeed(
        format=f"json{version.replace('.', '')}",
        title=_str(doc.get("title")),
        link=_str(doc.get("home_page_url")) or None,
        ttl_seconds=None,
        entries=tuple(entries),
    )


def _str(value: Any) -> str:
    # JSON can spell a lone surrogate ("\ud800"), which nothing downstream can encode: the feed's
    # title would stop the store from saving the poll.
    return _SURROGATE.sub("", value) if isinstance(value, str) else ""


def _json_entry(item: dict[str, Any]) -> RawEntry:
    authors = item.get("authors") or ([item["author"]] if isinstance(item.get("author"), dict)
                                      else [])
    if not isinstance(authors, list):  # "authors": 5 or "authors": {...} in a sloppy feed
        authors = []
    author = next((_str(a["name"]) for a in authors if isinstance(a, dict) and _str(a.get("name"))),
                  None)
    content = _str(item.get("content_html"))
    if not content and item.get("content_text"):
        from html import escape

        content = "<p>" + escape(_str(item["content_text"])) + "</p>"
    guid = item.get("id")
    raw_tags = item.get("tags")
    tags: list[Any] = raw_tags if isinstance(raw_tags, list) else []
    return RawEntry(
        guid=_SURROGATE.sub("", str(guid)) or None if guid not in (None, "") else None,
        link=_str(item.get("url")) or _str(item.get("external_url")) or None,
        title=_str(item.get("title")),
        summary_html=_str(item.get("summary")),
        content_html=content,
        author=author if isinstance(author, str) else None,
        categories=tuple(_str(t) for t in tags if _str(t).strip()),
        published=iso_time(item.get("date_published")),
        updated=iso_time(item.get("date_modified")),
    )
