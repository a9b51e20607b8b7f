"""Tag and fingerprint a normalised item: the pure half of clustering and region tagging.

Runs in the parse workers next to normalisation, so the database thread only has to look up
and compare, never to compute.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import unicodedata

from .gazetteer import load
from .models import Item
from .similarity import Facts, fingerprint
from .tagger import tag

_WORDS = re.compile(r"\w+")


def text_hash(title: str, text: str) -> str:
    """Identical wording, whatever the markup, case or spacing: the cheapest duplicate test."""
    folded = unicodedata.normalize("NFKC", f"{title}\n{text}").lower()
    return hashlib.sha256(" ".join(_WORDS.findall(folded)).encode()).hexdigest()


_FACT_FIELDS = tuple(f.name for f in dataclasses.fields(Facts))


def facts_to_json(f: Facts) -> str:
    # Field by field rather than dataclasses.asdict, whose deep copy of every set cost more
    # than the rest of the encoding.
    return json.dumps({k: sorted(getattr(f, k)) for k in _FACT_FIELDS}, ensure_ascii=False)


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
    sig, found = fingerprint(item.title, item.content_text)
    return dataclasses.replace(
        item,
        regions=regions,
        signature=sig.to_bytes(),
        facts=facts_to_json(dataclasses.replace(found, places=places)),
        text_hash=text_hash(item.title, item.content_text),
    )

