"""RSS, Atom and JSON Feed output: the validator's rules, real readers, and hostile member data.

The W3C Feed Validator is not installed here, so the rules of it that we rely on are checked
directly on the XML; feedparser, newsboat and the JSON Feed schema read the feeds as clients will.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import feedparser
import pytest
from lxml import etree
from lxml import html as lxml_html
from publish_samples import (
    JATIM,
    KOTA_MALANG,
    SOURCES,
    SURABAYA,
    article,
    articles_of,
    merged_info,
    site,
    source,
    stories,
)

from aggregator.publish.feeds import (
    ALSO_REPORTED_BY,
    render_articles_rss,
    render_stories_atom,
    render_stories_json,
    render_stories_rss,
)
from aggregator.publish.model import FeedInfo, Site, Story

if TYPE_CHECKING:  # at run time too would pull in the CLI, which the subprocess test avoids
    from conftest import StaticSite

ROOT = Path(__file__).resolve().parents[1]
ORACLES = Path(__file__).resolve().parents[2] / "shared" / "oracles"
ATOM = "http://www.w3.org/2005/Atom"
A = f"{{{ATOM}}}"
HUB = "https://hub.example.id/"
BASE = "https://sindikasi.example.id/"
REGIONS = BASE + "regions/"

RFC822 = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
                    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
                    r"\d{2}:\d{2}:\d{2} [+-]\d{4}$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

Renderer = Callable[[Site, FeedInfo, list[Story]], bytes]


def rss_info(path: str = "feed.xml") -> FeedInfo:
    return replace(merged_info(), path=path)


def atom_info(path: str = "feed.atom") -> FeedInfo:
    return replace(merged_info(), path=path)


def json_info(path: str = "feed.json") -> FeedInfo:
    return replace(merged_info(), path=path)


def member_info(member_id: str = "suarajatim") -> FeedInfo:
    return FeedInfo(path=f"members/{member_id}.xml", title=f"{member_id} · Sindikasi Jatim",
                    description=f"Berita {member_id}", home_path=f"members/{member_id}.html",
                    language="id")


def hostile_stories() -> list[Story]:
    """Links nobody should follow, markup and control characters in text, an IRI.

    Lead 60 has a javascript: URL (the entry keeps its id and text but loses the link); its copies
    are a data: URL, a relative path, a host-less URL (all dropped) and one IRI with a space and a
    non-ASCII letter (kept, percent-encoded). The lead's member has a javascript: feed URL, so
    there is no <source> to point at it. Story 70 has a script in the title and an empty summary.
    """
    evil = replace(source("jahat", 'Jahat <img src=x onerror="alert(1)"> Media'),
                   feed_url="javascript:alert('feed')", site="javascript:alert('site')")
    lead = replace(article(60, evil, "Judul\x00 dengan\x0b kendali\n baris", 6, (SURABAYA,)),
                   url="javascript:alert('lead')",
                   summary="Ringkas <a href=\"javascript:alert(1)\" onclick=\"x()\">klik</a>")
    bad = [replace(article(61, SOURCES[1], "Salinan data", 5), url="data:text/html,<script>"),
           replace(article(62, SOURCES[2], "Salinan relatif", 5), url="/2026/11/20/relatif/"),
           replace(article(63, SOURCES[3], "Salinan tanpa host", 5), url="http:///tanpa-host")]
    iri = replace(article(64, source("kotakita", "Kota Kita"), "Salinan IRI", 4),
                  url="https://kotakita.example.id/berita/jalan raya é/")
    scripted = article(70, SOURCES[0], "<script>alert('judul')</script> Banjir", 1, (JATIM,),
                       summary="")
    return [
        Story(id=70, lead=scripted, copies=(), places=scripted.places,
              published_at=scripted.published_at, updated_at=scripted.published_at),
        Story(id=60, lead=lead, copies=(*bad, iri), places=(SURABAYA, SURABAYA),
              published_at=lead.published_at, updated_at=iri.published_at),
    ]


IRI_ENCODED = "https://kotakita.example.id/berita/jalan%20raya%20%C3%A9/"


def parse_xml(data: bytes) -> Any:
    """Strict XML parsing: anything not well-formed raises."""
    return etree.fromstring(data, etree.XMLParser(recover=False, resolve_entities=False))


def all_outputs(the_site: Site, items: list[Story]) -> dict[str, bytes]:
    members = sorted({a.source.id for st in items for a in (st.lead, *st.copies)})
    out = {
        "feed.xml": render_stories_rss(the_site, rss_info(), items),
        "feed.atom": render_stories_atom(the_site, atom_info(), items),
        "feed.json": render_stories_json(the_site, json_info(), items),
    }
    for member_id in members:
        own = sorted({a.id: a for st in items for a in (st.lead, *st.copies)
                      if a.source.id == member_id}.values(),
                     key=lambda a: a.published_at, reverse=True)
        out[f"{member_id}.xml"] = render_articles_rss(the_site, member_info(member_id), own)
    return out


# --- RSS: the validator's rules -----------------------------------------------------------------


def rss_cases() -> Iterator[tuple[str, bytes, FeedInfo, int]]:
    yield "merged", render_stories_rss(site(HUB), rss_info(), stories()), rss_info(), 3
    yield "hostile", render_stories_rss(site(), rss_info(), hostile_stories()), rss_info(), 2
    yield "empty", render_stories_rss(site(), rss_info(), []), rss_info(), 0
    own = articles_of("suarajatim")
    yield "member", render_articles_rss(site(), member_info(), own), member_info(), len(own)


@pytest.mark.parametrize("case", list(rss_cases()), ids=lambda c: c[0])
def test_rss_follows_the_validator_rules(case: tuple[str, bytes, FeedInfo, int]) -> None:
    _, data, info, count = case
    root = parse_xml(data)
    assert root.tag == "rss" and root.get("version") == "2.0"
    assert root.nsmap.get("atom") == ATOM, "atom namespace must be declared for atom:link"
    channel = root.find("channel")
    assert channel is not None
    for name in ("title", "link", "description"):
        assert len(channel.findall(name)) == 1 and (channel.findtext(name) or "").strip(), name
    assert channel.findtext("link") == BASE + info.home_path
    assert channel.findtext("language") == "id"
    selfs = [ln for ln in channel.findall(f"{A}link") if ln.get("rel") == "self"]
    assert len(selfs) == 1
    assert selfs[0].get("href") == BASE + info.path
    assert selfs[0].get("type") == "application/rss+xml"
    for name in ("lastBuildDate", "pubDate"):
        check_rfc822(channel.findtext(name))

    items = channel.findall("item")
    assert len(items) == count
    guids = []
    for item in items:
        assert item.findtext("title"), "every item has a title"
        assert len(item.findall("guid")) == 1
        guid = item.find("guid")
        assert guid.get("isPermaLink") == "false", "our ids are not the pages' addresses"
        guids.append(guid.text)
        check_rfc822(item.findtext("pubDate"))
        for category in item.findall("category"):
            assert category.get("domain") == REGIONS
            assert (category.text or "").strip()
        for src in item.findall("source"):
            assert re.match(r"^https?://[^/]+", src.get("url") or "")
            assert (src.text or "").strip()
    assert len(set(guids)) == len(guids), "duplicate guids"


def check_rfc822(value: str | None) -> None:
    assert value is not None and RFC822.match(value), value
    parsed = parsedate_to_datetime(value)
    assert parsed.tzinfo is not None
    assert parsed.strftime("%a") == value[:3], "day of week must match the date"


# --- Atom: the validator's rules ----------------------------------------------------------------


def atom_cases() -> Iterator[tuple[str, bytes, int]]:
    yield "merged", render_stories_atom(site(HUB), atom_info(), stories()), 3
    yield "hostile", render_stories_atom(site(), atom_info(), hostile_stories()), 2
    yield "empty", render_stories_atom(site(), atom_info(), []), 0


@pytest.mark.parametrize("case", list(atom_cases()), ids=lambda c: c[0])
def test_atom_follows_the_validator_rules(case: tuple[str, bytes, int]) -> None:
    _, data, count = case
    feed = parse_xml(data)
    assert feed.tag == f"{A}feed"
    for name in ("id", "title", "updated"):
        assert len(feed.findall(f"{A}{name}")) == 1 and feed.findtext(f"{A}{name}"), name
    assert feed.findtext(f"{A}id") == BASE + "feed.atom"
    check_rfc3339(feed.findtext(f"{A}updated"))
    assert feed.findtext(f"{A}author/{A}name") == "Sindikasi Jatim"
    links = feed.findall(f"{A}link")
    selfs = [ln for ln in links if ln.get("rel") == "self"]
    assert [ln.get("href") for ln in selfs] == [BASE + "feed.atom"]
    assert selfs[0].get("type") == "application/atom+xml"
    assert [ln.get("href") for ln in links if ln.get("rel") == "alternate"] == [BASE + "index.html"]

    entries = feed.findall(f"{A}entry")
    assert len(entries) == count
    ids = []
    for entry in entries:
        for name in ("id", "title", "updated"):
            assert len(entry.findall(f"{A}{name}")) == 1 and entry.findtext(f"{A}{name}"), name
        ids.append(entry.findtext(f"{A}id"))
        check_rfc3339(entry.findtext(f"{A}updated"))
        check_rfc3339(entry.findtext(f"{A}published"))
        assert entry.findtext(f"{A}author/{A}name"), "entries carry their member as author"
        content = entry.find(f"{A}content")
        assert content is not None and content.get("type") == "html"
        assert entry.find(f"{A}summary").get("type") == "text"
        alternates = [ln for ln in entry.findall(f"{A}link")
                      if ln.get("rel", "alternate") == "alternate"]
        assert len(alternates) <= 1, "at most one alternate link per type and language"
        for link in entry.findall(f"{A}link"):
            assert link.get("href"), "every link has an href"
            if link.get("rel") == "related":
                assert link.get("title"), "related links name their member"
        for category in entry.findall(f"{A}category"):
            assert category.get("term") and category.get("label")
            assert category.get("scheme") == REGIONS
        for src in entry.findall(f"{A}source"):
            assert src.findtext(f"{A}id") and src.findtext(f"{A}title")
            assert [ln.get("href") for ln in src.findall(f"{A}link")
                    if ln.get("rel") == "self"] == [src.findtext(f"{A}id")]
    assert len(set(ids)) == len(ids), "duplicate entry ids"


def check_rfc3339(value: str | None) -> None:
    assert value is not None and RFC3339.match(value), value
    assert datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None


# --- both: absolute links, no markup from members ------------------------------------------------


URL_ATTRIBUTES = ("href", "url", "domain", "scheme", "uri", "src")
URL_ELEMENTS = ("link", "guid", "id", "docs", "uri")


@pytest.mark.parametrize("hub", [None, HUB])
@pytest.mark.parametrize("make", [stories, hostile_stories], ids=["samples", "hostile"])
def test_every_url_is_absolute_http(hub: str | None, make: Callable[[], list[Story]]) -> None:
    for name, data in all_outputs(site(hub), make()).items():
        if name.endswith(".json"):
            continue
        root = parse_xml(data)
        for element in root.iter():
            if not isinstance(element.tag, str):
                continue
            local = etree.QName(element).localname
            for attribute in URL_ATTRIBUTES:
                if element.get(attribute) is not None:
                    assert_http(element.get(attribute), f"{name} {local}@{attribute}")
            if local in URL_ELEMENTS and (element.text or "").strip():
                assert_http(element.text.strip(), f"{name} <{local}>")
        for html in markup_in(root):
            for node in lxml_html.fragment_fromstring(html, create_parent="div").iter():
                for attribute in ("href", "src"):
                    if node.get(attribute) is not None:
                        assert_http(node.get(attribute), f"{name} html {attribute}")


def assert_http(url: str, where: str) -> None:
    assert re.match(r"^https?://[^/\s]+", url), f"{where}: {url!r} is not an absolute http(s) URL"
    assert not re.search(r"[\s<>\"]", url), f"{where}: {url!r} is not a valid URI"


def markup_in(root: Any) -> list[str]:
    """The HTML payloads of a feed (RSS descriptions, Atom html content) as a reader sees them."""
    found = [d.text or "" for d in root.iter("description") if d.getparent().tag == "item"]
    found += [c.text or "" for c in root.iter(f"{A}content") if c.get("type") == "html"]
    return found


def test_sample_hostile_content_leaves_no_markup() -> None:
    """The shared samples carry script, onclick and javascript: only in what we never republish."""
    for name, data in all_outputs(site(HUB), stories()).items():
        for needle in (b"<script", b"onclick", b"javascript:", b"<b>"):
            assert needle not in data.lower(), f"{needle!r} in {name}"


@pytest.mark.parametrize("make", [stories, hostile_stories], ids=["samples", "hostile"])
def test_members_cannot_inject_markup(make: Callable[[], list[Story]]) -> None:
    """Markup in member text is only ever text; the only HTML is our paragraphs and links."""
    items = make()
    for name, data in all_outputs(site(HUB), items).items():
        for needle in (b"<script", b"<img", b"<a ", b"<b>"):
            assert needle not in data.lower(), f"{needle!r} in {name}"
        if name.endswith(".json"):
            payloads = [i["content_html"] for i in json.loads(data)["items"]]
        else:
            payloads = markup_in(parse_xml(data))
        for html in payloads:
            tree = lxml_html.fragment_fromstring(html, create_parent="div")
            assert {n.tag for n in tree.iter()} <= {"div", "p", "a"}, html
            for node in tree.iter():
                assert set(node.attrib) <= {"href"}, html
                if node.get("href") is not None:
                    assert_http(node.get("href"), name)
    # What members wrote reads back as they wrote it (minus what XML cannot carry at all).
    titles = [" ".join(st.lead.title.replace("\x00", "").split()) for st in items]
    rss = parse_xml(render_stories_rss(site(), rss_info(), items))
    assert [t.text for t in rss.iter("title") if t.getparent().tag == "item"] == titles
    atom = parse_xml(render_stories_atom(site(), atom_info(), items))
    assert [t.text for t in atom.iter(f"{A}title") if t.getparent().tag == f"{A}entry"] == titles


def test_feedparser_reads_hostile_text_literally() -> None:
    items = stories()
    hostile = items[1].lead
    assert "<b>" in hostile.title and "<script>" in hostile.summary
    for data in (render_stories_rss(site(), rss_info(), items),
                 render_stories_atom(site(), atom_info(), items)):
        entry = feedparser.parse(data).entries[1]
        assert entry.title == hostile.title
        assert hostile.summary in lxml_html.fragment_fromstring(
            entry.get("content", [entry.summary_detail])[0]["value"],
            create_parent="div").text_content()
    scripted = hostile_stories()[0].lead
    atom = feedparser.parse(render_stories_atom(site(), atom_info(), hostile_stories()))
    assert atom.entries[0].title == scripted.title
    feed = json.loads(render_stories_json(site(), json_info(), hostile_stories()))
    assert feed["items"][0]["title"] == scripted.title
    assert feed["items"][1]["summary"] == hostile_stories()[1].lead.summary


# --- round trips through feedparser --------------------------------------------------------------


def copy_names(story: Story) -> list[str]:
    return [c.source.name for c in story.copies]


@pytest.mark.parametrize("render,info", [(render_stories_rss, rss_info()),
                                         (render_stories_atom, atom_info())],
                         ids=["rss", "atom"])
def test_feedparser_round_trips_stories(render: Renderer, info: FeedInfo) -> None:
    items = stories()
    parsed = feedparser.parse(render(site(HUB), info, items))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.feed.title == info.title
    assert parsed.feed.link == BASE + "index.html"
    rels = {(ln["rel"], ln["href"]) for ln in parsed.feed.links}
    assert ("self", BASE + info.path) in rels and ("hub", HUB) in rels
    assert parsed.feed.updated_parsed[:6] == (2026, 11, 20, 5, 0, 0), "newest entry, not now"
    atom = render is render_stories_atom
    assert len(parsed.entries) == len(items)
    for story, entry in zip(items, parsed.entries, strict=True):
        lead = story.lead
        assert entry.id == BASE + f"#story-{story.id}"
        assert entry.title == lead.title
        assert entry.link == lead.url
        assert entry.published_parsed[:6] == lead.published_at.timetuple()[:6]
        assert entry.author == lead.source.name
        tags = [(t["term"], t.get("label"), t["scheme"]) for t in entry.tags]
        if atom:
            assert tags == [(p.slug, p.name, REGIONS) for p in story.places]
            assert entry.updated_parsed[:6] == story.updated_at.timetuple()[:6]
            assert entry.source.id == lead.source.feed_url
            assert entry.source.title == lead.source.name
            assert {"rel": "self", "href": lead.source.feed_url}.items() <= \
                entry.source.links[0].items()
            related = [(ln["href"], ln["title"]) for ln in entry.links if ln["rel"] == "related"]
            assert related == [(c.url, c.source.name) for c in story.copies]
            html = entry.content[0]["value"]
            assert entry.summary == lead.summary
        else:
            assert [(term, scheme) for term, _, scheme in tags] == \
                [(p.name, REGIONS) for p in story.places]
            assert entry.guidislink is False
            assert entry.source == {"href": lead.source.feed_url, "title": lead.source.name}
            html = entry.summary
        text = lxml_html.fragment_fromstring(html, create_parent="div")
        assert lead.summary in text.text_content()
        links = [(a.get("href"), a.text) for a in text.iter("a")]
        assert links == [(c.url, c.source.name) for c in story.copies]
        assert (ALSO_REPORTED_BY in text.text_content()) == bool(story.copies)


def test_feedparser_round_trips_the_member_feed() -> None:
    own = articles_of("suarajatim")
    parsed = feedparser.parse(render_articles_rss(site(), member_info(), own))
    assert not parsed.bozo
    assert parsed.feed.title == member_info().title
    assert {(ln["rel"], ln["href"]) for ln in parsed.feed.links} >= {
        ("self", BASE + "members/suarajatim.xml"), ("alternate", BASE + "members/suarajatim.html")}
    assert [e.link for e in parsed.entries] == [a.url for a in own]
    assert [e.title for e in parsed.entries] == [a.title for a in own]
    for art, entry in zip(own, parsed.entries, strict=True):
        assert entry.id == BASE + f"#article-{art.id}"
        assert [t["term"] for t in entry.tags] == [p.name for p in art.places]
        assert {t["scheme"] for t in entry.tags} <= {REGIONS}
        assert entry.source == {"href": art.source.feed_url, "title": art.source.name}
        assert entry.published_parsed[:6] == art.published_at.timetuple()[:6]
        assert ALSO_REPORTED_BY not in entry.summary, "a member feed is not clustered"
        assert "Isi berita" not in entry.summary, "content_html is not republished"


def test_member_feed_has_each_articles_own_regions() -> None:
    """Copies of a story keep their own regions, not the story's."""
    mine = article(90, SOURCES[0], "Satu", 2, (KOTA_MALANG,))
    other = article(91, SOURCES[0], "Dua", 1, (JATIM, SURABAYA))
    parsed = feedparser.parse(render_articles_rss(site(), member_info(), [other, mine]))
    assert [[t["term"] for t in e.tags] for e in parsed.entries] == [
        ["Jawa Timur", "Kota Surabaya"], ["Kota Malang"]]


# --- JSON Feed ----------------------------------------------------------------------------------


def test_json_feed_fields() -> None:
    items = stories()
    feed = json.loads(render_stories_json(site(HUB), json_info(), items))
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"] == merged_info().title
    assert feed["home_page_url"] == BASE + "index.html"
    assert feed["feed_url"] == BASE + "feed.json"
    assert feed["language"] == "id"
    assert feed["hubs"] == [{"type": "WebSub", "url": HUB}]
    for story, item in zip(items, feed["items"], strict=True):
        lead = story.lead
        assert item["id"] == BASE + f"#story-{story.id}"
        assert item["url"] == lead.url and item["title"] == lead.title
        assert item["summary"] == lead.summary
        assert item["tags"] == [p.name for p in story.places]
        assert item["authors"] == [{"name": lead.source.name, "url": lead.source.site}]
        assert datetime.fromisoformat(item["date_published"]) == lead.published_at
        assert datetime.fromisoformat(item["date_modified"]) == story.updated_at
        html = lxml_html.fragment_fromstring(item["content_html"], create_parent="div")
        assert [(a.get("href"), a.text) for a in html.iter("a")] == \
            [(c.url, c.source.name) for c in story.copies]
        assert [c["url"] for c in item["_sindikasi"]["copies"]] == [c.url for c in story.copies]
    assert "hubs" not in json.loads(render_stories_json(site(), json_info(), items))


def test_json_feed_validates_against_the_schema(tmp_path: Path) -> None:
    oracle = ORACLES / "validate_jsonfeed.py"
    if not oracle.is_file():
        pytest.skip(f"JSON Feed oracle not found at {oracle} (../shared is absent)")
    files = []
    for name, the_site, items in [("samples", site(HUB), stories()),
                                  ("hostile", site(), hostile_stories()),
                                  ("empty", site(), [])]:
        path = tmp_path / f"{name}.json"
        path.write_bytes(render_stories_json(the_site, json_info(), items))
        files.append(str(path))
    result = subprocess.run([sys.executable, str(oracle), "--strict", *files],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("0 error(s), 0 warning(s)") == len(files), result.stdout


# --- a real reader ------------------------------------------------------------------------------


def test_newsboat_reads_every_feed(static_site: StaticSite, tmp_path: Path) -> None:
    if shutil.which("newsboat") is None:
        pytest.skip("newsboat is not installed (apt-get install newsboat)")
    script = ORACLES / "newsboat_read.sh"
    if not script.is_file():
        pytest.skip(f"newsboat oracle not found at {script} (../shared is absent)")
    own = articles_of("maduranews")
    feeds = {
        "feed.xml": (render_stories_rss(site(HUB), rss_info(), stories()), 3),
        "feed.atom": (render_stories_atom(site(HUB), atom_info(), stories()), 3),
        "hostile.xml": (render_stories_rss(site(), rss_info(), hostile_stories()), 2),
        "maduranews.xml": (render_articles_rss(site(), member_info("maduranews"), own), len(own)),
        "empty.atom": (render_stories_atom(site(), atom_info(), []), 0),
    }
    for name, (data, _) in feeds.items():
        (static_site.root / name).write_bytes(data)
    urls = tmp_path / "urls"
    urls.write_text("".join(static_site.url(name) + "\n" for name in feeds))
    result = subprocess.run(["bash", str(script), str(urls)], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHON": sys.executable})
    assert result.returncode == 0, result.stdout + result.stderr
    seen = {}
    for line in result.stdout.splitlines():
        match = re.match(r"^OK\s+(\d+)\s+(\S+)\s+title=.*empty_guid=(\d)", line)
        assert match, line
        seen[match.group(2)] = (int(match.group(1)), match.group(3))
    assert seen == {static_site.url(name): (count, "0") for name, (_, count) in feeds.items()}


# --- determinism, empty feeds, WebSub -----------------------------------------------------------


def test_rendering_twice_gives_identical_bytes() -> None:
    """Twice, in two different seconds, so that a clock read anywhere would show."""
    first = all_outputs(site(HUB), stories() + hostile_stories())
    time.sleep(1.01 - time.time() % 1)
    second = all_outputs(site(HUB), stories() + hostile_stories())
    assert first == second
    assert len(first) == 9  # three merged feeds and six members' own


def test_rendering_does_not_depend_on_the_interpreter() -> None:
    """A fresh process with another hash seed and time zone writes the same bytes."""
    code = ("import sys, hashlib; sys.path.insert(0, 'tests'); "
            "from test_publish_feeds import all_outputs, stories, hostile_stories, site, HUB; "
            "out = all_outputs(site(HUB), stories() + hostile_stories()); "
            "print({k: hashlib.sha256(v).hexdigest() for k, v in sorted(out.items())})")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "TZ": "America/Los_Angeles"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    here = {k: hashlib.sha256(v).hexdigest()
            for k, v in sorted(all_outputs(site(HUB), stories() + hostile_stories()).items())}
    assert result.stdout.strip() == str(here)


def test_feed_dates_come_from_the_entries() -> None:
    items = stories()
    newest = max(max(s.published_at, s.updated_at) for s in items)
    channel = parse_xml(render_stories_rss(site(), rss_info(), items)).find("channel")
    assert parsedate_to_datetime(channel.findtext("lastBuildDate")) == newest
    atom = parse_xml(render_stories_atom(site(), atom_info(), items))
    assert datetime.fromisoformat(atom.findtext(f"{A}updated")) == newest
    # A later copy makes the story, and with it the feed, newer.
    later = replace(items[2], updated_at=datetime(2026, 11, 21, 8, 30, tzinfo=UTC))
    atom = parse_xml(render_stories_atom(site(), atom_info(), [*items[:2], later]))
    assert atom.findtext(f"{A}updated") == "2026-11-21T08:30:00+00:00"


def test_empty_feeds_are_valid_and_dated_at_the_epoch() -> None:
    channel = parse_xml(render_stories_rss(site(), rss_info(), [])).find("channel")
    assert channel.findtext("lastBuildDate") == "Thu, 01 Jan 1970 00:00:00 +0000"
    assert channel.findall("item") == []
    atom = parse_xml(render_stories_atom(site(), atom_info(), []))
    assert atom.findtext(f"{A}updated") == "1970-01-01T00:00:00+00:00"
    member = parse_xml(render_articles_rss(site(), member_info(), []))
    assert member.find("channel").findtext("pubDate") == "Thu, 01 Jan 1970 00:00:00 +0000"
    feed = json.loads(render_stories_json(site(), json_info(), []))
    assert feed["items"] == [] and feed["feed_url"] == BASE + "feed.json"
    for data in (render_stories_rss(site(), rss_info(), []),
                 render_stories_atom(site(), atom_info(), [])):
        assert not feedparser.parse(data).bozo


@pytest.mark.parametrize("hub", [None, HUB])
def test_websub_hub_only_when_configured(hub: str | None) -> None:
    rss = parse_xml(render_stories_rss(site(hub), rss_info(), stories()))
    rss_hubs = [ln.get("href") for ln in rss.iter(f"{A}link") if ln.get("rel") == "hub"]
    atom = parse_xml(render_stories_atom(site(hub), atom_info(), stories()))
    atom_hubs = [ln.get("href") for ln in atom.findall(f"{A}link") if ln.get("rel") == "hub"]
    member = parse_xml(render_articles_rss(site(hub), member_info(), articles_of("suarajatim")))
    member_hubs = [ln.get("href") for ln in member.iter(f"{A}link") if ln.get("rel") == "hub"]
    feed = json.loads(render_stories_json(site(hub), json_info(), stories()))
    expected = [hub] if hub else []
    assert rss_hubs == atom_hubs == member_hubs == expected
    assert feed.get("hubs", []) == ([{"type": "WebSub", "url": hub}] if hub else [])


# --- what the entries say -----------------------------------------------------------------------


def test_entry_ids_follow_the_story_not_the_lead() -> None:
    """An earlier copy turning up changes the lead and the link, never the entry's id."""
    story = stories()[2]
    earlier = replace(story.copies[0], published_at=datetime(2026, 11, 19, tzinfo=UTC))
    moved = replace(story, lead=earlier, copies=(story.lead, story.copies[1]),
                    published_at=earlier.published_at)
    for render, info in ((render_stories_rss, rss_info()), (render_stories_atom, atom_info())):
        before = feedparser.parse(render(site(), info, [story])).entries[0]
        after = feedparser.parse(render(site(), info, [moved])).entries[0]
        assert before.id == after.id == BASE + "#story-10"
        assert before.link == story.lead.url and after.link == earlier.url
    ids = [json.loads(render_stories_json(site(), json_info(), [s]))["items"][0]["id"]
           for s in (story, moved)]
    assert ids == [BASE + "#story-10"] * 2


def test_entries_keep_the_callers_order() -> None:
    items = stories()
    items = [items[2], items[0], items[1]]
    want = [BASE + f"#story-{s.id}" for s in items]
    assert [e.id for e in feedparser.parse(
        render_stories_rss(site(), rss_info(), items)).entries] == want
    assert [e.id for e in feedparser.parse(
        render_stories_atom(site(), atom_info(), items)).entries] == want
    assert [i["id"] for i in json.loads(
        render_stories_json(site(), json_info(), items))["items"]] == want


def test_unusable_links_are_dropped_and_iris_encoded() -> None:
    items = hostile_stories()
    story = items[1]
    for render, info in ((render_stories_rss, rss_info()), (render_stories_atom, atom_info())):
        entry = feedparser.parse(render(site(), info, items)).entries[1]
        assert entry.id == BASE + "#story-60"
        assert "link" not in entry or not entry.link.startswith("javascript")
        assert "source" not in entry, "a member feed URL that is not http(s) is left out"
        html = entry.content[0]["value"] if "content" in entry else entry.summary
        anchors = [(a.get("href"), a.text) for a in
                   lxml_html.fragment_fromstring(html, create_parent="div").iter("a")]
        assert anchors == [(IRI_ENCODED, "Kota Kita")]
        if render is render_stories_atom:
            assert [(ln["rel"], ln["href"]) for ln in entry.links] == [("related", IRI_ENCODED)]
    atom = parse_xml(render_stories_atom(site(), atom_info(), items))
    assert atom.findall(f"{A}entry")[1].findall(f"{A}link[@rel='alternate']") == []
    item = json.loads(render_stories_json(site(), json_info(), items))["items"][1]
    assert "url" not in item
    assert item["tags"] == [SURABAYA.name], "a region listed twice is one tag"
    assert [c["url"] for c in item["_sindikasi"]["copies"]] == [IRI_ENCODED]
    assert "url" not in item["authors"][0]
    assert story.lead.title.startswith("Judul\x00")
    assert item["title"] == "Judul dengan kendali baris"


def test_entry_without_summary_still_has_content() -> None:
    entry = json.loads(render_stories_json(site(), json_info(), hostile_stories()))["items"][0]
    assert entry["summary"] == entry["title"]
    assert lxml_html.fragment_fromstring(entry["content_html"]).text_content() == entry["title"]


def test_articles_feed_uses_updated_time() -> None:
    edited = replace(article(95, SOURCES[0], "Diperbarui", 3),
                     updated_at=datetime(2026, 11, 20, 7, 15, tzinfo=UTC))
    channel = parse_xml(render_articles_rss(site(), member_info(), [edited])).find("channel")
    assert channel.findtext("lastBuildDate") == "Fri, 20 Nov 2026 07:15:00 +0000"
    assert channel.find("item").findtext("pubDate") == "Fri, 20 Nov 2026 03:00:00 +0000"


def test_each_copy_is_listed_once_and_never_the_lead() -> None:
    """A member's copy may share the lead's address (a mirror) or another copy's: list it once."""
    story = stories()[2]
    mirror = replace(story.copies[0], url=story.lead.url)
    twin = replace(story.copies[1], url=story.copies[0].url)
    doubled = replace(story, copies=(mirror, story.copies[0], twin))
    entry = feedparser.parse(render_stories_atom(site(), atom_info(), [doubled])).entries[0]
    related = [ln["href"] for ln in entry.links if ln["rel"] == "related"]
    assert related == [story.copies[0].url]
    item = json.loads(render_stories_json(site(), json_info(), [doubled]))["items"][0]
    anchors = lxml_html.fragment_fromstring(item["content_html"], create_parent="div").iter("a")
    assert [a.get("href") for a in anchors] == [story.copies[0].url]
