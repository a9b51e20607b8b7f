"""parse_feed: every supported format from real-looking documents, and a ParseError for bad ones."""

from __future__ import annotations

import pickle
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.models import ParsedFeed, RawEntry
from aggregator.parse import ParseError, parse_feed

FEEDS = Path(__file__).resolve().parent / "fixtures" / "feeds"


def load(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


def parse(name: str, content_type: str = "") -> ParsedFeed:
    return parse_feed(load(name), content_type)


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "fmt", "title", "link", "count"),
    [
        ("rss091.xml", "rss091n", "Kabar Madura Lama", "http://kabarmadura.example.id/", 2),
        ("rss10_rdf.xml", "rss10", "Warta Malang Raya", "https://warta-malang.example.id/", 2),
        ("rss20_wordpress.xml", "rss20", "Suara Jatim", "https://suarajatim.example.id", 9),
        ("atom03.xml", "atom03", "Jember Hari Ini", "https://jemberhariini.example.id/", 2),
        ("atom10.xml", "atom10", "Kediri News", "https://kediri-news.example.id/", 2),
        ("jsonfeed11.json", "json11", "Berita Banyuwangi", "https://beritabanyuwangi.example.id/",
         2),
    ],
)
def test_format_and_channel(name: str, fmt: str, title: str, link: str, count: int) -> None:
    feed = parse(name)
    assert feed.format == fmt
    assert feed.title == title
    assert feed.link == link
    assert len(feed.entries) == count
    assert all(isinstance(e, RawEntry) for e in feed.entries)


def test_json_feed_detected_by_content_type_and_by_body() -> None:
    body = load("jsonfeed11.json")
    assert parse_feed(body, "application/feed+json; charset=utf-8").format == "json11"
    assert parse_feed(body, "text/plain").format == "json11"
    assert parse_feed(b"\n  " + body).format == "json11"


def test_rss091() -> None:
    first, second = parse("rss091.xml").entries
    assert first.title == "Karapan Sapi Bangkalan Digelar Akhir Pekan"
    assert first.link == "http://kabarmadura.example.id/berita/karapan-sapi-bangkalan.html"
    assert "karapan sapi tahunan" in first.summary_html
    assert first.guid is None
    assert first.published is None and first.updated is None
    assert second.title == "Harga Garam Rakyat di Sumenep Turun"


def test_rss10_rdf() -> None:
    feed = parse("rss10_rdf.xml")
    apel, stadion = feed.entries
    assert apel.title == "Petani Apel Kota Batu Sambut Panen Raya"
    assert apel.link == "https://warta-malang.example.id/berita/apel-batu-panen"
    assert apel.guid == "https://warta-malang.example.id/berita/apel-batu-panen"
    assert apel.author == "Rina Wulandari"
    assert apel.categories == ("Ekonomi",)
    # dc:date, in WIB, comes out as one instant in UTC.
    assert (apel.published or apel.updated) == utc(2024, 5, 10, 0, 15)
    assert (stadion.published or stadion.updated) == utc(2024, 5, 9, 12, 0)
    assert stadion.author == "Agus Prasetyo"


@pytest.fixture(scope="module")
def feed() -> ParsedFeed:
    return parse("rss20_wordpress.xml")


class TestWordPress:
    def test_channel(self, feed: ParsedFeed) -> None:
        assert feed.ttl_seconds == 15 * 60

    def test_full_entry(self, feed: ParsedFeed) -> None:
        e = feed.entries[0]
        assert e.guid == "https://suarajatim.example.id/?p=1001"
        # parse leaves links as the feed gave them: canonical forms are normalize's job.
        assert e.link == ("https://suarajatim.example.id/2024/05/14/banjir-rob-surabaya/"
                          "?utm_source=rss&utm_medium=rss&utm_campaign=banjir-rob-surabaya")
        assert "Banjir Rob Rendam Pesisir Surabaya" in e.title
        assert "“Sudah Langganan”" in e.title
        assert e.author == "Siti Nurhaliza"
        assert e.categories == ("Surabaya", "Peristiwa")
        assert e.published == utc(2024, 5, 14, 1, 30)
        assert e.updated is None
        # content:encoded is the content, description the summary.
        assert "Air laut pasang setinggi setengah meter" in e.content_html
        assert "Baca juga" in e.content_html
        assert "Air laut pasang" not in e.summary_html
        assert "Banjir rob kembali merendam" in e.summary_html

    def test_links_as_given(self, feed: ParsedFeed) -> None:
        links = [e.link for e in feed.entries]
        assert links[1] == "https://suarajatim.example.id/2024/05/14/harga-cabai-naik/amp/"
        assert links[2] == ("https://suarajatim.example.id/2024/05/13/persebaya-menang/"
                            "?amp=1&fbclid=IwAR0abcdef&page=2#komentar")
        assert links[3] == "/2024/05/12/tol-probowangi-dibuka/"

    def test_far_future_date_is_parsed_not_judged(self, feed: ParsedFeed) -> None:
        assert feed.entries[4].published == utc(2099, 12, 31, 17, 0)

    def test_missing_pubdate(self, feed: ParsedFeed) -> None:
        e = feed.entries[5]
        assert e.guid == "https://suarajatim.example.id/?p=1006"
        assert e.published is None and e.updated is None

    def test_missing_guid(self, feed: ParsedFeed) -> None:
        e = feed.entries[6]
        assert e.guid is None
        assert e.title == "Pasar Murah Digelar di Balai Kota"
        assert e.published == utc(2024, 5, 11, 2, 0)

    def test_two_items_one_guid(self, feed: ParsedFeed) -> None:
        a, b = feed.entries[7], feed.entries[8]
        assert a.guid == b.guid == "https://suarajatim.example.id/?p=1010"
        assert a.title == "Kebakaran Gudang Plastik di Sidoarjo"
        assert b.title == "Wisuda Akbar Universitas di Gresik"
        assert a.link != b.link

    def test_entries_keep_document_order(self, feed: ParsedFeed) -> None:
        guids = [e.guid for e in feed.entries]
        assert guids[:6] == [f"https://suarajatim.example.id/?p={n}" for n in range(1001, 1007)]


def test_atom03() -> None:
    jfc, tembakau = parse("atom03.xml").entries
    assert jfc.guid == "tag:jemberhariini.example.id,2024:jfc-2024"
    assert jfc.link == "https://jemberhariini.example.id/2024/05/jfc-kembali-digelar"
    assert jfc.author == "Dewi Lestari"
    assert jfc.published == utc(2024, 5, 12, 9, 30)
    assert jfc.updated == utc(2024, 5, 12, 10, 0)
    assert "<p>Ribuan penonton memadati jalan protokol Jember" in jfc.content_html
    assert jfc.summary_html.startswith("Ribuan penonton")
    assert tembakau.content_html == ""
    assert tembakau.published == utc(2024, 5, 11, 1, 0)


def test_atom10_with_xml_base() -> None:
    kelud, rokok = parse("atom10.xml").entries
    # xml:base (the feed's, then the entry's own) makes the links absolute.
    assert kelud.link == "https://kediri-news.example.id/berita/2024/05/gunung-kelud-normal/"
    assert rokok.link == "https://kediri-news.example.id/ekonomi/pabrik-rokok-serap-pekerja"
    assert kelud.guid == "https://kediri-news.example.id/?p=501"
    assert kelud.title == "Gunung Kelud Berstatus Normal, Wisatawan Diizinkan Naik"
    assert kelud.author == "Bambang Sutrisno"
    assert kelud.categories == ("Wisata", "Kediri")
    assert kelud.published == utc(2024, 5, 14, 2, 0)
    assert kelud.updated == utc(2024, 5, 14, 3, 30)
    assert "Pengelola wisata membuka kembali jalur pendakian" in kelud.content_html
    assert kelud.summary_html == "<p>PVMBG menurunkan status Gunung Kelud menjadi normal.</p>"
    assert "<strong>dua ribu</strong>" in rokok.content_html
    assert rokok.published == utc(2024, 5, 13, 7, 0)
    assert rokok.updated is None


def test_json_feed() -> None:
    ijen, gandrung = parse("jsonfeed11.json").entries
    assert ijen.guid == "bwi-2024-0001"
    assert ijen.link == ("https://beritabanyuwangi.example.id/2024/05/ijen-blue-fire/"
                         "?utm_source=jsonfeed")
    assert ijen.title == "Wisatawan Padati Kawah Ijen untuk Melihat Api Biru"
    assert ijen.summary_html == "Kunjungan ke Kawah Ijen meningkat selama libur panjang."
    assert "Baca juga" in ijen.content_html
    assert ijen.author == "Hendra Gunawan"
    assert ijen.categories == ("Wisata", "Banyuwangi")
    assert ijen.published == utc(2024, 5, 11, 22, 0)
    assert ijen.updated == utc(2024, 5, 11, 23, 0)
    # content_text becomes escaped HTML.
    assert gandrung.content_html == "<p>Penari dari seluruh kecamatan tampil di Pantai Boom.</p>"
    assert gandrung.published == utc(2024, 5, 11, 15, 0)
    assert gandrung.author is None and gandrung.updated is None


def test_json_feed_sloppy_fields_do_not_raise() -> None:
    body = (b'{"version": "https://jsonfeed.org/version/1", "items": ['
            b'{"id": 7, "authors": 5, "tags": "bukan-list", "title": null,'
            b' "date_published": "0001-01-01T00:00:00+14:00", "content_text": "a < b"},'
            b'{"id": "", "author": {"name": "Redaksi"}, "date_published": "bukan tanggal",'
            b' "date_modified": "9999-12-31T23:59:59-12:00", "external_url": "https://x.example/"},'
            b'"bukan objek", 3]}')
    feed = parse_feed(body)
    assert feed.format == "json1"
    first, second = feed.entries
    assert first.guid == "7" and first.author is None and first.categories == ()
    assert first.title == "" and first.published is None
    assert first.content_html == "<p>a &lt; b</p>"
    assert second.guid is None and second.author == "Redaksi"
    assert second.published is None and second.updated is None
    assert second.link == "https://x.example/"


def test_ill_formed_but_recoverable_xml_parses_with_a_warning() -> None:
    body = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>Tom & Jerry FM</title>'
            b"<item><title>Siaran Tom & Jerry</title><link>https://radio.example.id/a</link>"
            b"</item></channel></rss>")
    feed = parse_feed(body)
    assert feed.format == "rss20"
    assert feed.warning
    assert [e.title for e in feed.entries] == ["Siaran Tom & Jerry"]


def test_feed_without_items() -> None:
    feed = parse_feed(b'<rss version="2.0"><channel><title>Sepi</title></channel></rss>')
    assert feed.format == "rss20" and feed.entries == () and feed.warning is None


def test_result_pickles() -> None:
    # Parsing runs in a worker pool: its result must cross a process boundary.
    for name in ("rss20_wordpress.xml", "atom10.xml", "jsonfeed11.json"):
        feed = parse(name)
        assert pickle.loads(pickle.dumps(feed)) == feed


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("empty.xml", "empty"),
        ("html_page.html", "not_a_feed"),
        ("billion_laughs.xml", "unsafe_xml"),
        ("xxe_passwd.xml", "unsafe_xml"),
        ("truncated.xml", "truncated"),
        ("malformed.xml", "malformed"),
        ("malformed.json", "malformed"),
    ],
)
def test_bad_fixture_kinds(name: str, kind: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(name)
    assert info.value.kind == kind
    assert str(info.value)  # a message a webmaster can read


@pytest.mark.parametrize(
    ("body", "content_type", "kind"),
    [
        (b"", "", "empty"),
        (b"  \r\n\t  ", "application/rss+xml", "empty"),
        (b"<!-- cache hit --><html><body>Diblokir</body></html>", "", "not_a_feed"),
        (b"<!doctype html><title>503</title>", "text/html", "not_a_feed"),
        (b"<?xml version='1.0'?><berita><judul>Bukan feed</judul></berita>", "", "not_a_feed"),
        (b'{"title": "tanpa versi"}', "application/json", "not_a_feed"),
        (b"[1, 2, 3]", "", "not_a_feed"),
        (b'{"version": "https://jsonfeed.org/version/1.1"}', "", "malformed"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": {}}', "", "malformed"),
        (b"[" * 100_000, "", "malformed"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [\xff\xfe]}', "",
         "malformed"),
        (b'<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title>'
         b"<entry><title>Pot", "", "truncated"),
        (b'<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
         b"<channel><title>x</title>", "", "truncated"),
        (b'<rss version="2.0"><channel><item><title>a</title></item></channel>', "", "truncated"),
        (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x "y">]><rss version="2.0"></rss>', "",
         "unsafe_xml"),
        (b'<?xml version="1.0"?><!DOCTYPE rss [<!entity x SYSTEM "http://evil.example/">]>'
         b'<rss version="2.0"></rss>', "", "unsafe_xml"),
    ],
)
def test_bad_input_kinds(body: bytes, content_type: str, kind: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_feed(body, content_type)
    assert info.value.kind == kind


def test_hostile_documents_are_refused_quickly_and_leak_nothing() -> None:
    passwd = Path("/etc/passwd")
    secret = passwd.read_text().splitlines()[0] if passwd.is_file() else "root:x:0:0"
    for name in ("billion_laughs.xml", "xxe_passwd.xml"):
        started = time.perf_counter()
        with pytest.raises(ParseError) as info:
            parse(name)
        assert time.perf_counter() - started < 1.0
        assert secret not in str(info.value)
        assert "lollollol" not in str(info.value)


def test_parse_error_is_an_exception_with_kind() -> None:
    error = ParseError("truncated", "truncated document")
    assert isinstance(error, Exception)
    assert error.kind == "truncated"
    assert str(error) == "truncated document"
