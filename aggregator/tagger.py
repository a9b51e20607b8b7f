"""Which places an item is about, with the evidence for each.  A pure function of the item.

One pass over the text against the gazetteer's n-gram index collects weighted evidence per
region; ambiguous names (the seven kota/kabupaten pairs, kecamatan names shared by several units)
are settled afterwards by the other evidence in the same item.  The dateline is a hint, not the
final word: the bureau is not always where the story happened.  The member's home region is used
only when nothing else points anywhere.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from .gazetteer import (
    NATIONAL,
    PROVINCE,
    Entry,
    Gazetteer,
    TrieNode,
    load,
    norm_token,
    tokens_key,
)

_TOKEN = re.compile(r"[0-9A-Za-zÀ-ÿ][0-9A-Za-zÀ-ÿ'’-]*\.?")
# a token and what stands between it and the next one
_TOKEN_GAP = re.compile(r"([0-9A-Za-zÀ-ÿ][0-9A-Za-zÀ-ÿ'’-]*\.?)([^0-9A-Za-zÀ-ÿ]*)")
_DOMAIN = re.compile(
    # possessive: a dot can never be part of [\w-], so giving characters back never helps
    r"\b[\w-]++(?:\.[\w-]++)*\.(?:com|id|net|org|co|news|tv|info|media|web)(?:\.id)?\b",
    re.IGNORECASE,
)
_TLD = re.compile(r"\.(?:com|id|net|org|co|news|tv|info|media|web)\b", re.IGNORECASE)
_ASCII_BYTES: Final = bytes(range(0x80))
_ASCII_LOWER: Final = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")
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
        text = _mask_domains(text)
    variants = [variant for name in outlet_names
                for variant in {name, name.replace(" ", "")} if len(variant) >= 4]
    if not variants:
        return text
    residue = _non_ascii_chars(text)
    if _PLAIN_CASE.issuperset(residue) and all(map(_plain_case, variants)):
        return _blank_plain(text, residue, variants)
    low = text.lower()
    for variant in variants:
        if variant.lower() in low:
            text = re.sub(re.escape(variant), " ", text, flags=re.IGNORECASE)
    return text


_DOMAIN_RUN_REST = re.compile(r"[\w.-]*")


def _mask_domains(text: str) -> str:
    """``_DOMAIN.sub(" ", text)``, with the regex run only on the runs of [\\w.-] that hold a
    top-level domain.  The full pattern tries every word of the text (~25 ns a character); a
    domain is such a run or inside one, and \\b at a run's ends sees a non-word character both in
    the text and in the run alone, so the result is the same."""
    pieces: list[str] = []
    done = 0
    for m in _TLD.finditer(text):
        start = m.start()
        if start < done:
            continue  # in the run just masked
        while start > done and (text[start - 1].isalnum() or text[start - 1] in "_.-"):
            start -= 1
            if m.start() - start > 64:  # a long run: measure it backwards in C instead
                run = _DOMAIN_RUN_REST.match(text[done:m.start()][::-1])
                start = m.start() - (run.end() if run else 0)
                break
        rest = _DOMAIN_RUN_REST.match(text, m.end())  # always matches, maybe empty
        end = rest.end() if rest else m.end()
        pieces += (text[done:start], _DOMAIN.sub(" ", text[start:end]))
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


# Characters whose case-insensitive regex matching is exactly equality of str.lower() (and whose
# lower case is one character of the same UTF-8 length): ASCII, Latin-1 but the micro sign
# (equal to Greek mu for the regex), General Punctuation.  Outside them (İ, the long s, the
# Kelvin sign, ...) the regex says.
_PLAIN_CASE: Final = frozenset(
    map(chr, [*range(0x80, 0xB5), *range(0xB6, 0x100), *range(0x2000, 0x2070)]))
_LATIN1_UPPER: Final = frozenset(map(chr, [*range(0xC0, 0xD7), *range(0xD8, 0xDF)]))


def _non_ascii_chars(text: str) -> set[str]:
    if text.isascii():
        return set()
    return set(text.encode("utf-8", "surrogatepass").translate(None, _ASCII_BYTES)
               .decode("utf-8", "surrogatepass"))


def _plain_case(text: str) -> bool:
    return _PLAIN_CASE.issuperset(_non_ascii_chars(text))


def _blank_plain(text: str, residue: set[str], variants: list[str]) -> str:
    """The outlet-name loop of ``mask_outlets`` for a text and names of plain case: each
    ``re.sub(re.escape(variant), " ", text, flags=re.IGNORECASE)`` done with bytes.find in the
    lower-cased UTF-8 (a memchr-speed search instead of a case-insensitive regex scan, and no
    str.lower of the text, slow on non-ASCII text).  Lower-casing keeps every character's UTF-8
    length, so the text and its lower case stay aligned as spans are blanked in both."""
    data = text.encode("utf-8")
    low = data.translate(_ASCII_LOWER)
    for char in residue & _LATIN1_UPPER:
        low = low.replace(char.encode(), char.lower().encode())
    first = low  # what the variants are looked for in, as the text was before any blanking
    for variant in variants:
        folded = variant.lower().encode()
        if folded not in first:
            continue
        pieces: list[bytes] = []
        low_pieces: list[bytes] = []
        done = 0
        found = low.find(folded)
        while found >= 0:
            pieces += (data[done:found], b" ")
            low_pieces += (low[done:found], b" ")
            done = found + len(folded)
            found = low.find(folded, done)
        if pieces:
            data = b"".join((*pieces, data[done:]))
            low = b"".join((*low_pieces, low[done:]))
    return data.decode("utf-8")


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
    # (code, rule, text) of every evidence listed: a set lookup instead of comparing with each
    # Evidence of the code's list through the dataclass's Python-level __eq__.
    listed: set[tuple[str, str, str]] = field(default_factory=set)

    def add(self, code: str, weight: float, ev: Evidence) -> None:
        # The tenth "Pamekasan" says little more than the first: repeats of one rule count a
        # quarter, so that one much-repeated place cannot crowd out the others named.
        key = (code, ev.rule)
        repeat = key in self.rules
        if not repeat:
            self.rules.add(key)
        self.score[code] += weight * (REPEAT_FACTOR if repeat else 1.0)
        listed = (code, ev.rule, ev.text)
        if listed not in self.listed:
            self.listed.add(listed)
            self.evidence[code].append(ev)


# Evidence of the scan by (rule, text): the same few are made again and again, and a frozen
# dataclass costs a microsecond to build.  Bounded: emptied when full.
_EVIDENCE: dict[tuple[str, str], Evidence] = {}
_EVIDENCE_MAX: Final = 20_000


def _evidence(rule: str, text: str) -> Evidence:
    ev = _EVIDENCE.get((rule, text))
    if ev is None:
        if len(_EVIDENCE) >= _EVIDENCE_MAX:
            _EVIDENCE.clear()
        ev = _EVIDENCE[rule, text] = Evidence(rule, text)
    return ev


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
    home = resolve_name(home_region, g)
    _settle_pairs(g, s, home)
    _settle_shared(s)
    return _decide(g, s, home)


def _scan(g: Gazetteer, text: str, weight: float, s: _Scores) -> None:
    """Walk the text's tokens against the gazetteer, longest name first, recording evidence.

    Only tokens that start some index key are visited (found in bulk, at C speed): most tokens
    are ordinary words.  After a match the tokens it covered are skipped.
    """
    tokens = _Tokens.of(text.replace("/", " "))
    norms = tokens.norms
    n = len(norms)
    trie = g.trie.children
    place_cues, village_cues, continuations = g.place_cues, g.village_cues, g.continuations
    raw: list[str] = []  # the tokens as written, made when first needed
    resume = 0  # the first token not covered by a match already made
    for i in itertools.compress(range(n), map(trie.__contains__, norms)):
        if i < resume:
            continue
        # Every key starting here, longest first (what trying each length down from the
        # longest finds, without building and looking up a tuple per length).
        node: TrieNode | None = trie[norms[i]]
        found: list[tuple[int, list[Entry]]] = []
        end = i + 1
        while node is not None:
            if node.entries:
                found.append((end, node.entries))
            if end >= n or not node.children:
                break
            node = node.children.get(norms[end])
            end += 1
        if not found:
            continue
        if not raw:
            raw = tokens.raw_list()
        for end, entries in reversed(found):
            last = raw[end - 1]
            if last.startswith("se-"):
                last = last[3:]
            if not (last[:1].isupper() or last[:1].isdigit()):
                continue  # places are proper names: "nasib malang" is not Malang
            first = entries[0]
            if first.kind == "ignore":
                resume = end
                break
            prev = norms[i - 1] if i else ""
            after = raw[end] if end < n else ""
            cued = prev in place_cues
            # "Desa Asembagus" is a village that may share a kecamatan's name; "Sukolilo Barat"
            # is a longer name: both are weak evidence for the kecamatan or unit they resemble.
            weak = prev in village_cues or (
                after[:1].isupper() and norm_token(after) in continuations)
            phrase = (raw[i] if end == i + 1 else " ".join(raw[i:end])).rstrip(".")
            matched = False
            follower: tuple[str, list[Entry]] | None = None
            if cued or (first.weight < 3.0 and first.kind == "kecamatan"):
                follower = _follower(g, tokens, end)
            for entry in entries:
                if entry.needs_cue and not cued:
                    continue
                factor = 0.25 if weak and entry.weight < 3.0 else 1.0
                if follower and entry.weight < 3.0:
                    key, places = follower
                    inside = any(e.kind == "province" or set(e.codes) & set(entry.codes)
                                 for e in places)
                    if entry.needs_cue and not inside and key not in g.name_breaks \
                            and key not in continuations:
                        continue  # "di Panti Asuhan", "dari Palang Merah", "di Candi Jago"
                    if entry.kind == "kecamatan" and not inside and any(
                            e.kind in ("unit", "pair", "kecamatan") for e in places):
                        factor = 0.25  # "Semampir Kraksaan": a village named like a kecamatan
                _record(entry, weight * factor, _evidence(entry.rule, phrase), s)
                matched = True
            if matched:
                resume = end
                break


# The fast tokeniser works on the text as Latin-1 bytes (one byte a character): any other
# character is first replaced, ’ by this control character (a text holding it takes the regex).
_CURLY: Final = "\x1a"
_LATIN1_LETTERS: Final = frozenset(map(chr, range(0xC0, 0x100)))
_TOKEN_CHARS: Final = frozenset("0123456789-'’." + _CURLY) | _LATIN1_LETTERS | frozenset(
    map(chr, [*range(0x41, 0x5B), *range(0x61, 0x7B)]))
# Token characters stay; any other character becomes a space (_SPACED) or, to see the gaps that
# are more than whitespace, "|" unless it is whitespace (_MARKED).
_SPACED: Final = bytes(b if chr(b) in _TOKEN_CHARS else 0x20 for b in range(256))
_MARKED: Final = bytes(b if chr(b) in _TOKEN_CHARS else 0x20 if chr(b).isspace() else ord("|")
                       for b in range(256))
# norm_token of the tokens: lower case (Latin-1 included), ’ as ' (dots are deleted apart).
_LOWER: Final = bytes(ord("'") if b == ord(_CURLY) else ord(chr(b).lower()) for b in range(256))
# A token cannot start with ' - . or ’: after a gap they are gap.  _JUNK_CLASSES shows where
# that happens ("sj": a separator, " " or "|", then junk), with one translate.
_JUNK: Final = (b"'", b"-", b".", _CURLY.encode())
_JUNK_CLASSES: Final = bytes(ord("s") if b in b" |" else ord("j") if bytes([b]) in _JUNK
                             else ord("x") for b in range(256))


@functools.lru_cache(maxsize=4096)
def _separator(char: str) -> str | None:
    """What a character outside Latin-1 (other than ’) becomes for the fast tokeniser: " " if
    whitespace, "|" if not; None if lower-casing could change the tokens (İ becomes two
    characters, the Kelvin sign a "k"): such text takes the regex tokeniser."""
    low = char.lower()
    if len(low) != 1 or low in _TOKEN_CHARS:
        return None
    return " " if char.isspace() else "|"


_GAP_THEN_JUNK = re.compile(rb"sj+")  # in _JUNK_CLASSES: junk right after a separator


def _without_junk(data: bytes, gap: bytes) -> bytes:
    """Every run of junk characters right after a separator made ``gap``: the regex tokeniser
    skips them all ("( -'x" is the token "x").

    The runs are almost always one character long: those are replaced all at once first, so that
    the loop over the runs found in _JUNK_CLASSES (a literal search) sees only longer ones."""
    if gap == b" ":
        for junk in _JUNK:
            data = data.replace(b" " + junk, b"  ")
    else:
        for sep in (b" ", b"|"):
            for junk in _JUNK:
                data = data.replace(sep + junk, sep + b"|")
    classes = data.translate(_JUNK_CLASSES)
    pieces: list[bytes] = []
    done = 0
    for m in _GAP_THEN_JUNK.finditer(classes):
        start, end = m.start() + 1, m.end()
        pieces += (data[done:start], gap * (end - start))
        done = end
    pieces.append(data[done:])
    return b"".join(pieces)


class _Tokens:
    """A text's tokens: normalised (as ``norm_token`` makes them), as written, and whether only
    whitespace stands between each and the next.

    This is the tagger's hottest part, so ``of`` cuts the tokens with byte-level C loops
    (translate, replace, split) rather than a regex (about 150 ns a token), and the gaps, which
    the scan seldom asks about, are worked out only when it does.  The tokens are those of
    ``_TOKEN_GAP``: a text with a character whose lower case could change them takes the regex.
    """

    __slots__ = ("_curly", "_data", "_flags", "_marked", "_raw", "_spaced", "norms")

    def __init__(self, norms: list[str], raw: list[str] | None = None,
                 flags: list[bool] | None = None) -> None:
        self.norms = norms
        self._raw = raw
        self._flags = flags
        self._data = b""  # the fast path: the text as Latin-1 bytes, and the same spaced out
        self._spaced = b""
        self._curly = False
        self._marked: list[bytes] = []  # the tokens with their gap marks, made when first asked

    @classmethod
    def of(cls, text: str) -> _Tokens:
        curly = False
        if text.isascii():
            if _CURLY in text:  # it stands for ’ below
                return cls.by_regex(text)
        else:
            utf8 = text.encode("utf-8", "surrogatepass")
            if _CURLY.encode() in utf8:
                return cls.by_regex(text)
            for char in set(utf8.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")):
                if char <= "\xff":
                    continue  # Latin-1: one byte, its class and lower case in the tables
                if char == "’":
                    curly = True
                    continue
                replacement = _separator(char)
                if replacement is None:
                    return cls.by_regex(text)
                text = text.replace(char, replacement)
            if curly:
                text = text.replace("’", _CURLY)
        data = text.encode("latin-1")
        # "^ " is a token standing for the text's start, so that a gap there has one to follow;
        # a dot ends a token.
        spaced = b"^ " + data.translate(_SPACED).replace(b".", b". ")
        classes = spaced.translate(_JUNK_CLASSES)
        if b"sj" in classes:
            spaced = _without_junk(spaced, b" ")
        norms = spaced.translate(_LOWER, b".").decode("latin-1").split()
        del norms[0]
        tokens = cls(norms)
        tokens._data, tokens._spaced, tokens._curly = data, spaced, curly
        return tokens

    @classmethod
    def by_regex(cls, text: str) -> _Tokens:
        found = _tokens(text)
        return cls([t[1] for t in found], [t[0] for t in found],
                   [not t[2].strip() for t in found])

    def raw_list(self) -> list[str]:
        """The tokens as written."""
        if self._raw is None:
            text = self._spaced.decode("latin-1")
            if self._curly:
                text = text.replace(_CURLY, "’")
            self._raw = text.split()[1:]
        return self._raw

    def spaced(self, i: int) -> bool:
        """Whether only whitespace (or nothing) stands between token ``i`` and the next."""
        if self._flags is not None:
            return self._flags[i]
        if not self._marked:
            # The same tokens with "|" for each gap that is more than whitespace, moved onto the
            # token before it: "Batu, Kota" gives "Batu|" and "Kota".
            marked = b"^ " + self._data.translate(_MARKED).replace(b".", b". ")
            classes = marked.translate(_JUNK_CLASSES)
            if b"sj" in classes:
                marked = _without_junk(marked, b"|")
            while b"  " in marked:  # halves every run of spaces: a few rounds at most
                marked = marked.replace(b"  ", b" ")
            marked = marked.replace(b" |", b"|")
            while b"||" in marked:
                marked = marked.replace(b"||", b"|")
            self._marked = marked.replace(b"|", b"| ").split()
        return not self._marked[i + 1].endswith(b"|")  # [0] is the start token


def _tokens(text: str) -> list[tuple[str, str, str]]:
    """Each token as written, normalised (as ``norm_token`` does, but for the whole text at once)
    and the characters between it and the next token."""
    raw = _TOKEN_GAP.findall(text)
    low = _TOKEN.findall(text.lower().replace("’", "'"))
    if len(low) != len(raw):  # a character whose lower case is not one character of its class
        return [(t, norm_token(t), gap) for t, gap in raw]
    return [(t, n.rstrip("."), gap) for (t, gap), n in zip(raw, low, strict=True)]


def _follower(g: Gazetteer, tokens: _Tokens, j: int) -> tuple[str, list[Entry]] | None:
    """The capitalised word that directly continues a name ending before token ``j`` (no
    punctuation between), and the places that start there.

    After an ordinary-word place name it makes that name the head of a longer proper name ("di
    Panti Asuhan Al-Ikhlas", "di Pesantren Tebuireng"), unless it is a place containing this one
    ("di Pare Kediri"); after a kecamatan name it may make it a village of another place
    ("Asembagus Kraksaan")."""
    norms = tokens.norms
    raw = tokens.raw_list()
    if j >= len(norms) or raw[j - 1].endswith("."):
        return None
    key = norms[j]
    if not raw[j][:1].isupper() or not tokens.spaced(j - 1):
        return None
    longest: list[Entry] = []
    node = g.trie.children.get(key)
    size = 1
    while node is not None:  # the longest key starting at j
        if node.entries:
            longest = node.entries
        if j + size >= len(norms):
            break
        node = node.children.get(norms[j + size])
        size += 1
    return key, longest


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
        s.add(pick, w, _evidence(ev.rule + " settled by context", ev.text))


def _settle_shared(s: _Scores) -> None:
    """A kecamatan name found in several units counts only for one the item otherwise names."""
    for entry, w, ev in s.shared:
        named = [c for c in entry.codes if s.score[c] > 0]
        if len(named) == 1:
            s.add(named[0], w, _evidence(ev.rule + " settled by context", ev.text))


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
                s.add(unit, 2.0, _evidence("unit of a grouping named alone", region.name))


def _groupings(g: Gazetteer, tags: list[RegionTag], s: _Scores) -> list[RegionTag]:
    out: dict[str, list[Evidence]] = {}
    for t in tags:
        for key in g.groupings_of.get(t.code, ()):
            out.setdefault(key, []).append(_evidence("contains", t.name))
    for code, value in s.score.items():
        if g.regions[code].level == "grouping" and code not in out and value >= 2.0:
            out[code] = list(s.evidence[code])
    return [_tag(g, key, 2.0 if key in s.score else 1.0, evs) for key, evs in sorted(out.items())]


def _tag(g: Gazetteer, code: str, score: float, evidence: Iterable[Evidence]) -> RegionTag:
    r = g.regions[code]
    return RegionTag(code=code, name=r.name, level=r.level, slug=r.slug,
                     confidence=round(min(1.0, score / 6.0), 2), evidence=tuple(evidence))
