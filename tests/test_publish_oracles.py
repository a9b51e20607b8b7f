"""What a real cycle publishes, read by independent tools: a feed reader, a crawler's sitemap
parser, the official XSDs, the JSON Feed schema and a headless browser.

The output folder is served by ``aggregator.serve`` and published with ``base_url`` set to that
server's address, so every absolute link in it resolves on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest
from conftest import StaticSite, make_config
from lxml import html as lxml_html
from test_publish import _feeds

from aggregator.serve import start_background

ORACLES = Path(__file__).resolve().parents[2] / "shared" / "oracles"
needs_oracles = pytest.mark.skipif(not ORACLES.is_dir(),
                                   reason=f"oracles not found at {ORACLES} (../shared is absent)")


@pytest.fixture
def served(static_site: StaticSite, workdir: Path, cli: Any) -> Iterator[tuple[str, Path]]:
    out = workdir / "output"
    out.mkdir()
    base, stop = start_background(out)
    try:
        config = make_config(workdir, _feeds(static_site), base_url=base)
        result = cli("--config", config, "run", "--once", "--json")
        assert result.code == 0, result.err
        yield base, out
    finally:
        stop()


def _feed_paths(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                  if p.suffix in (".xml", ".atom") and not p.name.startswith("sitemap")
                  and p.parent.name != "sitemaps")


@needs_oracles
def test_newsboat_reads_every_published_feed(served: tuple[str, Path], tmp_path: Path) -> None:
    if shutil.which("newsboat") is None:
        pytest.skip("newsboat is not installed (apt-get install newsboat)")
    base, out = served
    paths = _feed_paths(out)
    assert len(paths) >= 17  # 3 merged-feed formats less JSON, 4+ regions x 2, 3 members
    urls = tmp_path / "urls"
    urls.write_text("".join(f"{base}{p}\n" for p in paths))
    result = subprocess.run(["bash", str(ORACLES / "newsboat_read.sh"), str(urls)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    counts = {m.group(2): int(m.group(1))
              for m in re.finditer(r"^OK\s+(\d+)\s+(\S+)", result.stdout, re.M)}
    for p in paths:
        expected = len(feedparser.parse((out / p).read_bytes()).entries)
        assert counts[f"{base}{p}"] == expected, p


@needs_oracles
def test_a_crawler_finds_every_news_story_through_the_index(served: tuple[str, Path]) -> None:
    base, out = served
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    result = subprocess.run([sys.executable, str(ORACLES / "usp_read.py"), f"{base}sitemap.xml",
                             "--json"], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    text = result.stdout
    # Every member's every article (all are within 48 hours) is a news story the crawler saw.
    for mid in ("suarajatim", "kabarmadura", "malangpost"):
        member = feedparser.parse((out / "members" / f"{mid}.xml").read_bytes())
        for entry in member.entries:
            assert entry.link in text, entry.link
            assert json.dumps(entry.title)[1:-1] in text or entry.title in text


@needs_oracles
def test_sitemaps_and_json_feed_pass_their_schemas(served: tuple[str, Path]) -> None:
    _, out = served
    sitemaps = [str(out / "sitemap.xml"), *map(str, sorted((out / "sitemaps").iterdir()))]
    check = subprocess.run([sys.executable, str(ORACLES / "validate_sitemap.py"), *sitemaps],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("0 error(s)") == len(sitemaps)
    jsonfeed = subprocess.run([sys.executable, str(ORACLES / "validate_jsonfeed.py"),
                               str(out / "feed.json")], capture_output=True, text=True,
                              timeout=120)
    assert jsonfeed.returncode == 0, jsonfeed.stdout + jsonfeed.stderr


def test_headless_chromium_renders_the_river(served: tuple[str, Path]) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    base, _ = served
    result = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                             "--dump-dom", f"{base}index.html"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    page = lxml_html.fromstring(result.stdout)
    stories = page.xpath("//article[starts-with(@id, 'story-')]")
    assert len(stories) == 4
    release = [s for s in stories if "beasiswa" in s.text_content()]
    assert len(release) == 1
    copies = {a.text_content().strip(): a.get("href") for a in release[0].iter("a")}
    assert copies.get("Kabar Madura & Co") == "https://kabarmadura.example/beasiswa-santri/"
    assert copies.get("Malang Post") == "https://malangpost.example/beasiswa-santri/"
    assert "regions/kabupaten-sumenep.html" in copies.values()
    assert not page.xpath("//script")
