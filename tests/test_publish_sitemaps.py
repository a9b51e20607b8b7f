"""Google News sitemaps and their index, checked by the official XSDs and a crawler's parser."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from conftest import StaticSite
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from publish_samples import NOW, SOURCES, article, articles_of, site, source, stories

from aggregator.publish import sitemaps
from aggregator.publish.model import Article, Site, Source
from aggregator.publish.sitemaps import (
    MAX_NEWS_PER_FILE,
    NEWS_NS,
    SITEMAP_NS,
    news_language,
    news_sitemaps,
    sitemap_index,
    sitemap_lines,
)

ORACLES = Path(__file__).resolve().parents[2] / "shared" / "oracles"
needs_oracles = pytest.mark.skipif(
    not (ORACLES / "validate_sitemap.py").is_file(),
    reason=f"sitemap oracles not found at {ORACLES} (the shared/ folder next to the repository)")
NS = {"sm": SITEMAP_NS, "news": NEWS_NS}


def every_file(base: Site, members: Sequence[Source],
               articles: Sequence[Article]) -> list[tuple[str, bytes]]:
    """Every member's news sitemaps and then the index, as the publisher would write them."""
    files = [f for m in members for f in news_sitemaps(base, m, articles, NOW)]
    return [*files, ("sitemap.xml", sitemap_index(base, [(path, NOW) for path, _ in files]))]


def all_articles() -> list[Article]:
    return [a for m in SOURCES for a in articles_of(m.id)]


def many(member: Source, count: int, start_id: int = 10_000) -> list[Article]:
    """``count`` articles a minute apart, all within the last 48 hours."""
    return [article(start_id + i, member, f"Berita ke-{i} & kabar <lain>", i / 60)
            for i in range(count)]


def write(root: Path, files: Sequence[tuple[str, bytes]]) -> list[Path]:
    paths = []
    for rel, data in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    return paths


def validate(paths: Sequence[Path]) -> str:
    """The XSD oracle in strict mode: its non-XSD warnings (1,000 news, host mix) fail too."""
    result = subprocess.run([sys.executable, str(ORACLES / "validate_sitemap.py"), "--strict",
                             *map(str, paths)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def crawl(url: str) -> dict[str, Any]:
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    result = subprocess.run([sys.executable, str(ORACLES / "usp_read.py"), url, "--json"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def urls_in(data: bytes) -> list[etree._Element]:
    return list(etree.fromstring(data).findall("sm:url", NS))


def news_of(data: bytes) -> list[dict[str, str]]:
    """The news entries only: a quiet member's home-page placeholder is not news."""
    rows = []
    for url in urls_in(data):
        if url.find("news:news", NS) is None:
            continue
        rows.append({
            "loc": url.findtext("sm:loc", namespaces=NS) or "",
            "title": url.findtext("news:news/news:title", namespaces=NS) or "",
            "name": url.findtext("news:news/news:publication/news:name", namespaces=NS) or "",
            "language": url.findtext("news:news/news:publication/news:language",
                                     namespaces=NS) or "",
            "date": url.findtext("news:news/news:publication_date", namespaces=NS) or "",
        })
    return rows


# --- the oracles -------------------------------------------------------------------------------


@needs_oracles
def test_every_file_validates_against_the_official_xsds(tmp_path: Path) -> None:
    big = source("beritabesar", "Berita Besar")
    quiet = source("sepi", "Sepi Berita")
    members = [*SOURCES, big, quiet]
    files = every_file(site(), members, [*all_articles(), *many(big, 1234)])
    out = validate(write(tmp_path, files))
    assert "sitemaps/news-beritabesar.2.xml: urlset urls=234 news=234: 0 error(s)" in out
    assert "sitemaps/news-sepi.xml: urlset urls=1: 0 error(s)" in out
    assert f"sitemap.xml: sitemapindex sitemaps={len(files) - 1}: 0 error(s)" in out


@needs_oracles
def test_the_oracle_rejects_an_empty_urlset(tmp_path: Path) -> None:
    """Why a member with no recent news gets its home page rather than an empty file."""
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b'<?xml version="1.0" encoding="UTF-8"?>'
                      b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"/>')
    result = subprocess.run([sys.executable, str(ORACLES / "validate_sitemap.py"), str(empty)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout


@needs_oracles
def test_a_crawler_finds_every_story_through_the_index(static_site: StaticSite) -> None:
    base = site(base_url=static_site.url(""))
    big = source("beritabesar", "Berita Besar")
    articles = [*all_articles(), *many(big, 2345)]
    files = every_file(base, [*SOURCES, big], articles)
    write(static_site.root, files)

    report = crawl(static_site.url("sitemap.xml"))

    assert report["summary"]["invalid"] == 0 and report["errors"] == [], report["summary"]
    assert report["warnings"] == []
    index = report["sitemaps"][0]
    assert index["type"] == "IndexXMLSitemap" and index["sub_sitemaps"] == len(files) - 1
    found = {p["url"]: p for p in report["pages"]}
    assert len(found) == len(articles) == report["summary"]["news"]
    for a in articles:
        news = found[a.url]["news"]
        assert news is not None, a.url
        assert news["title"] == a.title
        assert news["publication_name"] == a.source.publication
        assert news["publication_language"] == "id"
        assert datetime.fromisoformat(news["publish_date"]) == a.published_at
    titles = {p["news"]["title"] for p in report["pages"]}
    assert 'Wali Kota Malang <b>buka</b> festival & pameran "Kampung Biru"' in titles


# --- the 48-hour window ------------------------------------------------------------------------


def test_only_the_last_48_hours_are_listed() -> None:
    member = SOURCES[0]
    ages = {1: 0.0, 2: 47.9, 3: 48.0, 4: 48.01, 5: 100.0, 6: -0.5}
    articles = [article(i, member, f"Berita {i}", hours) for i, hours in ages.items()]
    [(path, data)] = news_sitemaps(site(), member, articles, NOW)
    assert path == "sitemaps/news-suarajatim.xml"
    listed = [row["loc"] for row in news_of(data)]
    # Newest first; an article a little in the future (member clock ahead) is kept.
    assert listed == [articles[5].url, articles[0].url, articles[1].url, articles[2].url]


def test_the_window_length_is_a_parameter() -> None:
    member = SOURCES[0]
    articles = [article(i, member, f"Berita {i}", hours) for i, hours in enumerate([1, 5, 30])]
    [(_, data)] = news_sitemaps(site(), member, articles, NOW, hours=6)
    assert [row["loc"] for row in news_of(data)] == [articles[0].url, articles[1].url]


def test_a_member_with_nothing_recent_still_gets_a_valid_file() -> None:
    member = SOURCES[1]
    stale = [article(1, member, "Berita lama", 72)]
    [(path, data)] = news_sitemaps(site(), member, stale, NOW)
    assert path == "sitemaps/news-maduranews.xml"
    [url] = urls_in(data)
    assert url.findtext("sm:loc", namespaces=NS) == member.site
    assert url.find("news:news", NS) is None


def test_other_members_articles_and_unusable_urls_are_left_out() -> None:
    member, other = SOURCES[0], SOURCES[1]
    good = article(1, member, "Bagus", 1)
    rows = [good, article(2, other, "Milik anggota lain", 1),
            replace(article(3, member, "Relatif", 1), url="/2026/11/20/relatif/"),
            replace(article(4, member, "Bukan web", 1), url="ftp://suarajatim.example.id/x"),
            replace(article(5, member, "Terlalu panjang", 1),
                    url="https://suarajatim.example.id/" + "a" * 2100),
            replace(article(6, member, "Salinan", 2), url=good.url)]
    [(_, data)] = news_sitemaps(site(), member, rows, NOW)
    assert [row["loc"] for row in news_of(data)] == [good.url]


# --- splitting at 1,000 ------------------------------------------------------------------------


def test_2345_articles_make_three_files_all_in_the_index() -> None:
    member = source("beritabesar", "Berita Besar")
    articles = many(member, 2345)
    files = news_sitemaps(site(), member, list(reversed(articles)), NOW)
    assert [path for path, _ in files] == ["sitemaps/news-beritabesar.xml",
                                           "sitemaps/news-beritabesar.2.xml",
                                           "sitemaps/news-beritabesar.3.xml"]
    counts = [len(urls_in(data)) for _, data in files]
    assert counts == [MAX_NEWS_PER_FILE, MAX_NEWS_PER_FILE, 345]
    listed = [row["loc"] for _, data in files for row in news_of(data)]
    assert listed == [a.url for a in articles]  # newest first across the files, none twice

    index = etree.fromstring(sitemap_index(site(), [(path, None) for path, _ in files]))
    locs = [loc.text for loc in index.findall("sm:sitemap/sm:loc", NS)]
    assert locs == [f"https://sindikasi.example.id/{path}" for path, _ in files]
    assert index.find("sm:sitemap/sm:lastmod", NS) is None


def test_exactly_1000_articles_fit_one_file() -> None:
    member = SOURCES[2]
    assert len(news_sitemaps(site(), member, many(member, MAX_NEWS_PER_FILE), NOW)) == 1


# --- fields ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tag", "code"), [
    ("id", "id"), ("id-ID", "id"), ("ID_id", "id"), ("jv", "jv"), ("IND", "ind"),
    ("en-GB", "en"), ("zh", "zh"), ("zh-CN", "zh-cn"), ("zh-Hans", "zh-cn"),
    ("zh-SG", "zh-cn"), ("zh-TW", "zh-tw"), ("zh-Hant-HK", "zh-tw"), ("zh-hk", "zh-tw"),
    ("", None), ("x-private", None), ("indonesian", None), ("i", None),
])
def test_language_tags_become_google_news_codes(tag: str, code: str | None) -> None:
    assert news_language(tag) == code


def test_the_language_is_normalised_in_the_file() -> None:
    regional = replace(SOURCES[0], language="id-ID")
    [(_, data)] = news_sitemaps(site(), regional, [article(1, regional, "Berita", 1)], NOW)
    assert {row["language"] for row in news_of(data)} == {"id"}

    chinese = replace(SOURCES[0], language="zh-Hant-TW")
    [(_, data)] = news_sitemaps(site(), chinese, [article(1, chinese, "新聞", 1)], NOW)
    assert {row["language"] for row in news_of(data)} == {"zh-tw"}

    unusable = replace(SOURCES[0], language="bahasa")  # falls back to the site's language
    [(_, data)] = news_sitemaps(site(), unusable, [article(1, unusable, "Berita", 1)], NOW)
    assert {row["language"] for row in news_of(data)} == {"id"}


def test_fields_carry_the_publication_and_first_publication_time() -> None:
    member = SOURCES[1]  # "Madura & Co News"
    first = article(7, member, "Judul", 3)
    updated = replace(first, updated_at=NOW - timedelta(hours=1))
    [(_, data)] = news_sitemaps(site(), member, [updated], NOW)
    [row] = news_of(data)
    assert row == {"loc": first.url, "title": "Judul", "name": "Madura & Co News",
                   "language": "id", "date": "2026-11-20T03:00:00Z"}
    [url] = urls_in(data)
    assert url.findtext("sm:lastmod", namespaces=NS) == "2026-11-20T05:00:00Z"


def test_times_in_other_zones_are_written_in_utc() -> None:
    member = SOURCES[0]
    wib = NOW.astimezone(ZoneInfo("Asia/Jakarta"))  # 13:00+07:00
    local = replace(article(1, member, "Berita", 0), published_at=wib - timedelta(hours=2))
    [(_, data)] = news_sitemaps(site(), member, [local], NOW)
    assert news_of(data)[0]["date"] == "2026-11-20T04:00:00Z"


def test_titles_and_names_are_escaped() -> None:
    hostile = next(st.lead for st in stories() if st.id == 40)
    member = replace(hostile.source, publication="Malang <Post> & Co")
    rows = [replace(hostile, source=member),
            article(9, member, "Kontrol\x01 di\x0b judul", 1)]
    [(_, data)] = news_sitemaps(site(), member, rows, NOW)
    assert b"&lt;b&gt;buka&lt;/b&gt; festival &amp; pameran" in data
    assert b"<news:name>Malang &lt;Post&gt; &amp; Co</news:name>" in data
    assert [row["title"] for row in news_of(data)] == ["Kontrol di judul", hostile.title]
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")


def test_non_ascii_titles_are_utf8() -> None:
    member = SOURCES[0]
    [(_, data)] = news_sitemaps(site(), member, [article(1, member, "Ketupat — lebaran é", 1)],
                                NOW)
    assert "Ketupat — lebaran é".encode() in data


# --- determinism -------------------------------------------------------------------------------


def test_same_input_gives_identical_bytes_whatever_the_order() -> None:
    member = source("beritabesar")
    articles = many(member, 1500)
    # Two articles in the same second: the id decides, not the input order.
    twins = [article(1, member, "Kembar A", 0.5), article(2, member, "Kembar B", 0.5)]
    first = news_sitemaps(site(), member, [*articles, *twins], NOW)
    shuffled = [*articles, *twins]
    random.Random(7).shuffle(shuffled)
    assert news_sitemaps(site(), member, shuffled, NOW) == first
    assert news_sitemaps(site(), member, list(reversed(shuffled)), NOW) == first
    index = [(path, NOW) for path, _ in first]
    assert sitemap_index(site(), index) == sitemap_index(site(), list(index))


def test_now_decides_the_window_not_the_clock() -> None:
    member = SOURCES[0]
    articles = [article(1, member, "Berita", 30)]
    later = news_sitemaps(site(), member, articles, NOW + timedelta(hours=20))
    assert len(news_of(later[0][1])) == 0  # 50 hours old by then: the home page only
    assert len(news_of(news_sitemaps(site(), member, articles, NOW)[0][1])) == 1


# --- index and robots.txt ----------------------------------------------------------------------


def test_the_index_lists_files_with_absolute_locs_and_lastmod() -> None:
    when = datetime(2026, 11, 20, 13, 30, tzinfo=UTC)
    data = sitemap_index(site(), [("sitemaps/news-a.xml", when), ("sitemaps/news-b.xml", None)])
    root = etree.fromstring(data)
    assert root.tag == f"{{{SITEMAP_NS}}}sitemapindex"
    entries = [(e.findtext("sm:loc", namespaces=NS), e.findtext("sm:lastmod", namespaces=NS))
               for e in root.findall("sm:sitemap", NS)]
    assert entries == [("https://sindikasi.example.id/sitemaps/news-a.xml", "2026-11-20T13:30:00Z"),
                       ("https://sindikasi.example.id/sitemaps/news-b.xml", None)]


def test_the_index_refuses_colliding_or_no_files() -> None:
    with pytest.raises(ValueError, match="twice"):
        sitemap_index(site(), [("sitemaps/news-a.2.xml", None), ("sitemaps/news-a.2.xml", None)])
    with pytest.raises(ValueError, match="at least one"):
        sitemap_index(site(), [])


def test_sitemap_lines_name_each_members_first_file() -> None:
    assert sitemap_lines(site(), SOURCES) == [
        "Sitemap: https://sindikasi.example.id/sitemaps/news-suarajatim.xml",
        "Sitemap: https://sindikasi.example.id/sitemaps/news-maduranews.xml",
        "Sitemap: https://sindikasi.example.id/sitemaps/news-malangpost.xml",
        "Sitemap: https://sindikasi.example.id/sitemaps/news-kabarkediri.xml",
    ]
    # Every line points at a file that exists, even for a member with nothing to list.
    for member, line in zip(SOURCES, sitemap_lines(site(), SOURCES), strict=True):
        [(path, _)] = news_sitemaps(site(), member, [], NOW)
        assert line == f"Sitemap: {site().url(path)}"


def test_a_members_overflow_file_never_takes_another_members_name() -> None:
    foo, foo2 = source("foo"), source("foo-2")
    paths = [p for m, n in ((foo, 1001), (foo2, 3))
             for p, _ in news_sitemaps(site(), m, many(m, n, start_id=1 + 5000 * (m is foo2)),
                                       NOW)]
    assert len(paths) == len(set(paths)) == 3
    assert "sitemaps/news-foo-2.xml" in paths


def test_early_years_are_written_with_four_digits() -> None:
    from aggregator.publish.feeds import _rfc3339
    from aggregator.publish.sitemaps import w3c_datetime

    early = datetime(7, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert w3c_datetime(early) == _rfc3339(early) == "0007-03-04T05:06:07Z"


def test_an_address_with_a_control_character_is_left_out() -> None:
    member = source("kabar")
    bad = replace(article(1, member, "Judul", 1), url="https://\x1bkabar.example.id/1/")
    good = article(2, member, "Judul lain", 1)
    ((_, data),) = news_sitemaps(site(), member, [bad, good], NOW)
    assert [row["loc"] for row in news_of(data)] == [good.url]


@given(url=st.builds(str.__add__, st.sampled_from(["http://", "https://", "HTTP://", "ftp://"]),
                     st.text(alphabet="aZ09.-:/?#[]@!$&'()*+,;=_~% \t\"<é\x00", max_size=30))
       | st.text(max_size=40))
def test_the_plain_url_shortcut_agrees_with_the_full_checks(url: str) -> None:
    """The one-match shortcut in ``_usable_url`` must never accept what the full checks refuse."""
    if sitemaps._PLAIN_LOC.fullmatch(url):
        parts = urlsplit(url)
        assert url == url.strip() and not sitemaps._NOT_LOC.search(url)
        assert not sitemaps._SURROGATE.search(url)
        assert parts.scheme in ("http", "https") and parts.hostname
