"""Tag and fingerprint a normalised item: the pure half of clustering and region tagging.

Runs in the parse workers next to normalisation, so the database thread only has to look up
and compare, never to compute.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import unicodedata
from typing import Final

from .gazetteer import load
from .models import Item
from .similarity import Facts, fingerprint_bytes
from .tagger import tag

_WORDS = re.compile(r"\w+")


def _latin1_word_table() -> bytes:
    r"""Latin-1 byte to byte: a word character (``\w``) to its lower case, any other to a space.

    Every Latin-1 character lowers to one Latin-1 character, whatever surrounds it (the only
    lowering that depends on the neighbours is the Greek capital sigma's).
    """
    table = bytearray()
    for b in range(256):
        char = chr(b)
        table.append(ord(char.lower()) if char.isalnum() or char == "_" else ord(" "))
    return bytes(table)


_LATIN1_WORDS: Final = _latin1_word_table()
_ASCII_BYTES: Final = bytes(range(0x80))
_SPACES = re.compile(b"  +")  # a literal start: found quicker than runs of one space or more
# More characters to replace than this, one str.replace each would cost more than the regex.
_MAX_REPLACED: Final = 64


@functools.lru_cache(maxsize=4096)
def _separates(char: str) -> bool:
    """Whether a character outside Latin-1 is no word character, lowered or not (an en dash, a
    curly quote): a space in its place, before lower-casing, leaves the same words."""
    return not char.isalnum() and char.lower() == char


def text_hash(title: str, text: str) -> str:
    r"""Identical wording, whatever the markup, case or spacing: the cheapest duplicate test.

    The SHA-256 of the ``\w+`` words of the NFKC-normalised, lower-cased text, joined by one
    space.  In the usual case (Latin-1 letters; what lies outside Latin-1 is punctuation) the
    words are cut at C speed rather than by a regex findall (150 ns a word) after a str.lower
    (5 ns a character unless the text is ASCII): the punctuation outside Latin-1 is replaced by
    spaces, one bytes.translate lowers the word characters and makes every other one a space,
    and runs of spaces become one.  ``\w`` in a str pattern is exactly ``str.isalnum()`` or "_"
    (the tests check every code point), so the bytes hashed are the same.
    """
    joined = unicodedata.normalize("NFKC", f"{title}\n{text}")
    if not joined.isascii():
        residue = set(joined.encode("utf-8", "surrogatepass").translate(None, _ASCII_BYTES)
                      .decode("utf-8", "surrogatepass"))
        wide = [char for char in residue if char > "\xff"]
        if len(wide) > _MAX_REPLACED or not all(map(_separates, wide)):
            # Greek, Cyrillic, İ, ... or a hostile number of symbols: the regex says.
            words = _WORDS.findall(joined.lower())
            return hashlib.sha256(" ".join(words).encode()).hexdigest()
        for char in wide:  # lone surrogates too: they are no word characters
            joined = joined.replace(char, " ")
    data = _SPACES.sub(b" ", joined.encode("latin-1").translate(_LATIN1_WORDS)).strip(b" ")
    if not data.isascii():
        data = data.decode("latin-1").encode()
    return hashlib.sha256(data).hexdigest()


_FACT_FIELDS = tuple(f.name for f in dataclasses.fields(Facts))


def facts_to_json(f: Facts) -> str:
    # Field by field rather than dataclasses.asdict, whose deep copy of every set cost more
    # than the rest of the encoding.
    return _FACTS_ENCODER.encode({k: sorted(getattr(f, k)) for k in _FACT_FIELDS})


# json.dumps(..., ensure_ascii=False) builds an encoder for every call; this is the one it builds.
_FACTS_ENCODER: Final = json.JSONEncoder(ensure_ascii=False)


def _facts_json(found: Facts, places: frozenset[str]) -> str:
    """``facts_to_json(dataclasses.replace(found, places=places))`` without the copy."""
    return _FACTS_ENCODER.encode(
        {k: sorted(places if k == "places" else getattr(found, k)) for k in _FACT_FIELDS})


def facts_from_json(text: str) -> Facts:
    data = json.loads(text)
    return Facts(**{k: frozenset(v) for k, v in data.items()})


def _pair_folded(code: str) -> str:
    """Kota and Kabupaten Blitar count as one place when comparing two items' facts: a bare
    "Blitar" is settled by context, and two copies of one release may carry different context.
    Names and numbers still tell a Kota story from a Kabupaten one."""
    g = load()
    region = g.regions.get(code)
    if region is not None and region.short in g.pairs:
        return "pair:" + g.pairs[region.short][1]
    return code


def enrich(item: Item, *, member_name: str, home_region: str | None) -> Item:
    regions = tuple(tag(item.title, item.content_text, home_region=home_region,
                        outlet_names=[member_name]))
    places = frozenset(_pair_folded(r.code) for r in regions if r.level in ("kabupaten", "kota"))
    signature, found = fingerprint_bytes(item.title, item.content_text)
    return dataclasses.replace(
        item,
        regions=regions,
        signature=signature,
        facts=_facts_json(found, places),
        text_hash=text_hash(item.title, item.content_text),
    )

