"""Text and HTML cleaning: entities, control characters, the HTML allow-list, CMS furniture."""

from __future__ import annotations

import re

import pytest

from aggregator.textclean import (
    clean_line,
    html_to_text,
    remove_boilerplate,
    sanitize_html,
    strip_controls,
    unescape,
)

BASE = "https://suarajatim.example.id/2024/05/14/banjir-rob-surabaya/"
C0 = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


# --- entities and control characters -------------------------------------------------------


def test_strip_controls_keeps_tab_newline_and_carriage_return() -> None:
    assert strip_controls("a\x00b\x08c\x0bd\x1fe\x7ff\tg\nh\ri") == "abcdef\tg\nh\ri"
    assert strip_controls("Surabaya\ufffe\uffff") == "Surabaya"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Warga: &#8220;Sudah Langganan&#8221;", "Warga: “Sudah Langganan”"),
        ("Probolinggo&#8211;Banyuwangi", "Probolinggo–Banyuwangi"),
        ("Hewan Kurban &amp;#8211; Gratis", "Hewan Kurban – Gratis"),  # doubly escaped
        ("Hewan Kurban &amp;amp;#8211; Gratis", "Hewan Kurban – Gratis"),  # triply escaped
        ("Jum&#8217at Berkah", "Jum’at Berkah"),  # no semicolon
        ("Kopi &amp; Teh", "Kopi & Teh"),
        ("&lt;b&gt;tebal&lt;/b&gt;", "<b>tebal</b>"),
        ("&#x201C;kutip&#x201D;", "“kutip”"),
        ("tanpa entitas", "tanpa entitas"),
        ("AT&T dan 5 &lt 6", "AT&T dan 5 < 6"),
    ],
)
def test_unescape(raw: str, expected: str) -> None:
    assert unescape(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Banjir\n Rob   Rendam\tPesisir  ", "Banjir Rob Rendam Pesisir"),
        ("Banjir\x08 Rob\x00 Surabaya\x1b", "Banjir Rob Surabaya"),
        ("<b>Banjir</b> <i>Rob</i>", "Banjir Rob"),
        ("Harga&nbsp;Cabai\u00a0Naik", "Harga Cabai Naik"),
        ("Warga: &#8220;Sudah Langganan&#8221;", "Warga: “Sudah Langganan”"),
        ("Kurban &amp;#8211; Gratis", "Kurban – Gratis"),
        ("Kode &#8; kendali &#x1b; lolos", "Kode kendali lolos"),
        ("Kode &amp;#8; kendali", "Kode kendali"),
    ],
)
def test_clean_line(raw: str, expected: str) -> None:
    assert clean_line(raw, 500) == expected


def test_clean_line_respects_limit() -> None:
    line = clean_line("Jalan Tol Probolinggo Banyuwangi Seksi Satu Dibuka " * 20, 40)
    assert len(line) <= 40
    assert line == line.strip()
    assert line.startswith("Jalan Tol Probolinggo")


# --- the HTML allow-list -------------------------------------------------------------------


HOSTILE = """
<p onclick="steal()">Banjir rob merendam <a href="/tag/kenjeran/" onmouseover="x()">Kenjeran</a>
.</p>
<script>document.write('<img src=x>')</script>
<style>p{display:none}</style>
<iframe src="https://www.youtube.com/embed/abc"></iframe>
<form action="/login"><input name="u"><button>Masuk</button></form>
<p><a href="javascript:alert(1)">peta</a> <a href="JaVaScRiPt:alert(2)">peta2</a>
<a href=" javascript:alert(3)">peta3</a> <a href="data:text/html;base64,PHNjcmlwdD4=">data</a>
<a href="vbscript:msgbox(1)">vb</a></p>
<p><img src="/wp-content/uploads/banjir.jpg" onerror="alert(1)" alt="banjir" style="width:9px"></p>
<svg><script>alert(1)</script></svg>
<object data="x.swf"></object><embed src="x.swf">
<p style="color:red" class="lead" id="a1">Paragraf <strong>penting</strong>.</p>
<!-- komentar tersembunyi -->
"""


def test_sanitize_html_removes_active_content() -> None:
    out = sanitize_html(HOSTILE, BASE)
    lowered = out.lower()
    for forbidden in ("<script", "<style", "<iframe", "<form", "<input", "<button", "<svg",
                      "<object", "<embed", "javascript:", "vbscript:", "data:", "document.write",
                      "display:none", "style=", "class=", "id=", "<!--", "komentar tersembunyi"):
        assert forbidden not in lowered, forbidden
    assert not re.search(r"\son\w+\s*=", lowered)
    # The article itself is kept.
    assert "Banjir rob merendam" in out
    assert "<strong>penting</strong>" in out


def test_sanitize_html_makes_links_absolute() -> None:
    out = sanitize_html(HOSTILE, BASE)
    assert 'href="https://suarajatim.example.id/tag/kenjeran/"' in out
    assert 'src="https://suarajatim.example.id/wp-content/uploads/banjir.jpg"' in out
    assert 'rel="noopener noreferrer nofollow"' in out


def test_sanitize_html_without_base_drops_relative_urls() -> None:
    out = sanitize_html('<p><a href="/tag/x/">x</a><img src="y.jpg" alt="y"></p>')
    assert "href=" not in out
    assert "src=" not in out
    assert "x" in out


def test_sanitize_html_strips_control_characters_even_as_references() -> None:
    out = sanitize_html("<p>a\x08b &#8; c &#x1b; d &amp;#11; e\x00f</p>", BASE)
    assert not C0.search(out), repr(out)
    assert out.startswith("<p>ab")


def test_sanitize_html_decodes_doubly_escaped_entities() -> None:
    out = sanitize_html("<p>sudah &amp;#8220;langganan&amp;#8221; tiap purnama</p>")
    assert out == "<p>sudah “langganan” tiap purnama</p>"
    # A genuine ampersand stays an ampersand.
    assert sanitize_html("<p>Kopi &amp; Teh</p>") == "<p>Kopi &amp; Teh</p>"


def test_sanitize_html_empty() -> None:
    assert sanitize_html("") == ""
    assert sanitize_html("<script>x</script>") == ""


# --- WordPress and Indonesian CMS furniture ------------------------------------------------


ARTICLE = "<p>Petugas BPBD Surabaya mendirikan posko di Kenjeran.</p>"


@pytest.mark.parametrize(
    "furniture",
    [
        '<p>The post <a href="https://suarajatim.example.id/x/">Banjir Rob</a> appeared first on '
        '<a href="https://suarajatim.example.id">Suara Jatim</a>.</p>',
        '<p>Baca juga: <a href="/x/">Tanggul Kenjeran Jebol</a></p>',
        '<p><strong>Baca Juga: <a href="/x/">Tanggul Kenjeran Jebol</a></strong></p>',
        "<p><strong>BACA JUGA:</strong> Operasi Pasar Digelar</p>",
        "<p>Simak juga: Harga Cabai Naik</p>",
        "<p>Lihat juga video berikut</p>",
        "<p>Berita terkait: Persebaya Menang</p>",
        "<p>Artikel ini telah tayang di Suara Jatim dengan judul Banjir Rob.</p>",
        "<h3>Bagikan ini:</h3>",
        "<p>Share this:</p>",
        "<p>Klik untuk membagikan di WhatsApp</p>",
        "<p>Suka ini:</p>",
        "<p>Ikuti berita terkini Suara Jatim di Google News.</p>",
        "<p>Dapatkan update berita pilihan setiap hari di channel WhatsApp kami</p>",
        "<p>Gabung channel Telegram Suara Jatim</p>",
        "<p>Tinggalkan komentar Anda di bawah ini.</p>",
        "<p>Tulis komentar</p>",
        "<p>Leave a reply</p>",
        '<p><a href="/x/">Baca selengkapnya</a></p>',
        "<p>Continue reading »</p>",
    ],
)
def test_furniture_blocks_are_removed(furniture: str) -> None:
    out = sanitize_html(ARTICLE + "\n" + furniture + "\n" + ARTICLE.replace("posko", "dapur"),
                        BASE)
    assert out.count("<p>") == 2, out
    assert "posko" in out and "dapur" in out
    text = html_to_text(out)
    assert text.splitlines() == [
        "Petugas BPBD Surabaya mendirikan posko di Kenjeran.",
        "Petugas BPBD Surabaya mendirikan dapur di Kenjeran.",
    ]


def test_jetpack_share_block_is_removed_whole() -> None:
    share = (
        '<div class="sharedaddy"><h3>Bagikan ini:</h3><ul>'
        '<li><a href="https://suarajatim.example.id/x/?share=facebook">Facebook</a></li>'
        '<li><a href="https://suarajatim.example.id/x/?share=x">X</a></li></ul></div>'
    )
    out = sanitize_html(ARTICLE + share, BASE)
    assert "Facebook" not in out
    assert "share=" not in out
    assert html_to_text(out) == "Petugas BPBD Surabaya mendirikan posko di Kenjeran."


def test_trailing_ellipsis_and_read_more_are_removed() -> None:
    summary = "<p>Banjir rob kembali merendam kawasan pesisir utara Surabaya. [&#8230;]</p>"
    assert html_to_text(sanitize_html(summary)) == (
        "Banjir rob kembali merendam kawasan pesisir utara Surabaya."
    )
    assert html_to_text("Harga cabai naik tajam. Baca selengkapnya »") == (
        "Harga cabai naik tajam."
    )
    assert html_to_text("Harga cabai naik tajam [...]") == "Harga cabai naik tajam"


def test_inline_post_footer_is_removed_from_plain_text() -> None:
    text = ("Gol tunggal memastikan tiga poin. The post Persebaya Menang appeared first on "
            "Suara Jatim.")
    assert html_to_text(text) == "Gol tunggal memastikan tiga poin."


@pytest.mark.parametrize(
    "prose",
    [
        "<p>Warga diminta membaca juga aturan terbaru dari pemkot.</p>",
        "<p>Ia mengatakan, baca juga peraturan daerahnya.</p>",
        "<p>Para nelayan ikut membagikan ikan kepada warga.</p>",
        "<p>Komentar warga beragam soal banjir rob.</p>",
        "<p>Postingan itu viral di Instagram dan WhatsApp.</p>",
        "<p>Kami akan mengikuti perkembangan kasus ini.</p>",
    ],
)
def test_article_prose_is_kept(prose: str) -> None:
    assert remove_boilerplate(prose) == prose
    assert html_to_text(prose) == prose[3:-4]


def test_remove_boilerplate_drops_emptied_parents() -> None:
    out = remove_boilerplate("<div><p>Baca juga: Tanggul Jebol</p></div>" + ARTICLE)
    assert out == ARTICLE


# --- plain text ----------------------------------------------------------------------------


def test_html_to_text_one_line_per_block() -> None:
    fragment = (
        "<h2>Judul</h2><p>Paragraf  satu,  dengan \t spasi.</p><p>Paragraf&nbsp;dua<br>baris"
        " baru</p><ul><li>butir satu</li><li>butir &amp; dua</li></ul>"
    )
    assert html_to_text(fragment) == (
        "Judul\nParagraf satu, dengan spasi.\nParagraf dua\nbaris baru\nbutir satu\nbutir & dua"
    )


def test_html_to_text_decodes_entities_and_drops_controls() -> None:
    text = html_to_text("<p>&#8220;Air\x08 masuk&#8221; &amp;#8220;lagi&amp;#8221; &#8; x</p>")
    assert text == "“Air masuk” “lagi” x"
    assert not C0.search(text)


def test_html_to_text_empty() -> None:
    assert html_to_text("") == ""
    assert html_to_text("<p> </p><div>\n</div>") == ""
