"""Google News sitemaps, one set per member, and the sitemap index that lists them all.

The association hosts the sitemaps, but the articles live on the members' own hosts.  Search
engines accept a sitemap listing another host's URLs only when that host's robots.txt names the
sitemap (sitemaps.org "cross submits"), so each member gets a file of its own that its robots.txt
can point at, rather than one big file mixing every host.

Everything here is pure: ``now`` comes in as a parameter, and the same input gives the same bytes,
which lets the publisher skip unchanged files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from lxml import etree

from ..textclean import strip_controls
from .model import Article, Site, Source

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"

# Google News reads only this many <news:news> per file; the rest must go to further files.
MAX_NEWS_PER_FILE = 1000
# Google News wants only articles from the last two days in a news sitemap.
DEFAULT_HOURS = 48.0

# The sitemaps.org XSD bounds <loc> to this length; a longer URL would make the whole file invalid.
_MAX_LOC = 2048
_MIN_LOC = 12
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_NOT_LOC = re.compile(r"[\s<>\"\x00-\x1f\x7f]")
# http(s), a plain host name, then only URI characters: what ``_usable_url`` accepts anyway (given
# the length), found with one match instead of the checks and a urlsplit.
_PLAIN_LOC = re.compile(r"https?://[A-Za-z0-9][A-Za-z0-9.-]*(?::[0-9]+)?"
                        r"(?:[/?#][A-Za-z0-9!#$%&'()*+,/:;=?@\[\]\-._~]*)?")
_ISO639 = re.compile(r"^[a-z]{2,3}$")
# Google News accepts only two region forms, both Chinese; which one a tag means depends on its
# script or region subtag.
_TRADITIONAL = frozenset({"tw", "hk", "mo", "hant"})
_SIMPLIFIED = frozenset({"cn", "sg", "my", "hans"})


def news_sitemap_path(member_id: str, part: int = 1) -> str:
    """The first file keeps a fixed name because members' robots.txt files point at it; further
    parts take ".<n>", which no member id can contain, so member "foo"'s second part is never
    member "foo-2"'s file."""
    suffix = "" if part == 1 else f".{part}"
    return f"sitemaps/news-{member_id}{suffix}.xml"


def news_language(tag: str) -> str | None:
    """Google News wants ISO 639 codes, not BCP 47 tags: 'id-ID' -> 'id', 'zh-Hant' -> 'zh-tw'.

    None when the tag has no usable primary code, so the caller can fall back to another.
    """
    parts = [p for p in re.split(r"[-_]", tag.strip().lower()) if p]
    if not parts or not _ISO639.match(parts[0]):
        return None
    primary = parts[0]
    if primary == "zh":
        subtags = set(parts[1:])
        if subtags & _TRADITIONAL:
            return "zh-tw"
        if subtags & _SIMPLIFIED:
            return "zh-cn"
    return primary


def w3c_datetime(moment: datetime) -> str:
    """UTC with an explicit 'Z': a time without a zone is ambiguous to every sitemap reader."""
    u = _utc(moment)  # %Y is not zero-padded below year 1000 on every platform
    return f"{u.year:04d}-{u:%m-%dT%H:%M:%S}Z"


def news_sitemaps(site: Site, source: Source, articles: Sequence[Article], now: datetime,
                  *, hours: float = DEFAULT_HOURS) -> list[tuple[str, bytes]]:
    """The member's recent articles as Google News sitemap files, newest first.

    Articles of other members are ignored, so the caller may pass a whole snapshot.  An article
    counts as recent when published at most ``hours`` before ``now``.  Articles dated after ``now``
    are kept: ingestion already clamps dates to a small skew past the fetch time, so they are
    fresh news from a member whose clock runs slightly ahead, and hiding them would keep the
    newest stories out of search until the next run.  URLs that are not absolute http(s) or are
    too long for the XSD are left out, since one of them would make the whole file invalid.

    A member with nothing recent still gets its first file, because its robots.txt names it and a
    404 there reads as a broken setup.  An empty <urlset> is invalid (the XSD wants at least one
    <url>), so that file lists the member's home page as a plain URL with no <news:news>; nothing
    then claims to be news, and the home page is on the host whose robots.txt cross-submits it.
    """
    language = news_language(source.language) or news_language(site.language)
    if language is None:
        raise ValueError(f"no ISO 639 language code in {source.language!r} or {site.language!r}")
    recent = _recent(source, articles, _utc(now), timedelta(hours=hours))
    if not recent:
        return [(news_sitemap_path(source.id), _placeholder(source))]
    chunks = [recent[i:i + MAX_NEWS_PER_FILE] for i in range(0, len(recent), MAX_NEWS_PER_FILE)]
    return [(news_sitemap_path(source.id, n), _urlset(source, language, chunk))
            for n, chunk in enumerate(chunks, start=1)]


def sitemap_index(site: Site, files: Sequence[tuple[str, datetime | None]]) -> bytes:
    """The sitemap index at ``sitemap.xml``: one place for a crawler to find every member's file.

    ``files`` are paths relative to the output directory with their last change, when known; they
    are listed in the order given.  The same path twice means two members' file names collided
    (member "a" part 2 and member "a-2"), which would silently lose one member's sitemap, so it
    is an error; so is an empty list, which the XSD rejects.
    """
    if not files:
        raise ValueError("a sitemap index needs at least one sitemap")
    seen: set[str] = set()
    root = etree.Element(f"{{{SITEMAP_NS}}}sitemapindex", nsmap={None: SITEMAP_NS})
    for path, lastmod in files:
        if path in seen:
            raise ValueError(f"sitemap {path!r} is listed twice")
        seen.add(path)
        entry = etree.SubElement(root, f"{{{SITEMAP_NS}}}sitemap")
        etree.SubElement(entry, f"{{{SITEMAP_NS}}}loc").text = site.url(path)
        if lastmod is not None:
            etree.SubElement(entry, f"{{{SITEMAP_NS}}}lastmod").text = w3c_datetime(lastmod)
    return _serialise(root)


def sitemap_lines(site: Site, sources: Sequence[Source]) -> list[str]:
    """The line each member adds to the robots.txt of the host its articles are on.

    The sitemaps live on the association's host but list URLs on the members' hosts.  Search
    engines trust a sitemap with another host's URLs only when that host vouches for it: a
    member's article URLs count only when the robots.txt of the member's own host names the
    sitemap that lists them.  Without the line, the member's file is ignored (or reported as
    "URL not allowed"), however valid it is.  A member publishing on several hosts (www and bare,
    a separate mobile host) needs the line in each of those robots.txt files.

    Only the first file is named: it always exists, so the line never points at a 404.  The
    overflow files ("-2", "-3", present only while a member has more than 1,000 recent articles)
    are in the index but not cross-submitted by these lines.
    """
    return [f"Sitemap: {site.url(news_sitemap_path(source.id))}" for source in sources]


def _recent(source: Source, articles: Iterable[Article], now: datetime,
            window: timedelta) -> list[Article]:
    oldest = now - window
    mine = [a for a in articles
            if a.source.id == source.id and _utc(a.published_at) >= oldest and _usable_url(a.url)]
    # The id breaks ties between articles published in the same second, for stable bytes.
    mine.sort(key=lambda a: (_utc(a.published_at), a.id), reverse=True)
    seen: set[str] = set()
    unique: list[Article] = []
    for article in mine:
        if article.url not in seen:
            seen.add(article.url)
            unique.append(article)
    return unique


def _usable_url(url: str) -> bool:
    if _PLAIN_LOC.fullmatch(url):  # most URLs: plainly usable, without splitting them
        return _MIN_LOC <= len(url) <= _MAX_LOC
    # Whitespace and control characters (which XML cannot even hold) make no address.
    if not _MIN_LOC <= len(url) <= _MAX_LOC or url != url.strip() or \
            _NOT_LOC.search(url) or _SURROGATE.search(url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _urlset(source: Source, language: str, articles: Sequence[Article]) -> bytes:
    root = _new_urlset()
    publication_name = _text(source.publication or source.name)
    for article in articles:
        url = etree.SubElement(root, f"{{{SITEMAP_NS}}}url")
        etree.SubElement(url, f"{{{SITEMAP_NS}}}loc").text = article.url
        published = _utc(article.published_at)
        changed = max(published, _utc(article.updated_at)) if article.updated_at else published
        etree.SubElement(url, f"{{{SITEMAP_NS}}}lastmod").text = w3c_datetime(changed)
        news = etree.SubElement(url, f"{{{NEWS_NS}}}news")
        publication = etree.SubElement(news, f"{{{NEWS_NS}}}publication")
        etree.SubElement(publication, f"{{{NEWS_NS}}}name").text = publication_name
        etree.SubElement(publication, f"{{{NEWS_NS}}}language").text = language
        etree.SubElement(news, f"{{{NEWS_NS}}}publication_date").text = \
            w3c_datetime(published)
        etree.SubElement(news, f"{{{NEWS_NS}}}title").text = _text(article.title)
    return _serialise(root)


def _placeholder(source: Source) -> bytes:
    if not _usable_url(source.site):
        raise ValueError(f"member {source.id!r} has no absolute http(s) site URL: {source.site!r}")
    root = _new_urlset()
    url = etree.SubElement(root, f"{{{SITEMAP_NS}}}url")
    etree.SubElement(url, f"{{{SITEMAP_NS}}}loc").text = source.site
    return _serialise(root)


def _new_urlset() -> etree._Element:
    return etree.Element(f"{{{SITEMAP_NS}}}urlset", nsmap={None: SITEMAP_NS, "news": NEWS_NS})


def _serialise(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _text(value: str) -> str:
    # lxml refuses control characters and lone surrogates outright, failing the whole file; a
    # title decoded from "&#1;" may still carry one.
    return _SURROGATE.sub("", strip_controls(value))


def _utc(moment: datetime) -> datetime:
    # The model promises aware UTC; a naive value is read as UTC rather than as the host's zone.
    if moment.tzinfo is UTC:  # as the store gives them: nothing to convert
        return moment
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
