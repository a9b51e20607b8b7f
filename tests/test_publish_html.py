"""The river-of-news pages: structure, links, times and safety, then the same pages in Chromium.

The structural checks parse the output with lxml rather than grepping it, so they see what a
browser would see; the Chromium tests then make sure a real browser agrees (the relative links
resolve on a server, the stylesheet survives our own Content-Security-Policy).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import shutil
import struct
import subprocess
import urllib.request
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
import pytest
from conftest import StaticSite
from publish_samples import (
    JATENG,
    JATIM,
    KAB_MALANG,
    KOTA_MALANG,
    MADURA,
    NOW,
    SOURCES,
    SUMENEP,
    SURABAYA,
    article,
    site,
    stories,
)

from aggregator.publish.html import Page, format_time, relative_href, render_page, safe_href
from aggregator.publish.model import Place, Story

NASIONAL = Place("id", "Nasional", "nasional", "national")
PLACES = (SURABAYA, JATIM, KOTA_MALANG, MADURA, JATENG, SUMENEP, KAB_MALANG, NASIONAL)
FRONT_FEEDS = (("RSS", "feed.xml"), ("Atom", "atom.xml"), ("JSON Feed", "feed.json"))
ORACLES = Path(__file__).resolve().parents[2] / "shared" / "oracles"


def front(story_list: list[Story] | None = None, places: tuple[Place, ...] = PLACES) -> Page:
    return Page(path="index.html", title="Sindikasi Jatim", place=None,
                stories=tuple(stories() if story_list is None else story_list), places=places,
                feeds=FRONT_FEEDS)


def region(place: Place, story_list: list[Story] | None = None) -> Page:
    chosen = [s for s in (stories() if story_list is None else story_list) if place in s.places]
    return Page(path=f"regions/{place.slug}.html", title=place.name, place=place,
                stories=tuple(chosen), places=PLACES,
                feeds=(("RSS", f"regions/{place.slug}.xml"),
                       ("Atom", f"regions/{place.slug}.atom")))


def parse(html: bytes) -> Any:
    return lxml.html.document_fromstring(html)


def story_element(doc: Any, story_id: int) -> Any:
    found = doc.xpath(f'//main//article[@id="story-{story_id}"]')
    assert len(found) == 1, f"story-{story_id}: {len(found)} articles"
    return found[0]


def text(element: Any) -> str:
    return " ".join(element.text_content().split())


# --- structure -----------------------------------------------------------------------------


def test_one_article_per_story_newest_first() -> None:
    doc = parse(render_page(site(), front()))
    ids = [a.get("id") for a in doc.xpath("//main//article")]
    assert ids == ["story-50", "story-40", "story-10"]
    assert doc.xpath("//header") and doc.xpath("//footer") and doc.xpath("//nav")


def test_lead_title_links_to_the_member_article_with_member_time_and_summary() -> None:
    doc = parse(render_page(site(), front()))
    story = story_element(doc, 10)
    title_links = story.xpath(".//h2/a")
    assert len(title_links) == 1
    assert title_links[0].get("href") == (
        "https://suarajatim.example.id/2026/11/20/bupati-sumenep-resmikan-pasar/")
    assert text(title_links[0]) == "Bupati Sumenep resmikan Pasar Anom Baru"
    assert "Suara Jatim" in text(story.xpath('.//p[@class="meta"]')[0])
    assert text(story.xpath('.//p[@class="summary"]')[0]) == (
        "Ringkasan berita 1: Bupati Sumenep resmikan Pasar Anom Baru.")


def test_also_reported_by_lists_every_other_outlet_with_a_link_to_its_copy() -> None:
    doc = parse(render_page(site(), front()))
    section = story_element(doc, 10).xpath('.//section[@class="copies"]')
    assert len(section) == 1
    assert text(section[0].xpath(".//h3")[0]) == "Juga diberitakan oleh"
    links = [(text(a), a.get("href")) for a in section[0].xpath(".//li/a")]
    assert links == [
        ("Madura & Co News", "https://maduranews.example.id/2026/11/20/berita-2/"),
        ("Kabar Kediri", "https://kabarkediri.example.id/2026/11/20/berita-3/"),
    ]
    assert "Pasar Anom Baru Sumenep diresmikan Bupati" in text(section[0])
    # A story nobody else carried has no such section.
    assert not story_element(doc, 50).xpath('.//section[@class="copies"]')


def test_story_regions_link_to_their_pages_relative_to_the_page() -> None:
    on_front = story_element(parse(render_page(site(), front())), 10)
    assert [(text(a), a.get("href")) for a in on_front.xpath('.//ul[@class="places"]//a')] == [
        ("Kabupaten Sumenep", "regions/kabupaten-sumenep.html"),
        ("Madura", "regions/madura.html"),
    ]
    nested = story_element(parse(render_page(site(), region(MADURA))), 10)
    places = nested.xpath('.//ul[@class="places"]//a')
    assert [a.get("href") for a in places] == ["kabupaten-sumenep.html", "madura.html"]
    assert [a.get("aria-current") for a in places] == [None, "page"]


def test_a_region_without_a_page_is_named_but_not_linked() -> None:
    doc = parse(render_page(site(), front(places=(JATIM,))))
    places = story_element(doc, 50).xpath('.//ul[@class="places"]/li')
    assert [text(li) for li in places] == ["Jawa Timur", "Jawa Tengah"]
    assert [li.xpath("./a/@href") for li in places] == [["regions/jawa-timur.html"], []]
    # A slug that is not a plain file name never becomes a link, here or in the filter.
    climbing = Place("x", "Di luar", "../x", "kota")
    st = dataclasses.replace(stories()[0], places=(climbing,))
    doc = parse(render_page(site(), front([st], places=(climbing,))))
    assert not [h for h in doc.xpath("//a/@href") if h.endswith("/x.html")]
    assert not doc.xpath('//nav[@id="wilayah"]/h3')
    assert not story_element(doc, 50).xpath('.//ul[@class="places"]//a')
    assert text(story_element(doc, 50).xpath('.//ul[@class="places"]')[0]) == "Di luar"


def test_region_filter_links_every_region_grouped_by_level() -> None:
    odd = Place("x", "Tapal Kuda Lama", "tapal-kuda-lama", "historic")
    page = dataclasses.replace(region(KOTA_MALANG), places=(*PLACES, odd))
    doc = parse(render_page(site(), page))
    nav = doc.xpath('//nav[@id="wilayah"]')[0]
    groups = {text(h3): [(text(a), a.get("href")) for a in h3.getnext().xpath(".//a")]
              for h3 in nav.xpath("./h3")}
    assert list(groups) == ["Kabupaten dan kota", "Kawasan", "Provinsi", "Provinsi lain",
                            "Nasional", "Lainnya"]
    assert groups["Kabupaten dan kota"] == [
        ("Kabupaten Malang", "kabupaten-malang.html"), ("Kota Malang", "kota-malang.html"),
        ("Kabupaten Sumenep", "kabupaten-sumenep.html"), ("Kota Surabaya", "kota-surabaya.html")]
    assert groups["Kawasan"] == [("Madura", "madura.html")]
    assert groups["Provinsi"] == [("Jawa Timur", "jawa-timur.html")]
    assert groups["Provinsi lain"] == [("Jawa Tengah", "jawa-tengah.html")]
    assert groups["Nasional"] == [("Nasional", "nasional.html")]
    assert groups["Lainnya"] == [("Tapal Kuda Lama", "tapal-kuda-lama.html")]
    current = nav.xpath('.//a[@aria-current="page"]')
    assert [text(a) for a in current] == ["Kota Malang"]
    assert nav.xpath('./p[@class="all"]/a/@href') == ["../index.html"]


def test_feed_links_and_alternate_links_in_the_head() -> None:
    doc = parse(render_page(site(), front()))
    alternates = [(link.get("type"), link.get("href"))
                  for link in doc.xpath('//head/link[@rel="alternate"]')]
    assert alternates == [("application/rss+xml", "feed.xml"),
                          ("application/atom+xml", "atom.xml"),
                          ("application/feed+json", "feed.json")]
    visible = {text(a): a.get("href") for a in doc.xpath('//body//nav[@class="subscribe"]//a')}
    assert visible == {"RSS": "feed.xml", "Atom": "atom.xml", "JSON Feed": "feed.json",
                       "OPML anggota": "sources.opml"}


def test_links_from_a_nested_page_are_relative_to_it() -> None:
    doc = parse(render_page(site(), region(KOTA_MALANG)))
    alternates = [(link.get("type"), link.get("href"))
                  for link in doc.xpath('//head/link[@rel="alternate"]')]
    assert alternates == [("application/rss+xml", "kota-malang.xml"),
                          ("application/atom+xml", "kota-malang.atom")]
    visible = {text(a): a.get("href") for a in doc.xpath('//nav[@class="subscribe"]//a')}
    assert visible == {"RSS": "kota-malang.xml", "Atom": "kota-malang.atom",
                       "OPML anggota": "../sources.opml"}
    assert doc.xpath('//header//p[@class="kicker"]/a/@href') == ["../index.html"]
    # Resolved against the page's own address, every internal link lands inside the output root.
    page_url = "https://any.host/demo/regions/kota-malang.html"
    internal = [h for h in doc.xpath("//body//a/@href") if not urlsplit(h).scheme
                and not h.startswith("#")]
    assert internal
    for href in internal:
        assert not href.startswith("/"), href
        assert urljoin(page_url, href).startswith("https://any.host/demo/"), href
    assert doc.xpath('//link[@rel="canonical"]/@href') == [
        "https://sindikasi.example.id/regions/kota-malang.html"]


def test_times_carry_iso_datetimes_and_read_in_wib() -> None:
    doc = parse(render_page(site(), front()))
    lead = story_element(doc, 50).xpath('.//p[@class="meta"]/time')[0]
    assert datetime.fromisoformat(lead.get("datetime")) == NOW.replace(hour=5)
    assert lead.get("datetime").endswith("+07:00")
    assert text(lead) == "Jumat, 20 November 2026 12.00 WIB"
    copies = story_element(doc, 10).xpath('.//section[@class="copies"]//time')
    assert [text(t) for t in copies] == ["20 November 2026 09.00 WIB",
                                         "20 November 2026 10.00 WIB"]
    assert [datetime.fromisoformat(t.get("datetime")) for t in copies] == [
        NOW.replace(hour=2), NOW.replace(hour=3)]


@pytest.mark.parametrize(("zone", "moment", "expected"), [
    ("Asia/Jakarta", datetime(2026, 1, 1, 0, 5, tzinfo=UTC), "Kamis, 1 Januari 2026 07.05 WIB"),
    ("Asia/Jakarta", datetime(2026, 11, 20, 18, 30, tzinfo=UTC),
     "Sabtu, 21 November 2026 01.30 WIB"),
    ("Asia/Makassar", datetime(2026, 11, 20, 5, 0, tzinfo=UTC),
     "Jumat, 20 November 2026 13.00 WITA"),
    ("Asia/Jayapura", datetime(2026, 11, 20, 5, 0, tzinfo=UTC),
     "Jumat, 20 November 2026 14.00 WIT"),
    ("Europe/Berlin", datetime(2026, 7, 5, 10, 0, tzinfo=UTC), "Minggu, 5 Juli 2026 12.00 CEST"),
    ("Europe/Berlin", datetime(2026, 2, 3, 10, 0, tzinfo=UTC),
     "Selasa, 3 Februari 2026 11.00 CET"),
    ("Asia/Jakarta", datetime(2026, 8, 17, 3, 0), "Senin, 17 Agustus 2026 10.00 WIB"),
])
def test_time_format(zone: str, moment: datetime, expected: str) -> None:
    assert format_time(moment, dataclasses.replace(site(), timezone=zone)) == expected


def test_head_language_viewport_and_charset() -> None:
    doc = parse(render_page(dataclasses.replace(site(), language="jv"), front()))
    assert doc.get("lang") == "jv"
    assert doc.xpath('//head/meta[@name="viewport"]/@content') == [
        "width=device-width, initial-scale=1"]
    assert doc.xpath("//head/meta/@charset") == ["utf-8"]
    assert text(doc.xpath("//head/title")[0]) == "Sindikasi Jatim"
    nested = parse(render_page(site(), region(KOTA_MALANG)))
    assert text(nested.xpath("//head/title")[0]) == "Kota Malang · Sindikasi Jatim"


# --- safety --------------------------------------------------------------------------------


def hostile_stories() -> list[Story]:
    """The samples plus links a member feed might smuggle in, and a region slug with a colon."""
    s, m, p, _ = SOURCES
    evil_place = Place("evil", "Wilayah <i>aneh</i>", "javascript:alert(1)", "kota")
    bad_lead = dataclasses.replace(
        article(60, s, "Judul dengan tautan buruk", 0.5, (evil_place,)),
        url="JaVaScRiPt:alert(document.cookie)")
    bad_copies = (
        dataclasses.replace(article(61, m, "Salinan satu", 0.4), url=" javascript:alert(2)"),
        dataclasses.replace(article(62, p, "Salinan dua", 0.3),
                            url="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="),
    )
    evil = Story(id=60, lead=bad_lead, copies=bad_copies, places=(evil_place,),
                 published_at=bad_lead.published_at, updated_at=bad_lead.published_at)
    return [evil, *stories()]


def test_hostile_content_never_becomes_markup_or_script() -> None:
    evil_place = hostile_stories()[0].places[0]
    page = dataclasses.replace(front(hostile_stories()), places=(*PLACES, evil_place))
    html = render_page(site(), page)
    lowered = html.decode("utf-8").lower()
    assert "<script" not in lowered
    assert "javascript:" not in lowered
    assert "data:text" not in lowered
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", lowered)
    doc = parse(html)
    for element in doc.iter():
        for name in element.attrib:
            assert not name.lower().startswith("on"), (element.tag, name)
            assert name.lower() != "style", element.tag
    assert not doc.xpath("//script | //iframe | //object | //embed | //b | //i")
    # Only titles and summaries: the members' content_html never appears, even sanitised.
    assert "isi berita" not in lowered
    hostile = story_element(doc, 40)
    assert text(hostile.xpath(".//h2")[0]) == (
        'Wali Kota Malang <b>buka</b> festival & pameran "Kampung Biru"')
    assert "<script>alert('x')</script>" in text(hostile.xpath('.//p[@class="summary"]')[0])
    # Addresses that are not http(s) are shown as text, not links.
    evil = story_element(doc, 60)
    assert not evil.xpath(".//h2/a")
    assert text(evil.xpath(".//h2")[0]) == "Judul dengan tautan buruk"
    assert not evil.xpath('.//section[@class="copies"]//a')
    assert [text(x) for x in evil.xpath('.//section[@class="copies"]//li/span[@class="member"]')] \
        == ["Madura & Co News", "Malang Post Daring"]
    for href in doc.xpath("//@href"):
        scheme = urlsplit(href).scheme
        assert scheme in ("", "http", "https"), href


def test_csp_forbids_scripts_and_allows_only_our_stylesheet() -> None:
    doc = parse(render_page(site(), front()))
    metas = doc.xpath('//head/meta[@http-equiv="Content-Security-Policy"]/@content')
    assert len(metas) == 1
    directives = {d.split()[0]: d.split()[1:] for d in metas[0].split(";") if d.strip()}
    assert directives["default-src"] == ["'none'"]
    assert "script-src" not in directives  # falls back to default-src 'none'
    styles = doc.xpath("//style")
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].text.encode("utf-8")).digest()).decode()
    assert directives["style-src"] == [f"'sha256-{digest}'"]
    # The policy must come before the stylesheet, or it would not govern it.
    head = [child.tag for child in doc.xpath("//head")[0]]
    assert head.index("meta") < head.index("style")
    assert doc.xpath("//head/*[1]/@charset") == ["utf-8"]


def test_rendering_is_deterministic() -> None:
    first = render_page(site(), front())
    assert render_page(site(), front()) == first
    assert render_page(site(), region(SUMENEP)) == render_page(site(), region(SUMENEP))
    assert render_page(site(), region(SUMENEP)) != render_page(site(), region(MADURA))


def test_empty_page_says_so_in_indonesian() -> None:
    doc = parse(render_page(site(), front([])))
    assert not doc.xpath("//article")
    assert "Belum ada berita" in text(doc.xpath('//main/p[@class="empty"]')[0])
    regional = parse(render_page(site(), region(NASIONAL)))
    assert "Belum ada berita untuk wilayah ini" in text(regional.xpath("//main")[0])


def test_long_summaries_are_shortened_on_a_word() -> None:
    long = dataclasses.replace(article(70, SOURCES[0], "Panjang", 1), summary="kata " * 200)
    st = Story(id=70, lead=long, copies=(), places=(), published_at=long.published_at,
               updated_at=long.published_at)
    summary = text(story_element(parse(render_page(site(), front([st]))), 70)
                   .xpath('.//p[@class="summary"]')[0])
    assert summary.endswith("kata…")
    assert len(summary) <= 361


def test_page_path_must_stay_inside_the_output_root() -> None:
    for bad in ("/index.html", "../index.html", "regions//x.html", "regions/./x.html"):
        with pytest.raises(ValueError):
            render_page(site(), dataclasses.replace(front(), path=bad))


def test_safe_href_and_relative_href() -> None:
    assert safe_href("https://a.example/x?y=1") == "https://a.example/x?y=1"
    assert safe_href("HTTP://a.example/") == "HTTP://a.example/"
    for bad in ("javascript:alert(1)", " https://a.example/", "java\tscript:x", "//a.example/",
                "/relative", "https:///nohost", "https://a.example/\nx", "mailto:a@b.id", ""):
        assert safe_href(bad) is None, bad
    assert relative_href("feed.xml", "index.html") == "feed.xml"
    assert relative_href("feed.xml", "regions/x.html") == "../feed.xml"
    assert relative_href("regions/y.html", "regions/x.html") == "y.html"
    assert relative_href("regions/y.html", "index.html") == "regions/y.html"
    assert relative_href("regions/javascript:x.html", "regions/a.html") == "javascript%3Ax.html"


# --- in a real browser ---------------------------------------------------------------------


def chromium_or_skip() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def publish(static: StaticSite) -> None:
    """The front page, every region page, and stand-ins for the feeds they link to."""
    pages = [front(), *(region(p) for p in PLACES)]
    for page in pages:
        target = static.root / page.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(render_page(site(), page))
        for _, feed in page.feeds:
            (static.root / feed).write_text("feed\n", encoding="utf-8")
    (static.root / "sources.opml").write_text("opml\n", encoding="utf-8")


def dump_dom(chromium: str, url: str, profile: Path) -> Any:
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-dev-shm-usage", "--disable-background-networking",
         f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True, timeout=90, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    assert b"<article" in result.stdout, result.stdout[:2000]
    return lxml.html.document_fromstring(result.stdout)


def test_chromium_renders_the_river_and_its_links_resolve(static_site: StaticSite,
                                                          tmp_path: Path) -> None:
    chromium = chromium_or_skip()
    publish(static_site)
    front_url = static_site.url("index.html")
    doc = dump_dom(chromium, front_url, tmp_path / "profile")
    assert [a.get("id") for a in doc.xpath("//main//article")] == [
        "story-50", "story-40", "story-10"]
    copies = story_element(doc, 10).xpath('.//section[@class="copies"]//a')
    assert [text(a) for a in copies] == ["Madura & Co News", "Kabar Kediri"]
    assert not doc.xpath("//script")

    region_url = static_site.url("regions/kabupaten-sumenep.html")
    nested = dump_dom(chromium, region_url, tmp_path / "profile")
    assert [a.get("id") for a in nested.xpath("//main//article")] == ["story-10"]
    places = story_element(nested, 10).xpath('.//ul[@class="places"]//a')
    assert [urljoin(region_url, a.get("href")) for a in places] == [
        static_site.url("regions/kabupaten-sumenep.html"), static_site.url("regions/madura.html")]
    # Every internal link on both pages, resolved as the browser would, is served.
    for base, page in ((front_url, doc), (region_url, nested)):
        for href in page.xpath("//a/@href | //link[@rel='alternate']/@href"):
            if urlsplit(href).scheme or href.startswith("#"):
                continue
            with urllib.request.urlopen(urljoin(base, href), timeout=10) as response:
                assert response.status == 200, href


def png_size_and_pixel(path: Path, x: int, y: int) -> tuple[int, int, tuple[int, ...]]:
    """Width, height and one pixel of an 8-bit RGB(A) PNG, enough to see the CSS was applied."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks, header = 8, [], b""
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        offset += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    step = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * step
    previous = bytearray(stride)
    row = bytearray(stride)
    for line in range(y + 1):
        start = line * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = row[i - step] if i >= step else 0
            up = previous[i]
            corner = previous[i - step] if i >= step else 0
            if kind == 1:
                row[i] = (row[i] + left) & 0xFF
            elif kind == 2:
                row[i] = (row[i] + up) & 0xFF
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                guess = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                row[i] = (row[i] + guess) & 0xFF
        previous = row
    return width, height, tuple(row[x * step:x * step + 3])


def test_chromium_screenshots_wide_and_narrow(static_site: StaticSite, tmp_path: Path) -> None:
    chromium_or_skip()
    shot = ORACLES / "chromium_shot.sh"
    if not shot.is_file():
        pytest.skip(f"{shot} not found")
    publish(static_site)
    band = (0xF5, 0xEF, 0xE3)  # the masthead colour in style.css: only there if CSP let it in
    for url, size in ((static_site.url("index.html"), (1280, 900)),
                      (static_site.url("regions/kabupaten-sumenep.html"), (390, 844))):
        out = tmp_path / f"shot-{size[0]}.png"
        result = subprocess.run(["bash", str(shot), url, str(out), f"{size[0]}x{size[1]}"],
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr[-2000:]
        assert out.stat().st_size > 20_000, "a near-empty screenshot"
        width, height, pixel = png_size_and_pixel(out, 4, 4)
        assert (width, height) == size
        assert all(abs(a - b) <= 4 for a, b in zip(pixel, band, strict=True)), pixel
