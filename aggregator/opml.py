"""OPML 2.0 in and out: the members' feeds, grouped by home region.

Reading uses lxml with entities and network access off: an OPML file from a stranger is as hostile
as any feed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import urlsplit

from lxml import etree

from .config import Config


class OpmlError(Exception):
    pass


@dataclass(frozen=True)
class Outline:
    title: str
    xml_url: str
    html_url: str | None
    category: str | None


def render_opml(config: Config, now: datetime) -> bytes:
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = f"{config.association.name}: member feeds"
    etree.SubElement(head, "dateCreated").text = format_datetime(now)
    body = etree.SubElement(root, "body")
    groups: dict[str, list[int]] = {}
    for i, member in enumerate(config.members):
        groups.setdefault(member.region or "Tanpa wilayah", []).append(i)
    for region in sorted(groups):
        folder = etree.SubElement(body, "outline", text=region, title=region)
        for i in groups[region]:
            m = config.members[i]
            for url in m.feeds:
                etree.SubElement(folder, "outline", type="rss", text=m.name, title=m.name,
                                 xmlUrl=url, htmlUrl=m.site, category=f"/{region}")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def parse_opml(data: bytes) -> list[Outline]:
    # lxml still expands internal entities in attributes; no OPML needs a DTD at all.
    if re.search(rb"<!(DOCTYPE|ENTITY)", data[:65536], re.IGNORECASE):
        raise OpmlError("document type declarations are not accepted in OPML")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise OpmlError(f"not well-formed XML: {exc}") from None
    if root.tag != "opml":
        raise OpmlError(f"root element is <{root.tag}>, not <opml>")
    found: list[Outline] = []
    for node in root.iter("outline"):
        url = (node.get("xmlUrl") or node.get("xmlurl") or "").strip()
        if not url:
            continue
        parent = node.getparent()
        category = node.get("category")
        if not category and parent is not None and parent.tag == "outline" \
                and not parent.get("xmlUrl"):
            category = parent.get("title") or parent.get("text")
        found.append(Outline(
            title=(node.get("title") or node.get("text") or "").strip(),
            xml_url=url,
            html_url=(node.get("htmlUrl") or node.get("htmlurl") or "").strip() or None,
            category=category.strip("/ ") if category else None,
        ))
    return found


def member_id_for(url: str) -> str:
    """A member id from a site's host: 'https://www.portalmadura.com/' -> 'portalmadura'."""
    host = (urlsplit(url).hostname or "member").lower()
    host = re.sub(r"^(www|m|amp)\.", "", host)
    label = host.split(".")[0]
    return re.sub(r"[^a-z0-9_-]+", "-", label).strip("-")[:60] or "member"
