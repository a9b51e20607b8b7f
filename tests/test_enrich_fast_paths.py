"""The fast paths of enrich's stages give exactly what the plain versions they replace give.

Stored hashes, signatures and facts are compared across items enriched by different versions,
so a fast path that changed a single byte would split duplicates or merge stories.  Each test
checks a fast path against the straightforward code it stands for, or the fact about Python's
Unicode tables that its equivalence rests on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.enrich import _facts_json, facts_to_json, text_hash
from aggregator.similarity import (
    _ASCII_TO_SPACE,
    Facts,
    _written,
    fingerprint,
    fingerprint_bytes,
)

_WORDS = re.compile(r"\w+")

# Characters the fast paths treat specially, mixed into generated text.
_SPECIAL = ("’", "“", "”", "–", "—", "é", "É", "ß", "İ", "\u212a", "Σ", "ς", "٣", "²", "½",
            "\u00a0", "\u200b", "\u3000", "\ud800", "_", "'", "-", ".", "\n", "\t", "  ",
            "appeared", "APPEARED", "Kota Batu", "Rp12.500")
_TEXT = st.lists(st.one_of(st.text(max_size=8), st.sampled_from(_SPECIAL)), max_size=30).map(
    "".join)


def _text_hash_by_regex(title: str, text: str) -> str:
    folded = unicodedata.normalize("NFKC", f"{title}\n{text}").lower()
    return hashlib.sha256(" ".join(_WORDS.findall(folded)).encode()).hexdigest()


def test_word_characters_are_alnum_or_underscore() -> None:
    r"""text_hash's fast path cuts words with str.isalnum where the regex says ``\w``."""
    word = re.compile(r"\w")
    assert all(bool(word.match(c)) == (c.isalnum() or c == "_")
               for c in map(chr, range(sys.maxunicode + 1)))


def test_latin1_lowers_within_latin1() -> None:
    assert all(len(c.lower()) == 1 and ord(c.lower()) < 256 for c in map(chr, range(256)))


def test_only_two_characters_outside_ascii_lower_to_ascii() -> None:
    """clean_lines looks for "appeared" in the ASCII-lowered bytes instead of text.lower()."""
    to_ascii = [c for c in map(chr, range(0x80, sys.maxunicode + 1))
                if any(ord(x) < 0x80 for x in c.lower())]
    assert to_ascii == ["\u0130", "\u212a"]  # İ -> "i" + combining dot, the Kelvin sign -> "k"


@settings(max_examples=500, deadline=None)
@given(_TEXT, _TEXT)
def test_text_hash_is_the_regex_words(title: str, text: str) -> None:
    assert text_hash(title, text) == _text_hash_by_regex(title, text)


def test_text_hash_of_many_symbols_is_the_regex_words() -> None:
    text = "".join(map(chr, range(0x2000, 0x2400))) + " Kota Batu – “Rp 12.500” café"
    assert text_hash("Judul", text) == _text_hash_by_regex("Judul", text)


@settings(max_examples=500, deadline=None)
@given(_TEXT, st.lists(st.one_of(st.text(min_size=1, max_size=6),
                                 st.sampled_from(["kota", "batu", "al-hikmah", "é", "x"])),
                       max_size=8))
def test_written_is_membership_in_the_words_as_written(text: str, words: list[str]) -> None:
    words = [w for w in words if w and not any(c.isspace() for c in w)]
    as_written = text.encode("utf-8", "surrogatepass").translate(_ASCII_TO_SPACE).split()
    expected = [w for w in words if w.encode("utf-8", "surrogatepass") in as_written]
    assert _written(text, words) == expected


@settings(max_examples=200, deadline=None)
@given(_TEXT, _TEXT)
def test_fingerprint_bytes_is_fingerprint(title: str, text: str) -> None:
    sig, found = fingerprint(title, text)
    data, found_too = fingerprint_bytes(title, text)
    assert data == sig.to_bytes()
    assert found_too == found


def test_facts_json_is_facts_to_json_of_the_replaced_facts() -> None:
    found = Facts(numbers=frozenset({"12500", "3"}), names=frozenset({"budi", "ani é"}),
                  dates=frozenset({"16/7"}))
    places = frozenset({"35.07", "pair:35.05"})
    expected = facts_to_json(dataclasses.replace(found, places=places))
    assert _facts_json(found, places) == expected
    assert expected == json.dumps({"numbers": ["12500", "3"], "names": ["ani é", "budi"],
                                   "places": ["35.07", "pair:35.05"], "dates": ["16/7"]},
                                  ensure_ascii=False)
