"""Properties of the pure pipeline stages, over inputs nobody would think to write by hand."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from xml.sax.saxutils import escape

import lxml.html
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from publish_samples import JATENG, JATIM, KAB_MALANG, KOTA_MALANG, MADURA, SUMENEP, SURABAYA

from aggregator.models import ParsedFeed, RawEntry
from aggregator.normalize import normalize_feed
from aggregator.parse import ParseError, parse_feed
from aggregator.publish.feeds import (
    render_articles_rss,
    render_stories_atom,
    render_stories_json,
    render_stories_rss,
)
from aggregator.publish.html import Page, render_page
from aggregator.publish.model import Article, FeedInfo, Site, Source, Story
from aggregator.publish.sitemaps import news_sitemaps
from aggregator.publish.sources import render_sources_opml
from aggregator.textclean import clean_line, html_to_text, sanitize_html
from aggregator.urls import canonical_url

NOW = datetime(2024, 5, 14, 3, 0, tzinfo=UTC)
SKEW = timedelta(hours=1)
FEED_URL = "https://suarajatim.example.id/feed/"
# C0 controls (and DEL) other than tab and newline.
BAD_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# nh3 only prints an exception raised in its attribute callback: make it fail the test instead.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

PROFILE = settings(max_examples=200, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# --- (a) arbitrary bytes -------------------------------------------------------------------

PREFIXES = [
    b"", b"<?xml version='1.0'?>", b"<rss version='2.0'><channel>",
    b"<feed xmlns='http://www.w3.org/2005/Atom'>",
    b"<rdf:RDF>", b"{", b"[", b'{"version": "https://jsonfeed.org/version/1.1", "items": ',
    b"<!DOCTYPE html>", b"\xef\xbb\xbf", b"\xff\xfe", b"<!-- x -->",
]
SUFFIXES = [b"", b"</channel></rss>", b"</rss>", b"</feed>", b"</rdf:RDF>", b"}", b"]"]

bodies = st.one_of(
    st.binary(max_size=3000),
    st.builds(lambda p, m, s: p + m + s, st.sampled_from(PREFIXES), st.binary(max_size=1000),
              st.sampled_from(SUFFIXES)),
    st.builds(lambda p, m, s: p + m.encode("utf-8", "surrogatepass") + s,
              st.sampled_from(PREFIXES), st.text(max_size=500), st.sampled_from(SUFFIXES)),
)
content_types = st.sampled_from(["", "application/rss+xml", "application/json", "text/html",
                                 "application/feed+json; charset=utf-8", "text/xml; charset=x"])


@PROFILE
@given(body=bodies, content_type=content_types)
def test_parse_feed_raises_only_parse_error(body: bytes, content_type: str) -> None:
    try:
        parse_feed(body, content_type)
    except ParseError as exc:
        assert exc.kind in {"empty", "not_a_feed", "unsafe_xml", "truncated", "malformed",
                            "parser_crash"}


# --- (b) well-formed RSS 2.0 documents with hostile text -----------------------------------

# Arbitrary unicode, with control characters and markup made likely rather than merely possible.
wild_text = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", exclude_categories=["Cs"]),
        st.characters(min_codepoint=0, max_codepoint=0x1F),
        st.sampled_from(["\x7f", "\ufffe", "\u00a0", "\u200b", "\u2028"]),
    ),
    max_size=80,
)
markup = st.sampled_from([
    "<script>alert(1)</script>", "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</script>", "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>', "<iframe src=//evil.example></iframe>",
    "<style>*{}</style>", "<p>Baca juga: Banjir</p>", "<p>The post x appeared first on y.</p>",
    "&amp;#8217;", "&#8;", "&#x1b;", "&#0;", "&amp;lt;script&amp;gt;", "<![CDATA[x]]>",
    "<svg><script>alert(1)</script></svg>", "<p>", "</div>", "<!--", "-->", "[&#8230;]",
])
rich_text = st.lists(st.one_of(wild_text, markup), max_size=6).map("".join)
# Markup that runs script or loads something, in the spellings sanitisers have missed.
hostile_markup = st.sampled_from([
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<body onload=alert(1)>",
    '<a href="JaVaScRiPt:alert(1)">x</a>', '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>', '<a href=" \tjavascript:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', '<img src="data:image/svg+xml,x">',
    '<a href="vbscript:msgbox(1)">x</a>', "<iframe src=https://evil.example/></iframe>",
    '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;">', "<form action=https://e.example/>"
    "<input name=q><button formaction=javascript:alert(1)>b</button></form>",
    "<object data=https://evil.example/x></object>", "<embed src=https://evil.example/x>",
    "<svg onload=alert(1)><script>alert(2)</script></svg>", "<math><mi xlink:href=javascript:x>",
    '<div style="width:expression(alert(1))">x</div>', "<style>@import 'https://e.example/'</style>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "<base href=javascript:alert(1)//>", "<link rel=stylesheet href=https://evil.example/x.css>",
    "<details open ontoggle=alert(1)>", "<video><source onerror=alert(1)></video>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    "<template><script>alert(1)</script></template>", "<scr<script>ipt>alert(1)</script>",
    '<table background="javascript:alert(1)"><tr><td>x</td></tr></table>',
    '<blockquote cite="javascript:alert(1)">q</blockquote>', "<a href=//evil.example/>x</a>",
    '<p onclick="alert(1)">p</p>', "<!--<script>alert(1)</script>-->", "<![CDATA[<script>]]>",
    "<isindex action=javascript:alert(1)>", "<xmp><script>alert(1)</script></xmp>",
    "<plaintext><script>alert(1)</script>", "<p>Isi biasa <b>tebal</b> <a href=/rel>rel</a></p>",
])
hostile_html = st.lists(st.one_of(wild_text, hostile_markup, markup), max_size=6).map("".join)


def assert_safe_html(fragment: str) -> None:
    """Normalised member HTML: nothing that runs, loads or submits, and http(s) links only."""
    from test_hostile_content import check_html_payload

    check_html_payload(fragment, "normalised")


links = st.one_of(
    wild_text,
    st.builds(lambda path, q: f"https://suarajatim.example.id/{path}?{q}", wild_text, wild_text),
    st.builds(lambda path: f"/{path}/amp/", wild_text),
    st.sampled_from(["javascript:alert(1)", "//cdn.example.id/x", "?amp=1", "#", "http://[::1"]),
)
# 'http://[::1' cannot be a base: joining a relative link to it raised inside nh3's callback.
CHANNEL_LINKS = [FEED_URL, "", "/relatif", "mailto:x@y", "http://[::1", "https://"]
dates = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9999, 1, 1),
                     timezones=st.just(UTC))


@st.composite
def rss_items(draw: st.DrawFn) -> str:
    parts = [f"<title>{escape(draw(rich_text))}</title>"]
    if draw(st.booleans()):
        parts.append(f"<link>{escape(draw(links))}</link>")
    if draw(st.booleans()):
        parts.append(f"<guid isPermaLink='false'>{escape(draw(wild_text))}</guid>")
    if draw(st.booleans()):
        parts.append(f"<pubDate>{format_datetime(draw(dates))}</pubDate>")
    if draw(st.booleans()):
        parts.append(f"<dc:creator>{escape(draw(wild_text))}</dc:creator>")
    for category in draw(st.lists(wild_text, max_size=3)):
        parts.append(f"<category>{escape(category)}</category>")
    parts.append(f"<description>{escape(draw(hostile_html))}</description>")
    if draw(st.booleans()):
        parts.append(f"<content:encoded>{escape(draw(hostile_html))}</content:encoded>")
    return "<item>" + "".join(parts) + "</item>"


@st.composite
def rss_documents(draw: st.DrawFn) -> bytes:
    items = "".join(draw(st.lists(rss_items(), min_size=1, max_size=4)))
    doc = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<channel><title>{escape(draw(wild_text))}</title>"
        f"<link>{escape(draw(st.sampled_from(CHANNEL_LINKS)))}</link>"
        f"<description>{escape(draw(wild_text))}</description>{items}</channel></rss>"
    )
    return doc.encode("utf-8")


@PROFILE
@given(body=rss_documents())
def test_rss_documents_parse_and_normalize_cleanly(body: bytes) -> None:
    feed = parse_feed(body, "application/rss+xml")
    assert feed.entries
    for item in normalize_feed(feed, FEED_URL, NOW, SKEW):
        assert not BAD_CONTROL.search(item.title), repr(item.title)
        assert not BAD_CONTROL.search(item.content_text), repr(item.content_text)
        assert not BAD_CONTROL.search(item.summary), repr(item.summary)
        assert "<script" not in item.content_html.lower(), item.content_html
        # 'javascript:' as text is fine; as a link it is not (markup, not substrings).
        assert_safe_html(item.content_html)
        assert item.published_at.utcoffset() == timedelta(0)
        assert item.published_at <= NOW + SKEW
        if item.url is not None:
            assert item.url.startswith(("http://", "https://"))
            assert canonical_url(item.url) == item.url


@PROFILE
@given(text=rich_text)
def test_text_cleaners_leave_no_controls(text: str) -> None:
    assert not BAD_CONTROL.search(clean_line(text, 500))
    html = sanitize_html(text, FEED_URL)
    assert "<script" not in html.lower()
    assert not BAD_CONTROL.search(html)
    assert not BAD_CONTROL.search(html_to_text(html))
    assert not BAD_CONTROL.search(html_to_text(text))


# --- (c) canonical_url is idempotent -------------------------------------------------------

segments = st.one_of(
    st.sampled_from(["amp", "AMP", "berita", "banjir.amp", "banjir-amp.html", "x.amp.html",
                     "%61mp", "%2F", "%25", "%20", "a b", "ü", "", ".", "..", "amp.amp"]),
    st.text(max_size=6),
)
hosts = st.one_of(
    st.sampled_from(["suarajatim.example.id", "amp.suarajatim.example.id", "amp.amp.example.id",
                     "SuaraJatim.Example.ID.", "[2001:db8::1]", "127.0.0.1", "amp.", "."]),
    st.text(min_size=1, max_size=10),
)
params = st.lists(
    st.tuples(st.sampled_from(["utm_source", "amp", "page", "fbclid", "id", "", "q"]),
              st.text(max_size=5)),
    max_size=4,
)


@st.composite
def url_like(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTPS", "ftp", ""]))
    port = draw(st.sampled_from(["", ":80", ":443", ":8080", ":0", ":"]))
    path = "/".join(draw(st.lists(segments, max_size=5)))
    query = "&".join(f"{k}={v}" for k, v in draw(params))
    fragment = draw(st.sampled_from(["", "#", "#respond"]))
    return f"{scheme}://{draw(hosts)}{port}/{path}" + (f"?{query}" if query else "") + fragment


@PROFILE
@given(link=st.one_of(url_like(), st.text(max_size=60)),
       base=st.one_of(st.none(), st.just(FEED_URL), st.just("http://kabar.example.id/a/b")))
def test_canonical_url_is_idempotent(link: str, base: str | None) -> None:
    once = canonical_url(link, base)
    if once is not None:
        assert canonical_url(once) == once
        assert once.startswith(("http://", "https://"))
        assert "#" not in once


# --- (d) entity declarations, in any spelling, are refused ---------------------------------

MARKER = "ZQXJV"  # what an expanded entity would put in the text, if it were read


def _entity_declaration(kind: str) -> tuple[str, str]:
    """(internal subset, reference) for one kind of declaration."""
    return {
        "text": (f'<!ENTITY e "{MARKER * 50}">', "&e;"),
        "nested": (f'<!ENTITY a "{MARKER}"><!ENTITY e "&a;&a;&a;&a;">', "&e;"),
        "file": ('<!ENTITY e SYSTEM "file:///etc/hostname">', "&e;"),
        "url": ('<!ENTITY e SYSTEM "http://127.0.0.1:9/e">', "&e;"),
        "parameter": (f'<!ENTITY % p "<!ENTITY e \'{MARKER}\'>"> %p;', "&e;"),
        "public": ('<!ENTITY e PUBLIC "-//X//Y" "http://127.0.0.1:9/e">', "&e;"),
    }[kind]


def _document(shape: str, subset: str, reference: str) -> str:
    decl = '<?xml version="1.0" encoding="UTF-8"?>\n'
    if shape == "rss":
        return (decl + f"<!DOCTYPE rss [\n{subset}\n]>\n<rss version='2.0'><channel><title>t"
                f"</title><item><title>{reference}</title><description>{reference}"
                "</description></item></channel></rss>")
    if shape == "atom":
        return (decl + f"<!DOCTYPE feed [\n{subset}\n]>\n<feed xmlns='http://www.w3.org/2005/"
                f"Atom'><title>t</title><entry><title>{reference}</title><content type='html'>"
                f"{reference}</content></entry></feed>")
    return (decl + f"<!DOCTYPE rdf:RDF [\n{subset}\n]>\n<rdf:RDF xmlns:rdf='http://www.w3.org/"
            "1999/02/22-rdf-syntax-ns#' xmlns='http://purl.org/rss/1.0/'><channel rdf:about="
            f"'https://x.example/'><title>t</title></channel><item rdf:about='https://x.example/1'>"
            f"<title>{reference}</title></item></rdf:RDF>")


PADDINGS = {
    "none": "", "newlines": "\n" * 70_000, "spaces": " " * 65_530,
    "comment": "<!--" + "p" * 70_000 + "-->", "pi": "<?pi " + "q" * 70_000 + "?>",
}


def _encode(text: str, encoding: str) -> bytes:
    """``text`` as a member's server might send it, its declaration naming the encoding."""
    declared = {"utf-8-sig": "UTF-8", "utf-16-be": "UTF-16"}.get(encoding, encoding.upper())
    text = text.replace('encoding="UTF-8"', f'encoding="{declared}"', 1)
    if encoding == "utf-7":
        # The declaration stays ASCII; after it, every '<!' is shifted into base64.
        head, _, rest = text.partition("?>")
        return (head + "?>").encode() + rest.encode("ascii").replace(b"<!", b"+ADwAIQ-")
    if encoding == "utf-16-be":
        return b"\xfe\xff" + text.encode("utf-16-be")
    return text.encode(encoding)


# The documents are built in the test from drawn names: hypothesis then keeps and shows a few
# words per example instead of 70 kB.
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["text", "nested", "file", "url", "parameter", "public"]),
       shape=st.sampled_from(["rss", "atom", "rdf"]), padding=st.sampled_from(list(PADDINGS)),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-32",
                                 "utf-7", "cp037"]),
       content_type=st.sampled_from(["", "application/rss+xml", "application/xml",
                                     "application/atom+xml", "text/xml", "text/html",
                                     "application/xml; charset=utf-8",
                                     "text/xml; charset=us-ascii"]))
def test_entity_declarations_are_refused_in_any_spelling(kind: str, shape: str, padding: str,
                                                         encoding: str, content_type: str) -> None:
    """Whatever the encoding, the padding and the Content-Type (which can make feedparser read a
    document otherwise than lxml, which goes by the document's own declaration)."""
    subset, reference = _entity_declaration(kind)
    text = _document(shape, PADDINGS[padding] + subset, reference)
    try:
        feed = parse_feed(_encode(text, encoding), content_type)
    except ParseError as exc:
        assert exc.kind == "unsafe_xml", exc
    else:
        raise AssertionError(f"read: {feed.entries[:1]!r}")


# --- (e) Atom, RSS 1.0 and JSON Feed documents with hostile markup --------------------------

def _items_ok(body: bytes, content_type: str) -> None:
    feed = parse_feed(body, content_type)
    feed.title.encode("utf-8")  # the store saves it
    for item in normalize_feed(feed, FEED_URL, NOW, SKEW):
        assert_safe_html(item.content_html)
        for text in (item.title, item.summary, item.content_text, item.author or "",
                     item.guid or "", item.link or "", *item.categories):
            text.encode("utf-8")  # storable
            assert not BAD_CONTROL.search(text) or text in (item.guid, item.link), repr(text)
        if item.url is not None:
            assert item.url.startswith(("http://", "https://"))


def _atom_date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@st.composite
def atom_documents(draw: st.DrawFn) -> bytes:
    entries = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["html", "text", "xhtml"]))
        body = draw(hostile_html)
        if kind == "xhtml":
            # xhtml content is markup in the feed itself: only well-formed pieces fit.
            content = ('<div xmlns="http://www.w3.org/1999/xhtml">'
                       + draw(st.sampled_from([
                           "<script>alert(1)</script>", '<p onclick="alert(1)">x</p>',
                           '<a href="javascript:alert(1)">x</a>', "<iframe src='https://e.x/'/>",
                           '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
                           "<p>isi</p>"])) + "</div>")
        else:
            content = escape(body)
        entries.append(
            f"<entry><title type='{draw(st.sampled_from(['text', 'html']))}'>"
            f"{escape(draw(rich_text))}</title>"
            f"<id>{escape(draw(wild_text)) or 'tag:x,2024:1'}</id>"
            f"<link rel='alternate' href='{escape(draw(links), {chr(39): '&apos;'})}'/>"
            f"<updated>{_atom_date(draw(dates))}</updated>"
            f"<summary type='html'>{escape(draw(hostile_html))}</summary>"
            f"<content type='{kind}'>{content}</content></entry>")
    doc = ('<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
           f"<title>{escape(draw(wild_text))}</title><id>{FEED_URL}</id>"
           f"<link href='{FEED_URL}'/><updated>2024-05-14T03:00:00Z</updated>"
           + "".join(entries) + "</feed>")
    return doc.encode("utf-8")


@st.composite
def rdf_documents(draw: st.DrawFn) -> bytes:
    items = "".join(
        f"<item rdf:about='https://x.example/{n}'><title>{escape(draw(rich_text))}</title>"
        f"<link>{escape(draw(links))}</link><description>{escape(draw(hostile_html))}"
        f"</description><dc:date>{_atom_date(draw(dates))}</dc:date></item>"
        for n in range(draw(st.integers(1, 3))))
    doc = ('<?xml version="1.0" encoding="UTF-8"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
           '02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/'
           f'elements/1.1/"><channel rdf:about="{FEED_URL}"><title>t</title><link>{FEED_URL}'
           f"</link><description>d</description></channel>{items}</rdf:RDF>")
    return doc.encode("utf-8")


# JSON text as a member's CMS might write it, lone surrogates included (JSON can say "\ud800").
json_text = st.one_of(
    hostile_html, wild_text,
    st.text(alphabet=st.characters(codec=None, categories=["Cs", "Lo", "Cc", "Zs"]), max_size=20),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), json_text),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(json_text, children,
                                                                      max_size=3),
    max_leaves=8,
)


@st.composite
def json_items(draw: st.DrawFn) -> dict[str, Any]:
    item: dict[str, Any] = {}
    fields: dict[str, st.SearchStrategy[Any]] = {
        "id": st.one_of(json_text, st.integers(), json_values),
        "url": st.one_of(links, json_text, json_values),
        "external_url": links,
        "title": st.one_of(json_text, json_values),
        "content_html": st.one_of(hostile_html, json_values),
        "content_text": st.one_of(json_text, json_values),
        "summary": st.one_of(hostile_html, json_values),
        "date_published": st.one_of(dates.map(lambda d: d.isoformat()), json_text, json_values),
        "date_modified": st.one_of(dates.map(lambda d: d.isoformat()), json_text),
        "authors": st.one_of(st.lists(st.fixed_dictionaries({"name": json_text})), json_values),
        "author": st.one_of(st.fixed_dictionaries({"name": json_text}), json_values),
        "tags": st.one_of(st.lists(json_text, max_size=3), json_values),
    }
    for key, strategy in fields.items():
        if draw(st.booleans()):
            item[key] = draw(strategy)
    return item


@st.composite
def json_documents(draw: st.DrawFn) -> bytes:
    doc = {"version": draw(st.sampled_from(["https://jsonfeed.org/version/1",
                                            "https://jsonfeed.org/version/1.1"])),
           "title": draw(st.one_of(json_text, json_values)),
           "home_page_url": draw(st.one_of(links, json_text, st.just(FEED_URL))),
           "items": draw(st.lists(st.one_of(json_items(), json_values), min_size=1, max_size=4))}
    # ensure_ascii: lone surrogates travel as \ud800 escapes, as they would on the wire.
    return json.dumps(doc, ensure_ascii=True).encode("ascii")


@PROFILE
@given(body=atom_documents())
def test_atom_documents_parse_and_normalize_safely(body: bytes) -> None:
    _items_ok(body, "application/atom+xml")


@PROFILE
@given(body=rdf_documents())
def test_rss10_documents_parse_and_normalize_safely(body: bytes) -> None:
    _items_ok(body, "application/rdf+xml")


@PROFILE
@given(body=json_documents())
@example(body=b'{"version": "https://jsonfeed.org/version/1.1", "title": "J\\ud800", "items": '
              b'[{"id": "\\udc00", "url": "https://a.example/\\ud800", "title": "T \\ud83d", '
              b'"content_html": "<p>x \\udfff</p>", "summary": "\\ud800", "authors": '
              b'[{"name": "\\ud800"}], "tags": ["\\udc01"]}]}')
def test_json_feed_documents_parse_and_normalize_safely(body: bytes) -> None:
    """Including the parts of a JSON Feed that have the wrong type, and lone surrogates, which
    crashed nh3 (and would have crashed the database) before they were dropped."""
    try:
        _items_ok(body, "application/feed+json")
    except ParseError as exc:
        assert exc.kind in {"malformed", "not_a_feed"}, exc


# Arbitrary values where the parsers hand over to normalize: any string, any time.
any_text = st.text(alphabet=st.one_of(st.characters(codec=None),
                                     st.characters(categories=["Cs"])), max_size=60)
raw_entries = st.builds(
    RawEntry,
    guid=st.one_of(st.none(), any_text),
    link=st.one_of(st.none(), links, any_text),
    title=st.one_of(rich_text, any_text),
    summary_html=st.one_of(hostile_html, any_text),
    content_html=st.one_of(hostile_html, any_text),
    author=st.one_of(st.none(), any_text),
    categories=st.lists(any_text, max_size=3).map(tuple),
    published=st.one_of(st.none(), st.datetimes(timezones=st.one_of(st.none(), st.just(UTC)))),
    updated=st.one_of(st.none(), st.datetimes(timezones=st.one_of(st.none(), st.just(UTC)))),
)


@PROFILE
@given(entries=st.lists(raw_entries, min_size=1, max_size=3),
       link=st.one_of(st.none(), links, any_text, st.sampled_from(CHANNEL_LINKS)))
@example(entries=[RawEntry(guid="g\ud800", link="/relatif\udc00", title="T\ud800",
                           summary_html='<a href="/x">x</a>', content_html="<p>\udfff</p>",
                           author="\ud800", categories=("\udc00",), published=None,
                           updated=None)], link="http://[::1")
def test_normalize_never_raises_and_leaves_storable_safe_items(entries: list[RawEntry],
                                                               link: str | None) -> None:
    feed = ParsedFeed(format="rss20", title="t", link=link, ttl_seconds=None,
                      entries=tuple(entries))
    for item in normalize_feed(feed, FEED_URL, NOW, SKEW):
        assert_safe_html(item.content_html)
        for text in (item.title, item.summary, item.content_text, item.content_html,
                     item.author or "", item.guid or "", item.link or "", *item.categories):
            text.encode("utf-8")
        assert item.published_at <= NOW + SKEW
        if item.url is not None:
            assert canonical_url(item.url) == item.url


# --- (f) the renderers, on any values the store could hold ----------------------------------

PLACES = (KAB_MALANG, KOTA_MALANG, SURABAYA, SUMENEP, MADURA, JATIM, JATENG)
# feeds.yaml checks a member's id, site and feed URL; everything else here a member can say.
sources = st.builds(
    Source,
    id=st.sampled_from(["suarajatim", "madura-news", "kabar_kediri", "a"]),
    name=st.one_of(any_text, rich_text, hostile_html),
    site=st.sampled_from(["https://suarajatim.example.id/", "http://kabar.example.id/x/"]),
    feed_url=st.sampled_from(["https://suarajatim.example.id/feed/",
                              "http://kabar.example.id/?feed=rss2&a=1"]),
    language=st.just("id"),
    publication=st.one_of(any_text, rich_text),
    region=st.one_of(st.none(), any_text),
)
article_urls = st.one_of(
    links, any_text,
    st.sampled_from(["javascript:alert(1)", "data:text/html,<script>alert(1)</script>",
                     "https://x.example.id/a b?c=<d>&e=\"f\"#g", "https://x.example.id/\u00fc",
                     "http://[::1", "https://x.example.id/%zz", " https://x.example.id/lead"]),
)
# Stored times are aware UTC (normalize clamps the future to a small skew, not the past).
stored_times = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(2100, 1, 1),
                            timezones=st.just(UTC))


@st.composite
def articles(draw: st.DrawFn) -> Article:
    return Article(
        id=draw(st.integers(1, 2**31)), source=draw(sources), url=draw(article_urls),
        title=draw(st.one_of(rich_text, any_text, hostile_html)),
        summary=draw(st.one_of(any_text, hostile_html, rich_text)),
        content_html=draw(hostile_html), author=draw(st.one_of(st.none(), any_text)),
        published_at=draw(stored_times), updated_at=draw(st.one_of(st.none(), stored_times)),
        places=tuple(draw(st.lists(st.sampled_from(PLACES), max_size=3, unique=True))))


@st.composite
def story_lists(draw: st.DrawFn) -> list[Story]:
    found = []
    for n in range(draw(st.integers(0, 4))):
        lead = draw(articles())
        copies = tuple(draw(st.lists(articles(), max_size=2)))
        newest = max([lead.published_at, *(c.published_at for c in copies)])
        found.append(Story(id=n + 1, lead=lead, copies=copies,
                           places=tuple(draw(st.lists(st.sampled_from(PLACES), max_size=3,
                                                      unique=True))),
                           published_at=lead.published_at, updated_at=newest))
    return found


SITES = st.builds(
    Site, name=st.just("Sindikasi Jatim"), base_url=st.just("https://sindikasi.example.id/"),
    language=st.just("id"), timezone=st.sampled_from(["Asia/Jakarta", "Asia/Jayapura", "UTC",
                                                      "America/Sao_Paulo"]),
    contact_url=st.none(), websub_hub=st.sampled_from([None, "https://hub.example.id/"]))
# What lxml's HTML parser and our renderers may drop from a title: controls, surrogates,
# non-characters.  Titles without them must read back exactly.
NOT_PLAIN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")


def _old_story() -> Story:
    """A lead dated in year 1 (a JSON Feed may say so) with a lone surrogate in its title."""
    src = Source("a", "A", "https://a.example.id/", "https://a.example.id/feed/", "id", "A",
                 None)
    moment = datetime(1, 1, 1, tzinfo=UTC)
    lead = Article(1, src, "https://a.example.id/1", "Judul \ud800 <b>lama</b>", "\udfff", "",
                   None, moment, None, ())
    return Story(1, lead, (), (), moment, moment)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(site=SITES, stories=story_lists())
@example(site=Site("S", "https://s.example.id/", "id", "America/Sao_Paulo", None, None),
         stories=[_old_story()])
def test_renderers_never_raise_and_never_inject_markup(site: Site, stories: list[Story]) -> None:
    from test_hostile_content import check_json_feed, check_page, check_xml

    rss_info = FeedInfo("feed.xml", "Sindikasi <b>Jatim</b>", "Berita & ulasan", "index.html",
                        "id")
    atom_info = FeedInfo("atom.xml", "Sindikasi", "Berita", "index.html", "id")
    json_info = FeedInfo("feed.json", "Sindikasi", "Berita", "index.html", "id")
    check_xml("rss", render_stories_rss(site, rss_info, stories))
    check_xml("atom", render_stories_atom(site, atom_info, stories))
    json_feed = render_stories_json(site, json_info, stories)
    check_json_feed("json", json_feed)
    assert len(json.loads(json_feed)["items"]) == len(stories)
    every = [a for s in stories for a in (s.lead, *s.copies)]
    for member in {a.source.id for a in every}:
        mine = [a for a in every if a.source.id == member]
        info = FeedInfo(f"members/{member}.xml", "Anggota", "Berita", "index.html", "id")
        check_xml(info.path, render_articles_rss(site, info, mine))
        for path, data in news_sitemaps(site, mine[0].source, mine, NOW):
            check_xml(path, data)
    check_xml("sources.opml", render_sources_opml(site, list({a.source.id: a.source
                                                               for a in every}.values())))
    pages = [Page("index.html", site.name, None, tuple(stories), PLACES,
                  (("RSS", "feed.xml"), ("Atom", "atom.xml"), ("JSON Feed", "feed.json"))),
             Page("regions/kota-malang.html", "Kota Malang", KOTA_MALANG, tuple(stories),
                  PLACES, (("RSS", "regions/kota-malang.xml"),))]
    for page in pages:
        data = render_page(site, page)
        check_page(page.path, data, None)
        doc = lxml.html.document_fromstring(data)
        headings = [h.text_content() for h in doc.xpath("//main//article/h2")]
        assert len(headings) == len(stories)
        for story, heading in zip(stories, headings, strict=True):
            if not NOT_PLAIN.search(story.lead.title) and story.lead.title.strip():
                assert heading == " ".join(story.lead.title.split()), (heading, story.lead.title)
