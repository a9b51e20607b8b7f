"""A story's feedgen entry, shared by every feed of a publish, renders as if made for each one.

``FeedRenderer`` builds each story's feedgen entry once and adds that same object to the merged
feed and to each region's feed.  That is sound only while feedgen renders an entry afresh from
its fields every time and leaves the extension we registered on it alone; a feedgen that moved
elements, cached them or re-registered extensions would change the second feed's bytes, and
readers would see every entry there as new.  So a renderer that has already written other feeds
must give exactly what a fresh one gives, and the shared entry must come out the same, complete
with what our extension adds, in every feed that carries it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from publish_samples import JATIM, KAB_MALANG, MADURA, SOURCES, SUMENEP, merged_info, site, stories
from test_publish_feeds import hostile_stories

from aggregator.publish import feeds
from aggregator.publish.feeds import (
    ATOM_NS,
    DC_NS,
    FeedRenderer,
    render_stories_atom,
    render_stories_json,
    render_stories_rss,
)
from aggregator.publish.model import Article, FeedInfo, Place, Site, Source, Story

PROFILE = settings(max_examples=100, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])
A = f"{{{ATOM_NS}}}"

Method = Callable[[FeedRenderer, FeedInfo, Sequence[Story]], bytes]
Fresh = Callable[[Site, FeedInfo, Sequence[Story]], bytes]
KINDS: tuple[tuple[str, Method, Fresh], ...] = (
    ("rss", FeedRenderer.stories_rss, render_stories_rss),
    ("atom", FeedRenderer.stories_atom, render_stories_atom),
    ("json", FeedRenderer.stories_json, render_stories_json),
)


def _info(name: str, kind: str) -> FeedInfo:
    return replace(merged_info(), path=f"{name}.{kind}", title=f"Berita {name}")


def _selections(items: list[Story]) -> list[tuple[str, list[Story]]]:
    """Feeds as a publish makes them: overlapping subsets of the stories, in different orders."""
    return [("all", items), ("reversed", items[::-1]), ("odd", items[1::2]),
            ("first", items[:1]), ("none", []), ("again", items)]


def _assert_shared_renders_as_fresh(the_site: Site, items: list[Story]) -> None:
    renderer = FeedRenderer(the_site)
    for name, chosen in _selections(items):
        for kind, method, fresh in KINDS:
            info = _info(name, kind)
            assert method(renderer, info, chosen) == fresh(the_site, info, chosen), (name, kind)


def _story_element(data: bytes, kind: str, story_id: int) -> bytes:
    root = etree.fromstring(data)
    if kind == "rss":
        found = [i for i in root.iter("item") if i.findtext("guid", "").endswith(f"-{story_id}")]
    else:
        found = [e for e in root.iter(f"{A}entry")
                 if e.findtext(f"{A}id", "").endswith(f"-{story_id}")]
    assert len(found) == 1
    return bytes(etree.tostring(found[0], with_tail=False))


# --- hand-made cases ------------------------------------------------------------------------------


def test_a_renderer_that_wrote_other_feeds_gives_what_a_fresh_one_gives() -> None:
    for hub in (None, "https://hub.example.id/"):
        _assert_shared_renders_as_fresh(site(hub), stories())
        _assert_shared_renders_as_fresh(site(hub), hostile_stories())


def test_a_shared_entry_is_the_same_complete_element_in_every_feed() -> None:
    items = stories()
    story = next(s for s in items if s.copies and s.lead.source.feed_url)
    renderer = FeedRenderer(site())
    subsets = [items, [story], items[::-1]]
    for kind, method in (("rss", FeedRenderer.stories_rss), ("atom", FeedRenderer.stories_atom)):
        rendered = [_story_element(method(renderer, _info(str(n), kind), chosen), kind, story.id)
                    for n, chosen in enumerate(subsets)]
        assert rendered[1:] == rendered[:-1], kind
        # What our entry extension adds, which a re-registered extension would lose.
        element = etree.fromstring(rendered[-1])
        if kind == "rss":
            assert element.find("source") is not None
            assert element.find(f"{{{DC_NS}}}creator") is not None
        else:
            assert element.find(f"{A}source/{A}id") is not None
            assert element.findall(f"{A}link[@rel='related']")


def test_each_feed_lists_its_own_stories_in_its_own_order() -> None:
    items = stories()
    renderer = FeedRenderer(site())
    renderer.stories_rss(_info("all", "rss"), items)
    data = renderer.stories_rss(_info("reversed", "rss"), items[::-1][:2])
    guids = [i.findtext("guid") for i in etree.fromstring(data).iter("item")]
    assert guids == [site().url(f"#story-{s.id}") for s in items[::-1][:2]]


def test_a_renderer_cleans_a_story_once_and_notices_a_different_one() -> None:
    renderer = FeedRenderer(site())
    items = stories()
    first = renderer.story_entries(items)
    assert renderer.story_entries(items) == first
    assert all(a is b for a, b in zip(renderer.story_entries(items), first, strict=True))
    changed = replace(items[0], lead=replace(items[0].lead, title="Judul baru"))
    assert renderer.story_entries([changed])[0].title == "Judul baru"
    info = _info("all", "rss")
    renderer.stories_rss(info, items)
    assert renderer.stories_rss(info, [changed]) == render_stories_rss(site(), info, [changed])


# --- generated cases ------------------------------------------------------------------------------

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", " ", "<b>&amp;</b>", "\x00\x0b\r\n", "é\u2028", "]]>", "'\""])
_urls = st.sampled_from([
    "https://a.example.id/x/", "http://b.example.id/é p/", "javascript:alert(1)", "",
    "/relative/", "https://c.example.id/?a=1&b=<2>", "data:text/html,x", "https://[::1]:80/",
])
_places = st.lists(st.sampled_from([SUMENEP, MADURA, JATIM, KAB_MALANG,
                                    Place("x", "", "", "other"), Place("y", " Nama ", "", "kota")]),
                   max_size=4).map(tuple)
_moments = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                        timezones=st.sampled_from([UTC, None]))


@st.composite
def _sources(draw: st.DrawFn) -> Source:
    base = draw(st.sampled_from(SOURCES))
    return replace(base, name=draw(_text), site=draw(_urls), feed_url=draw(_urls))


@st.composite
def _articles(draw: st.DrawFn, item_id: int) -> Article:
    published = draw(_moments)
    updated = draw(st.none() | st.just(published + timedelta(hours=1)) | _moments)
    if updated is not None and (updated.tzinfo is None) != (published.tzinfo is None):
        updated = None
    return Article(id=item_id, source=draw(_sources()), url=draw(_urls), title=draw(_text),
                   summary=draw(_text), content_html="<p>x</p>", author=None,
                   published_at=published, updated_at=updated, places=draw(_places))


@st.composite
def _stories(draw: st.DrawFn) -> list[Story]:
    out = []
    for n in range(draw(st.integers(0, 4))):
        lead = draw(_articles(100 * n))
        copies = tuple(draw(_articles(100 * n + k)) for k in range(1, draw(st.integers(0, 3))))
        out.append(Story(id=n + 1, lead=lead, copies=copies, places=draw(_places),
                         published_at=lead.published_at,
                         updated_at=draw(st.just(lead.published_at) | _moments)))
    return out


@PROFILE
@given(items=_stories(), hub=st.none() | _urls)
def test_generated_stories_render_alike_shared_or_fresh(items: list[Story],
                                                        hub: str | None) -> None:
    _assert_shared_renders_as_fresh(site(hub), items)


@PROFILE
@given(url=st.builds(str.__add__, st.sampled_from(["http://", "https://", "HTTP://", "http:/"]),
                     st.text(alphabet="aZ09.-:/?#[]@!$&'()*+,;=_~% \t\"<é", max_size=30))
       | st.text(max_size=40))
def test_the_plain_url_shortcut_changes_nothing(url: str) -> None:
    """A URL the shortcut accepts is one the full checks give back unchanged."""
    if feeds._PLAIN_URL.fullmatch(url):
        assert feeds._checked_url(url) == url
