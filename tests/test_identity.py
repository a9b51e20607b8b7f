"""identity.match_items: which stored row, if any, each incoming item is."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime

import pytest

from aggregator.identity import Match, Stored, item_key, match_items, similar_titles
from aggregator.models import Item

SITE = "https://suarajatim.example.id"
WHEN = datetime(2024, 5, 14, 1, 0, tzinfo=UTC)


def make(guid: str | None, url: str | None, title: str, text: str = "") -> Item:
    text = text or f"Isi berita: {title}."
    return Item(
        guid=guid, url=url, link=url, title=title, summary=text, content_html=f"<p>{text}</p>",
        content_text=text, author=None, categories=(), published_at=WHEN, updated_at=None,
        date_missing=False, content_hash=hashlib.sha256(f"{title}|{text}".encode()).hexdigest(),
        fallback_key=hashlib.sha256(f"{title}\x1e{text}".encode()).hexdigest()[:32],
    )


def stored(id: int, item: Item, *, title: str | None = None) -> Stored:
    return Stored(id=id, guid=item.guid, url=item.url, fallback_key=item.fallback_key,
                  title=title if title is not None else item.title,
                  content_hash=item.content_hash)


def pairs(matches: list[Match]) -> list[tuple[str, int | None]]:
    return [(m.item.title, m.existing.id if m.existing else None) for m in matches]


BANJIR = make(f"{SITE}/?p=1001", f"{SITE}/2024/05/14/banjir-rob-surabaya/",
              "Banjir Rob Rendam Pesisir Surabaya")
CABAI = make(f"{SITE}/?p=1002", f"{SITE}/2024/05/14/harga-cabai-naik/",
             "Harga Cabai Rawit di Pasar Keputran Tembus Rp80 Ribu")
# Two different stories that a buggy CMS published under one GUID.
GUDANG = make(f"{SITE}/?p=1010", f"{SITE}/2024/05/10/kebakaran-gudang-sidoarjo/",
              "Kebakaran Gudang Plastik di Sidoarjo")
WISUDA = make(f"{SITE}/?p=1010", f"{SITE}/2024/05/10/wisuda-akbar-gresik/",
              "Wisuda Akbar Universitas di Gresik")
# No GUID, no URL: only title and text identify it.
PENGUMUMAN = make(None, None, "Pengumuman Libur Nasional",
                  "Kantor redaksi libur pada hari Kamis.")


def test_new_items_are_all_new() -> None:
    matches = match_items([BANJIR, CABAI, GUDANG, WISUDA, PENGUMUMAN], [])
    assert pairs(matches) == [(i.title, None) for i in (BANJIR, CABAI, GUDANG, WISUDA,
                                                          PENGUMUMAN)]
    assert len({m.key for m in matches}) == 5


def test_guid_match() -> None:
    rows = [stored(1, BANJIR), stored(2, CABAI)]
    matches = match_items([CABAI, BANJIR], rows)
    assert pairs(matches) == [(CABAI.title, 2), (BANJIR.title, 1)]
    assert [m.key for m in matches] == [item_key(CABAI), item_key(BANJIR)]


def test_guid_match_with_edited_content() -> None:
    edited = make(BANJIR.guid, BANJIR.url, BANJIR.title, "Isi yang sudah diperbarui redaksi.")
    (match,) = match_items([edited], [stored(1, BANJIR)])
    assert match.existing is not None and match.existing.id == 1
    assert match.existing.content_hash != edited.content_hash


def test_two_stories_one_guid_stay_two() -> None:
    matches = match_items([GUDANG, WISUDA], [])
    assert pairs(matches) == [(GUDANG.title, None), (WISUDA.title, None)]
    assert matches[0].key != matches[1].key
    # Once stored, each finds its own row again.
    rows = [stored(7, GUDANG), stored(8, WISUDA)]
    assert pairs(match_items([GUDANG, WISUDA], rows)) == [(GUDANG.title, 7), (WISUDA.title, 8)]
    assert pairs(match_items([WISUDA, GUDANG], rows)) == [(WISUDA.title, 8), (GUDANG.title, 7)]


def test_second_story_under_a_known_guid_is_new() -> None:
    # Only the first story is stored; the second one, with a different title, is not an edit.
    matches = match_items([GUDANG, WISUDA], [stored(7, GUDANG)])
    assert pairs(matches) == [(GUDANG.title, 7), (WISUDA.title, None)]
    matches = match_items([WISUDA], [stored(7, GUDANG)])
    assert pairs(matches) == [(WISUDA.title, None)]


def test_slug_edit_with_same_guid_updates() -> None:
    old = make(CABAI.guid, f"{SITE}/2024/05/14/harga-cabai-naik/",
               "Harga Cabai Rawit di Pasar Keputran Naik")
    new = make(CABAI.guid, f"{SITE}/2024/05/14/harga-cabai-rawit-tembus-80-ribu/",
               "Harga Cabai Rawit di Pasar Keputran Tembus Rp80 Ribu")
    assert similar_titles(old.title, new.title)
    (match,) = match_items([new], [stored(3, old)])
    assert match.existing is not None and match.existing.id == 3
    assert match.key == item_key(new)


def test_slug_edit_not_taken_when_the_old_url_is_still_in_the_document() -> None:
    old = make(CABAI.guid, f"{SITE}/2024/05/14/harga-cabai-naik/",
               "Harga Cabai Rawit di Pasar Keputran Naik")
    other = make(CABAI.guid, f"{SITE}/2024/05/14/harga-cabai-turun/",
                 "Harga Cabai Rawit di Pasar Keputran Turun")
    matches = match_items([old, other], [stored(3, old)])
    assert pairs(matches) == [(old.title, 3), (other.title, None)]
    assert pairs(match_items([other, old], [stored(3, old)])) == [(other.title, None),
                                                                   (old.title, 3)]


def test_same_url_under_another_guid_in_one_document_is_dropped() -> None:
    twin = make(f"{SITE}/?p=9999", BANJIR.url, BANJIR.title)
    matches = match_items([BANJIR, twin], [])
    assert pairs(matches) == [(BANJIR.title, None)]
    assert matches[0].item is BANJIR
    # And when the article is already stored, the twin does not become a second copy.
    matches = match_items([BANJIR, twin], [stored(1, BANJIR)])
    assert pairs(matches) == [(BANJIR.title, 1)]
    matches = match_items([twin, BANJIR], [stored(1, BANJIR)])
    assert pairs(matches) == [(BANJIR.title, 1)]
    assert matches[0].item is BANJIR


def test_url_match_when_the_guid_changed() -> None:
    # The CMS was migrated and GUIDs changed; the article URL did not.
    migrated = make("post-1001", BANJIR.url, BANJIR.title)
    (match,) = match_items([migrated], [stored(1, BANJIR)])
    assert match.existing is not None and match.existing.id == 1


def test_url_only_items() -> None:
    a = make(None, f"{SITE}/2024/05/11/pasar-murah/", "Pasar Murah Digelar di Balai Kota")
    rows = [stored(4, a)]
    assert pairs(match_items([a], rows)) == [(a.title, 4)]
    assert pairs(match_items([a, a], [])) == [(a.title, None)]


def test_no_guid_no_url_uses_the_fallback_hash() -> None:
    (match,) = match_items([PENGUMUMAN], [stored(5, PENGUMUMAN)])
    assert match.existing is not None and match.existing.id == 5
    assert match.key == item_key(PENGUMUMAN)
    # A different text is a different item.
    other = make(None, None, PENGUMUMAN.title, "Kantor redaksi libur pada hari Jumat.")
    assert pairs(match_items([other], [stored(5, PENGUMUMAN)])) == [(other.title, None)]
    # The same text twice in one document is one item.
    assert len(match_items([PENGUMUMAN, PENGUMUMAN], [])) == 1
    assert len(match_items([PENGUMUMAN, PENGUMUMAN], [stored(5, PENGUMUMAN)])) == 1


def test_item_keys() -> None:
    assert item_key(GUDANG) != item_key(WISUDA)
    assert item_key(BANJIR) == item_key(make(BANJIR.guid, BANJIR.url, "Judul lain"))
    url_only = make(None, BANJIR.url, BANJIR.title)
    assert item_key(url_only) != item_key(BANJIR)
    assert item_key(PENGUMUMAN) == item_key(make(None, None, PENGUMUMAN.title,
                                                 PENGUMUMAN.content_text))


@pytest.mark.parametrize(
    ("a", "b", "similar"),
    [
        ("Harga Cabai Rawit Naik", "Harga Cabai Rawit Naik Lagi", True),
        ("Harga Cabai Rawit Naik", "harga cabai rawit naik!", True),
        ("Kebakaran Gudang Plastik di Sidoarjo", "Wisuda Akbar Universitas di Gresik", False),
        ("", "", True),
        ("", "Judul", False),
        ("!!!", "!!!", True),
    ],
)
def test_similar_titles(a: str, b: str, similar: bool) -> None:
    assert similar_titles(a, b) is similar


def test_order_independence() -> None:
    old_cabai = make(CABAI.guid, f"{SITE}/2024/05/14/harga-cabai-naik-lama/",
                     "Harga Cabai Rawit di Pasar Keputran Naik")
    twin = make(f"{SITE}/?p=9999", BANJIR.url, BANJIR.title)
    new_story = make(f"{SITE}/?p=1020", f"{SITE}/2024/05/09/festival-rujak-uleg/",
                     "Festival Rujak Uleg Meriahkan Hari Jadi Surabaya")
    incoming = [BANJIR, CABAI, GUDANG, WISUDA, PENGUMUMAN, twin, new_story]
    rows = [stored(1, BANJIR), stored(3, old_cabai), stored(7, GUDANG), stored(8, WISUDA),
            stored(5, PENGUMUMAN)]
    expected = {
        (BANJIR.title, 1),
        (CABAI.title, 3),  # slug edit
        (GUDANG.title, 7),
        (WISUDA.title, 8),
        (PENGUMUMAN.title, 5),
        (new_story.title, None),
    }
    for order in itertools.permutations(incoming):
        for row_order in (rows, rows[::-1]):
            matches = match_items(list(order), row_order)
            assert set(pairs(matches)) == expected, order
            assert len(matches) == len(expected)
            assert len({m.key for m in matches}) == len(matches)
            claimed = [m.existing.id for m in matches if m.existing]
            assert len(claimed) == len(set(claimed))
        fresh = match_items(list(order), [])
        assert set(pairs(fresh)) == {(title, None) for title, _ in expected}
        assert len(fresh) == len(expected)
