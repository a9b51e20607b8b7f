"""Sample members and stories that ship with the project, and the feeds and config made of them.

``aggregator demo`` has to show a newcomer the whole product with no network access: member
feeds served on 127.0.0.1, a poll cycle, clustering and tagging, publishing.  Real outlets'
articles cannot ship with the project, so ``stories.yaml`` holds invented outlets and original
writing; this module turns them into what a poller meets in the wild (WordPress-style RSS 2.0
with dates relative to the moment the demo runs, so the stories are always fresh) and into the
``feeds.yaml`` that points the aggregator at them.

Everything here is a pure function of its arguments: the caller decides where files go and
which ports serve them.
"""

from __future__ import annotations

import html
import re
import unicodedata
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from feedgen.feed import FeedGenerator

__all__ = [
    "DemoData",
    "DemoDataError",
    "DemoItem",
    "DemoMember",
    "Expect",
    "demo_config",
    "feed_path",
    "feed_url",
    "item_link",
    "load_stories",
    "member_feeds",
    "parse_stories",
    "published_at",
]

STORIES_FILE = "stories.yaml"
ASSOCIATION_NAME = "Sindikasi Demo"
TIMEZONE = "Asia/Jakarta"
# Items must fall inside the 48 hours a newcomer's front page shows, whenever the demo runs.
MAX_HOURS_AGO = 48.0
_RELATED = re.compile(r"^(Baca juga|Simak juga)\s*:\s*(?P<title>.+)$", re.IGNORECASE)


class DemoDataError(ValueError):
    """The shipped stories file is broken: a packaging or editing mistake, named precisely."""


@dataclass(frozen=True, slots=True)
class DemoMember:
    id: str
    name: str
    site: str
    region: str
    author: str
    tagline: str


@dataclass(frozen=True, slots=True)
class Expect:
    """What the pipeline should make of an item; read by the tests, never by the demo itself.

    ``story`` is shared by the copies of one syndicated story; ``trap`` by the items written on
    one template that must nevertheless stay apart; ``regions`` are region names as the
    gazetteer spells them ("Kota Malang", "Jawa Timur", "Nasional", "Bali").
    """

    story: str
    regions: tuple[str, ...]
    trap: str | None = None


@dataclass(frozen=True, slots=True)
class DemoItem:
    member: str
    title: str
    paragraphs: tuple[str, ...]
    hours_ago: float
    categories: tuple[str, ...]
    author: str | None
    expect: Expect

    @property
    def slug(self) -> str:
        return slugify(self.title)


@dataclass(frozen=True, slots=True)
class DemoData:
    members: tuple[DemoMember, ...]
    items: tuple[DemoItem, ...]

    def member(self, member_id: str) -> DemoMember:
        for m in self.members:
            if m.id == member_id:
                return m
        raise KeyError(member_id)

    def items_of(self, member_id: str) -> list[DemoItem]:
        return [i for i in self.items if i.member == member_id]


def load_stories(path: str | Path | None = None) -> DemoData:
    """The stories shipped in the package (or another file in the same format, for tests)."""
    if path is None:
        text = resources.files(__name__).joinpath(STORIES_FILE).read_text(encoding="utf-8")
        name = STORIES_FILE
    else:
        text = Path(path).read_text(encoding="utf-8")
        name = str(path)
    return parse_stories(yaml.safe_load(text), name)


def parse_stories(raw: Any, name: str = STORIES_FILE) -> DemoData:
    if not isinstance(raw, dict):
        raise DemoDataError(f"{name}: must be a mapping with members and items")
    members = tuple(_member(m, f"{name}: members[{i}]")
                    for i, m in enumerate(_list(raw, "members", name)))
    ids = [m.id for m in members]
    if len(set(ids)) != len(ids):
        raise DemoDataError(f"{name}: duplicate member ids")
    items = tuple(_item(it, f"{name}: items[{i}]", set(ids))
                  for i, it in enumerate(_list(raw, "items", name)))
    seen: set[tuple[str, str]] = set()
    for it in items:
        # Items are told apart by member and slug (links, the tests' lookups): no two alike.
        key = (it.member, it.slug)
        if key in seen:
            raise DemoDataError(f"{name}: two items of {it.member} titled {it.title!r}")
        seen.add(key)
    return DemoData(members, items)


def _list(raw: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = raw.get(key)
    if not isinstance(value, list) or not value:
        raise DemoDataError(f"{where}: {key} must be a non-empty list")
    return value


def _str(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DemoDataError(f"{where}: {key} must be a non-empty string")
    return value.strip()


def _strings(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise DemoDataError(f"{where}: {key} must be a list of strings")
    return tuple(v.strip() for v in value)


def _member(raw: Any, where: str) -> DemoMember:
    if not isinstance(raw, dict):
        raise DemoDataError(f"{where}: must be a mapping")
    site = _str(raw, "site", where)
    if not site.startswith("https://") or not site.endswith(".example/"):
        # Invented outlets live on the reserved .example domain, so no link can reach a real one.
        raise DemoDataError(f"{where}: site must be https://<name>.example/")
    return DemoMember(id=_str(raw, "id", where), name=_str(raw, "name", where), site=site,
                      region=_str(raw, "region", where), author=_str(raw, "author", where),
                      tagline=_str(raw, "tagline", where))


def _item(raw: Any, where: str, member_ids: set[str]) -> DemoItem:
    if not isinstance(raw, dict):
        raise DemoDataError(f"{where}: must be a mapping")
    member = _str(raw, "member", where)
    if member not in member_ids:
        raise DemoDataError(f"{where}: unknown member {member!r}")
    hours = raw.get("hours_ago")
    if isinstance(hours, bool) or not isinstance(hours, int | float) \
            or not 0 < hours < MAX_HOURS_AGO:
        raise DemoDataError(f"{where}: hours_ago must be a number between 0 and {MAX_HOURS_AGO}")
    paragraphs = tuple(" ".join(p.split()) for p in _str(raw, "body", where).split("\n\n")
                       if p.strip())
    expect_raw = raw.get("expect")
    if not isinstance(expect_raw, dict):
        raise DemoDataError(f"{where}: expect must be a mapping")
    trap = expect_raw.get("trap")
    if trap is not None and not isinstance(trap, str):
        raise DemoDataError(f"{where}: expect.trap must be a string")
    regions = _strings(expect_raw, "regions", f"{where}.expect")
    if not regions:
        raise DemoDataError(f"{where}: expect.regions must not be empty")
    author = raw.get("author")
    if author is not None and not isinstance(author, str):
        raise DemoDataError(f"{where}: author must be a string")
    return DemoItem(
        member=member,
        title=_str(raw, "title", where),
        paragraphs=paragraphs,
        hours_ago=float(hours),
        categories=_strings(raw, "categories", where),
        author=author,
        expect=Expect(story=_str(expect_raw, "story", f"{where}.expect"), regions=regions,
                      trap=trap),
    )


def slugify(title: str) -> str:
    """A WordPress-like slug: ASCII, lower case, words joined by hyphens."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:90].rstrip("-") or "berita"


def feed_path(member_id: str) -> str:
    """Where a member's feed is written, relative to the folder a static server serves."""
    return f"{member_id}.xml"


def feed_url(base_url: str, member_id: str) -> str:
    return base_url.rstrip("/") + "/" + feed_path(member_id)


def published_at(item: DemoItem, now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    # Whole seconds: RSS dates carry no more, and the tests compare them with what was stored.
    return (now - timedelta(hours=item.hours_ago)).astimezone(UTC).replace(microsecond=0)


def item_link(member: DemoMember, item: DemoItem, now: datetime) -> str:
    """The permalink on the member's invented site, dated like WordPress in local time."""
    local = published_at(item, now).astimezone(ZoneInfo(TIMEZONE))
    return f"{member.site}{local:%Y/%m/%d}/{item.slug}/"


def _post_id(member: DemoMember, item: DemoItem) -> int:
    # Stable across runs and machines (no hash()): the GUID must not change between two polls.
    return 10_000 + zlib.crc32(f"{member.id}/{item.slug}".encode()) % 90_000


def _body_html(item: DemoItem, links: Mapping[str, str], site: str) -> str:
    parts = []
    for paragraph in item.paragraphs:
        related = _RELATED.match(paragraph)
        if related:
            title = related.group("title").strip()
            href = links.get(title, site)
            parts.append(f"<p><strong>{html.escape(related.group(1))}:</strong> "
                         f'<a href="{html.escape(href)}">{html.escape(title)}</a></p>')
        else:
            parts.append(f"<p>{html.escape(paragraph, quote=False)}</p>")
    return "\n".join(parts)


def member_feeds(data: DemoData, now: datetime, base_url: str) -> dict[str, bytes]:
    """``feed_path(member id)`` -> the member's RSS 2.0 document, newest item first.

    ``base_url`` is where the documents will be served (it goes into each feed's self link);
    item links and GUIDs stay on the member's own site, as a WordPress feed's do.
    """
    feeds: dict[str, bytes] = {}
    for member in data.members:
        items = sorted(data.items_of(member.id), key=lambda i: i.hours_ago)
        links = {i.title: item_link(member, i, now) for i in items}
        fg = FeedGenerator()
        fg.load_extension("dc")
        fg.title(member.name)
        fg.description(member.tagline)
        fg.language("id")
        # feedgen makes the last link added the channel's <link>: the site must come last.
        fg.link(href=feed_url(base_url, member.id), rel="self")
        fg.link(href=member.site, rel="alternate")
        fg.generator("Sindikasi demo")
        fg.lastBuildDate(published_at(items[0], now) if items else now)
        fg.ttl(15)
        for item in items:
            entry = fg.add_entry(order="append")
            entry.title(item.title)
            entry.link(href=links[item.title])
            entry.guid(f"{member.site}?p={_post_id(member, item)}", permalink=False)
            entry.pubDate(published_at(item, now))
            entry.dc.dc_creator(item.author or member.author)
            for category in item.categories:
                entry.category(term=category)
            entry.description(item.paragraphs[0])
            entry.content(_body_html(item, links, member.site), type="CDATA")
        feeds[feed_path(member.id)] = bytes(fg.rss_str(pretty=True))
    return feeds


def demo_config(feeds_base_url: str, site_url: str, workdir: Path, *,
                data: DemoData | None = None) -> str:
    """The ``feeds.yaml`` of the demo: members as in the stories, every path inside ``workdir``.

    Private networks are allowed because the sample feeds are served on 127.0.0.1, which the
    fetcher refuses by default.
    """
    data = data or load_stories()
    workdir = Path(workdir).resolve()
    config: dict[str, Any] = {
        "association": {"name": ASSOCIATION_NAME, "base_url": site_url, "language": "id",
                        "timezone": TIMEZONE},
        "storage": {"url": f"sqlite:///{(workdir / 'demo.db').as_posix()}"},
        "output_dir": (workdir / "output").as_posix(),
        # Local and tiny: short timeouts, and parsing in-process rather than in a worker pool
        # that would take longer to start than the whole cycle.
        "fetch": {"allow_private_networks": True, "deadline": 15, "parse_workers": 0,
                  "timeout": {"connect": 3, "read": 10, "write": 3, "pool": 15}},
        "members": [
            {"id": m.id, "name": m.name, "site": m.site, "feeds": [feed_url(feeds_base_url, m.id)],
             "region": m.region, "language": "id"}
            for m in data.members
        ],
    }
    header = ("# Written by `aggregator demo`: sample members whose feeds are served on this "
              "machine.\n")
    return header + yaml.safe_dump(config, allow_unicode=True, sort_keys=False)
