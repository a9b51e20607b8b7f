"""The fast parsing route agrees with feedparser wherever it is taken, and steps aside elsewhere.

Compared on every corpus the project has: a feed-farm corpus (WordPress-like RSS and Atom with
the farm's identity traps), the parser fixtures, and the demo's member feeds.  What counts is
what the rest of the pipeline sees: the normalised items, field by field.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import FEEDFARM, FIXTURES, generate_corpus

from aggregator import parse as parse_module
from aggregator.demo import load_stories, member_feeds
from aggregator.fastparse import parse_well_formed
from aggregator.models import Item
from aggregator.normalize import normalize_feed
from aggregator.parse import ParseError, parse_feed

NOW = datetime.now(UTC)


def _corpora(tmp: Path) -> dict[str, bytes]:
    found = {f"fixture/{p.name}": p.read_bytes() for p in (FIXTURES / "feeds").glob("*.xml")}
    found |= {f"demo/{k}": v for k, v in member_feeds(load_stories(), NOW, "http://x/").items()}
    if FEEDFARM is not None:
        farm = generate_corpus(tmp / "farm", 120, 30, seed=7)
        found |= {f"farm/{p.name}": p.read_bytes() for p in (farm / "feeds").glob("*.xml")}
    return found


def _items(body: bytes, monkeypatch: pytest.MonkeyPatch, fast: bool) -> list[Item]:
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(parse_module, "parse_well_formed", lambda _body: None)
        doc = parse_feed(body, "application/rss+xml")
    return normalize_feed(doc, "https://situs.example/", NOW, timedelta(hours=1))


def test_both_routes_give_the_same_items(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    taken = 0
    corpora = _corpora(tmp_path)
    for name, body in corpora.items():
        try:
            slow = _items(body, monkeypatch, fast=False)
        except ParseError:
            continue
        if parse_well_formed(body) is None:
            continue
        taken += 1
        fast = _items(body, monkeypatch, fast=True)
        assert len(fast) == len(slow), name
        for a, b in zip(fast, slow, strict=True):
            for field in dataclasses.fields(Item):
                assert getattr(a, field.name) == getattr(b, field.name), (name, field.name)
    # The route is taken for most real-world feeds, or it would not be worth having.
    assert taken >= 0.8 * len(corpora), (taken, len(corpora))


@pytest.mark.parametrize("name", ["rss091.xml", "rss10_rdf.xml", "atom03.xml", "malformed.xml"])
def test_other_formats_and_ill_formed_documents_go_to_feedparser(name: str) -> None:
    assert parse_well_formed((FIXTURES / "feeds" / name).read_bytes()) is None


def test_xml_base_and_xhtml_content_go_to_feedparser() -> None:
    atom = (FIXTURES / "feeds" / "atom10.xml").read_bytes()
    assert b"xml:base" in atom or b"xhtml" in atom
    assert parse_well_formed(atom) is None


def test_wordpress_style_feeds_take_the_fast_route() -> None:
    for body in member_feeds(load_stories(), NOW, "http://x/").values():
        doc = parse_well_formed(body)
        assert doc is not None and doc.format == "rss20" and doc.entries


def test_a_control_character_sends_the_document_to_feedparser() -> None:
    # Not well-formed XML (a stray \x08 in a WordPress title): feedparser's forgiving reading.
    body = (FIXTURES / "feeds" / "rss20_wordpress.xml").read_bytes()
    assert b"\x08" in body
    assert parse_well_formed(body) is None
    assert parse_feed(body).entries


def test_a_body_that_is_a_url_is_never_fetched() -> None:
    # fastfeedparser fetches a *string* that looks like a URL; it only ever gets bytes here.
    assert parse_well_formed(b"http://127.0.0.1:9/feed") is None
    with pytest.raises(ParseError):
        parse_feed(b"http://127.0.0.1:9/feed")


def test_missing_guids_stay_missing() -> None:
    body = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
            b"<link>https://a.example/</link><description>d</description>"
            b"<item><title>Satu</title><link>https://a.example/1/</link></item>"
            b"<item><title>Dua</title><guid>g-2</guid></item></channel></rss>")
    doc = parse_well_formed(body)
    assert doc is not None
    assert [e.guid for e in doc.entries] == [None, "g-2"]
    assert [e.link for e in doc.entries] == ["https://a.example/1/", None]
