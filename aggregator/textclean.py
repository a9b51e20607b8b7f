"""Clean the HTML and text that members' feeds carry.

Members' WordPress feeds wrap every article in the same furniture ("The post ... appeared first
on ...", "Baca juga: ...", share buttons, comment prompts).  It is noise to readers of the merged
feed and, worse, it is shared text that would pull unrelated stories into one cluster, so it goes
here, before anything compares texts.

The HTML allow-list is nh3's (the Rust ammonia sanitiser): scripts, styles, event handlers,
iframes, forms and javascript:/data: URLs cannot survive it.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import nh3

# C0 controls other than tab, newline and carriage return (and DEL) make XML invalid: a single one
# in any string makes lxml reject a whole published feed.  Lone surrogates (a JSON Feed may say
# "\ud800") cannot be encoded at all: nh3, the database and every renderer would raise on one.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff]")
_ENTITY_LIKE = re.compile(r"&(#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});")
_BARE_NUMERIC = re.compile(r"&#(\d{2,7})(?![\d;])")
_DOUBLE_NUMERIC = re.compile(r"&amp;(#\d{1,7};|#[xX][0-9a-fA-F]{1,6};)")
_WS = re.compile(r"[ \t\r\f\v\u00a0\u200b\u2009\u202f]+")
_NEWLINES = re.compile(r"\s*\n\s*")

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dfn", "div",
    "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "u", "ul",
}
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "time": {"datetime"},
    "blockquote": {"cite"},
    "q": {"cite"},
}
_URL_ATTRS = {"href", "src", "cite"}

# Text that starts a piece of furniture, not article.  "The post ... appeared first on" may span
# inline tags but never a block boundary.
_STARTS = (
    r"the post\b(?:(?!</?(?:p|div|li)\b).){0,400}?\bappeared first on\b"
    r"|artikel ini telah (?:tayang|terbit)"
    r"|(?:baca|simak|lihat|klik) (?:juga|pula|selengkapnya)\b"
    r"|berita terkait\s*:"
    r"|(?:bagikan|share)(?: (?:this|ini|artikel|berita)\w*)?\s*:"
    r"|klik untuk (?:berbagi|membagikan)"
    r"|(?:like|suka) (?:this|ini)\s*:"
    r"|(?:ikuti|follow|gabung)\b[^\n<]{0,80}\b(?:google news|whatsapp|telegram|channel|instagram)"
    r"|(?:dapatkan|simak) (?:update|berita|informasi)\b[^\n<]{0,80}\b"
    r"(?:google news|whatsapp|telegram)"
    r"|(?:tinggalkan|tulis|leave) (?:a )?(?:komentar|balasan|comment|reply)"
    r"|(?:continue reading|read more|baca selengkapnya|selengkapnya)\b"
)
_BOILERPLATE = re.compile(r"^\s*(?:" + _STARTS + ")", re.IGNORECASE | re.DOTALL)
# A whole block (and the inline tags that open it) whose text starts with furniture.
_BOILERPLATE_BLOCK = re.compile(
    r"<(p|div|li|h[1-6]|blockquote|figcaption)\b[^>]*>"
    r"(?:\s|&nbsp;|\u00a0|<(?:strong|b|em|i|span|a|u|h[1-6])\b[^>]*>)*"
    r"(?:" + _STARTS + r").*?</\1\s*>",
    re.IGNORECASE | re.DOTALL,
)
_TAIL = re.compile(
    r"\s*(?:\[(?:&#8230;|&hellip;|…|\.\.\.)\]"
    r"|(?:continue reading|read more|baca selengkapnya)\s*(?:»|&raquo;|→)?)\s*$",
    re.IGNORECASE,
)
_INLINE_FOOTER = re.compile(r"\bthe post\b.{0,400}?\bappeared first on\b[^.\n]{0,200}\.?",
                            re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_BLOCK_END = re.compile(
    r"</(p|div|li|h[1-6]|blockquote|figcaption|tr|pre|ul|ol|table)\s*>|<br\s*/?>", re.IGNORECASE
)
_EMPTY_BLOCK = re.compile(r"<(p|div|strong|em|b|span)\b[^>]*>\s*(?:&nbsp;|\u00a0)?\s*</\1>",
                          re.IGNORECASE)


def strip_controls(text: str) -> str:
    return _CONTROL.sub("", text)


def unescape(text: str) -> str:
    """Decode entities, including the doubly escaped ones ('&amp;#8217;') that some CMSs emit."""
    for _ in range(3):
        text = _BARE_NUMERIC.sub(r"&#\1;", text)
        decoded = html.unescape(text)
        if decoded == text or not _ENTITY_LIKE.search(decoded):
            return decoded
        text = decoded
    return text


def clean_line(text: str, limit: int) -> str:
    """A one-line plain text (titles, authors): no tags, entities decoded, whitespace folded."""
    text = unescape(_TAG.sub(" ", strip_controls(text[: limit * 4])))
    text = _WS.sub(" ", text.replace("\n", " ")).strip()
    return text[:limit].rstrip()


def sanitize_html(fragment: str, base_url: str | None = None) -> str:
    """Safe HTML: allow-listed tags and attributes, absolute http(s) links, no furniture."""
    if not fragment:
        return ""

    def attribute_filter(tag: str, attr: str, value: str) -> str | None:
        if attr in _URL_ATTRS:
            try:
                absolute = urljoin(base_url, value.strip()) if base_url else value.strip()
            except ValueError:  # 'http://[::1' as base or value; nh3 would only print it
                return None
            return absolute if absolute.lower().startswith(("http://", "https://")) else None
        return value

    cleaned = nh3.clean(
        # '&amp;#8217;' (a doubly escaped CMS entity) would show as '&#8217;' to readers.
        _DOUBLE_NUMERIC.sub(r"&\1", strip_controls(fragment)),
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https"},
        strip_comments=True,
        link_rel="noopener noreferrer nofollow",
        attribute_filter=attribute_filter,
        clean_content_tags={"script", "style", "iframe", "form", "noscript", "template", "object",
                            "embed", "svg", "math", "select", "textarea", "button"},
    )
    # Again after nh3: it decodes references such as '&#8;' into the control characters themselves.
    return remove_boilerplate(strip_controls(cleaned))


def remove_boilerplate(fragment: str) -> str:
    fragment = _BOILERPLATE_BLOCK.sub("", fragment)
    previous = None
    while previous != fragment:  # a dropped block may leave its parent empty
        previous = fragment
        fragment = _EMPTY_BLOCK.sub("", fragment)
    return _strip_tail(fragment).strip()


def _strip_tail(text: str) -> str:
    """Drop a trailing "[…]" or "Read more": only the last characters can hold one."""
    if "appeared first on" in text.lower():
        text = _INLINE_FOOTER.sub("", text)
    cut = max(0, len(text) - 120)
    return text[:cut] + _TAIL.sub("", text[cut:])


def html_to_text(fragment: str) -> str:
    """Readable plain text: one line per block, entities decoded, whitespace folded."""
    if not fragment:
        return ""
    # Newlines in the HTML source are just spaces; only block ends and <br> break lines.
    text = _BLOCK_END.sub("\n", fragment.replace("\r", " ").replace("\n", " "))
    text = unescape(_TAG.sub("", text))
    text = strip_controls(_WS.sub(" ", text))
    lines = [line.strip() for line in _NEWLINES.split(text)]
    kept = [line for line in lines if line and not _BOILERPLATE.match(line)]
    return _strip_tail("\n".join(kept)).strip()
