"""The demo's sample stories: well-formed, served as clean RSS, and, run through a real poll
cycle, clustered and tagged the way a reader of them would expect.

The demo is a newcomer's first look at the product: a syndicated press release shown as four
unrelated stories, or a Jember story filed under Kediri, would undo its point.  So the expected
story of every item and the regions it is about are written next to the text, and checked here
end to end against the stored results.
"""

from __future__ import annotations

import html
import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import StaticSite
from sqlalchemy import select

from aggregator.config import parse_config
from aggregator.db import item_regions, items, make_engine
from aggregator.demo import (
    DemoData,
    DemoItem,
    demo_config,
    feed_path,
    item_link,
    load_stories,
    member_feeds,
)
from aggregator.gazetteer import load as load_gazetteer
from aggregator.parse import parse_feed
from aggregator.similarity import MATCH_THRESHOLD, estimated_jaccard, fingerprint
from aggregator.tagger import resolve_name

SITE = "https://sindikasi.example/"
NOW = datetime(2026, 11, 29, 5, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def data() -> DemoData:
    return load_stories()


def _text(item: DemoItem) -> str:
    return "\n".join(item.paragraphs)


def _story_paragraphs(item: DemoItem) -> list[str]:
    """The paragraphs without the related links ("Baca juga: ...") outlets put between them."""
    return [p for p in item.paragraphs if not p.lower().startswith("baca juga:")]


def _groups(data: DemoData, key: str) -> dict[str, list[DemoItem]]:
    found: defaultdict[str, list[DemoItem]] = defaultdict(list)
    for item in data.items:
        value = getattr(item.expect, key)
        if value is not None:
            found[value].append(item)
    return dict(found)


# ------------------------------------------------------------------------------ the data


def test_every_item_is_complete(data: DemoData) -> None:
    assert 5 <= len(data.members) <= 8
    assert 40 <= len(data.items) <= 50
    member_ids = {m.id for m in data.members}
    for m in data.members:
        assert m.site.startswith("https://") and m.site.endswith(".example/"), m.site
        assert resolve_name(m.region) is not None, m.region
        assert data.items_of(m.id), f"{m.id} has no items"
    for item in data.items:
        where = f"{item.member}: {item.title}"
        assert item.member in member_ids, where
        assert item.title and item.slug, where
        assert 3 <= len(_story_paragraphs(item)) <= 6, where
        assert 0.5 <= item.hours_ago <= 40, where
        assert all(c.strip() for c in item.categories), where
        assert item.expect.story, where
        for name in item.expect.regions:
            assert resolve_name(name) is not None, f"{where}: unknown region {name!r}"


def test_related_links_point_at_the_members_own_stories(data: DemoData) -> None:
    for item in data.items:
        own = {i.title for i in data.items_of(item.member)}
        for paragraph in item.paragraphs:
            if paragraph.lower().startswith("baca juga:"):
                assert paragraph.split(":", 1)[1].strip() in own, paragraph


def test_syndicated_stories_and_traps_are_there(data: DemoData) -> None:
    stories = _groups(data, "story")
    syndicated = {k: v for k, v in stories.items() if len(v) > 1}
    assert len(syndicated) >= 5
    for key, copies in syndicated.items():
        assert 2 <= len(copies) <= 4, key
        members = [c.member for c in copies]
        assert len(set(members)) == len(members), f"{key}: one member republished its own story"
        assert len({c.title for c in copies}) == len(copies), f"{key}: titles must be reworded"
        assert len({c.paragraphs[0].split("–")[0] for c in copies}) == len(copies), \
            f"{key}: every copy carries its own outlet's dateline"
        bodies = {(c.paragraphs[0].split("–", 1)[1], *_story_paragraphs(c)[1:]) for c in copies}
        assert len(bodies) == len(copies), f"{key}: every copy has an edit of its own"
        regions = {c.expect.regions for c in copies}
        assert len(regions) == 1, f"{key}: copies of one story are about the same places"
    traps = _groups(data, "trap")
    assert len(traps) >= 2
    for key, group in traps.items():
        assert len(group) >= 2, key
        assert len({i.expect.story for i in group}) == len(group), f"{key}: one story twice"


def test_traps_share_enough_text_to_need_the_facts(data: DemoData) -> None:
    """A trap that text similarity alone keeps apart tests nothing: in each group at least one
    pair must reach the threshold, so that only the facts (numbers, names, places) separate
    them."""
    for key, group in _groups(data, "trap").items():
        best = max(
            estimated_jaccard(fingerprint(a.title, _text(a))[0], fingerprint(b.title, _text(b))[0])
            for a, b in itertools.combinations(group, 2))
        assert best >= MATCH_THRESHOLD, f"{key}: best pair only {best:.2f}"


# ------------------------------------------------------------------------- feeds and config


def test_member_feeds_parse_without_warnings(data: DemoData) -> None:
    feeds = member_feeds(data, NOW, "http://127.0.0.1:8000/demo/")
    assert set(feeds) == {feed_path(m.id) for m in data.members}
    for member in data.members:
        parsed = parse_feed(feeds[feed_path(member.id)], "application/rss+xml")
        assert parsed.warning is None, f"{member.id}: {parsed.warning}"
        assert parsed.format == "rss20"
        assert parsed.title == member.name
        assert parsed.link == member.site
        assert len({e.guid for e in parsed.entries}) == len(parsed.entries), "one GUID each"
        expected = {i.title: i for i in data.items_of(member.id)}
        assert [e.title for e in parsed.entries] == sorted(
            expected, key=lambda t: expected[t].hours_ago), "newest first"
        for entry in parsed.entries:
            item = expected[entry.title]
            assert entry.link == item_link(member, item, NOW)
            assert entry.link is not None and entry.link.startswith(member.site)
            assert entry.guid is not None and entry.guid.startswith(f"{member.site}?p=")
            assert entry.published == (NOW - timedelta(hours=item.hours_ago)).replace(
                microsecond=0)
            assert entry.author == (item.author or member.author)
            assert entry.categories == item.categories
            assert entry.summary_html == item.paragraphs[0]
            for paragraph in _story_paragraphs(item):
                assert f"<p>{html.escape(paragraph, quote=False)}</p>" in entry.content_html
            related = len(item.paragraphs) - len(_story_paragraphs(item))
            assert entry.content_html.count("<strong>Baca juga:</strong> <a href=") == related


def test_feeds_are_stable_for_one_clock(data: DemoData) -> None:
    """GUIDs and bodies must not change between two polls, or every poll is a flood of edits."""
    assert member_feeds(data, NOW, "http://x/") == member_feeds(data, NOW, "http://x/")


def test_demo_config_is_a_valid_config(data: DemoData, tmp_path: Path) -> None:
    config = parse_config(demo_config("http://127.0.0.1:8123/", SITE, tmp_path), "demo.yaml")
    assert config.fetch.allow_private_networks
    assert config.association.base_url == SITE
    assert [m.id for m in config.members] == [m.id for m in data.members]
    assert config.members[0].feeds == [f"http://127.0.0.1:8123/{feed_path(data.members[0].id)}"]
    assert config.database_url == f"sqlite:///{(tmp_path / 'demo.db').resolve().as_posix()}"
    assert config.output_path == (tmp_path / "output").resolve()


# ------------------------------------------------------------------------------ end to end


def test_a_poll_cycle_clusters_and_tags_the_stories(data: DemoData, static_site: StaticSite,
                                                    cli: Any, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    for path, body in member_feeds(data, now, static_site.url("")).items():
        (static_site.root / path).write_bytes(body)
    work = tmp_path / "work"
    work.mkdir()
    config = work / "feeds.yaml"
    config.write_text(demo_config(static_site.url(""), SITE, work), encoding="utf-8")

    result = cli("--config", config, "run", "--once", "--no-progress")
    assert result.code == 0, result.err
    assert f"{len(data.members)} ok" in result.out, result.out

    engine = make_engine(parse_config(config.read_text(), str(config)).database_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(select(items.c.id, items.c.member_id, items.c.title,
                                         items.c.cluster_id)).all()
            tags: defaultdict[int, set[str]] = defaultdict(set)
            for tag in conn.execute(select(item_regions.c.item_id, item_regions.c.code)):
                tags[tag.item_id].add(tag.code)
    finally:
        engine.dispose()

    by_key = {(r.member_id, r.title): r for r in stored}
    assert len(stored) == len(data.items)
    rows = {item: by_key[item.member, item.title] for item in data.items}

    # Every copy of a story in one cluster, and no two stories in one cluster: that includes
    # the traps, whose texts are as close as the template makes them.
    clusters: defaultdict[str, set[int]] = defaultdict(set)
    for item, row in rows.items():
        assert row.cluster_id is not None, item.title
        clusters[item.expect.story].add(row.cluster_id)
    split = {k: len(v) for k, v in clusters.items() if len(v) > 1}
    assert not split, f"copies of one story in several clusters: {split}"
    owners: defaultdict[int, list[str]] = defaultdict(list)
    for key, ids in clusters.items():
        owners[next(iter(ids))].append(key)
    merged = [keys for keys in owners.values() if len(keys) > 1]
    assert not merged, f"different stories in one cluster: {merged}"

    g = load_gazetteer()
    misses = []
    for item, row in rows.items():
        want = {resolve_name(name, g) for name in item.expect.regions}
        got = {c for c in tags[row.id] if g.regions[c].level != "grouping"}
        if got != want:
            misses.append(f"{item.member}: {item.title}: want {sorted(map(str, want))}, "
                          f"got {sorted(got)}")
    for miss in misses:
        print("region tag differs:", miss)
    assert len(misses) <= 1, "\n".join(misses)

    # explain shows a syndicated story's copies together.
    copies = max(_groups(data, "story").values(), key=len)
    shown = cli("--config", config, "explain", str(rows[copies[0]].id), "--json")
    assert shown.code == 0, shown.err
    cluster = shown.json()["cluster"]
    assert {m["member"] for m in cluster["members"]} == {c.member for c in copies}
