"""Canonical article URLs.

The same article reaches us as ``/amp/`` variants, with ``utm_*`` tails added by WordPress plugins,
with relative links, and with fragments.  Deduplication and clustering compare URLs, so every stage
after parsing sees only the canonical form built here.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urljoin, urlsplit, urlunsplit

# Parameters that identify a campaign or a click, never the article (Miniflux's list and more).
_TRACKING_EXACT = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "msclkid", "yclid", "igshid", "twclid", "ttclid",
        "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "oly_anon_id",
        "oly_enc_id", "rb_clickid", "s_cid", "vero_conv", "vero_id", "wickedid", "ref_src",
        "amp", "amp_js_v", "usqp", "outputtype",
    }
)
_TRACKING_PREFIX = ("utm_", "mtm_", "pk_", "hsa_", "__hs")
_AMP_PATH = re.compile(r"/amp/?$", re.IGNORECASE)
_AMP_SUFFIX = re.compile(r"(?<=[^/])\.amp(?=$|\.html?$)|-amp(?=\.html?$)", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def is_tracking_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING_EXACT or lowered.startswith(_TRACKING_PREFIX)


def canonical_url(link: str, base: str | None = None) -> str | None:
    """An absolute, tracking-free, AMP-folded, fragment-less form of ``link``; None if unusable.

    Only http(s) URLs are kept: a ``javascript:`` or ``mailto:`` "article link" is never an
    article.
    """
    link = (link or "").strip()
    if not link:
        return None
    if base:
        try:
            link = urljoin(base, link)
        except ValueError:
            return None
    if _SURROGATE.search(link):  # not encodable, so not an address anyone can follow
        return None
    try:
        parts = urlsplit(link)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    while host.startswith("amp."):
        # amp.example.com/x is the AMP rendering of www.example.com/x on a few Indonesian CMSs;
        # folding it onto the bare domain keeps both copies one article.
        host = host[4:]
    if not host:
        return None
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        netloc = f"[{host}]" if port in (None, _DEFAULT_PORTS[scheme]) else f"[{host}]:{port}"
    # Fold AMP on the decoded path, to a fixed point, so that canonical forms are canonical
    # again ('/%61mp', '/amp/amp/', 'x.amp.amp').
    path, previous = unquote(parts.path), None
    while path != previous:
        previous, path = path, _AMP_SUFFIX.sub("", _AMP_PATH.sub("/", path))
    # Re-quote so that %-encoded and raw forms of one path compare equal.
    path = quote(path or "/", safe="/:@!$&'()*+,;=-._~")
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not is_tracking_param(k)]
    return urlunsplit((scheme, netloc, path, urlencode(query, doseq=True), ""))


def host_of(url: str) -> str:
    """Lower-case host name of a URL ('' when it has none): the unit of per-host limits."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
