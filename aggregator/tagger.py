"""Which places an item is about, with the evidence for each.  A pure function of the item.

One pass over the text against the gazetteer's n-gram index collects weighted evidence per
region; ambiguous names (the seven kota/kabupaten pairs, kecamatan names shared by several units)
are settled afterwards by the other evidence in the same item.  The dateline is a hint, not the
final word: the bureau is not always where the story happened.  The member's home region is used
only when nothing else points anywhere.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .gazetteer import NATIONAL, PROVINCE, Entry, Gazetteer, load, norm_token, tokens_key

_TOKEN = re.compile(r"[0-9A-Za-zÀ-ÿ][0-9A-Za-zÀ-ÿ'’-]*\.?")
# a token and what stands between it and the next one
_TOKEN_GAP = re.compile(r"([0-9A-Za-zÀ-ÿ][0-9A-Za-zÀ-ÿ'’-]*\.?)([^0-9A-Za-zÀ-ÿ]*)")
_DOMAIN = re.compile(
    # possessive: a dot can never be part of [\w-], so giving characters back never helps
    r"\b[\w-]++(?:\.[\w-]++)*\.(?:com|id|net|org|co|news|tv|info|media|web)(?:\.id)?\b",
    re.IGNORECASE,
)
_TLD = re.compile(r"\.(?:com|id|net|org|co|news|tv|info|media|web)\b", re.IGNORECASE)
_DASH = r"\s*[-–—:]\s"
_DATELINES = [
    # SURABAYA, Outlet.com -   /   Surabaya, outlet.co.id –
    re.compile(r"^(?P<place>[A-Za-z][A-Za-z .'-]{1,40}?),\s*\S+\.(?:com|id|net|org|co)\S*" + _DASH),
    # Malang (outlet.id) -   /   Surabaya (ANTARA) -
    re.compile(r"^(?P<place>[A-Za-z][A-Za-z .'-]{1,40}?)\s*\([^)]{2,40}\)" + _DASH),
    # Outlet.com, Kota Blitar -
    re.compile(r"^\S+\.(?:com|id|net|org|co)\S*,\s*(?P<place>[A-Za-z][A-Za-z .'-]{1,40}?)" + _DASH),
    # OUTLET, BANYUWANGI -   /   JEMBER, Tapal Kuda Times -   (the place is the part we know)
    re.compile(r"^(?P<outlet>[A-Z][\w.'& -]{1,40}?),\s*(?P<place>[A-Z][\w .'&-]{1,40}?)"
               + _DASH),
    # SURABAYA -
    re.compile(r"^(?P<place>[A-Z][A-Z .'-]{1,40}?)" + _DASH),
]

TITLE_WEIGHT = 1.5
DATELINE_WEIGHT = 1.5
KEEP_MIN = 2.0
KEEP_SHARE = 0.3
REPEAT_FACTOR = 0.25


@dataclass(frozen=True, slots=True)
class Evidence:
    rule: str
    text: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.text!r}"


@dataclass(frozen=True, slots=True)
class RegionTag:
    code: str
    name: str
    level: str
    slug: str
    confidence: float
    evidence: tuple[Evidence, ...]


def find_dateline(text: str, g: Gazetteer | None = None) -> tuple[str, int] | None:
    """The dateline's place and where the dateline ends, if the text opens with one."""
    head = text.lstrip()[:160]
    offset = len(text) - len(text.lstrip())
    for pattern in _DATELINES:
        m = pattern.match(head)
        if m:
            place = m.group("place").strip(" .,")
            if "outlet" in m.groupdict():
                # Two names and a comma: the outlet may stand on either side of the place.
                g = g or load()
                other = m.group("outlet").strip(" .,")
                if not _known(g, place):
                    if _known(g, other):
                        place = other
                    elif not other.isupper():
                        continue  # "Sementara itu, Wali Kota - ..." is a sentence
            return place, offset + m.end()
    return None


def _known(g: Gazetteer, name: str) -> bool:
    return any(e.kind != "ignore" for e in g.index.get(tokens_key(name), ()))


def mask_outlets(text: str, outlet_names: Iterable[str]) -> str:
    """Blank out web addresses and outlet names: 'KabarMadura.id' or 'Radar Jatim' place nothing."""
    if _TLD.search(text):  # the full pattern is slower: look for it only where it can be
        text = _DOMAIN.sub(" ", text)
    low = text.lower()
    for name in outlet_names:
        for variant in {name, name.replace(" ", "")}:
            if len(variant) >= 4 and variant.lower() in low:
                text = re.sub(re.escape(variant), " ", text, flags=re.IGNORECASE)
    return text


def resolve_name(name: str | None, g: Gazetteer | None = None) -> str | None:
    """The code of a region named in config ('Kabupaten Pamekasan', 'Kota Malang', '35.28')."""
    if not name:
        return None
    g = g or load()
    if name in g.regions:
        return name
    wanted = name.strip().lower()
    for region in g.regions.values():
        if region.name.lower() == wanted or region.slug == wanted:
            return region.code
    return None


@dataclass
class _Scores:
    score: defaultdict[str, float]
    evidence: defaultdict[str, list[Evidence]]
    pairs: list[tuple[Entry, float, Evidence]]
    shared: list[tuple[Entry, float, Evidence]]
    rules: set[tuple[str, str]] = field(default_factory=set)

    def add(self, code: str, weight: float, ev: Evidence) -> None:
        # The tenth "Pamekasan" says little more than the first: repeats of one rule count a
        # quarter, so that one much-repeated place cannot crowd out the others named.
        repeat = (code, ev.rule) in self.rules
        self.rules.add((code, ev.rule))
        self.score[code] += weight * (REPEAT_FACTOR if repeat else 1.0)
        if ev not in self.evidence[code]:
            self.evidence[code].append(ev)


def tag(title: str, text: str, *, home_region: str | None = None,
        outlet_names: Sequence[str] = (), g: Gazetteer | None = None) -> list[RegionTag]:
    """Regions the item is about, strongest first, then the groupings they belong to."""
    g = g or load()
    s = _Scores(defaultdict(float), defaultdict(list), [], [])
    dateline = find_dateline(text, g)
    body = text[dateline[1]:] if dateline else text
    _scan(g, mask_outlets(title, outlet_names), TITLE_WEIGHT, s)
    _scan(g, mask_outlets(body, outlet_names), 1.0, s)
    if dateline:
        entries = g.index.get(tokens_key(dateline[0]), [])
        plain = [e for e in entries if not e.needs_cue]  # "BANDUNG -" is Bandung, not Kec.
        for entry in plain or entries:
            if entry.kind != "ignore":
                _record(entry, DATELINE_WEIGHT, Evidence("dateline", dateline[0]), s)
    _settle_pairs(g, s, resolve_name(home_region, g))
    _settle_shared(s)
    return _decide(g, s, resolve_name(home_region, g))


def _scan(g: Gazetteer, text: str, weight: float, s: _Scores) -> None:
    text = text.replace("/", " ")
    tokens = _tokens(text)
    i, n = 0, len(tokens)
    while i < n:
        longest = g.starts.get(tokens[i][1])
        if not longest:
            i += 1
            continue
        for size in range(min(longest, n - i), 0, -1):
            entries = g.index.get(tuple(t[1] for t in tokens[i:i + size]))
            if not entries:
                continue
            last = tokens[i + size - 1][0].removeprefix("se-")
            if not (last[:1].isupper() or last[:1].isdigit()):
                continue  # places are proper names: "nasib malang" is not Malang
            if entries[0].kind == "ignore":
                i += size - 1
                break
            prev = tokens[i - 1][1] if i else ""
            after = tokens[i + size][0] if i + size < n else ""
            cued = prev in g.place_cues
            # "Desa Asembagus" is a village that may share a kecamatan's name; "Sukolilo Barat"
            # is a longer name: both are weak evidence for the kecamatan or unit they resemble.
            weak = prev in g.village_cues or (
                after[:1].isupper() and norm_token(after) in g.continuations)
            phrase = " ".join(t[0] for t in tokens[i:i + size]).rstrip(".")
            matched = False
            follower: tuple[str, list[Entry]] | None = None
            if cued or (entries[0].weight < 3.0 and entries[0].kind == "kecamatan"):
                follower = _follower(g, tokens, i + size)
            for entry in entries:
                if entry.needs_cue and not cued:
                    continue
                factor = 0.25 if weak and entry.weight < 3.0 else 1.0
                if follower and entry.weight < 3.0:
                    key, places = follower
                    inside = any(e.kind == "province" or set(e.codes) & set(entry.codes)
                                 for e in places)
                    if entry.needs_cue and not inside and key not in g.name_breaks \
                            and key not in g.continuations:
                        continue  # "di Panti Asuhan", "dari Palang Merah", "di Candi Jago"
                    if entry.kind == "kecamatan" and not inside and any(
                            e.kind in ("unit", "pair", "kecamatan") for e in places):
                        factor = 0.25  # "Semampir Kraksaan": a village named like a kecamatan
                _record(entry, weight * factor, Evidence(entry.rule, phrase), s)
                matched = True
            if matched:
                i += size - 1
                break
        i += 1


def _tokens(text: str) -> list[tuple[str, str, str]]:
    """Each token as written, normalised (as ``norm_token`` does, but for the whole text at once:
    this is the tagger's hottest loop) and the characters between it and the next token."""
    raw = _TOKEN_GAP.findall(text)
    low = _TOKEN.findall(text.lower().replace("’", "'"))
    if len(low) != len(raw):  # a character whose lower case is not one character of its class
        return [(t, norm_token(t), gap) for t, gap in raw]
    return [(t, n.rstrip("."), gap) for (t, gap), n in zip(raw, low, strict=True)]


def _follower(g: Gazetteer, tokens: list[tuple[str, str, str]],
              j: int) -> tuple[str, list[Entry]] | None:
    """The capitalised word that directly continues a name ending before token ``j`` (no
    punctuation between), and the places that start there.

    After an ordinary-word place name it makes that name the head of a longer proper name ("di
    Panti Asuhan Al-Ikhlas", "di Pesantren Tebuireng"), unless it is a place containing this one
    ("di Pare Kediri"); after a kecamatan name it may make it a village of another place
    ("Asembagus Kraksaan")."""
    if j >= len(tokens) or tokens[j - 1][0].endswith("."):
        return None
    nxt, key, _ = tokens[j]
    if not nxt[:1].isupper() or tokens[j - 1][2].strip():
        return None
    for size in range(min(g.starts.get(key, 0), len(tokens) - j), 0, -1):
        entries = g.index.get(tuple(t[1] for t in tokens[j:j + size]))
        if entries:
            return key, entries
    return key, []


def _record(entry: Entry, weight: float, ev: Evidence, s: _Scores) -> None:
    w = entry.weight * weight
    if entry.kind == "pair":
        s.pairs.append((entry, w, ev))
    elif entry.kind == "kecamatan" and len(entry.codes) > 1:
        s.shared.append((entry, w, ev))
    else:
        s.add(entry.codes[0], w, ev)


def _settle_pairs(g: Gazetteer, s: _Scores, home: str | None) -> None:
    """A bare 'Malang' goes to whichever of Kota/Kabupaten Malang the rest of the item names."""
    for entry, w, ev in s.pairs:
        kota, kab = entry.codes
        if s.score[kota] > s.score[kab]:
            pick = kota
        elif s.score[kab] > s.score[kota]:
            pick = kab
        elif home in (kota, kab):
            pick = home
        else:
            pick = kota  # with no context, the name alone most often means the city
        s.add(pick, w, Evidence(ev.rule + " settled by context", ev.text))


def _settle_shared(s: _Scores) -> None:
    """A kecamatan name found in several units counts only for one the item otherwise names."""
    for entry, w, ev in s.shared:
        named = [c for c in entry.codes if s.score[c] > 0]
        if len(named) == 1:
            s.add(named[0], w, Evidence(ev.rule + " settled by context", ev.text))


def _decide(g: Gazetteer, s: _Scores, home: str | None) -> list[RegionTag]:
    _expand_groupings(g, s)
    units = {c: v for c, v in s.score.items() if g.regions[c].level in ("kabupaten", "kota")}
    top = max(units.values(), default=0.0)
    # The strongest evidence for anything else: a dateline alone never outweighs it.
    elsewhere = max((v for c, v in s.score.items()
                     if g.regions[c].level in ("province", "other_province", "national")
                     and v >= 3.0), default=0.0)
    chosen: dict[str, float] = {}
    for code, value in units.items():
        only_dateline = all(e.rule == "dateline" for e in s.evidence[code])
        if only_dateline and max(top, elsewhere) > value:
            continue
        if value >= KEEP_MIN and value >= KEEP_SHARE * top:
            chosen[code] = value
    if not chosen and not elsewhere:
        chosen.update({c: v for c, v in units.items() if v > 0 and v == top})
    located = any(any(e.rule != "dateline" for e in s.evidence[c]) for c in chosen)
    if s.score[PROVINCE] >= 3.0 or (not located and s.score[PROVINCE] >= 1.0):
        if not located:  # a Surabaya dateline on a province-wide story is the bureau
            chosen.clear()
        chosen[PROVINCE] = s.score[PROVINCE]
        _drop_examples(s, chosen)
    best_local = max(chosen.values(), default=0.0)
    for code, value in s.score.items():
        if g.regions[code].level == "other_province" and value >= KEEP_MIN \
                and value >= 0.5 * best_local:
            chosen[code] = value
    national = s.score[NATIONAL]
    # Named twice, or once in the title of an item that names no other place, is national.
    if ((national >= 2.0 and best_local < 3.0) or (national >= 1.5 and not chosen)) and \
            not any(g.regions[c].level == "other_province" for c in chosen):
        chosen[NATIONAL] = national
    tags = [_tag(g, code, value, s.evidence[code]) for code, value in
            sorted(chosen.items(), key=lambda kv: (-kv[1], kv[0]))]
    if not tags and home:
        tags.append(_tag(g, home, 0.5, [Evidence("member home region (fallback)", home)]))
    return tags + _groupings(g, tags, s)


def _drop_examples(s: _Scores, chosen: dict[str, float]) -> None:
    """In a province-wide story, three or more units named only by name are examples ("UMK
    tertinggi Kota Surabaya, disusul Gresik dan Sidoarjo"), not where the story happens."""
    if s.score[PROVINCE] < 4.5:
        return
    named_only = [c for c in chosen if c != PROVINCE and all(
        e.rule == "dateline" or e.rule.startswith(("name ", "kota name", "kabupaten name",
                                                    "kabupaten town"))
        for e in s.evidence[c])]
    if len(named_only) >= 3:
        for code in named_only:
            del chosen[code]


def _expand_groupings(g: Gazetteer, s: _Scores) -> None:
    """'Harga telur di Malang Raya' with no unit named is about every unit of Malang Raya."""
    for code, value in list(s.score.items()):
        region = g.regions[code]
        if region.level == "grouping" and value >= 2.0 and \
                not any(s.score.get(u, 0.0) > 0 for u in region.units):
            for unit in region.units:
                s.add(unit, 2.0, Evidence("unit of a grouping named alone", region.name))


def _groupings(g: Gazetteer, tags: list[RegionTag], s: _Scores) -> list[RegionTag]:
    out: dict[str, list[Evidence]] = {}
    for t in tags:
        for key in g.groupings_of.get(t.code, ()):
            out.setdefault(key, []).append(Evidence("contains", t.name))
    for code, value in s.score.items():
        if g.regions[code].level == "grouping" and code not in out and value >= 2.0:
            out[code] = list(s.evidence[code])
    return [_tag(g, key, 2.0 if key in s.score else 1.0, evs) for key, evs in sorted(out.items())]


def _tag(g: Gazetteer, code: str, score: float, evidence: Iterable[Evidence]) -> RegionTag:
    r = g.regions[code]
    return RegionTag(code=code, name=r.name, level=r.level, slug=r.slug,
                     confidence=round(min(1.0, score / 6.0), 2), evidence=tuple(evidence))
