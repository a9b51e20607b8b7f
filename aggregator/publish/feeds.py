"""The association's syndication feeds: RSS 2.0, Atom 1.0 and JSON Feed 1.1.

Every function here is pure: the bytes depend only on the arguments (no clock, no I/O), so the
publisher can compare them with what is on disk and skip unchanged files, and so that a reader
polling with conditional requests is not handed a "new" feed that only differs by a timestamp.

A merged feed carries one entry per story, not per member article: readers would otherwise see the
same news three times. The entry id is tied to the story (cluster) id and never to the lead's URL,
because the lead changes when an earlier copy turns up and a changed id would look like a new item.

Member data is untrusted. Titles, names and summaries are plain text and reach the output only as
escaped text; the only HTML we emit is built here, and links in it are http(s) only. The members'
own ``content_html`` is deliberately not republished: sanitised or not, it is not ours to spread.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final, Literal
from urllib.parse import quote, urlsplit

from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator
from lxml import etree

from aggregator.publish.model import Article, FeedInfo, Place, Site, Source, Story

__all__ = [
    "ALSO_REPORTED_BY",
    "EMPTY_FEED_DATE",
    "FeedRenderer",
    "render_articles_rss",
    "render_stories_atom",
    "render_stories_json",
    "render_stories_rss",
]

ATOM_NS: Final = "http://www.w3.org/2005/Atom"
DC_NS: Final = "http://purl.org/dc/elements/1.1/"
JSONFEED_VERSION: Final = "https://jsonfeed.org/version/1.1"
GENERATOR: Final = "Sindikasi"
RSS_TYPE: Final = "application/rss+xml"
ATOM_TYPE: Final = "application/atom+xml"
ALSO_REPORTED_BY: Final = "Juga diberitakan oleh: "
UNTITLED: Final = "(tanpa judul)"
# An empty feed has no newest entry to date it by; a fixed date keeps its bytes stable.
EMPTY_FEED_DATE: Final = datetime(1970, 1, 1, tzinfo=UTC)

# Characters XML 1.0 cannot carry at all: lxml refuses them, and one stray control character in
# one member's title must not stop every feed from being published.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Everything RFC 3986 allows literally; the rest is percent-encoded so the JSON Feed schema's
# "uri" format and the XML validators accept member URLs that arrive as IRIs or with spaces.
_URI_SAFE: Final = "!#$%&'()*+,/:;=?@[]-._~"
_STRAY_PERCENT = re.compile("%(?![0-9A-Fa-f]{2})")
# Most member URLs: http(s), a plain host name, then only characters that need no escaping (and
# no "%", whose escapes would need checking).  Cleaning, splitting and quoting such a URL gives
# it back unchanged, so ``_safe_url`` can skip the work.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9][A-Za-z0-9.-]*(?::[0-9]+)?"
                        r"(?:[/?#][A-Za-z0-9!#$&'()*+,/:;=?@\[\]\-._~]*)?")

Kind = Literal["rss", "atom"]
# The name our extensions go by on feedgen's feeds and entries.
_EXTENSION: Final = "sindikasi"


@dataclass(frozen=True, slots=True)
class _Copy:
    """Another member's copy of a story, already checked for a usable link."""

    url: str
    member: str
    title: str
    published: datetime


@dataclass(frozen=True, slots=True)
class _Entry:
    """One feed entry in the terms all three formats share, cleaned once for all of them."""

    id: str
    title: str
    url: str | None
    summary: str
    content_html: str
    published: datetime
    updated: datetime
    places: tuple[Place, ...]
    member: str
    member_site: str | None
    member_feed: str | None
    copies: tuple[_Copy, ...]
    story_id: int | None


# --- cleaning ------------------------------------------------------------------------------------


def _text(value: str) -> str:
    return _NOT_XML.sub("", value).strip()


def _line(value: str) -> str:
    """Titles and names: one line, since readers show them in lists."""
    return " ".join(_text(value).split())


@lru_cache(maxsize=4096)
def _name(value: str) -> str:
    """``_line`` for member and region names: a few hundred of them, each in thousands of
    entries."""
    return _line(value)


@lru_cache(maxsize=65536)  # one publish checks each article's URL in several feeds
def _safe_url(url: str) -> str | None:
    """The URL if a reader may follow it (http or https with a host), as a valid URI; else None.

    Anything else (javascript:, data:, relative paths) is dropped rather than repaired: a link we
    cannot vouch for is worse than no link.
    """
    if _PLAIN_URL.fullmatch(url):
        return url  # what ``_checked_url`` would give back unchanged, found in one match
    return _checked_url(url)


def _checked_url(url: str) -> str | None:
    cleaned = _NOT_XML.sub("", url).strip()
    try:
        parts = urlsplit(cleaned)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return _STRAY_PERCENT.sub("%25", quote(cleaned, safe=_URI_SAFE))


def _utc(moment: datetime) -> datetime:
    """Whole seconds in UTC: readers compare dates, and sub-second noise only churns the bytes."""
    if moment.tzinfo is UTC and not moment.microsecond:  # as the store gives them, mostly
        return moment
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.replace(microsecond=0)


def _rfc3339(moment: datetime) -> str:
    u = _utc(moment)  # %Y is not zero-padded below year 1000 on every platform
    return f"{u.year:04d}-{u:%m-%dT%H:%M:%S}Z"


def _member_name(source: Source) -> str:
    return _name(source.name) or _name(source.id)


def _unique_places(places: Iterable[Place]) -> tuple[Place, ...]:
    """Each region once (by code and by name): JSON Feed tags must be unique."""
    seen: set[str] = set()
    found: list[Place] = []
    for place in places:
        name = _name(place.name)
        if not name or place.code in seen or name in seen:
            continue
        seen.update((place.code, name))
        found.append(place)
    return tuple(found)


def _content_html(summary: str, copies: Sequence[_Copy]) -> str:
    parts = [f"<p>{html.escape(summary)}</p>"] if summary else []
    if copies:
        links = ", ".join(f'<a href="{html.escape(c.url)}">{html.escape(c.member)}</a>'
                          for c in copies)
        parts.append(f"<p>{html.escape(ALSO_REPORTED_BY)}{links}</p>")
    return "\n".join(parts)


def _title(article: Article) -> str:
    """Atom and feedgen insist on a title; an untitled item still deserves a readable line."""
    title = _line(article.title)
    if title:
        return title
    summary = _line(article.summary)
    return summary[:100] if summary else UNTITLED


# --- entries -------------------------------------------------------------------------------------


def _story_entry(site: Site, story: Story) -> _Entry:
    lead = story.lead
    url = _safe_url(lead.url)
    copies: list[_Copy] = []
    seen = {url}
    for copy in story.copies:
        copy_url = _safe_url(copy.url)
        if copy_url is None or copy_url in seen:
            continue
        seen.add(copy_url)
        copies.append(_Copy(copy_url, _member_name(copy.source), _title(copy),
                            _utc(copy.published_at)))
    published = _utc(story.published_at)
    title = _title(lead)
    summary = _text(lead.summary) or title
    return _Entry(
        id=site.url(f"#story-{story.id}"), title=title, url=url, summary=summary,
        content_html=_content_html(summary, copies), published=published,
        updated=max(_utc(story.updated_at), published), places=_unique_places(story.places),
        member=_member_name(lead.source), member_site=_safe_url(lead.source.site),
        member_feed=_safe_url(lead.source.feed_url), copies=tuple(copies), story_id=story.id)


def _article_entry(site: Site, article: Article) -> _Entry:
    published = _utc(article.published_at)
    updated = _utc(article.updated_at) if article.updated_at is not None else published
    title = _title(article)
    summary = _text(article.summary) or title
    return _Entry(
        id=site.url(f"#article-{article.id}"), title=title, url=_safe_url(article.url),
        summary=summary, content_html=_content_html(summary, ()), published=published,
        updated=max(updated, published), places=_unique_places(article.places),
        member=_member_name(article.source), member_site=_safe_url(article.source.site),
        member_feed=_safe_url(article.source.feed_url), copies=(), story_id=None)


def _newest(entries: Sequence[_Entry]) -> datetime:
    return max((e.updated for e in entries), default=EMPTY_FEED_DATE)


# --- RSS and Atom through feedgen ----------------------------------------------------------------


class _FeedExtension:
    """What feedgen cannot say about a channel: the WebSub hub in RSS, and the dc namespace."""

    def __init__(self) -> None:
        self.kind: Kind = "rss"
        self.hub: str | None = None

    def extend_ns(self) -> dict[str, str]:
        return {"dc": DC_NS} if self.kind == "rss" else {}

    def extend_rss(self, rss: Any) -> Any:
        channel = rss.find("channel")
        if self.hub is not None and channel is not None:
            etree.SubElement(channel, f"{{{ATOM_NS}}}link", href=self.hub, rel="hub")
        return rss

    def extend_atom(self, feed: Any) -> Any:
        return feed


class _EntryExtension:
    """What feedgen gets wrong or cannot say about an entry, written from the ``_Entry``.

    The lead's member as ``<source>`` (feedgen's Atom source has no id or self link), and the
    Atom links: feedgen 1.0 drops ``rel`` and ``title`` from entry links, which would turn every
    related copy into a second "alternate" link and make the entry invalid.
    """

    def __init__(self) -> None:
        self.entry: _Entry | None = None

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_rss(self, item: Any) -> Any:
        entry = self.entry
        if entry is None:
            return item
        if entry.member_feed is not None:
            source = etree.SubElement(item, "source", url=entry.member_feed)
            source.text = entry.member
        etree.SubElement(item, f"{{{DC_NS}}}creator").text = entry.member
        return item

    def extend_atom(self, element: Any) -> Any:
        # feedgen builds Atom elements without a namespace and declares the default namespace
        # on <feed> as a plain attribute, so ours follow suit to land in the Atom namespace.
        entry = self.entry
        if entry is None:
            return element
        if entry.url is not None:
            etree.SubElement(element, "link", rel="alternate", type="text/html", href=entry.url)
        for copy in entry.copies:
            etree.SubElement(element, "link", rel="related", type="text/html", href=copy.url,
                             title=copy.member)
        if entry.member_feed is not None:
            source = etree.SubElement(element, "source")
            etree.SubElement(source, "id").text = entry.member_feed
            etree.SubElement(source, "title").text = entry.member
            etree.SubElement(source, "link", rel="self", href=entry.member_feed)
            if entry.member_site is not None:
                etree.SubElement(source, "link", rel="alternate", type="text/html",
                                 href=entry.member_site)
        return element


def _feed_entry(entry: _Entry, kind: Kind, scheme: str) -> Any:
    """The entry as feedgen holds it, ready to be added to any number of feeds of its kind.

    The extension is registered here rather than by ``FeedGenerator.add_entry``: that call
    registers the feed's extensions on the entry, but leaves one already registered alone (it
    catches its own "already loaded" error), so every feed the entry joins renders it alike.
    RSS and Atom need separate entries, as feedgen keeps some fields (the link, the summary) in
    forms that would leak from one format into the other.
    """
    fe: Any = FeedEntry()
    fe.id(entry.id)  # also the RSS guid, with isPermaLink="false"
    fe.title(entry.title)
    if kind == "rss" and entry.url is not None:
        fe.link(href=entry.url, rel="alternate")  # becomes the item's <link>
    fe.published(entry.published)
    fe.updated(entry.updated)
    if kind == "atom":
        fe.summary(entry.summary, type="text")
        fe.content(entry.content_html, type="html")
        author = {"name": entry.member}
        if entry.member_site is not None:
            author["uri"] = entry.member_site
        fe.author(author)
    else:
        # No author for RSS: its <author> must be an e-mail address, which feedgen writes only
        # when given one, and members give none; the member is the item's <dc:creator> instead.
        fe.description(entry.content_html)
    if entry.places:
        fe.category([{"term": p.slug or p.code, "label": _name(p.name), "scheme": scheme}
                     for p in entry.places])
    fe.register_extension(_EXTENSION, _EntryExtension)
    extension: _EntryExtension = getattr(fe, _EXTENSION)
    extension.entry = entry
    return fe


def _generator(site: Site, info: FeedInfo, entries: Sequence[_Entry], kind: Kind,
               feed_entries: Iterable[Any]) -> Any:
    """The feed around ``feed_entries``, which are ``entries`` as ``_feed_entry`` gave them."""
    fg: Any = FeedGenerator()
    fg.register_extension(_EXTENSION, _FeedExtension, _EntryExtension)
    ext: _FeedExtension = getattr(fg, _EXTENSION)
    ext.kind = kind
    hub = _safe_url(site.websub_hub) if site.websub_hub else None
    self_url = site.url(info.path)
    updated = _newest(entries)

    fg.id(self_url)
    fg.title(_line(info.title) or _line(site.name))
    fg.description(_line(info.description) or _line(info.title) or _line(site.name))
    fg.language(info.language)
    fg.author(name=_line(site.name), uri=site.base_url)
    fg.generator(GENERATOR)
    fg.docs("https://www.rssboard.org/rss-specification")
    fg.updated(updated)
    fg.pubDate(updated)
    fg.link(href=self_url, rel="self", type=RSS_TYPE if kind == "rss" else ATOM_TYPE)
    if hub is not None:
        if kind == "atom":
            fg.link(href=hub, rel="hub")
        else:
            ext.hub = hub
    # Last, because feedgen makes the last link added the RSS channel's <link>.
    fg.link(href=site.url(info.home_path), rel="alternate", type="text/html")

    for fe in feed_entries:
        fg.add_entry(fe, order="append")
    return fg


def _rss(site: Site, info: FeedInfo, entries: Sequence[_Entry],
         feed_entries: Iterable[Any] | None = None) -> bytes:
    if feed_entries is None:
        scheme = site.url("regions/")
        feed_entries = [_feed_entry(e, "rss", scheme) for e in entries]
    out: bytes = _generator(site, info, entries, "rss", feed_entries).rss_str(pretty=True)
    return out


def _atom(site: Site, info: FeedInfo, entries: Sequence[_Entry],
          feed_entries: Iterable[Any] | None = None) -> bytes:
    if feed_entries is None:
        scheme = site.url("regions/")
        feed_entries = [_feed_entry(e, "atom", scheme) for e in entries]
    out: bytes = _generator(site, info, entries, "atom", feed_entries).atom_str(pretty=True)
    return out


# --- public --------------------------------------------------------------------------------------


class _Prepared:
    """A story's entry, and its feedgen entries once some RSS or Atom feed has needed them."""

    __slots__ = ("atom", "entry", "rss", "story")

    def __init__(self, story: Story, entry: _Entry) -> None:
        self.story = story
        self.entry = entry
        self.rss: Any = None
        self.atom: Any = None


class FeedRenderer:
    """Renders one publish's feeds, preparing each story's entry once.

    A story is listed by the merged feed and by every region it names, each in RSS and Atom
    (and the merged one in JSON too): cleaning it and filling in feedgen's entry again for each
    of them was much of the work.  feedgen renders an entry afresh from its fields in every feed
    it is added to, so one entry object serves them all.  Stories are remembered by id together
    with the object itself, so a different story value under the same id is prepared afresh
    rather than mistaken for the remembered one.  Not for use from several threads at once.
    """

    def __init__(self, site: Site) -> None:
        self.site = site
        self._scheme = site.url("regions/")
        self._stories: dict[int, _Prepared] = {}

    def _prepared(self, stories: Sequence[Story]) -> list[_Prepared]:
        out = []
        for story in stories:
            known = self._stories.get(story.id)
            if known is None or known.story is not story:
                known = self._stories[story.id] = _Prepared(story,
                                                            _story_entry(self.site, story))
            out.append(known)
        return out

    def story_entries(self, stories: Sequence[Story]) -> list[_Entry]:
        return [p.entry for p in self._prepared(stories)]

    def stories_rss(self, info: FeedInfo, stories: Sequence[Story]) -> bytes:
        prepared = self._prepared(stories)
        for p in prepared:
            if p.rss is None:
                p.rss = _feed_entry(p.entry, "rss", self._scheme)
        return _rss(self.site, info, [p.entry for p in prepared], [p.rss for p in prepared])

    def stories_atom(self, info: FeedInfo, stories: Sequence[Story]) -> bytes:
        prepared = self._prepared(stories)
        for p in prepared:
            if p.atom is None:
                p.atom = _feed_entry(p.entry, "atom", self._scheme)
        return _atom(self.site, info, [p.entry for p in prepared], [p.atom for p in prepared])

    def stories_json(self, info: FeedInfo, stories: Sequence[Story]) -> bytes:
        return _json(self.site, info, self.story_entries(stories))

    def articles_rss(self, info: FeedInfo, articles: Sequence[Article]) -> bytes:
        return _rss(self.site, info, [_article_entry(self.site, a) for a in articles])


def render_stories_rss(site: Site, info: FeedInfo, stories: Sequence[Story]) -> bytes:
    """RSS 2.0, one item per story in the given order (the caller sorts and limits)."""
    return FeedRenderer(site).stories_rss(info, stories)


def render_stories_atom(site: Site, info: FeedInfo, stories: Sequence[Story]) -> bytes:
    """Atom 1.0; the other members' copies are ``rel="related"`` links a reader can follow."""
    return FeedRenderer(site).stories_atom(info, stories)


def render_articles_rss(site: Site, info: FeedInfo, articles: Sequence[Article]) -> bytes:
    """A member's own feed: every article of theirs, unclustered, in the given order."""
    return FeedRenderer(site).articles_rss(info, articles)


def render_stories_json(site: Site, info: FeedInfo, stories: Sequence[Story]) -> bytes:
    """JSON Feed 1.1, with the copies also as data under ``_sindikasi`` for other aggregators."""
    return FeedRenderer(site).stories_json(info, stories)


def _json(site: Site, info: FeedInfo, entries: Sequence[_Entry]) -> bytes:
    doc: dict[str, Any] = {
        "version": JSONFEED_VERSION,
        "title": _line(info.title) or _line(site.name),
        "home_page_url": site.url(info.home_path),
        "feed_url": site.url(info.path),
        "description": _line(info.description),
        "language": info.language,
        "authors": [{"name": _line(site.name), "url": site.base_url}],
    }
    hub = _safe_url(site.websub_hub) if site.websub_hub else None
    if hub is not None:
        doc["hubs"] = [{"type": "WebSub", "url": hub}]
    doc["items"] = [_json_item(e) for e in entries]
    text = json.dumps(doc, ensure_ascii=False, indent=2)
    # Only string contents can hold these characters; as escapes they keep a browser that sniffs
    # the file as HTML from finding markup in a member's plain-text title or summary.
    text = text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return (text + "\n").encode("utf-8")


def _json_item(entry: _Entry) -> dict[str, Any]:
    author: dict[str, str] = {"name": entry.member}
    if entry.member_site is not None:
        author["url"] = entry.member_site
    item: dict[str, Any] = {"id": entry.id}
    if entry.url is not None:
        item["url"] = entry.url
    item.update({
        "title": entry.title,
        "content_html": entry.content_html,
        "summary": entry.summary,
        "date_published": _rfc3339(entry.published),
        "date_modified": _rfc3339(entry.updated),
        "tags": [_name(p.name) for p in entry.places],
        "authors": [author],
    })
    source: dict[str, str] = {"name": entry.member}
    if entry.member_site is not None:
        source["url"] = entry.member_site
    if entry.member_feed is not None:
        source["feed_url"] = entry.member_feed
    item["_sindikasi"] = {
        "story_id": entry.story_id,
        "source": source,
        "copies": [{"url": c.url, "title": c.title, "source": c.member,
                    "date_published": _rfc3339(c.published)} for c in entry.copies],
    }
    return item
