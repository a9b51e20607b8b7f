"""``sources.opml``: the members and their feeds, for readers who want the originals.

The layout follows ``aggregator.opml.render_opml`` (what ``export-opml`` writes), so one reader
import or one ``import-opml`` run handles either file: a folder per home region, sorted by name,
with members in the order given and ``category="/<region>"`` on each feed.  Unlike the export,
the published file has no ``dateCreated`` unless the caller passes a time, so an unchanged member
list gives unchanged bytes and the publisher can skip rewriting it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime

from lxml import etree

from ..textclean import strip_controls
from .model import Site, Source

# The same folder name export-opml uses, so both files group unplaced members alike.
NO_REGION = "Tanpa wilayah"


def render_sources_opml(site: Site, sources: Sequence[Source],
                        created: datetime | None = None) -> bytes:
    """OPML 2.0 of the members' feeds grouped by home region; ``created`` sets dateCreated."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = _text(f"{site.name}: member feeds")
    if created is not None:
        etree.SubElement(head, "dateCreated").text = format_datetime(created)
    body = etree.SubElement(root, "body")
    groups: dict[str, list[Source]] = {}
    for source in sources:
        groups.setdefault(region_folder(source), []).append(source)
    for region in sorted(groups):
        label = _text(region)
        folder = etree.SubElement(body, "outline", text=label, title=label)
        for source in groups[region]:
            name = _text(source.name)
            etree.SubElement(folder, "outline", type="rss", text=name, title=name,
                             xmlUrl=source.feed_url, htmlUrl=source.site, category=f"/{label}")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def region_folder(source: Source) -> str:
    """A blank region is as good as none: it would make a folder with no name."""
    region = (source.region or "").strip()
    return region or NO_REGION


def _text(value: str) -> str:
    # lxml refuses control characters outright, failing the whole file over one member's name.
    return strip_controls(value)
