"""Near-duplicate detection: which items are copies of one story (the pure clustering core).

Members republish the same press release with small edits: a reworded title, their own dateline,
a sentence added or dropped, paragraphs reordered, "Baca juga" lines and footers.  Those copies
must end up in one cluster.  Template stories must not: weekly drug-bust reports of different
police districts, market price reports of different days, weather warnings for different areas
share most of their sentences but none of their facts.

So a pair is judged in two steps:

1. *Text*: the Jaccard similarity of word 3-shingles of the cleaned text (datelines and outlet
   furniture removed), estimated with MinHash.  Measured on the synthetic corpus of
   ``tests/test_similarity.py``: edited copies 0.55-0.88, template traps 0.32-0.57, unrelated
   stories of one region below 0.01.  Shingles are taken per paragraph, so reordering
   paragraphs changes nothing.
2. *Facts*: the numbers, dates and proper names of each story (and the regions the tagger
   found).  A copy with a sentence dropped or added still shares nearly all of them; a template
   trap shares the template's words but few of its facts.

``fingerprint(title, text)`` gives an item's signature and facts with one pass of cleaning;
``same_story`` compares two; ``band_keys`` are the LSH buckets that find candidates.  Facts
matter only for candidate pairs at or above MATCH_THRESHOLD, so a caller short of time can
compute them lazily (they cost a little more than the signature).

Everything here is a pure function of its arguments; signatures are stable across processes,
machines and Python runs (no built-in ``hash()``), because they are stored in the database and
their band keys are the buckets candidates are looked up in.  Any change to the parameters or to
the text cleaning that feeds the shingles must bump ``SIGNATURE_VERSION`` so that stored
signatures are recomputed rather than silently compared with incompatible ones.
"""

from __future__ import annotations

import functools
import itertools
import operator
import re
import struct
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

import numpy as np
import numpy.typing as npt
import xxhash

# --- pinned parameters: changing any of them (or the cleaning below) bumps SIGNATURE_VERSION ----

SIGNATURE_VERSION: Final = 1
NUM_PERM: Final = 128
# datasketch's own optimal banding for threshold 0.5 and 128 permutations (lsh._optimal_param):
# a pair becomes a candidate with probability 1 - (1 - J**5)**25: 0.55 at J=0.5, 0.87 at 0.6,
# 0.99 at 0.7, 0.04 at 0.3.  The last NUM_PERM - BANDS*ROWS = 3 values only sharpen the estimate.
BANDS: Final = 25
ROWS: Final = 5
# datasketch's default seed: a stock MinHash(seed=1, scheme="affine32", hashfunc=xxh32_intdigest)
# reproduces our values, which the tests check.
SEED: Final = 1
SCHEME: Final = "affine32"
HASH_SEED: Final = 0  # xxh32 seed of the shingle hash: xxhash's default, so it is not passed


# The 32-bit hash of one shingle: xxh32 (seed HASH_SEED, its default), about twice as fast as
# datasketch's SHA-1 default.  Called bare because a partial() would add ~50 ns a shingle.
shingle_hash: Final = xxhash.xxh32_intdigest


# --- matching rule, chosen from the measurements in tests/test_similarity.py --------------------

# Estimated Jaccard of the edited copies measured 0.54-0.88 (0.54: a copy with a new lead and its
# last paragraph cut against one with paragraphs reordered and verbs changed), and 0.52-1.0
# between copies on the feed farm (3 seeds, 1,270 pairs).  With 128 permutations the estimate's
# standard error is about 0.044 there, so 0.45 keeps a copy at 0.55 above the line at more than
# two standard errors.  Unrelated stories of one region measured below 0.01; template traps
# 0.32-0.57 (the feed farm's template-made stories up to 0.48), which is what the facts are for.
MATCH_THRESHOLD: Final = 0.45
# At or above this, only conflicting numbers or dates can separate two texts (a tagger disagreeing
# about places, or a name spelt two ways, cannot).
CERTAIN_THRESHOLD: Final = 0.9
# Facts overlap |A & B| / min(|A|, |B|) of pairs at or above MATCH_THRESHOLD.  Copies: numbers
# 0.83-1.0 here and 0.5-1.0 on the feed farm (1,300 copy pairs, 2 seeds), but never more than
# one of the smaller side's numbers missing from the other; names 0.8-1.0.  Template traps and
# other stories: numbers 0.0-0.33 and names 0.0-0.42, except one market on two days: numbers 0.70
# (most prices unchanged; 3 missing), names 1.0 -- see the dates rule in same_story.
NUMBER_OVERLAP_MIN: Final = 0.6
NAME_OVERLAP_MIN: Final = 0.5
# Fewer facts than this on either side say nothing either way.
MIN_FACTS: Final = 2
# A conflict also needs this many of the smaller side's facts missing from the other: one copy
# dropping a sentence and another adding one can leave a two-number story sharing only half
# (on the feed farm: {Rp91,6 miliar, phone} vs {19 persen, phone}).
MIN_UNSHARED: Final = 2

_MAX_HASH: Final = 0xFFFFFFFF
_CHUNK: Final = 4096  # shingles per numpy block: bounds memory on a 512 KiB article
_U32: Final = np.uint32

@functools.lru_cache(maxsize=1)
def _permutations() -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    """datasketch's permutations (a, b), drawn once: building a MinHash draws them from a
    RandomState every time.  As columns: a (NUM_PERM, shingles) block reduces along its rows
    faster than the transpose.

    Imported on first use: datasketch imports scipy, a third of a second at every start of a
    process that never computes a signature (the poller's main process, ``publish``, ``serve``).
    """
    from datasketch import MinHash  # type: ignore[import-untyped]

    drawn = np.asarray(MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME).permutations,
                       dtype=np.uint32)
    return (np.ascontiguousarray(drawn[0][:, None]), np.ascontiguousarray(drawn[1][:, None]))


def warm_up() -> None:
    """Draw the permutations now (importing datasketch), in a process about to fork workers that
    will all compute signatures, rather than in each of them at its first item."""
    _permutations()


_SIG_STRUCT: Final = struct.Struct(f"<{NUM_PERM}I")
_BAND_BYTES: Final = 4 * ROWS


# --- signatures -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signature:
    """A MinHash signature: NUM_PERM uint32 minima, comparable only within one SIGNATURE_VERSION.

    Store the version next to the bytes; ``to_bytes`` holds the values only (512 bytes).
    """

    hashvalues: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.hashvalues) != NUM_PERM:
            raise ValueError(f"a signature has {NUM_PERM} values, not {len(self.hashvalues)}")

    @property
    def is_empty(self) -> bool:
        """No shingles at all (empty text): such a signature matches nothing, not even itself."""
        return all(v == _MAX_HASH for v in self.hashvalues)

    def to_bytes(self) -> bytes:
        """4 bytes a value, little-endian: a fixed-size blob, independent of the machine."""
        return _SIG_STRUCT.pack(*self.hashvalues)

    @classmethod
    def from_bytes(cls, data: bytes) -> Signature:
        if len(data) != _SIG_STRUCT.size:
            raise ValueError(f"a signature is {_SIG_STRUCT.size} bytes, not {len(data)}")
        return cls(_SIG_STRUCT.unpack(data))


EMPTY_SIGNATURE: Final = Signature((_MAX_HASH,) * NUM_PERM)
_EMPTY_BYTES: Final = EMPTY_SIGNATURE.to_bytes()
_LE_U32: Final = np.dtype("<u4")  # to_bytes's order, whatever the machine's


def _fmix32(h: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    """MurmurHash3's finalizer, as datasketch's affine32 applies it before the permutations.

    In place after the first step: each numpy call costs microseconds on an item's few hundred
    values, so fewer calls and no temporaries.
    """
    h = h ^ (h >> _U32(16))
    h *= _U32(0x85EBCA6B)
    h ^= h >> _U32(13)
    h *= _U32(0xC2B2AE35)
    h ^= h >> _U32(16)
    return h


def _minima(hashes: Sequence[int] | npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32] | None:
    """The NUM_PERM minima of ``minhash_values`` as an array; None for no hashes at all."""
    if len(hashes) == 0:
        return None
    hv = _fmix32(np.asarray(hashes, dtype=np.uint32))
    a, b = _permutations()
    if len(hv) <= _CHUNK:  # an article: one block, no running minimum
        block = np.multiply(a, hv)  # uint32: wraps, i.e. mod 2**32
        block += b
        minima: npt.NDArray[np.uint32] = block.min(axis=1)
        return minima
    out = np.full(NUM_PERM, _MAX_HASH, dtype=np.uint32)
    for start in range(0, len(hv), _CHUNK):
        block = np.multiply(a, hv[start:start + _CHUNK])
        block += b
        np.minimum(out, block.min(axis=1), out=out)
    return out


def minhash_values(hashes: Sequence[int] | npt.NDArray[np.uint32]) -> tuple[int, ...]:
    """datasketch 2.0's affine32 MinHash of 32-bit shingle hashes, with the shared permutations.

    Identical to ``MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine32").update_batch`` (the
    tests check it) without building a MinHash object, and its permutations, for every item.
    """
    minima = _minima(hashes)
    return EMPTY_SIGNATURE.hashvalues if minima is None else tuple(minima.tolist())


def _minhash_bytes(hashes: Sequence[int] | npt.NDArray[np.uint32]) -> bytes:
    """``Signature(minhash_values(hashes)).to_bytes()`` straight from the array: no tuple of
    128 ints, no check of its length and no struct packing of them."""
    minima = _minima(hashes)
    return _EMPTY_BYTES if minima is None else minima.astype(_LE_U32, copy=False).tobytes()


def signature_of_shingles(shingle_set: Iterable[bytes]) -> Signature:
    """Repeated shingles may be passed: a minimum does not change when a value comes again."""
    return Signature(minhash_values(np.fromiter(map(shingle_hash, shingle_set), np.uint32)))


def band_keys(sig: Signature) -> list[tuple[int, int]]:
    """(band, bucket key) for the LSH table: items sharing any pair are candidates."""
    return list(enumerate(bucket_keys(sig.to_bytes())))


def bucket_keys(raw: bytes) -> list[int]:
    """The bucket keys of a signature as stored (``Signature.to_bytes``), band by band.

    The key is xxh3-64 of the band's ROWS values (as stored, little-endian) seeded with the band
    index, shifted to 63 bits so it fits a signed BIGINT.  An empty signature has no keys:
    otherwise every empty item would land in one bucket.  Straight from the bytes, as clustering
    has them: no tuple of 128 ints made and packed again for every item.
    """
    if len(raw) != _SIG_STRUCT.size:
        raise ValueError(f"a signature is {_SIG_STRUCT.size} bytes, not {len(raw)}")
    if raw == _EMPTY_BYTES:
        return []
    step = _BAND_BYTES
    return [xxhash.xxh3_64_intdigest(raw[band * step:(band + 1) * step], band) >> 1
            for band in range(BANDS)]


def estimated_jaccard(a: Signature, b: Signature) -> float:
    """Share of equal minima; an empty signature is similar to nothing (0.0)."""
    if a.is_empty or b.is_empty:
        return 0.0
    return sum(x == y for x, y in zip(a.hashvalues, b.hashvalues, strict=True)) / NUM_PERM


# --- cleaning -----------------------------------------------------------------------------------

# ASCII upper case to lower case, bytewise.  Tells whether a word of ASCII letters is in
# ``text.lower()`` without lowering a whole text (5 ns a character unless it is ASCII): no
# character outside ASCII lowers to ASCII letters but İ ("i" and a combining dot) and the Kelvin
# sign ("k"), which the tests check.
_ASCII_LOWER: Final = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")

# Lines that outlets add around a story and that are not the story: related links, credits,
# photo captions, "appeared first on" footers.  Shared by unrelated stories of one outlet, and
# different between copies of one story, so they would count wrongly both ways.
_FURNITURE_LINE = re.compile(
    r"^[\W_]*(?:"
    r"(?:baca|simak|lihat|klik)\s+(?:juga|pula|selengkapnya)\b"
    r"|(?:berita|artikel)\s+(?:terkait|lainnya)\b"
    r"|(?:editor|penulis|reporter|pewarta|redaktur|penyunting|kontributor|foto|sumber|"
    r"writer|author|copy ?editor|fotografer|video|grafis)\s*[:|]"
    r"|laporan\s+(?:wartawan|reporter|kontributor)\b"
    r"|artikel\s+ini\s+(?:telah\s+)?(?:tayang|terbit|dimuat)\b"
    r"|the\s+post\b.{0,400}\bappeared\s+first\s+on\b"
    r"|(?:ikuti|follow|dapatkan|gabung)\b.{0,80}\b(?:google\s+news|whatsapp|telegram|channel)\b"
    r"|copyright\b|©"
    r")",
    re.IGNORECASE,
)
_INLINE_FOOTER = re.compile(r"\s*\bthe\s+post\b.{0,400}?\bappeared\s+first\s+on\b.*$",
                            re.IGNORECASE)
# Editor initials closing the story: "(red/xyz)", "(*)", "(ant/zul)", "(rls)", "[gem]".
_CLOSING_PARENS = re.compile(r"\s*[(\[]\s*([^()\[\]]{1,30}?)\s*[)\]]\s*$")
_INITIALS = re.compile(
    r"\*+|[a-z]{1,8}|red|rls|adv|[A-Za-z*.]{1,12}(?:\s*/\s*[A-Za-z*.]{1,12}){1,3}", re.IGNORECASE
)
_LOWER_INITIALS = re.compile(r"\*+|[a-z]{1,8}")  # "(BMKG)" closing a sentence is the story
_TRAILING_CREDIT = re.compile(
    r"\s+(?:editor|penulis|reporter|pewarta|redaktur)\s*:\s*[^.!?]{0,60}$", re.IGNORECASE
)
# "SURABAYA, Outlet.com -", "Malang (outlet.id) –", "Outlet.com, Kota Blitar -", "OUTLET,
# BANYUWANGI -", "Surabaya (ANTARA) -", "Jember, 12 Juni 2024 -": a short head before a dash.
_DATELINE = re.compile(r"^\s*([^\n]{2,90}?)(?:\s+(?:--?|[–—|])(?:\s+|$)|\s*(?:--?|[–—|])\s+)")
_DATELINE_HEAD = re.compile(r"[\w.,()'’&/ ]+")
_WORD_CHARS = re.compile(r"[^\W\d_]+")


def _is_dateline(head: str) -> bool:
    """A place and/or an outlet, maybe a date: few words, each capitalised, a number or a domain.

    "Pemerintah Kota Blitar - yang ..." and "Menurut dia, ... - ..." are sentences, not datelines.
    """
    if not _DATELINE_HEAD.fullmatch(head) or ". " in head:
        return False
    words = head.replace(",", " ").replace("(", " ").replace(")", " ").split()
    if not words or len(words) > 6:
        return False
    if not all(w[0].isupper() or w[0].isdigit() or "." in w for w in words):
        return False
    if "," in head or "(" in head:
        return True  # "SURABAYA, Outlet.com", "Malang (outlet.id)", "Outlet.com, Kota Blitar"
    letters = _WORD_CHARS.search(words[0])
    if letters is not None and letters.group().isupper() and len(letters.group()) > 1:
        return True  # "SURABAYA -", "KOTA BATU -"
    return len(words) <= 2  # "Blitar -", "Kota Batu -"


def _strip_dateline(line: str) -> str:
    m = _DATELINE.match(line)
    if m is None or not _is_dateline(m.group(1).strip()):
        return line
    return line[m.end():]


def _is_initials(inside: str) -> bool:
    if not _INITIALS.fullmatch(inside):
        return False
    return "/" in inside or inside.lower() in {"red", "rls", "adv"} or bool(
        _LOWER_INITIALS.fullmatch(inside))


def clean_lines(text: str) -> list[str]:
    """The story's paragraphs, in original case: Unicode-normalised, without dateline and furniture.

    Both the shingles and the facts are read from these lines, so furniture counts for neither.
    """
    text = unicodedata.normalize("NFKC", text)
    # Looked for once in the text rather than in every line: most texts have neither runs of
    # spaces or tabs inside a line (\v and \f end lines) nor a footer, which holds "appeared".
    spacing = "  " in text or "\t" in text
    footers = b"appeared" in text.encode("utf-8", "surrogatepass").translate(_ASCII_LOWER)
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if spacing and ("  " in line or "\t" in line):
            line = " ".join(line.split())
        if not line or _FURNITURE_LINE.match(line):
            continue
        if footers and "appeared first on" in line.lower():  # a footer glued to a paragraph
            tail = max(0, len(line) - 600)  # bounds the regex's work on hostile input
            line = (line[:tail] + _INLINE_FOOTER.sub("", line[tail:])).rstrip()
        if not lines:
            line = _strip_dateline(line)
        if line:
            lines.append(line)
    while lines:  # closing credits: "(red/xyz)", "Editor: ..." on the last line(s)
        last = lines[-1]
        # Both patterns end the line and search every position of it: look only where they can
        # match (a credit has its colon, closing initials a bracket at the very end).
        cut = _TRAILING_CREDIT.sub("", last) if ":" in last else last
        m = _CLOSING_PARENS.search(cut) if cut.rstrip().endswith((")", "]")) else None
        if m and _is_initials(m.group(1)):
            cut = cut[: m.start()]
        cut = cut.rstrip()
        if cut == last:
            break
        if cut:
            lines[-1] = cut
            break
        lines.pop()
    return lines


# Words are what is left between punctuation and spaces.  This is the hot path, so it is done with
# C loops (str.replace, bytes.translate, bytes.split) and literal searches, not a word regex,
# which costs ~150 ns a word.  Apostrophes vanish ("Jum'at" is "Jumat"); other punctuation
# separates words; numbers lose their group separators and stand apart, so "Rp12.500",
# "Rp 12.500" and "Rp 12500" all give "rp 12500".
_NON_ASCII_PUNCTUATION: Final = "".join(
    c for c in map(chr, [*range(0x80, 0xC0), 0xD7, 0xF7, *range(0x2010, 0x2070),
                         *range(0x2190, 0x2400), *range(0x2500, 0x2800), *range(0x3000, 0x3040),
                         *range(0xFE10, 0xFE70), *range(0xFF01, 0xFF10)])
    if not c.isalnum() and c not in "’ʼ"
)
_PUNCTUATION_RUN = re.compile(f"[{re.escape(_NON_ASCII_PUNCTUATION)}]+")
_DIGIT_RUN = re.compile(r"\d[\d.,]*")
_ASCII_TO_SPACE: Final = bytes(
    b if b >= 0x80 or b == 0x0A or chr(b).isalnum() else 0x20 for b in range(256)
)


def _number_word(m: re.Match[str]) -> str:
    return " " + m.group().replace(".", "").replace(",", "") + " "


# Most texts are ASCII apart from a few quotes, dashes and accented letters.  Regex scans over a
# whole text cost 5-10 ns a character (sre tests a character class one character at a time), so
# the helpers below look at the non-ASCII characters alone, found at memcpy speed: the UTF-8 bytes
# with every ASCII byte deleted are exactly the non-ASCII characters, in order.
_ASCII_BYTES: Final = bytes(range(0x80))
_PUNCTUATION_SET: Final = frozenset(_NON_ASCII_PUNCTUATION)


def _non_ascii(text: str) -> str:
    """The non-ASCII characters of ``text`` (with repeats, in order)."""
    return _non_ascii_of(text.encode("utf-8", "surrogatepass"))


def _non_ascii_of(data: bytes) -> str:
    return data.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")


def _has_non_ascii_digit(text: str) -> bool:
    """Whether ``\\d`` can match anything but 0-9 (Arabic-Indic digits and the like)."""
    return not text.isascii() and any(map(str.isdecimal, _non_ascii(text)))


# Stands for punctuation while runs of it are collapsed; a text that has it takes the regex.
_PLACEHOLDER: Final = "\ue000"


def _plain(text: str) -> str:
    """Apostrophes gone, opening quotes made '"', any other non-ASCII punctuation a space.

    Shared by the shingles and the names, so that it is done once an item.  The same as the
    replacements and ``_PUNCTUATION_RUN.sub(" ", text)`` one after the other, but each character
    is replaced only if present (found in the UTF-8 bytes or among the non-ASCII characters),
    and runs of the punctuation present are collapsed with ``str.replace`` (memchr speed): a
    regex tests every character of the text, at 5-10 ns each.
    """
    data = text.encode("utf-8", "surrogatepass")
    if b"'" in data:
        text = text.replace("'", "")
    if b"`" in data:
        text = text.replace("`", "")
    if text.isascii():
        return text
    chars = set(_non_ascii_of(data))
    for quote in "“‘«":
        if quote in chars:
            text = text.replace(quote, '"')
    for apostrophe in "’ʼ":
        if apostrophe in chars:
            text = text.replace(apostrophe, "")
    present = _PUNCTUATION_SET.intersection(chars)
    if not present:
        return text
    if _PLACEHOLDER in chars:
        return _PUNCTUATION_RUN.sub(" ", text)
    for char in present:
        text = text.replace(char, _PLACEHOLDER)
    while _PLACEHOLDER * 2 in text:
        text = text.replace(_PLACEHOLDER * 2, _PLACEHOLDER)
    return text.replace(_PLACEHOLDER, " ")


# _word_bytes in the common case (no digits outside 0-9): the bytes are classified with one
# translate, "d" digit, "s" number separator, "a" kept letter (ASCII or any non-ASCII byte), " "
# anything the words are split on; the few edits are then found with literal searches.
_BYTE_CLASSES: Final = bytes(
    ord("d") if chr(b).isdigit() and b < 0x80 else ord("s") if b in b".," else
    ord("a") if b >= 0x80 or chr(b).isalpha() else ord(" ") for b in range(256)
)
_SEPARATORS_IN_NUMBER = re.compile(rb"d(s+)(?=d)")
_DIGIT_LETTER = re.compile(rb"da")
_LETTER_DIGIT = re.compile(rb"ad")


def _word_bytes(plain: str) -> bytes:
    """Lowercase words, space-separated, lines kept: what the shingles are cut from (UTF-8).

    Numbers lose their group separators and stand apart as words (``_DIGIT_RUN`` and
    ``_number_word`` say how).  Rather than calling ``_number_word`` for every number, which costs
    about a microsecond each, only what it changes is edited: separators between two digits are
    deleted and a space goes between a digit and an adjacent letter.  The words and lines come out
    the same (the bytes may differ in spacing, which neither the shingles nor ``shingle_text``
    see).
    """
    folded = plain.casefold()
    if _has_non_ascii_digit(folded):  # rare: let the regex say what a digit is
        folded = _DIGIT_RUN.sub(_number_word, folded)
        return folded.encode("utf-8", "surrogatepass").translate(_ASCII_TO_SPACE)
    data = folded.encode("utf-8", "surrogatepass")
    classes = data.translate(_BYTE_CLASSES)
    edits = [m.span(1) for m in _SEPARATORS_IN_NUMBER.finditer(classes)]  # (start, end): delete
    edits += [(p, -1) for m in _DIGIT_LETTER.finditer(classes) for p in (m.start() + 1,)]
    edits += [(p, -1) for m in _LETTER_DIGIT.finditer(classes) for p in (m.start() + 1,)]
    if edits:
        edits.sort()
        pieces = []
        done = 0
        for start, end in edits:
            pieces.append(data[done:start])
            if end < 0:  # (position, -1): insert a space
                pieces.append(b" ")
                done = start
            else:
                done = end
        pieces.append(data[done:])
        data = b"".join(pieces)
    return data.translate(_ASCII_TO_SPACE)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """One item's title and cleaned text, made plain: the input of both signature and facts."""

    title: str
    body: str

    @classmethod
    def of(cls, title: str, text: str) -> _Prepared:
        body = "\n".join(clean_lines(text))
        return cls(_plain(unicodedata.normalize("NFKC", title)), _plain(body))

    def word_bytes(self) -> bytes:
        return _word_bytes(f"{self.title}\n{self.body}")


def _shingles_of(data: bytes) -> Iterator[bytes]:
    """Every shingle occurrence, repeats included (a set costs time that MinHash does not need)."""
    for line in data.split(b"\n"):
        words = line.split()
        if len(words) >= 3:
            yield from map(b" ".join, zip(words, words[1:], words[2:], strict=False))
        elif words:
            yield b" ".join(words)


def _shingle_hashes(data: bytes) -> npt.NDArray[np.uint32]:
    """``shingle_hash`` of every shingle of ``_shingles_of(data)``, in one C-level pipeline.

    The per-line ``map(join, zip(...))`` iterators are chained and hashed without a Python
    generator in between: about 130 ns a shingle instead of 240.
    """
    per_line: list[Iterable[bytes]] = []
    count = 0
    for line in data.split(b"\n"):
        words = line.split()
        if len(words) >= 3:
            per_line.append(map(b" ".join, zip(words, words[1:], words[2:], strict=False)))
            count += len(words) - 2
        elif words:
            per_line.append((b" ".join(words),))
            count += 1
    return np.fromiter(map(shingle_hash, itertools.chain.from_iterable(per_line)), np.uint32,
                       count)


def shingle_text(title: str, text: str) -> str:
    """Title and cleaned text as the shingles see them: one paragraph a line, lowercase words.

    Useful to show (``explain``) what two items were compared on.
    """
    data = _Prepared.of(title, text).word_bytes()
    kept = (b" ".join(words) for words in map(bytes.split, data.split(b"\n")) if words)
    return b"\n".join(kept).decode("utf-8", "surrogatepass")


def shingles(text: str) -> set[bytes]:
    """Word 3-shingles of ``shingle_text`` output, per line (paragraph order does not matter).

    A line shorter than three words is one shingle, so a short title or caption still counts.
    """
    return set(_shingles_of(text.encode("utf-8", "surrogatepass")))


def signature(title: str, text: str) -> Signature:
    """The signature of an item: empty title and text give EMPTY_SIGNATURE (matches nothing)."""
    return Signature(minhash_values(_shingle_hashes(_Prepared.of(title, text).word_bytes())))


# --- facts --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Facts:
    """What tells one story from another that was written on the same template.

    ``places`` is the caller's (region codes from the tagger); ``facts()`` leaves it empty, fill it
    with ``dataclasses.replace(f, places=...)``.
    """

    numbers: frozenset[str]
    names: frozenset[str]
    places: frozenset[str] = frozenset()
    # Day/month of the dates the text mentions ("16/7"), kept apart from the numbers: outlets
    # that republish a release a day later may move its date along (the feed farm's do).
    dates: frozenset[str] = frozenset()


# Legal references are template text, not facts: "Pasal 114 ayat (1)", "UU Nomor 35 Tahun 2009".
_LEGAL_ARTICLE = re.compile(r"(?:pasal|ayat|huruf|juncto)\s*\(?\s*\d+(?:\s*[a-z]\b)?\s*\)?")
_LEGAL_ACT = re.compile(r"no(?:mor|\.)?\s*\d+\s*(?:tahun|th\.?)\s*\d{4}")
_NUMBERISH = re.compile(r"\d+(?:[.,/-]\d+)*")
_NEXT_WORD = re.compile(r" ?([a-z]+)")
_THOUSANDS_DOT = re.compile(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?")
_THOUSANDS_COMMA = re.compile(r"\d{1,3}(?:,\d{3}){2,}(?:\.\d+)?")
_UNITS: Final = {
    "ribu": 10**3, "rb": 10**3, "juta": 10**6, "jt": 10**6,
    "miliar": 10**9, "milyar": 10**9, "triliun": 10**12,
}
_MONTHS: Final = {
    name: number
    for number, names in enumerate([
        "januari jan", "februari pebruari feb peb", "maret mar", "april apr", "mei",
        "juni jun", "juli jul", "agustus agu agt ags", "september sept sep", "oktober okt",
        "november nopember nov nop", "desember des",
    ], start=1)
    for name in names.split()
}


def normalize_number(raw: str, unit: str | None = None) -> str | None:
    """One spelling per value, Indonesian conventions: "12.500", "12500" -> "12500";
    "1,5" -> "1.5"; "Rp1,2 miliar" and "1.200.000.000" -> "1200000000"."""
    if _THOUSANDS_DOT.fullmatch(raw):
        raw = raw.replace(".", "").replace(",", ".")
    elif _THOUSANDS_COMMA.fullmatch(raw):
        raw = raw.replace(",", "")
    else:
        raw = raw.replace(",", ".")
        if raw.count(".") > 1:
            return None  # "1.2.3": a version or a list, not a quantity
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None
    if unit:
        value *= _UNITS[unit.lower()]
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def _day_month(day: str, month: int) -> str | None:
    d = int(day) if day.isdigit() and len(day) <= 2 else 0
    return f"{d}/{month}" if 1 <= d <= 31 and 1 <= month <= 12 else None


# A number with what decides its meaning, in one findall (a finditer and the calls on each match
# object cost several times more): its first digit, the two characters before it (one or none at
# the start of the text), the rest of the number, a ")" right after it, and the word after it.
# ASCII digits only: the caller takes _NUMBERISH for a text with others.
_NUMBER_IN_CONTEXT = re.compile(
    r"(?s)([0-9])(?:(?<=(..)[0-9])|(?<=(.)[0-9])|)([0-9]*(?:[.,/-][0-9]+)*)"
    r"(?=(\))?)(?=(?: ?([a-z]+))?)"
)


def _number_fact(raw: str, before: str, after_rp: bool, closing: str,
                 word: str) -> tuple[str | None, tuple[str, ...]]:
    """(date, numbers) of one number: ``before`` is the character before it (" " at the start),
    ``after_rp`` whether "rp" stands right before it, ``closing`` ")" if one follows it and
    ``word`` the word after it ("" if none)."""
    if (before.isalnum() or before in "._,") and not after_rp:
        return None, ()  # part of a word or a code: "G30S", "B1234"
    if "/" in raw or "-" in raw:
        parts = raw.replace("-", "/").split("/")
        with_year = len(parts) == 3 and len(parts[2]) in (2, 4)
        in_parentheses = len(parts) == 2 and "/" in raw and before == "(" and closing == ")"
        date = None
        if (with_year or in_parentheses) and parts[1].isdigit():
            date = _day_month(parts[0], int(parts[1]))
        if date is not None:
            return date, ()
        values = [normalize_number(p) for p in parts if p]
    else:
        if word in _MONTHS:
            date = _day_month(raw, _MONTHS[word])
            if date is not None:
                return date, ()
        unit = word if word in _UNITS else None
        if unit is None and len(raw) == 4 and raw.startswith(("19", "20")):
            return None, ()  # a year
        values = [normalize_number(raw, unit)]
    return None, tuple(v for v in values if v is not None)


_Context = tuple[str, str, str, str, str, str]  # the groups of a _NUMBER_IN_CONTEXT match
_Fact = tuple[str | None, tuple[str, ...]]
# _number_fact of the contexts seen: stories repeat dates, years and figures, and their contexts,
# within and across items.  A dict keyed by findall's own tuples rather than an lru_cache, whose
# wrapper builds a key from six arguments on every call.  Bounded: emptied when full.
_JUDGED: dict[_Context, _Fact] = {}
_JUDGED_MAX: Final = 16384


def _judged(context: _Context) -> _Fact:
    """``_number_fact`` of a ``_NUMBER_IN_CONTEXT`` match (its groups), remembered."""
    fact = _JUDGED.get(context)
    if fact is None:
        first, two, one, rest, closing, word = context
        fact = _number_fact(first + rest, two[1] if two else one or " ", two == "rp", closing,
                            word)
        if len(_JUDGED) >= _JUDGED_MAX:
            _JUDGED.clear()
        _JUDGED[context] = fact
    return fact


def _legal_article_sub(low: str) -> str:
    """``_LEGAL_ARTICLE.sub(" ", low)``, with the regex tried only where its keywords stand
    (found with str.find) rather than at every character: a match can only start there."""
    starts = []
    for keyword in ("pasal", "ayat", "huruf", "juncto"):
        at = low.find(keyword)
        while at >= 0:
            starts.append(at)
            at = low.find(keyword, at + 1)
    pieces: list[str] = []
    done = 0
    for at in sorted(starts):
        if at < done:
            continue
        m = _LEGAL_ARTICLE.match(low, at)
        if m:
            pieces += (low[done:at], " ")
            done = m.end()
    if not pieces:
        return low
    pieces.append(low[done:])
    return "".join(pieces)


def _numbers(plain: str) -> tuple[set[str], set[str]]:
    """(numbers, dates) of a plain text.

    Dates are "(16/7/2024)", "(16/7)", "16/07/2024", "16-7-2024", "16 Juli 2024"; a slash pair
    without a year is a date only in parentheses (the Indonesian news convention), so "1/2
    hektare" is two numbers.  Years are left out: every story of the window shares them.

    A number's facts depend only on it and its context, so each distinct (context, number) is
    judged once: a story repeats its dates and figures.
    """
    numbers: set[str] = set()
    dates: set[str] = set()
    low = plain.lower()
    if "pasal" in low or "ayat" in low or "huruf" in low or "juncto" in low:
        low = _legal_article_sub(low)
    if "no" in low:
        low = _LEGAL_ACT.sub(" ", low)
    if _has_non_ascii_digit(low):
        found = []
        for m in _NUMBERISH.finditer(low):
            start, end = m.span()
            follower = _NEXT_WORD.match(low, end)
            found.append((m.group(), low[start - 1] if start else " ",
                          low.endswith("rp", 0, start), low[end:end + 1],
                          follower.group(1) if follower else ""))
        judged = [_number_fact(*context) for context in found]
    else:
        judged = list(map(_judged, set(_NUMBER_IN_CONTEXT.findall(low))))
    for date, values in judged:
        if date is not None:
            dates.add(date)
        numbers.update(values)
    return numbers, dates


# Capitalised words that are not names: institutions, offices, ranks, titles, honorifics, days,
# months, and the function words that start sentences or quotes.  Names of places go through:
# they are the facts that tell Polres Jember's report from Polres Lumajang's.
_NOT_NAME_WORDS: Final = """
kabupaten kab kota kecamatan kec desa kelurahan kel dusun dukuh rt rw jalan jl jln gang gg raya
provinsi prov pemkab pemkot pemprov pemda pemerintah pemerintahan negara republik ri nkri
indonesia jawa timur jatim tengah barat utara selatan wilayah daerah kawasan
bupati wabup wakil wali walikota wawali gubernur wagub camat lurah kades kadus sekdes perangkat
kepala kadis kabid kasi kasubag kasubbag kabag kasat kasatreskrim kasatresnarkoba kasatlantas
kanit kasubsi kapolres kapolresta kapolrestabes kapolsek kapolda wakapolres wakapolda kasihumas
sekretaris sekda sekdakab ketua wakil anggota staf pejabat plt plh pj direktur dirut manajer
dprd dpr dpd mpr dinas dinkes disdik dishub disperindag diskoperindag disnaker dispendukcapil
disparbud dkp dlh bpbd bmkg bpjs bps bpn bnn bnnk kpu bawaslu satpol pp damkar pmi puskesmas rsud
badan kantor balai unit upt uptd stasiun pos meteorologi klimatologi geofisika
polres polresta polrestabes polsek polda polri polisi kepolisian satresnarkoba satreskrim
satlantas satnarkoba satintelkam satsamapta satbinmas sat resnarkoba reskrim lantas laka gakkum
humas sie propam tni kodim koramil dandim danramil babinsa bhabinkamtibmas lanal lantamal
akp akbp kompol kombes iptu ipda aiptu aipda bripka brigpol brigadir bripda briptu bharada
bharaka bharatu irjen brigjen pol letkol mayor kapten lettu letda serka sertu kopda praka
kejaksaan kejari kejati jaksa pengadilan pn hakim kuhp uu pasal ayat perda perbup nomor no
tentang undang-undang mapolres mapolresta mapolsek mako apbd apbn apbdes spbu umkm asn pns
bapak ibu pak bu mas mbak kak adik saudara sdr haji hj dr drs dra ir prof sh se mm msi mpd spd
amd st gus kiai kyai kh ustaz ustadz habib
senin selasa rabu kamis jumat sabtu minggu ahad
januari februari maret april mei juni juli agustus september oktober november desember
wib wita wit rp km kg cm mm ton liter persen
dalam menurut sementara selain saat hal ia dia beliau mereka kami kita saya aku anda namun tetapi
tapi sedangkan adapun untuk dengan di ke dari pada yang dan atau ini itu tersebut sebelumnya
kemudian setelah sebab karena jika bila apabila berdasarkan terkait akibat hingga sampai bahkan
meski meskipun oleh sebagai para seluruh semua setiap tak tidak juga lebih masih sudah telah
ada akan agar supaya sehingga maka lalu lantas usai ketika sejak selama tahun bulan hari pekan
minggu pukul sekitar kurang lebih diketahui dijelaskan disebutkan selanjutnya berikut pihaknya
the
"""
_NOT_NAMES: Final = frozenset(_NOT_NAME_WORDS.split())

# What a sentence, a quote or a parenthesis starts after (opening quotes are made '"' first).
_SENTENCE_START: Final = frozenset('.!?:;"([\n')


def _capital_runs(capital: str, letter: str) -> re.Pattern[str]:
    """A run of capitalised words ("Bupati Lamongan Hendra Wicaksono"), found with the two
    characters before it (one or none at the start of the text) and split off its first letter,
    all in one findall: a third of the cost of a finditer and the calls on its match objects.

    Latin capitals only: that is what Indonesian names are written in.  The quantifiers are
    possessive, which changes no match (nothing follows that could make them give back) and
    saves the engine its backtracking bookkeeping.
    """
    word = f"{letter}*+(?:-{letter}++)*+"
    return re.compile(f"(?s)({capital})(?:(?<=(..){capital})|(?<=(.){capital})|)"
                      f"({word}(?: {capital}{word})*+)")


_CAPITAL_RUN_IN_CONTEXT = _capital_runs("[A-ZÀ-ÖØ-Þ]", r"[^\W_]")
# The same on ASCII text, where these classes match the same characters and test quicker.
_ASCII_CAPITAL_RUN_IN_CONTEXT = _capital_runs("[A-Z]", "[0-9A-Za-z]")


def _names(text: str) -> set[str]:
    """Capitalised words, and pairs of them ("hendra wicaksono"), except generic words and common
    words that happen to start a sentence: a word also written in lower case, or only ever seen
    sentence-initial, is no name.  Acronyms count wherever they stand (suspects' initials).

    Each distinct (context, run) is sorted once into one of three lists; the words of each list
    are then cut with one casefold and one split (casefolding is per character, so the words of
    the joined runs are the runs' words).  Pairs are made only of the runs that hold names.
    """
    whole: list[str] = []  # every word seen capitalised where no sentence starts
    initial: list[str] = []  # the first word starts a sentence, a quote or a parenthesis
    tails: list[str] = []  # confirmed words of runs whose first word is not (initial or fragment)
    runs = (_ASCII_CAPITAL_RUN_IN_CONTEXT if text.isascii() else _CAPITAL_RUN_IN_CONTEXT).findall
    for first, two, one, rest in set(runs(text)):
        run = first + rest
        before = two[1] if two else one or "\n"
        if before.isalnum() or before == "-":
            tails.append(rest.partition(" ")[2])  # "iPhone", "e-KTP": the first is a fragment
            continue
        if before == " " and two:
            before = two[0]
        if before not in _SENTENCE_START or (rest and run.split(" ", 1)[0].isupper()):
            whole.append(run)
        else:
            initial.append(run)
            tails.append(rest.partition(" ")[2])
    confirmed = " ".join(filter(None, (*whole, *tails))).casefold().split(" ")
    candidates = {w for w in set(confirmed).difference(_NOT_NAMES) if len(w) > 1}
    if not candidates:
        return set()
    names = candidates.difference(_written(text, candidates))
    # Pairs: every run's words on a line of their own, "\n" never being a name.
    multi = [run for run in (*whole, *initial, *tails) if " " in run]
    if names and multi:
        words = "\n".join(multi).casefold().replace("\n", " \n ").split(" ")
        named = list(map(names.__contains__, words))
        both = map(operator.and_, named, named[1:])  # both words of the pair are names
        names.update([f"{a} {b}" for a, b in set(itertools.compress(itertools.pairwise(words),
                                                                     both))])
    return names


# Words as written (see _written): every ASCII byte but letters and digits is a space.
_ASCII_WORD_BYTES: Final = bytes(b if b >= 0x80 or chr(b).isalnum() else 0x20 for b in range(256))


def _written(text: str, words: Iterable[str]) -> list[str]:
    """Those of ``words`` (without whitespace) that stand in ``text`` as a word, as written:
    between ASCII characters other than letters and digits (or the ends of the text).

    A candidate name is seldom found in the text in lower case at all: a literal search per word
    settles most, and only those found are checked for their boundaries, rather than cutting the
    whole text into words.  A word holding punctuation is never found between spaces, as it is
    never one of the text's words."""
    data = text.encode("utf-8", "surrogatepass")
    found = [(w, encoded) for w in words
             if (encoded := w.encode("utf-8", "surrogatepass")) in data]
    if not found:
        return []
    spaced = b" " + data.translate(_ASCII_WORD_BYTES) + b" "
    return [w for w, encoded in found if b" " + encoded + b" " in spaced]


def _facts_of(item: _Prepared) -> Facts:
    source = item.body or item.title
    numbers, dates = _numbers(source)
    return Facts(numbers=frozenset(numbers), names=frozenset(_names(source)),
                 dates=frozenset(dates))


def facts(title: str, text: str) -> Facts:
    """Numbers, dates and proper names of the story's text (the title's only when it has none).

    Titles are left out otherwise: copies reword them freely and Indonesian headlines capitalise
    every word.  Years are left out (the whole window shares them), and so are legal references
    ("Pasal 114 ayat (1)"), which every report of one kind repeats.
    """
    return _facts_of(_Prepared.of(title, text))


def fingerprint(title: str, text: str) -> tuple[Signature, Facts]:
    """``signature`` and ``facts`` of one item, cleaning its text once."""
    item = _Prepared.of(title, text)
    return Signature(minhash_values(_shingle_hashes(item.word_bytes()))), _facts_of(item)


def fingerprint_bytes(title: str, text: str) -> tuple[bytes, Facts]:
    """``fingerprint`` with the signature as ``Signature.to_bytes`` gives it: what is stored."""
    item = _Prepared.of(title, text)
    return _minhash_bytes(_shingle_hashes(item.word_bytes())), _facts_of(item)


# --- the verdict --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision on one pair, with the estimated Jaccard and a sentence saying why."""

    same: bool
    jaccard: float
    reason: str


def overlap(a: frozenset[str], b: frozenset[str]) -> float | None:
    """|A & B| / min(|A|, |B|), or None when either side has too few facts to judge by.

    The smaller side in the denominator: a copy that dropped or added a sentence still has
    nearly all of the other's facts.
    """
    if len(a) < MIN_FACTS or len(b) < MIN_FACTS:
        return None
    return len(a & b) / min(len(a), len(b))


def _differ(a: frozenset[str], b: frozenset[str], share: float | None) -> bool:
    return share is not None and min(len(a), len(b)) - len(a & b) >= MIN_UNSHARED


def _conflict(a: frozenset[str], b: frozenset[str], share: float | None, bound: float) -> bool:
    return share is not None and share < bound and _differ(a, b, share)


def _listing(values: frozenset[str]) -> str:
    return ", ".join(sorted(values))


def _share(kind: str, a: frozenset[str], b: frozenset[str], value: float | None) -> str:
    if value is None:
        return f"{kind}: too few to compare ({len(a)} vs {len(b)})"
    return f"{kind}: {len(a & b)} of min({len(a)}, {len(b)}) shared = {value:.2f}"


def same_story(a_sig: Signature, a_facts: Facts, b_sig: Signature, b_facts: Facts) -> Verdict:
    """Whether two items are copies of one story, and why (the ``explain`` command shows it).

    Same when the texts are similar (estimated Jaccard >= MATCH_THRESHOLD) and the facts do not
    conflict.  Conflicts: numbers sharing less than NUMBER_OVERLAP_MIN with at least MIN_UNSHARED
    of the smaller side's missing from the other; dates both known and disjoint while at least
    MIN_UNSHARED numbers differ (a market report of Monday against Thursday's, most prices
    unchanged: a date alone does not count, since copies republished a day later may move it);
    places both known and disjoint; names as numbers, with NAME_OVERLAP_MIN.  At
    CERTAIN_THRESHOLD and above only numbers and dates count: near-identical texts are one story
    even if the tagger disagrees about places or a name is spelt two ways.
    """
    if a_sig.is_empty or b_sig.is_empty:
        return Verdict(False, 0.0, "different: an item without text matches nothing")
    j = estimated_jaccard(a_sig, b_sig)
    if j < MATCH_THRESHOLD:
        return Verdict(False, j, f"different: text similarity {j:.3f} < {MATCH_THRESHOLD}")
    numbers = overlap(a_facts.numbers, b_facts.numbers)
    names = overlap(a_facts.names, b_facts.names)
    details = "; ".join((_share("numbers", a_facts.numbers, b_facts.numbers, numbers),
                         _share("names", a_facts.names, b_facts.names, names)))
    if _conflict(a_facts.numbers, b_facts.numbers, numbers, NUMBER_OVERLAP_MIN):
        return Verdict(False, j, f"different: text similarity {j:.3f} but numbers conflict "
                                 f"(< {NUMBER_OVERLAP_MIN}); {details}")
    if (a_facts.dates and b_facts.dates and not a_facts.dates & b_facts.dates
            and _differ(a_facts.numbers, b_facts.numbers, numbers)):
        return Verdict(False, j, f"different: text similarity {j:.3f} but dates conflict "
                                 f"({_listing(a_facts.dates)} vs {_listing(b_facts.dates)}) "
                                 f"and numbers differ; {details}")
    if j >= CERTAIN_THRESHOLD:
        return Verdict(True, j, f"same: text similarity {j:.3f} >= {CERTAIN_THRESHOLD}; {details}")
    if a_facts.places and b_facts.places and not a_facts.places & b_facts.places:
        return Verdict(False, j, f"different: text similarity {j:.3f} but places conflict "
                                 f"({_listing(a_facts.places)} vs {_listing(b_facts.places)})")
    if _conflict(a_facts.names, b_facts.names, names, NAME_OVERLAP_MIN):
        return Verdict(False, j, f"different: text similarity {j:.3f} but names conflict "
                                 f"(< {NAME_OVERLAP_MIN}); {details}")
    return Verdict(True, j, f"same: text similarity {j:.3f} >= {MATCH_THRESHOLD}; {details}")
