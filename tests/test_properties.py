"""Properties of the pure pipeline stages, over inputs nobody would think to write by hand."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.normalize import normalize_feed
from aggregator.parse import ParseError, parse_feed
from aggregator.textclean import clean_line, html_to_text, sanitize_html
from aggregator.urls import canonical_url

NOW = datetime(2024, 5, 14, 3, 0, tzinfo=UTC)
SKEW = timedelta(hours=1)
FEED_URL = "https://suarajatim.example.id/feed/"
# C0 controls (and DEL) other than tab and newline.
BAD_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

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
links = st.one_of(
    wild_text,
    st.builds(lambda path, q: f"https://suarajatim.example.id/{path}?{q}", wild_text, wild_text),
    st.builds(lambda path: f"/{path}/amp/", wild_text),
    st.sampled_from(["javascript:alert(1)", "//cdn.example.id/x", "?amp=1", "#", "http://[::1"]),
)
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
    parts.append(f"<description>{escape(draw(rich_text))}</description>")
    if draw(st.booleans()):
        parts.append(f"<content:encoded>{escape(draw(rich_text))}</content:encoded>")
    return "<item>" + "".join(parts) + "</item>"


@st.composite
def rss_documents(draw: st.DrawFn) -> bytes:
    items = "".join(draw(st.lists(rss_items(), min_size=1, max_size=4)))
    doc = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<channel><title>{escape(draw(wild_text))}</title>"
        f"<link>{escape(draw(st.sampled_from([FEED_URL, '', '/relatif', 'mailto:x@y'])))}</link>"
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
        assert "javascript:" not in item.content_html.lower(), item.content_html
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
