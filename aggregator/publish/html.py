"""The river of news: the front page and one page per region, for people reading in a browser.

Everything a page shows is prepared here before Jinja sees it: member URLs are checked, links
between our own files are made relative, times are turned into the association's wall clock.
The template then only lays things out, with autoescape on, so a hostile title from one of dozens
of outside feeds stays text. Pages carry no script and a Content-Security-Policy that would refuse
one anyway; the stylesheet is allowed by its hash rather than by 'unsafe-inline', so an injected
``style`` attribute would be refused too.

Links to our own pages and feeds are relative to the page, because the same files are served from
the real host, from a demo host and straight from disk; links to members' articles are absolute.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache, lru_cache
from importlib import resources
from urllib.parse import quote
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, Template
from markupsafe import Markup

from .model import Article, Place, Site, Story

_PACKAGE = "aggregator.publish"
OPML_PATH = "sources.opml"
HOME_PATH = "index.html"

_DAYS = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
_MONTHS = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
           "September", "Oktober", "November", "Desember")
# Indonesian readers know their zones by these names; tzdata's own abbreviations for these zones
# have changed over the years, so they are not left to whichever tzdata is installed.
_ZONE_NAMES = {"Asia/Jakarta": "WIB", "Asia/Pontianak": "WIB", "Asia/Makassar": "WITA",
               "Asia/Jayapura": "WIT"}

# Order of the region filter: the kabupaten/kota are what most readers look for.
_FILTER_GROUPS: tuple[tuple[str, frozenset[str]], ...] = (
    ("Kabupaten dan kota", frozenset({"kabupaten", "kota"})),
    ("Kawasan", frozenset({"grouping"})),
    ("Provinsi", frozenset({"province"})),
    ("Provinsi lain", frozenset({"other_province"})),
    ("Nasional", frozenset({"national"})),
)
_OTHER_GROUP = "Lainnya"

# A summary is a teaser in a river of many stories; the member's page has the rest.
SUMMARY_LIMIT = 360

_HTTP_URL = re.compile(r"https?://[^/?#\s\\]", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NOT_HTML = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ud800-\udfff]")
_LEVEL_PREFIX = re.compile(r"^(kabupaten|kota)\s+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Page:
    """One HTML page to render: the front page (``place`` None) or a region's page."""

    path: str  # relative to the output root: "index.html", "regions/kota-malang.html"
    title: str
    place: Place | None
    stories: tuple[Story, ...]  # newest first
    places: tuple[Place, ...]  # every region or grouping that has a page, for the filter
    feeds: tuple[tuple[str, str], ...]  # (label, path from the output root) of this page's feeds


@dataclass(frozen=True, slots=True)
class _Link:
    text: str
    href: str | None  # None when the address was not one we are willing to link to
    current: bool = False


@dataclass(frozen=True, slots=True)
class _Moment:
    iso: str
    text: str


@dataclass(frozen=True, slots=True)
class _Copy:
    member: _Link
    title: str
    time: _Moment


@dataclass(frozen=True, slots=True)
class _StoryView:
    anchor: str
    title: _Link
    member: str
    time: _Moment
    summary: str
    copies: tuple[_Copy, ...]
    places: tuple[_Link, ...]


@dataclass(frozen=True, slots=True)
class _Feed:
    label: str
    href: str
    type: str | None
    title: str


@dataclass(frozen=True, slots=True)
class _Group:
    label: str
    links: tuple[_Link, ...]


class PageRenderer:
    """Renders one publish's pages, preparing each story's view once.

    A story shows on the front page and on the page of every region it names; only its region
    links depend on the page (relative to it, the current one marked), so the rest of its view
    (checked links, shortened summary, wall-clock times) is prepared once and kept by story id,
    together with the story itself so that a different value under the same id is not mistaken
    for it.
    """

    def __init__(self, site: Site) -> None:
        self.site = site
        self._zone = ZoneInfo(site.timezone)
        self._zone_name = _ZONE_NAMES.get(site.timezone)
        self._views: dict[int, tuple[Story, _StoryView]] = {}

    def render(self, page: Page) -> bytes:
        """The page as UTF-8 HTML.

        No clock and no host state is read, so the same site and page give the same bytes and
        the publisher can leave an unchanged file alone.
        """
        site = self.site
        _check_path(page.path)
        zone_name = self._zone_name
        css = _stylesheet()
        paged = {p.slug for p in page.places if _slug_ok(p.slug)}
        front = page.place is None
        document_title = page.title if page.title == site.name else f"{page.title} · {site.name}"
        context = {
            "lang": site.language,
            "csp": _content_security_policy(css),
            "css": Markup(css),
            "document_title": document_title,
            "heading": page.title,
            "site_name": site.name,
            "front": front,
            "place": page.place,
            "canonical": safe_href(site.url(page.path)),
            "home_href": relative_href(HOME_PATH, page.path),
            "feeds": tuple(_feed(label, path, page) for label, path in page.feeds),
            "opml_href": relative_href(OPML_PATH, page.path),
            "groups": _filter_groups(page, paged),
            "stories": tuple(self._story(s, page, paged) for s in page.stories),
            "empty_message": ("Belum ada berita saat ini. Silakan kembali lagi nanti." if front
                              else "Belum ada berita untuk wilayah ini. Silakan kembali lagi "
                                   "nanti."),
            "zone_name": zone_name,
            "timezone": site.timezone,
            "contact_href": safe_href(site.contact_url) if site.contact_url else None,
        }
        # A member's title can carry what no HTML parser should meet: C0 controls, and lone
        # surrogates (JSON Feed can spell one), which would not even encode.
        return _NOT_HTML.sub("", _template().render(context)).encode("utf-8")

    def _story(self, story: Story, page: Page, paged: set[str]) -> _StoryView:
        known = self._views.get(story.id)
        if known is None or known[0] is not story:
            known = (story, _story(story, self._zone, self._zone_name))
            self._views[story.id] = known
        places = tuple(_place_link(p, page, paged) for p in story.places)
        return replace(known[1], places=places) if places else known[1]


def render_page(site: Site, page: Page) -> bytes:
    """The page as UTF-8 HTML (see ``PageRenderer.render``)."""
    return PageRenderer(site).render(page)


def safe_href(url: str) -> str | None:
    """``url`` if it is an http(s) address a browser will read as such, else None.

    Anything else a member feed sends (javascript:, data:, relative paths that would resolve
    against our host, addresses hiding control characters) is shown without a link.
    """
    if _CONTROL.search(url) or not _HTTP_URL.match(url):
        return None
    return url


@lru_cache(maxsize=8192)  # every page links every region page: a publish asks for the same few
def relative_href(target: str, page_path: str) -> str:
    """``target`` (a path from the output root) as seen from the page at ``page_path``.

    Each segment is percent-encoded, so a colon in a slug can never be read as a URL scheme.
    """
    here = page_path.split("/")[:-1]
    there = target.split("/")
    common = 0
    while common < len(here) and common < len(there) - 1 and here[common] == there[common]:
        common += 1
    parts = [".."] * (len(here) - common) + [quote(seg, safe="") for seg in there[common:]]
    return "/".join(parts)


def format_time(moment: datetime, site: Site, *, weekday: bool = True) -> str:
    """``moment`` on the association's wall clock, as Indonesian readers write it."""
    return _moment(moment, ZoneInfo(site.timezone), _ZONE_NAMES.get(site.timezone),
                   weekday=weekday).text


def region_path(place: Place) -> str:
    """Where a region's page lives, from the output root.

    Kept in one place so the story chips, the filter and the publisher cannot disagree.
    """
    return f"regions/{place.slug}.html"


def _check_path(path: str) -> None:
    # A page outside the output root, or one whose depth we misjudge, would get wrong links.
    parts = path.split("/")
    if path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"page path must be relative and plain: {path!r}")


def _slug_ok(slug: str) -> bool:
    return bool(slug) and "/" not in slug and slug not in (".", "..")


def _moment(moment: datetime, zone: ZoneInfo, zone_name: str | None, *,
            weekday: bool) -> _Moment:
    if moment.tzinfo is None:  # the model promises UTC; never let the host's zone decide
        moment = moment.replace(tzinfo=UTC)
    try:
        local = moment.astimezone(zone)
    except OverflowError:  # a member's "year 1" moved west of UTC falls off the calendar
        local, zone_name = moment, moment.tzname()
    # Elsewhere the abbreviation can change with the date (CET/CEST), so it is asked each time.
    label = zone_name or local.tzname() or zone.key
    date = f"{local.day} {_MONTHS[local.month - 1]} {local.year} {local:%H.%M} {label}"
    text = f"{_DAYS[local.weekday()]}, {date}" if weekday else date
    return _Moment(local.isoformat(timespec="seconds"), text)


def _shorten(text: str, limit: int = SUMMARY_LIMIT) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + "…"


def _title(article: Article) -> str:
    return " ".join(article.title.split()) or "(tanpa judul)"


def _story(story: Story, zone: ZoneInfo, zone_name: str | None) -> _StoryView:
    """The story's view without its region links, which depend on the page."""
    lead = story.lead
    copies = tuple(
        _Copy(_Link(c.source.name, safe_href(c.url)), _title(c),
              _moment(c.published_at, zone, zone_name, weekday=False))
        for c in story.copies)
    return _StoryView(
        anchor=f"story-{story.id}",
        title=_Link(_title(lead), safe_href(lead.url)),
        member=lead.source.name,
        time=_moment(story.published_at, zone, zone_name, weekday=True),
        summary=_shorten(lead.summary),
        copies=copies,
        places=(),
    )


def _place_link(place: Place, page: Page, paged: set[str]) -> _Link:
    # Only regions that have a page get a link: a link to a file that was never written is worse
    # than plain text.
    href = relative_href(region_path(place), page.path) if place.slug in paged else None
    current = page.place is not None and page.place.slug == place.slug
    return _Link(place.name, href, current)


def _feed(label: str, path: str, page: Page) -> _Feed:
    return _Feed(label, relative_href(path, page.path), _feed_type(label, path),
                 f"{page.title} ({label})")


def _feed_type(label: str, path: str) -> str | None:
    # The label decides first: "atom.xml" is Atom although it ends in .xml.
    name = label.lower()
    lower = path.lower()
    if "atom" in name or lower.endswith(".atom"):
        return "application/atom+xml"
    if "json" in name or lower.endswith(".json"):
        return "application/feed+json"
    if "rss" in name or lower.endswith((".xml", ".rss")):
        return "application/rss+xml"
    return None


def _sort_key(place: Place) -> tuple[str, str, str]:
    # "Kabupaten Malang" next to "Kota Malang": readers look for the town's name, not the prefix.
    return (_LEVEL_PREFIX.sub("", place.name).casefold(), place.level, place.name)


def _filter_groups(page: Page, paged: set[str]) -> tuple[_Group, ...]:
    seen: set[str] = set()
    places: list[Place] = []
    for place in page.places:
        if place.slug in paged and place.slug not in seen:
            seen.add(place.slug)
            places.append(place)
    known = frozenset().union(*(levels for _, levels in _FILTER_GROUPS))
    wanted = [*_FILTER_GROUPS, (_OTHER_GROUP, None)]
    groups: list[_Group] = []
    for label, levels in wanted:
        members = sorted((p for p in places
                          if (p.level in levels if levels is not None else p.level not in known)),
                         key=_sort_key)
        if members:
            groups.append(_Group(label, tuple(_place_link(p, page, paged) for p in members)))
    return tuple(groups)


def _content_security_policy(css: str) -> str:
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return ("default-src 'none'; "
            f"style-src 'sha256-{digest}'; "
            "img-src 'self'; base-uri 'none'; form-action 'none'")


@cache
def _stylesheet() -> str:
    text = (resources.files(_PACKAGE) / "templates" / "style.css").read_text("utf-8")
    if "</" in text:  # it goes inside <style> verbatim
        raise ValueError("style.css must not contain '</'")
    return text


@cache
def _template() -> Template:
    env = Environment(loader=PackageLoader(_PACKAGE, "templates"),
                      autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=True)
    return env.get_template("page.html")
