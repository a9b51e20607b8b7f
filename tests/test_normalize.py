"""normalize: canonical URLs, clean content, UTC times, stable hashes, from real-looking feeds."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from aggregator.models import Item, ParsedFeed, RawEntry
from aggregator.normalize import MAX_SUMMARY, MAX_TITLE, normalize_entry, normalize_feed
from aggregator.parse import parse_feed

FEEDS = Path(__file__).resolve().parent / "fixtures" / "feeds"
NOW = datetime(2024, 5, 14, 3, 0, tzinfo=UTC)
SKEW = timedelta(hours=1)
SITE = "https://suarajatim.example.id"
FEED_URL = f"{SITE}/feed/"
C0 = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
BOILERPLATE = ("appeared first on", "the post", "baca juga", "bagikan", "facebook", "share=",
               "tinggalkan komentar", "google news", "[…]", "[&#8230;]", "ikuti berita")


def normalized(name: str, base: str = FEED_URL, now: datetime = NOW) -> list[Item]:
    return normalize_feed(parse_feed((FEEDS / name).read_bytes()), base, now, SKEW)


@pytest.fixture(scope="module")
def wp() -> list[Item]:
    return normalized("rss20_wordpress.xml")


def by_title(items: list[Item], start: str) -> Item:
    found = [i for i in items if i.title.startswith(start)]
    assert len(found) == 1, [i.title for i in items]
    return found[0]


def entry(**changes: object) -> RawEntry:
    base = RawEntry(
        guid="https://suarajatim.example.id/?p=2001",
        link="https://suarajatim.example.id/2024/05/14/kereta-cepat-surabaya/",
        title="Kereta Cepat Jakarta–Surabaya Masuk Kajian",
        summary_html="<p>Pemerintah mengkaji perpanjangan jalur kereta cepat.</p>",
        content_html="<p>Pemerintah mengkaji perpanjangan jalur kereta cepat ke Surabaya.</p>",
        author="Budi Santoso",
        categories=("Nasional", "Transportasi"),
        published=datetime(2024, 5, 14, 1, 0, tzinfo=UTC),
        updated=None,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# --- the WordPress fixture end to end ------------------------------------------------------


def test_every_wordpress_entry_is_kept(wp: list[Item]) -> None:
    assert len(wp) == 9


def test_canonical_urls(wp: list[Item]) -> None:
    urls = [i.url for i in wp]
    assert urls == [
        f"{SITE}/2024/05/14/banjir-rob-surabaya/",  # utm_ removed
        f"{SITE}/2024/05/14/harga-cabai-naik/",  # /amp/ folded
        f"{SITE}/2024/05/13/persebaya-menang/?page=2",  # ?amp=1, fbclid, #fragment gone
        f"{SITE}/2024/05/12/tol-probowangi-dibuka/",  # relative resolved against the site
        f"{SITE}/2024/05/11/jadwal-mudik-gratis/",
        f"{SITE}/2024/05/11/vaksinasi-hewan-kurban/",
        f"{SITE}/2024/05/11/pasar-murah-balai-kota/",  # gclid and utm_term removed
        f"{SITE}/2024/05/10/kebakaran-gudang-sidoarjo/",
        f"{SITE}/2024/05/10/wisuda-akbar-gresik/",
    ]
    for url in urls:
        assert url is not None
        assert url.startswith("https://")
        assert "#" not in url and "utm_" not in url and "clid" not in url
        assert "/amp" not in url and "amp=" not in url


def test_original_link_is_kept_beside_the_canonical_url(wp: list[Item]) -> None:
    assert wp[3].link == "/2024/05/12/tol-probowangi-dibuka/"
    assert wp[1].link is not None and wp[1].link.endswith("/amp/")


def test_relative_link_without_channel_link_resolves_against_feed_url() -> None:
    feed = ParsedFeed(format="rss20", title="x", link=None, ttl_seconds=None,
                      entries=(entry(link="../2024/05/14/x/", guid=None),))
    (item,) = normalize_feed(feed, "https://kabarkota.example.id/rss/terbaru/", NOW, SKEW)
    assert item.url == "https://kabarkota.example.id/rss/2024/05/14/x/"


def test_guid_permalink_stands_in_for_a_missing_link() -> None:
    item = normalize_entry(entry(link=None, guid="https://suarajatim.example.id/x/?utm_source=a"),
                           SITE, NOW, SKEW)
    assert item is not None and item.url == "https://suarajatim.example.id/x/"
    item = normalize_entry(entry(link=None, guid="post-2001"), SITE, NOW, SKEW)
    assert item is not None and item.url is None and item.guid == "post-2001"


def test_boilerplate_is_removed(wp: list[Item]) -> None:
    for item in wp:
        for field in (item.content_html, item.content_text, item.summary):
            lowered = field.lower()
            for furniture in BOILERPLATE:
                assert furniture not in lowered, (item.title, furniture, field)
    banjir = wp[0]
    # The article survives its furniture.
    assert banjir.summary == ("Banjir rob kembali merendam kawasan pesisir utara Surabaya sejak "
                              "Senin malam.")
    assert banjir.content_text.splitlines() == [
        "Banjir rob kembali merendam kawasan pesisir utara Surabaya sejak Senin malam. Air laut "
        "pasang setinggi setengah meter masuk ke permukiman warga di Kenjeran.",
        "“Air mulai masuk sekitar pukul sembilan malam,” kata Pak Darto, warga setempat. Ia "
        "menyebut kondisi ini sudah “langganan” setiap bulan purnama.",
        "Petugas BPBD Surabaya mendirikan posko di Kelurahan Kenjeran dan menyiagakan perahu "
        "karet. Lihat peta genangan.",
    ]
    cabai = wp[1]
    assert cabai.content_text == ("Pedagang menyebut pasokan dari Kediri dan Blitar berkurang "
                                  "akibat cuaca.")


def test_content_html_is_safe(wp: list[Item]) -> None:
    for item in wp:
        lowered = item.content_html.lower()
        for forbidden in ("<script", "<style", "<iframe", "javascript:", "__wp_track",
                          "wp-block-embed", "youtube.com/embed"):
            assert forbidden not in lowered, (item.title, forbidden)
        assert not re.search(r"<[^>]*\son\w+\s*=", lowered), item.content_html
        assert not C0.search(item.content_html)
    html = wp[0].content_html
    assert 'href="https://suarajatim.example.id/tag/kenjeran/"' in html
    assert 'src="https://suarajatim.example.id/wp-content/uploads/2024/05/banjir-rob.jpg"' in html
    assert "“langganan”" in html  # the doubly escaped entity, decoded
    assert "&amp;#" not in html


def test_dates_are_utc(wp: list[Item]) -> None:
    for item in wp:
        assert item.published_at.utcoffset() == timedelta(0)
    assert wp[0].published_at == datetime(2024, 5, 14, 1, 30, tzinfo=UTC)
    assert wp[2].published_at == datetime(2024, 5, 13, 14, 45, tzinfo=UTC)
    assert [i.date_missing for i in wp] == [False] * 5 + [True] + [False] * 3


def test_missing_date_becomes_now(wp: list[Item]) -> None:
    undated = wp[5]
    assert undated.title.startswith("Pemkot Gelar Vaksinasi")
    assert undated.published_at == NOW
    assert undated.date_missing is True


def test_far_future_date_is_clamped_to_now(wp: list[Item]) -> None:
    mudik = wp[4]
    assert mudik.title == "Jadwal Mudik Gratis Tahun Depan Diumumkan"
    assert mudik.published_at == NOW


def test_small_clock_skew_is_tolerated() -> None:
    soon = NOW + timedelta(minutes=30)
    item = normalize_entry(entry(published=soon), SITE, NOW, SKEW)
    assert item is not None and item.published_at == soon and not item.date_missing
    late = NOW + SKEW + timedelta(seconds=1)
    item = normalize_entry(entry(published=late), SITE, NOW, SKEW)
    assert item is not None and item.published_at == NOW


def test_other_time_zones_become_utc() -> None:
    wib = timezone(timedelta(hours=7))
    item = normalize_entry(entry(published=datetime(2024, 5, 14, 8, 0, tzinfo=wib)),
                           SITE, NOW, SKEW)
    assert item is not None
    assert item.published_at == datetime(2024, 5, 14, 1, 0, tzinfo=UTC)
    assert item.published_at.utcoffset() == timedelta(0)
    # One instant, one hash, whatever zone the source wrote it in.
    later_wib = datetime(2024, 5, 14, 9, 0, tzinfo=wib)
    later_utc = datetime(2024, 5, 14, 2, 0, tzinfo=UTC)
    a = normalize_entry(entry(updated=later_wib), SITE, NOW, SKEW)
    b = normalize_entry(entry(updated=later_utc), SITE, NOW, SKEW)
    assert a is not None and b is not None
    assert a.updated_at == later_utc and a.updated_at.utcoffset() == timedelta(0)
    assert a.content_hash == b.content_hash


def test_naive_times_are_taken_as_utc() -> None:
    item = normalize_entry(entry(published=datetime(2024, 5, 14, 1, 0)), SITE, NOW, SKEW)
    assert item is not None
    assert item.published_at == datetime(2024, 5, 14, 1, 0, tzinfo=UTC)


def test_updated_time() -> None:
    published = datetime(2024, 5, 13, 1, 0, tzinfo=UTC)
    later = datetime(2024, 5, 13, 2, 0, tzinfo=UTC)
    item = normalize_entry(entry(published=published, updated=later), SITE, NOW, SKEW)
    assert item is not None and item.updated_at == later
    # Only an update time: it is the publication time, and not also an update.
    item = normalize_entry(entry(published=None, updated=later), SITE, NOW, SKEW)
    assert item is not None and item.published_at == later and item.updated_at is None
    assert not item.date_missing
    # An update time from the future is ignored.
    item = normalize_entry(entry(updated=datetime(2100, 1, 1, tzinfo=UTC)), SITE, NOW, SKEW)
    assert item is not None and item.updated_at is None


def test_titles_are_clean(wp: list[Item]) -> None:
    for item in wp:
        assert not C0.search(item.title), repr(item.title)
        assert "&#" not in item.title and "&amp;" not in item.title
        assert item.title == item.title.strip()
    assert wp[0].title == ("Banjir Rob Rendam Pesisir Surabaya, Warga: “Sudah Langganan” Tiap "
                           "Purnama")
    assert wp[3].title == "Jalan Tol Probolinggo–Banyuwangi Seksi I Dibuka"
    assert wp[5].title == "Pemkot Gelar Vaksinasi Hewan Kurban – Gratis di 31 Kecamatan"


def test_text_fields_have_no_control_characters(wp: list[Item]) -> None:
    for item in wp:
        for text in (item.title, item.summary, item.content_text, item.author or ""):
            assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text), repr(text)


def test_author_and_categories(wp: list[Item]) -> None:
    assert wp[0].author == "Siti Nurhaliza"
    assert wp[0].categories == ("Surabaya", "Peristiwa")
    assert wp[4].author is None and wp[4].categories == ()
    item = normalize_entry(
        entry(author="  <b>Budi</b>\x08 Santoso ", categories=(" Ekonomi ", "Ekonomi", "", "  ")),
        SITE, NOW, SKEW)
    assert item is not None
    assert item.author == "Budi Santoso"
    assert item.categories == ("Ekonomi",)


# --- other formats -------------------------------------------------------------------------


def test_atom_relative_image_resolves_against_the_article() -> None:
    kelud, rokok = normalized("atom10.xml", base="https://kediri-news.example.id/feed/atom/")
    assert kelud.url == "https://kediri-news.example.id/berita/2024/05/gunung-kelud-normal/"
    assert ('src="https://kediri-news.example.id/wp-content/uploads/2024/05/kelud.jpg"'
            in kelud.content_html)
    assert kelud.updated_at == datetime(2024, 5, 14, 3, 30, tzinfo=UTC)
    assert rokok.content_text == ("Pabrik rokok di Kediri membuka lowongan untuk dua ribu pekerja "
                                  "baru.")


def test_json_feed_items() -> None:
    ijen, gandrung = normalized("jsonfeed11.json", base="https://beritabanyuwangi.example.id/f")
    assert ijen.url == "https://beritabanyuwangi.example.id/2024/05/ijen-blue-fire/"
    assert "Baca juga" not in ijen.content_html and "Pulau Merah" not in ijen.content_text
    assert ijen.content_text == "Kunjungan ke Kawah Ijen meningkat selama libur panjang."
    assert gandrung.content_text == "Penari dari seluruh kecamatan tampil di Pantai Boom."
    assert gandrung.summary == gandrung.content_text


def test_rss091_undated_items() -> None:
    items = normalized("rss091.xml", base="http://kabarmadura.example.id/rss.xml")
    assert [i.url for i in items] == [
        "http://kabarmadura.example.id/berita/karapan-sapi-bangkalan.html",
        "http://kabarmadura.example.id/berita/harga-garam-sumenep.html",
    ]
    assert all(i.date_missing and i.published_at == NOW for i in items)
    assert all(i.guid is None for i in items)


def test_rdf_date_from_dc_date() -> None:
    apel, _ = normalized("rss10_rdf.xml", base="https://warta-malang.example.id/rss")
    assert apel.published_at == datetime(2024, 5, 10, 0, 15, tzinfo=UTC)
    assert not apel.date_missing


# --- degenerate entries --------------------------------------------------------------------


def test_entry_with_nothing_to_show_is_dropped() -> None:
    empty = entry(guid=None, link=None, title=" \x08 ", summary_html="<p> </p>",
                  content_html="<script>x()</script>")
    assert normalize_entry(empty, SITE, NOW, SKEW) is None
    feed = ParsedFeed(format="rss20", title="x", link=SITE, ttl_seconds=None,
                      entries=(empty, entry()))
    assert len(normalize_feed(feed, FEED_URL, NOW, SKEW)) == 1


def test_untitled_entry_borrows_its_text() -> None:
    item = normalize_entry(entry(title=""), SITE, NOW, SKEW)
    assert item is not None
    assert item.title == "Pemerintah mengkaji perpanjangan jalur kereta cepat ke Surabaya."
    item = normalize_entry(entry(title="", summary_html="", content_html=""), SITE, NOW, SKEW)
    assert item is not None
    assert item.title == "https://suarajatim.example.id/2024/05/14/kereta-cepat-surabaya/"


def test_summary_only_entry_uses_summary_as_content() -> None:
    item = normalize_entry(entry(content_html=""), SITE, NOW, SKEW)
    assert item is not None
    assert item.content_html == "<p>Pemerintah mengkaji perpanjangan jalur kereta cepat.</p>"
    assert item.content_text == "Pemerintah mengkaji perpanjangan jalur kereta cepat."


def test_lengths_are_bounded() -> None:
    long_summary = "<p>" + "rob " * 2000 + "</p>"
    item = normalize_entry(entry(title="Banjir " * 500, summary_html=long_summary), SITE, NOW, SKEW)
    assert item is not None
    assert len(item.title) <= MAX_TITLE
    assert len(item.summary) <= MAX_SUMMARY + 1
    assert item.summary.endswith("…")


# --- hashes --------------------------------------------------------------------------------


def test_content_hash_is_stable() -> None:
    first = normalized("rss20_wordpress.xml")
    again = normalized("rss20_wordpress.xml", now=NOW + timedelta(hours=3))
    assert [i.content_hash for i in first] == [i.content_hash for i in again]
    assert [i.fallback_key for i in first] == [i.fallback_key for i in again]
    assert len({i.content_hash for i in first}) == len(first)
    assert all(re.fullmatch(r"[0-9a-f]{64}", i.content_hash) for i in first)


def test_content_hash_ignores_tracking_noise() -> None:
    plain = normalize_entry(entry(), SITE, NOW, SKEW)
    noisy = normalize_entry(
        entry(link="https://suarajatim.example.id/2024/05/14/kereta-cepat-surabaya/amp/"
                   "?utm_source=rss#respond"),
        SITE, NOW, SKEW)
    assert plain is not None and noisy is not None
    assert plain.content_hash == noisy.content_hash


@pytest.mark.parametrize(
    "change",
    [
        {"title": "Kereta Cepat Jakarta–Surabaya Batal Dikaji"},
        {"content_html": "<p>Pemerintah membatalkan kajian kereta cepat ke Surabaya.</p>"},
        {"summary_html": "<p>Kajian dibatalkan.</p>"},
        {"author": "Siti Nurhaliza"},
        {"categories": ("Nasional",)},
        {"link": "https://suarajatim.example.id/2024/05/14/kereta-cepat-batal/"},
        {"updated": datetime(2024, 5, 14, 2, 0, tzinfo=UTC)},
    ],
)
def test_changed_content_changes_the_hash(change: dict[str, object]) -> None:
    before = normalize_entry(entry(), SITE, NOW, SKEW)
    after = normalize_entry(entry(**change), SITE, NOW, SKEW)
    assert before is not None and after is not None
    assert before.content_hash != after.content_hash


def test_fallback_key_follows_title_and_text() -> None:
    a = normalize_entry(entry(guid=None, link=None), SITE, NOW, SKEW)
    b = normalize_entry(entry(guid=None, link=None, author="Lain"), SITE, NOW, SKEW)
    c = normalize_entry(entry(guid=None, link=None, title="Judul Lain"), SITE, NOW, SKEW)
    assert a is not None and b is not None and c is not None
    assert a.fallback_key == b.fallback_key != c.fallback_key
    assert len(a.fallback_key) == 32
