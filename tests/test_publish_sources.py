"""``sources.opml``: well-formed, grouped by region, read back by our parser and by newsboat."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import StaticSite, rss
from lxml import etree
from publish_samples import SOURCES, site, source

from aggregator.opml import parse_opml
from aggregator.publish.model import Source
from aggregator.publish.sources import NO_REGION, render_sources_opml

ORACLES = Path(__file__).resolve().parents[2] / "shared" / "oracles"
NEWSBOAT = Path("/usr/bin/newsboat")


def members() -> list[Source]:
    """Three regions plus two members without one (None and blank), in a non-sorted order."""
    return [
        replace(source("radarmadura", "Radar Madura"), region="Madura"),
        SOURCES[0],  # Kota Surabaya
        replace(source("tanpawilayah", "Tanpa Wilayah Pos"), region=None),
        replace(SOURCES[1], region="Madura"),  # "Madura & Co News"
        replace(source("kosong", "Kosong Daring"), region="  "),
        replace(SOURCES[2], region="Kota Malang"),
    ]


def parse(data: bytes) -> Any:
    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))


def folders(data: bytes) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    """[(folder title, [(text, xmlUrl, htmlUrl, category)])] in document order."""
    body = parse(data).find("body")
    assert body is not None
    found = []
    for folder in body:
        assert folder.tag == "outline" and folder.get("xmlUrl") is None
        assert folder.get("text") == folder.get("title")
        feeds = []
        for feed in folder:
            assert feed.tag == "outline" and feed.get("type") == "rss" and len(feed) == 0
            assert feed.get("text") == feed.get("title")
            feeds.append((feed.get("text"), feed.get("xmlUrl"), feed.get("htmlUrl"),
                          feed.get("category")))
        found.append((folder.get("text"), feeds))
    return found


def test_opml_is_well_formed_2_0_with_a_title() -> None:
    data = render_sources_opml(site(), members())
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = parse(data)
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title") == "Sindikasi Jatim: member feeds"
    assert root.find("head/dateCreated") is None


def test_members_are_grouped_by_region_in_sorted_folders() -> None:
    data = render_sources_opml(site(), members())
    m = members()
    assert folders(data) == [
        ("Kota Malang", [(m[5].name, m[5].feed_url, m[5].site, "/Kota Malang")]),
        ("Kota Surabaya", [(m[1].name, m[1].feed_url, m[1].site, "/Kota Surabaya")]),
        ("Madura", [(m[0].name, m[0].feed_url, m[0].site, "/Madura"),
                    (m[3].name, m[3].feed_url, m[3].site, "/Madura")]),
        (NO_REGION, [(m[2].name, m[2].feed_url, m[2].site, f"/{NO_REGION}"),
                     (m[4].name, m[4].feed_url, m[4].site, f"/{NO_REGION}")]),
    ]


def test_our_own_parser_reads_every_member_feed_back() -> None:
    outlines = parse_opml(render_sources_opml(site(), members()))
    got = sorted((o.title, o.xml_url, o.html_url, o.category) for o in outlines)
    want = sorted((m.name, m.feed_url, m.site, (m.region or "").strip() or NO_REGION)
                  for m in members())
    assert got == want
    assert "Madura & Co News" in {o.title for o in outlines}


def test_names_are_escaped() -> None:
    data = render_sources_opml(site(), [replace(SOURCES[1], name='A <b>"Co"</b> & \x01B')])
    assert b'text="A &lt;b&gt;&quot;Co&quot;&lt;/b&gt; &amp; B"' in data
    [outline] = parse_opml(data)
    assert outline.title == 'A <b>"Co"</b> & B'


def test_same_members_give_identical_bytes() -> None:
    assert render_sources_opml(site(), members()) == render_sources_opml(site(), members())
    assert render_sources_opml(site(), members()) != render_sources_opml(site(), SOURCES)


def test_a_creation_time_is_written_only_when_given() -> None:
    when = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    data = render_sources_opml(site(), members(), created=when)
    stamp = parse(data).findtext("head/dateCreated")
    assert stamp is not None and parsedate_to_datetime(stamp) == when


@pytest.mark.skipif(not NEWSBOAT.exists(), reason="newsboat is not installed (/usr/bin/newsboat)")
@pytest.mark.skipif(not (ORACLES / "newsboat_read.sh").is_file(),
                    reason=f"newsboat oracle not found at {ORACLES}")
def test_newsboat_imports_the_opml_and_reads_every_feed(static_site: StaticSite,
                                                        tmp_path: Path) -> None:
    """Feeds are served locally so that newsboat's reload after the import succeeds too."""
    served = []
    for i, m in enumerate(members()):
        items = [{"title": f"Berita {m.id}", "link": f"{m.site}berita-{i}/",
                  "guid": f"{m.site}berita-{i}/", "date": "Fri, 20 Nov 2026 06:00:00 +0000",
                  "html": "<p>Isi</p>"}]
        served.append(replace(m, feed_url=static_site.write(f"{m.id}.xml", rss(m.name, items))))
    opml = tmp_path / "sources.opml"
    opml.write_bytes(render_sources_opml(site(), served))

    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
           "PYTHON": sys.executable}  # the script reads newsboat's cache with it
    result = subprocess.run(["bash", str(ORACLES / "newsboat_read.sh"), str(opml)],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"^IMPORTED {len(served)} URLs from OPML", result.stdout, re.MULTILINE), \
        result.stdout
    for m in served:
        assert re.search(rf"^OK +1 {re.escape(m.feed_url)} +title={re.escape(m.name)} ",
                         result.stdout, re.MULTILINE), result.stdout
