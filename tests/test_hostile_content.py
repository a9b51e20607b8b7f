"""Hostile member content, end to end: XML attacks, script in HTML, and routes to private addresses.

Each section starts from what a member's server could send and ends where the harm would show: the
published files, the database, the requests a server on 127.0.0.1 receives, the peak memory of a
real ``aggregator run --once`` process.  The attack documents are written here, one per route, so a
failure names the route that broke.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import feedparser
import httpcore
import lxml.etree
import lxml.html
import pytest
from conftest import StaticSite, feeds_json, make_config
from httpcore._backends.auto import AutoBackend

from aggregator import netguard
from aggregator.netguard import BlockedAddress, GuardedBackend
from aggregator.parse import ParseError, parse_feed

AGGREGATOR = [sys.executable, "-m", "aggregator"]
NOW = datetime.now(UTC).replace(microsecond=0)


# ------------------------------------------------------------------------- a recording server

@dataclass
class Recorder:
    """An HTTP server on 127.0.0.1 that answers everything and remembers every connection.

    Connections are counted when accepted, before any request line is read, so a client that
    connects and gives up still shows.
    """

    port: int = 0
    body: bytes = b""
    content_type: str = "application/xml"
    paths: list[str] = field(default_factory=list)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def seen(self) -> tuple[int, list[str]]:
        with self.lock:
            return self.connections, list(self.paths)


class _RecordingServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    recorder: Recorder

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.recorder.lock:
            self.recorder.connections += 1
        super().process_request(request, client_address)


class _RecordingHandler(BaseHTTPRequestHandler):
    server: _RecordingServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        rec = self.server.recorder
        with rec.lock:
            rec.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", rec.content_type)
        self.send_header("Content-Length", str(len(rec.body)))
        self.end_headers()
        self.wfile.write(rec.body)


@contextmanager
def serving(recorder: Recorder,
            handler: type[BaseHTTPRequestHandler] = _RecordingHandler) -> Iterator[Recorder]:
    server = _RecordingServer(("127.0.0.1", 0), handler)
    server.recorder = recorder
    recorder.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with serving(Recorder()) as rec:
        yield rec


# ------------------------------------------------------------------------------- documents

def rfc822(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def rss_item(title: str, link: str, description: str, hours_ago: float = 1.0,
             raw: bool = False) -> str:
    """An RSS 2.0 item; ``raw`` leaves the description as markup (for entity references)."""
    text = description if raw else escape(description)
    return (f"<item><title>{title if raw else escape(title)}</title><link>{escape(link)}</link>"
            f"<guid>{escape(link)}</guid><pubDate>{rfc822(NOW - timedelta(hours=hours_ago))}"
            f"</pubDate><description>{text}</description></item>")


def rss_doc(items: str, prolog: str = "", encoding: str = "UTF-8", site: str = "x") -> str:
    return (f'<?xml version="1.0" encoding="{encoding}"?>\n{prolog}\n<rss version="2.0"><channel>'
            f"<title>Kabar {site}</title><link>https://{site}.example.id/</link>"
            f"<description>uji</description>{items}</channel></rss>\n")


def atom_doc(entries: str, prolog: str = "", site: str = "x") -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>{prolog}\n'
            f'<feed xmlns="http://www.w3.org/2005/Atom"><title>Kabar {site}</title>'
            f'<id>https://{site}.example.id/</id><link href="https://{site}.example.id/"/>'
            f"<updated>{NOW.isoformat()}</updated>{entries}</feed>\n")


def atom_entry(title: str, link: str, content: str, content_type: str = "html") -> str:
    return (f"<entry><title>{escape(title)}</title><id>{escape(link)}</id>"
            f'<link rel="alternate" href="{escape(link)}"/>'
            f"<updated>{(NOW - timedelta(hours=1)).isoformat()}</updated>"
            f'<content type="{content_type}">{content}</content></entry>')


def rdf_doc(items: str, prolog: str = "", site: str = "x") -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n{prolog}\n'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f'<channel rdf:about="https://{site}.example.id/"><title>Kabar {site}</title>'
            f"<link>https://{site}.example.id/</link><description>uji</description></channel>"
            f"{items}</rdf:RDF>\n")


def laughs(levels: int = 9) -> str:
    """Nested entities, each ten of the one below: 10**levels copies of 'ha' from ~1 kB."""
    decls = ['<!ENTITY ha0 "ha">']
    decls += [f'<!ENTITY ha{n} "{f"&ha{n - 1};" * 10}">' for n in range(1, levels + 1)]
    return "<!DOCTYPE rss [\n" + "\n".join(decls) + "\n]>"


# One entity of 40 kB referenced 5,000 times: 200 MB of text from a 240 kB document.  Neither
# reference nor declaration is nested, which is what lets it past checks for nesting.
BIG = "B" * 40_000
QUADRATIC_REFS = "&big;" * 5_000
PADDING = "\n" * 70_000  # pushes what follows past any look at the first 64 KiB


def utf16(text: str) -> bytes:
    return text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")


def utf32(text: str) -> bytes:
    return text.replace('encoding="UTF-8"', 'encoding="UTF-32"').encode("utf-32")


def ebcdic(text: str) -> bytes:
    return text.replace('encoding="UTF-8"', 'encoding="cp037"').encode("cp037")


def utf7(text: str) -> bytes:
    """UTF-7 with every '<' and '!' after the declaration shifted into base64, as an attacker
    would write it to keep a literal ``<!ENTITY`` out of the bytes."""
    head, _, rest = text.replace('encoding="UTF-8"', 'encoding="UTF-7"').partition("?>")
    shifted = rest.replace("+", "+-").replace("<!", "+ADwAIQ-").replace("<", "+ADw-")
    return (head + "?>").encode("ascii") + shifted.encode("ascii")


def quadratic(padding: str = "") -> str:
    prolog = f'<!DOCTYPE rss [{padding}\n<!ENTITY big "{BIG}">\n]>'
    return rss_doc(rss_item("&big;", "https://x.example.id/q", QUADRATIC_REFS, raw=True), prolog)


# ------------------------------------------------------------------- 1. XML attacks, one stage

ENTITY_ATTACKS: dict[str, Callable[[], str]] = {
    "billion-laughs": lambda: rss_doc(
        rss_item("&ha9;", "https://x.example.id/l", "&ha9;", raw=True), laughs()),
    "quadratic-blowup": quadratic,
    "xxe-local-file": lambda: rss_doc(
        rss_item("&s;", "https://x.example.id/f", "&s;", raw=True),
        '<!DOCTYPE rss [\n<!ENTITY s SYSTEM "file:///etc/hostname">\n]>'),
    "xxe-url": lambda: rss_doc(
        rss_item("&r;", "https://x.example.id/u", "&r;", raw=True),
        '<!DOCTYPE rss [\n<!ENTITY r SYSTEM "http://127.0.0.1:9/entity">\n]>'),
    "parameter-entity": lambda: rss_doc(
        rss_item("x", "https://x.example.id/p", "&leak;", raw=True),
        '<!DOCTYPE rss [\n<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd">\n%p;\n]>'),
    "atom-internal-subset": lambda: atom_doc(
        atom_entry("x", "https://x.example.id/a", "&big;"),
        f'<!DOCTYPE feed [<!ENTITY big "{BIG}">]>'),
    "rss10-internal-subset": lambda: rdf_doc(
        '<item rdf:about="https://x.example.id/r"><title>&ha9;</title>'
        "<link>https://x.example.id/r</link></item>", laughs().replace("rss", "rdf:RDF", 1)),
}
ENCODINGS: dict[str, Callable[[str], bytes]] = {
    "utf-8": lambda text: text.encode("utf-8"),
    "utf-16": utf16,
    "utf-32": utf32,
    "utf-7": utf7,
    "ebcdic": ebcdic,
    "padded": lambda text: text.replace("[", "[" + PADDING, 1).encode("utf-8"),
    "padded-comment": lambda text: text.replace("[", "[<!--" + "p" * 70_000 + "-->", 1)
    .encode("utf-8"),
}


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("attack", list(ENTITY_ATTACKS))
def test_entity_declarations_are_refused_whatever_the_spelling(attack: str,
                                                              encoding: str) -> None:
    """Entities are refused in any encoding feedparser reads and at any distance from the start.

    Before: UTF-16/32/7, EBCDIC and padding past the first 64 KiB hid the declaration from the
    check, and feedparser expanded the "harmless" plain-text entity of the quadratic blowup into
    a 200 MB string (a gigabyte and 17 s for a 300 kB document with more references).
    """
    body = ENCODINGS[encoding](ENTITY_ATTACKS[attack]())
    started = time.perf_counter()
    with pytest.raises(ParseError) as info:
        parse_feed(body, "application/rss+xml")
    assert info.value.kind == "unsafe_xml", info.value
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize("content_type", ["text/xml", "text/html",
                                          "application/xml; charset=us-ascii"])
def test_entities_are_refused_when_the_content_type_and_the_document_disagree(
        content_type: str) -> None:
    """Served as ASCII, a UTF-7 document keeps its declarations from feedparser (which then reads
    them as text) but not from lxml, which on the fast route goes by the document's own
    declaration: the root is left as plain '<rss' so that the fast route would take it."""
    doc = quadratic()
    head, _, rest = doc.replace('encoding="UTF-8"', 'encoding="UTF-7"').partition("?>")
    prolog, _, root = rest.partition("<rss")
    body = (head + "?>").encode() + prolog.replace("<!", "+ADwAIQ-").replace(
        "]>", "+AF0-+AD4-").replace(">", "+AD4-").encode() + b"<rss" + root.encode()
    with pytest.raises(ParseError) as info:
        parse_feed(body, content_type)
    assert info.value.kind == "unsafe_xml"


def test_an_external_dtd_is_ignored_and_the_feed_read() -> None:
    """The refusal is for declarations only: an external DTD reference (RSS 0.91 feeds carry
    Netscape's) is ignored, never fetched, and the feed reads as usual."""
    doc = rss_doc(rss_item("Banjir surut", "https://x.example.id/b", "Air surut."),
                  '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
                  '"http://127.0.0.1:9/rss-0.91.dtd">')
    feed = parse_feed(doc.encode(), "application/rss+xml")
    assert [e.title for e in feed.entries] == ["Banjir surut"]


# Prologs on which feedparser's own regular expressions backtracked for seconds to hours: the
# encoding declaration's ('encoding="x"' over and over on the first line: cubic), and the DOCTYPE
# and ENTITY line patterns (thousands of blank lines or DOCTYPE starts before the root: square).
def slow_prolog(name: str) -> bytes:
    item = rss_item(f"Prolog lambat {name}", f"https://cpu.example.id/{name}", "Isi.")
    if name == "encoding-declarations":
        # Never closed: the pattern then tries every way to end it before giving up.
        rest = rss_doc(item).split("?>", 1)[1]
        return b'<?xml version="1.0"' + b' encoding="x"' * 1_000 + rest.encode()
    prolog = {"blank-lines": "\n" * 30_000, "doctype-starts": "<!DOCTYPE rss\n" * 10_000}[name]
    return rss_doc(item, prolog).encode()


SLOW_PROLOGS = ["encoding-declarations", "blank-lines", "doctype-starts"]


@pytest.mark.parametrize("name", SLOW_PROLOGS)
def test_pathological_prologs_parse_in_linear_time(name: str) -> None:
    """Before: 1,000 declarations took 4 s (2,000: 38 s, 4,000: 300 s), 30,000 blank lines 4 s,
    10,000 DOCTYPE starts 12 s; a 15 MB body of any would have held a parse worker for days."""
    body = slow_prolog(name)
    started = time.perf_counter()
    feed = parse_feed(body, "application/rss+xml")
    assert time.perf_counter() - started < 0.5
    assert [e.title for e in feed.entries] == [f"Prolog lambat {name}"]


# ----------------------------------------------------------------- 1. XML attacks, end to end

@dataclass(frozen=True)
class Attack:
    body: bytes
    kind: str | None  # the feed's error kind after the cycle; None or "warning": it was read
    title: str | None = None  # for a feed that was read: the item that must have arrived


def xml_attacks(secret: Path, remote: str) -> dict[str, Attack]:
    """Every XML route to a file, a URL or a memory blowup, as a member's server would send it.

    ``remote`` is a server that records hits and whose answers carry their own marker, so a fetch
    shows both as a hit and as the marker in the output.
    """
    file_url = secret.as_uri()
    xxe_file = rss_doc(rss_item("&s;", "https://xxe.example.id/f", "&s;", raw=True),
                       f'<!DOCTYPE rss [\n<!ENTITY s SYSTEM "{file_url}">\n]>')
    xxe_url = rss_doc(rss_item("&r;", "https://xxe.example.id/u", "&r;", raw=True),
                      f'<!DOCTYPE rss [\n<!ENTITY r SYSTEM "{remote}/entity">\n]>')
    parameter = rss_doc(rss_item("&leak;", "https://xxe.example.id/p", "&leak;", raw=True),
                        f'<!DOCTYPE rss [\n<!ENTITY % p SYSTEM "{remote}/p.dtd">\n%p;\n]>')
    # On the declaration's line, where feedparser's own DOCTYPE stripping does not look, so that
    # expat itself sees the external subset.
    external_dtd = rss_doc(
        rss_item("DTD luar diabaikan", "https://dtd.example.id/1", "Isi &leak; di sini", raw=True),
    ).replace("?>\n", f'?><!DOCTYPE rss SYSTEM "{remote}/rss.dtd">', 1)
    public_dtd = rss_doc(
        rss_item("DTD publik diabaikan", "https://dtd.example.id/2", "Isi biasa."),
        f'<!DOCTYPE rss PUBLIC "-//Sindikasi//DTD Uji//EN" "{remote}/public.dtd">')
    xinclude = atom_doc(atom_entry(
        "XInclude diabaikan", "https://xi.example.id/1",
        '<div xmlns="http://www.w3.org/1999/xhtml" xmlns:xi="http://www.w3.org/2001/XInclude">'
        f'<p>Awal</p><xi:include href="{remote}/xi.txt" parse="text"/>'
        f'<xi:include href="{file_url}" parse="text"/><p>Akhir</p></div>', "xhtml"))
    stylesheet = rss_doc(rss_item("Stylesheet diabaikan", "https://xsl.example.id/1", "Isi."),
                         f'<?xml-stylesheet type="text/xsl" href="{remote}/feed.xsl"?>')
    # An internal subset without a single entity: default attributes that would put a handler
    # and a javascript: link on the member's XHTML, if anything downstream kept them.
    attlist = atom_doc(
        atom_entry("ATTLIST dinetralkan", "https://attlist.example.id/1",
                   '<div xmlns="http://www.w3.org/1999/xhtml"><p>Isi <a>tautan</a></p></div>',
                   "xhtml"),
        '<!DOCTYPE feed [<!ATTLIST div onmouseover CDATA "alert(1)">'
        '<!ATTLIST a href CDATA "javascript:alert(2)">]>')
    atom_subset = atom_doc(atom_entry("x", "https://atom.example.id/1", "&s;"),
                           f'<!DOCTYPE feed [<!ENTITY s SYSTEM "{file_url}">]>')
    rdf_subset = rdf_doc('<item rdf:about="https://rdf.example.id/1"><title>&s;</title>'
                         "<link>https://rdf.example.id/1</link></item>",
                         f'<!DOCTYPE rdf:RDF [\n<!ENTITY s SYSTEM "{file_url}">\n]>')
    return {
        "billion-laughs.xml": Attack(rss_doc(
            rss_item("&ha9;", "https://lol.example.id/1", "&ha9;", raw=True), laughs()).encode(),
            "unsafe_xml"),
        "billion-laughs-utf16.xml": Attack(utf16(rss_doc(
            rss_item("&ha9;", "https://lol.example.id/2", "&ha9;", raw=True), laughs())),
            "unsafe_xml"),
        "quadratic.xml": Attack(quadratic().encode(), "unsafe_xml"),
        "quadratic-padded.xml": Attack(quadratic(PADDING).encode(), "unsafe_xml"),
        "quadratic-utf16.xml": Attack(utf16(quadratic()), "unsafe_xml"),
        "xxe-file.xml": Attack(xxe_file.encode(), "unsafe_xml"),
        "xxe-file-utf16.xml": Attack(utf16(xxe_file), "unsafe_xml"),
        "xxe-file-padded.xml": Attack(xxe_file.replace("[", "[" + PADDING, 1).encode(),
                                      "unsafe_xml"),
        "xxe-url.xml": Attack(xxe_url.encode(), "unsafe_xml"),
        "xxe-url-utf16.xml": Attack(utf16(xxe_url), "unsafe_xml"),
        "parameter-entity.xml": Attack(parameter.encode(), "unsafe_xml"),
        "parameter-entity-utf16.xml": Attack(utf16(parameter), "unsafe_xml"),
        "atom-internal-subset.xml": Attack(atom_subset.encode(), "unsafe_xml"),
        "rss10-internal-subset.xml": Attack(rdf_subset.encode(), "unsafe_xml"),
        "external-dtd.xml": Attack(external_dtd.encode(), None, "DTD luar diabaikan"),
        "public-dtd.xml": Attack(public_dtd.encode(), None, "DTD publik diabaikan"),
        "xinclude.xml": Attack(xinclude.encode(), None, "XInclude diabaikan"),
        "stylesheet.xml": Attack(stylesheet.encode(), None, "Stylesheet diabaikan"),
        "attlist.xml": Attack(attlist.encode(), None, "ATTLIST dinetralkan"),
        # Read; with a warning where the prolog is not well-formed.
        **{f"{name}.xml": Attack(slow_prolog(name), None if name == "blank-lines" else "warning",
                                 f"Prolog lambat {name}") for name in SLOW_PROLOGS},
    }


GOOD_TITLES = ["Banjir rob surut di pesisir Surabaya", "Harga cabai turun di Pasar Malang"]
# Generous for an interpreter with SQLAlchemy, lxml and feedparser loaded; the quadratic
# documents alone needed 600 MB to 3 GB before entities were refused in every spelling.
PEAK_RSS_MB = 300


def member(mid: str, *urls: str) -> dict[str, Any]:
    return {"id": mid, "name": f"Anggota {mid}", "site": f"https://{mid}.example.id/",
            "feeds": list(urls)}


def run_process(config: Path, cwd: Path) -> dict[str, Any]:
    """``aggregator run --once --json`` in its own process: peak memory is then its own."""
    env = {k: v for k, v in os.environ.items() if k != "AGGREGATOR_CONFIG"}
    proc = subprocess.run([*AGGREGATOR, "--config", str(config), "run", "--once", "--json",
                           "--no-progress"], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    summary["_output"] = proc.stdout + proc.stderr
    return summary


def database_dump(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def output_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file()}


def test_xml_attacks_end_to_end(workdir: Path, static_site: StaticSite, recorder: Recorder,
                                cli: Any) -> None:
    secret_marker = f"RAHASIA-{uuid.uuid4().hex}"
    remote_marker = f"JARAK-JAUH-{uuid.uuid4().hex}"
    secret = workdir.parent / "secret.txt"
    secret.write_text(secret_marker + "\n", encoding="utf-8")
    # What the remote server would hand a parser that asked: an entity for the external DTD and
    # the parameter entity, and the marker as text for the entity and XInclude.
    recorder.body = f'<!ENTITY leak "{remote_marker}">{remote_marker}'.encode()
    attacks = xml_attacks(secret, recorder.base)
    members = []
    for name, attack in attacks.items():
        (static_site.root / name).write_bytes(attack.body)
        members.append(member(name.split(".")[0], static_site.url(name)))
    good = rss_doc("".join(rss_item(t, f"https://baik.example.id/{i}", f"Isi berita {t}.")
                           for i, t in enumerate(GOOD_TITLES)), site="baik")
    members.append(member("baik", static_site.write("good.xml", good)))
    config = make_config(workdir, members)

    summary = run_process(config, workdir)

    assert summary["peak_rss_mb"] < PEAK_RSS_MB, summary
    state = feeds_json(cli, config)
    kinds = {url.rsplit("/", 1)[1]: row["error_kind"] for url, row in state.items()}
    expected = {name: attack.kind for name, attack in attacks.items()} | {"good.xml": None}
    assert kinds == expected
    assert recorder.seen() == (0, [])
    dump = database_dump(workdir / "var" / "aggregator.db")
    assert re.search(r'INSERT INTO "?items"?', dump), "no items stored"
    for title in GOOD_TITLES + [a.title for a in attacks.values() if a.title]:
        assert title in dump, f"{title!r} did not arrive"
    files = output_files(workdir / "output")
    assert "feed.xml" in files and "index.html" in files
    assert any(GOOD_TITLES[0].encode() in data for data in files.values())
    everything = {"database": dump.encode(), "process output": summary["_output"].encode(),
                  "feeds --json": json.dumps(state).encode(), **files}
    for where, data in everything.items():
        for text in (secret_marker, remote_marker, "hahahahaha", "B" * 200):
            assert text.encode() not in data, f"{text[:20]!r} in {where}"
        for markup in (b"onmouseover", b"javascript:", b"<!ENTITY", b"<!DOCTYPE rss"):
            assert markup not in data, f"{markup!r} in {where}"
    assert (workdir / "var" / "aggregator.db").stat().st_size < 5 * 1024 * 1024


# ------------------------------------------------------------ 2. script in members' HTML

# Every way we know of to run script or load something from a member's HTML, numbered so that a
# failure points at the payload that got through.
HOSTILE_HTML = [
    '<script>alert("s1")</script>',
    '<SCRIPT SRC="https://evil.example/s2.js"></SCRIPT>',
    "<scr<script>ipt>alert('s3')</script>",
    '<style>body{background:url("javascript:alert(4)")}</style>',
    '<img src="x" onerror="alert(5)">',
    '<img src=x:alert(6) onerror=eval(src)>',
    '<body onload="alert(7)">',
    '<p onclick="alert(8)" onmouseover="alert(9)">klik</p>',
    '<a href="javascript:alert(10)">a</a>',
    '<a href="JaVaScRiPt:alert(11)">b</a>',
    '<a href="jav&#x09;ascript:alert(12)">c</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(13)">d</a>',
    '<a href=" \tjavascript:alert(14)">e</a>',
    '<a href="java\nscript:alert(15)">f</a>',
    '<a href="&#0000106&#0000097vascript:alert(16)">g</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxNyk8L3NjcmlwdD4=">h</a>',
    '<img src="data:text/html,&lt;script&gt;alert(18)&lt;/script&gt;">',
    '<img src="data:image/svg+xml,&lt;svg onload=alert(19)&gt;">',
    '<iframe src="https://evil.example/20"></iframe>',
    '<iframe srcdoc="&lt;script&gt;alert(21)&lt;/script&gt;"></iframe>',
    '<form action="https://evil.example/22"><input name="q"><button formaction="javascript:'
    'alert(23)">kirim</button></form>',
    '<object data="https://evil.example/24.swf"></object><embed src="https://evil.example/25">',
    '<svg onload="alert(26)"><script>alert(27)</script></svg>',
    '<math><mi xlink:href="javascript:alert(28)">m</mi></math>',
    '<div style="width: expression(alert(29))">css</div>',
    '<p style="background:url(javascript:alert(30))">css2</p>',
    '<a href="vbscript:msgbox(31)">i</a>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(32)">',
    '<base href="javascript:alert(33)//">',
    '<link rel="stylesheet" href="https://evil.example/34.css">',
    '<a href="https://ok.example/" onfocus="alert(35)" autofocus>ok</a>',
    "<!--<script>alert(36)</script>-->",
    '<noscript><p title="</noscript><img src=x onerror=alert(37)>"></noscript>',
    "<template><script>alert(38)</script></template>",
    '<video><source onerror="alert(39)"></video>',
    '<details open ontoggle="alert(40)">d</details>',
    '<a href="//evil.example/41">protocol-relative</a>',
    '<isindex action="javascript:alert(42)">',
    '<table background="javascript:alert(43)"><tr><td>t</td></tr></table>',
    '<blockquote cite="javascript:alert(44)">q</blockquote>',
]
HOSTILE_FRAGMENT = "<p>Isi berita yang sah.</p>" + "".join(HOSTILE_HTML)
BAD_LINKS = ["javascript:alert('link1')", " JaVaScRiPt:alert('link2')",
             "data:text/html,<script>alert('link3')</script>", "vbscript:msgbox('link4')",
             "jav&#x09;ascript:alert('link5')"]

STYLESHEET = (resources.files("aggregator.publish") / "templates" / "style.css").read_text("utf-8")
# What our page template uses, and nothing else: anything more came from a member.
PAGE_TAGS = {"html", "head", "meta", "title", "link", "style", "body", "header", "div", "p", "a",
             "h1", "h2", "h3", "nav", "span", "ul", "li", "main", "article", "time", "section",
             "footer"}
PAGE_ATTRIBUTES = {"lang", "charset", "http-equiv", "content", "name", "rel", "href", "type",
                   "title", "class", "id", "aria-label", "aria-labelledby", "aria-current",
                   "datetime"}
# Elements that run script, load a document or submit one, wherever they come from.
ACTIVE_TAGS = {"script", "style", "iframe", "frame", "frameset", "form", "input", "button",
               "object", "embed", "applet", "svg", "math", "meta", "base", "link", "noscript",
               "template", "isindex", "video", "audio", "source", "track", "portal"}
# Attributes whose value a browser follows or loads.
URL_ATTRIBUTES = {"href", "src", "cite", "action", "formaction", "background", "poster", "data",
                  "srcset", "lowsrc", "dynsrc", "longdesc", "usemap", "manifest", "ping",
                  "xlink:href", "codebase", "archive", "icon", "profile"}
CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]+")
DOCUMENT_TAG = re.compile(r"<\s*(html|head|body)\b", re.IGNORECASE)


def scheme_of(url: str) -> str:
    """The scheme a browser would see: it drops C0 controls and spaces anywhere in a URL
    (tabs and newlines inside, the rest around), so 'java\\tscript:' is javascript:."""
    squeezed = CONTROL_OR_SPACE.sub("", url)
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*):", squeezed)
    return match.group(1).lower() if match else ""


def check_html_payload(fragment: str, where: str) -> None:
    """HTML that came from a member, as a feed reader would render it: no element that runs or
    loads anything, no handler or style attribute, and only absolute http(s) links."""
    if not fragment.strip():
        return
    # lxml folds these into its own document and drops their attributes; a browser copies the
    # attributes of a stray <body onload=...> onto the real body, and runs them.
    assert not DOCUMENT_TAG.search(fragment), f"{where}: document tag in {fragment!r}"
    # Parsed inside a document of our own: lxml refuses a control character as the text of an
    # element it is asked to create, but reads one within a document, as browsers do.
    body = lxml.html.document_fromstring(f"<div>{fragment}</div>").body
    for node in body.iterdescendants():
        assert isinstance(node.tag, str), f"{where}: comment or PI in {fragment!r}"
        assert node.tag.lower() not in ACTIVE_TAGS, f"{where}: <{node.tag}> in {fragment!r}"
        for attribute, value in node.attrib.items():
            name = attribute.lower()
            assert not name.startswith("on"), f"{where}: {attribute} in {fragment!r}"
            assert name not in ("style", "srcdoc"), f"{where}: {attribute} in {fragment!r}"
            if name in URL_ATTRIBUTES:
                assert scheme_of(value) in ("http", "https"), \
                    f"{where}: {attribute}={value!r} in {fragment!r}"


def check_page(name: str, data: bytes, out: Path | None) -> None:
    """One of our pages: only the template's own elements and attributes, our stylesheet alone,
    and links that are http(s) or lead to a file we wrote (checked when ``out`` is given)."""
    doc = lxml.html.document_fromstring(data)
    styles = doc.xpath("//style")
    assert len(styles) == 1 and styles[0].getparent().tag == "head", name
    assert styles[0].text == STYLESHEET, f"{name}: the stylesheet is not ours"
    for node in doc.iter():
        if not isinstance(node.tag, str):
            continue  # comments: text, not markup a browser runs
        assert node.tag in PAGE_TAGS, f"{name}: <{node.tag}>"
        unexpected = set(node.attrib) - PAGE_ATTRIBUTES
        assert not unexpected, f"{name}: <{node.tag}> has {unexpected}"
        if node.tag == "meta" and "http-equiv" in node.attrib:
            assert node.attrib["http-equiv"] == "Content-Security-Policy", name
            assert "script-src" not in node.attrib["content"], name
            assert "unsafe-inline" not in node.attrib["content"], name
        for attribute in ("href", "src"):
            value = node.attrib.get(attribute)
            if value is None:
                continue
            scheme = scheme_of(value)
            if scheme:
                assert scheme in ("http", "https"), f"{name}: {attribute}={value!r}"
            else:
                # Our own relative links: to a file we wrote, or to a place on the page.
                assert not CONTROL_OR_SPACE.sub("", value).startswith("//"), f"{name}: {value!r}"
                path = value.split("#", 1)[0]
                if path and out is not None:
                    target = (out / name).parent / path
                    assert target.resolve().is_file(), f"{name}: {value!r} leads nowhere"


def check_xml(name: str, data: bytes) -> None:
    """Feeds, sitemaps, OPML: well-formed, no DTD, member HTML only where the format says HTML,
    and text fields plain text."""
    root = lxml.etree.fromstring(data, lxml.etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, recover=False))
    assert root.getroottree().docinfo.doctype == "", name
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        local = lxml.etree.QName(node).localname
        namespace = lxml.etree.QName(node).namespace or ""
        assert "xhtml" not in namespace and local not in ("script", "iframe", "div"), \
            f"{name}: element {node.tag}"
        for attribute, value in node.attrib.items():
            assert not lxml.etree.QName(attribute).localname.lower().startswith("on"), name
            if lxml.etree.QName(attribute).localname in ("href", "url", "xmlUrl", "htmlUrl"):
                assert scheme_of(value) in ("http", "https"), f"{name}: {attribute}={value!r}"
        kind = node.get("type")
        if local == "description" and node.getparent() is not None \
                and lxml.etree.QName(node.getparent()).localname == "item":
            check_html_payload(node.text or "", f"{name} description")
        elif local in ("content", "summary") and kind == "html":
            check_html_payload(node.text or "", f"{name} {local}")
        elif local in ("title", "summary", "name", "creator", "loc", "link", "id"):
            assert len(node) == 0 or local == "link", f"{name}: markup inside <{local}>"
            if local in ("loc",) or (local == "link" and not node.attrib):
                assert scheme_of(node.text or "") in ("http", "https"), f"{name}: {node.text!r}"
    if b"<rss" in data[:400] or b"<feed" in data[:400]:
        parsed = feedparser.parse(data, sanitize_html=False)
        assert not parsed.bozo, (name, parsed.get("bozo_exception"))
        for entry in parsed.entries:
            details = [entry.get("summary_detail"), *entry.get("content", [])]
            if not parsed.version.startswith("rss"):
                # An RSS title is text by the format; feedparser guesses HTML for one that
                # looks like it (a member's title 'a </b>' does), which is its guess, not ours.
                details.append(entry.get("title_detail"))
            for detail in filter(None, details):
                if detail["type"] in ("text/html", "application/xhtml+xml"):
                    check_html_payload(detail["value"], f"{name} via feedparser")
            assert scheme_of(entry.get("link", "https:")) in ("http", "https"), name


def check_json_feed(name: str, data: bytes) -> None:
    assert b"<" not in data and b">" not in data, f"{name}: a raw angle bracket"
    feed = json.loads(data)
    for item in feed["items"]:
        check_html_payload(item.get("content_html", ""), f"{name} content_html")
        for key in ("url", "external_url"):
            if key in item:
                assert scheme_of(item[key]) in ("http", "https"), f"{name}: {item[key]!r}"
        for copy in item.get("_sindikasi", {}).get("copies", []):
            assert scheme_of(copy["url"]) in ("http", "https"), name


def check_output(out: Path) -> dict[str, bytes]:
    files = output_files(out)
    for name, data in files.items():
        if name.endswith(".html"):
            check_page(name, data, out)
        elif name.endswith(".json"):
            check_json_feed(name, data)
        elif name.endswith((".xml", ".atom", ".rss", ".opml")):
            check_xml(name, data)
    return files


def hostile_feeds(site: StaticSite) -> list[dict[str, Any]]:
    """An RSS 2.0, an Atom and a JSON Feed member, each with script everywhere it can go."""
    title_markup = "<![CDATA[Judul <script>alert('t1')</script><b onclick=alert(2)>tebal</b>]]>"
    rss_items = [
        rss_item("Berita bermuatan skrip", "https://skrip.example.id/1", HOSTILE_FRAGMENT),
        f"<item><title>{title_markup}</title><link>https://skrip.example.id/2</link>"
        f"<pubDate>{rfc822(NOW - timedelta(hours=2))}</pubDate>"
        f"<description><![CDATA[{HOSTILE_FRAGMENT}]]></description>"
        "<content:encoded><![CDATA[" + HOSTILE_FRAGMENT + "]]></content:encoded></item>",
        # Text that only looks like markup once unescaped: it must stay text.
        rss_item("Teks &lt;script&gt;alert('t3')&lt;/script&gt; saja",
                 "https://skrip.example.id/3", "Ringkasan &lt;iframe src=x&gt; sebagai teks."),
    ]
    for n, link in enumerate(BAD_LINKS):
        rss_items.append(
            f"<item><title>Tautan jahat {n}</title><link>{escape(link)}</link>"
            f'<guid isPermaLink="false">jahat-{n}</guid>'
            f"<pubDate>{rfc822(NOW - timedelta(hours=3 + n))}</pubDate>"
            f"<description>{escape(HOSTILE_HTML[n])}</description></item>")
    rss = rss_doc("".join(rss_items), site="skrip").replace(
        '<rss version="2.0">',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">')
    atom = atom_doc("".join([
        atom_entry("Atom html", "https://atom-skrip.example.id/1", escape(HOSTILE_FRAGMENT)),
        atom_entry("Atom xhtml", "https://atom-skrip.example.id/2",
                   '<div xmlns="http://www.w3.org/1999/xhtml"><p onclick="alert(50)">Isi</p>'
                   '<script>alert(51)</script><a href="javascript:alert(52)">x</a>'
                   '<iframe src="https://evil.example/53"/></div>', "xhtml"),
        "<entry><title type=\"html\">&lt;img src=x onerror=alert(54)&gt;Judul html</title>"
        "<id>https://atom-skrip.example.id/3</id>"
        '<link rel="alternate" href="javascript:alert(55)"/>'
        f"<updated>{(NOW - timedelta(hours=1)).isoformat()}</updated>"
        f'<summary type="html">{escape(HOSTILE_FRAGMENT)}</summary></entry>',
    ]), site="atom-skrip")
    items = [{"id": f"json-{n}", "url": url, "title": f"JSON <svg onload=alert({60 + n})> {n}",
              # JSON, unlike XML, can carry a C0 control into an href.
              "content_html": HOSTILE_FRAGMENT + '<a href="\x01javascript:alert(56)">j</a>',
              "summary": HOSTILE_HTML[n],
              "date_published": (NOW - timedelta(hours=1 + n)).isoformat()}
             for n, url in enumerate(["https://json-skrip.example.id/1", *BAD_LINKS])]
    jsonfeed = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "JSON skrip",
                           "home_page_url": "https://json-skrip.example.id/", "items": items})
    return [member("skrip", site.write("skrip.xml", rss)),
            member("atomskrip", site.write("atom.xml", atom)),
            member("jsonskrip", site.write("feed.json", jsonfeed))]


def test_script_in_member_html_never_reaches_pages_or_feeds(
        workdir: Path, static_site: StaticSite, cli: Any) -> None:
    config = make_config(workdir, hostile_feeds(static_site))
    result = cli("--config", config, "run", "--once", "--no-progress")
    assert result.code == 0, result.err
    assert "3 ok" in result.out, result.out
    state = feeds_json(cli, config)
    assert all(row["error_kind"] is None for row in state.values()), \
        {u: (r["error_kind"], r["last_error"]) for u, r in state.items()}
    files = check_output(workdir / "output")
    pages = [n for n in files if n.endswith(".html")]
    feeds = [n for n in files if n.endswith((".xml", ".json"))]
    assert "index.html" in pages and "feed.xml" in feeds and "feed.json" in feeds, sorted(files)
    # Every item arrived (each member's own feed lists them all, unclustered), and what looked
    # like markup once unescaped is the text it was, on the page and in the feeds.
    titles = {e.title for m in ("skrip", "atomskrip", "jsonskrip")
              for e in feedparser.parse(files[f"members/{m}.xml"]).entries}
    expected = {"Berita bermuatan skrip", "Judul alert('t1') tebal", "Atom html", "Atom xhtml",
                "Judul html", "Teks <script>alert('t3')</script> saja",
                *(f"JSON {n}" for n in range(6)),
                *(f"Tautan jahat {n}" for n in range(len(BAD_LINKS)))}
    assert titles == expected
    front = lxml.html.document_fromstring(files["index.html"])
    assert "Teks <script>alert('t3')</script> saja" in [h.text_content() for h in
                                                       front.xpath("//h2")]
    everything = b"\n".join(files.values()).lower()
    for needle in (b"<script", b"<iframe", b"<svg", b"<form", b"<object", b"<embed",
                   b"onerror=", b"onload=", b"expression(", b"vbscript:", b"javascript:"):
        # As bytes in any file: escaped text would be '&lt;script', never '<script', and a
        # member link that was not http(s) is dropped, not repaired.
        assert needle not in everything, needle


# The checks above must see what they are looking for: each raw payload, and each way markup
# could get into a page or a feed, is caught by them.

@pytest.mark.parametrize("payload", [p for p in HOSTILE_HTML if not p.startswith("<scr<")])
def test_the_payload_check_sees_every_raw_payload(payload: str) -> None:
    """All but the nested '<scr<script>ipt>', which is inert as written (a browser reads an
    element named 'scr<script'): it is there for sanitisers that remove '<script>' only once."""
    with pytest.raises(AssertionError):
        check_html_payload(payload, "raw")


@pytest.mark.parametrize("payload", [
    "<script>alert(1)</script>", '<img src="x" onerror="alert(1)">',
    '<a href="javascript:alert(1)">x</a>', '<a href="java&#x09;script:alert(1)">x</a>',
    '<iframe src="https://evil.example/"></iframe>', '<form action="https://evil.example/">',
    '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    '<style>*{}</style>', '<p style="x">y</p>', '<a href="//evil.example/">x</a>',
])
def test_the_page_check_sees_injected_markup(payload: str) -> None:
    from publish_samples import site

    from aggregator.publish.html import Page, render_page

    page = render_page(site(), Page("index.html", "Sindikasi Jatim", None, (), (), ()))
    check_page("clean", page, None)
    with pytest.raises(AssertionError):
        check_page("injected", page.replace(b"</main>", payload.encode() + b"</main>"), None)


@pytest.mark.parametrize(("old", "new"), [
    (b"</description>", b"&lt;script&gt;alert(1)&lt;/script&gt;</description>"),
    (b"</description>", b"&lt;a href='javascript:alert(1)'&gt;x&lt;/a&gt;</description>"),
    (b"</title>", b"<b>tebal</b></title>"),
    (b"<link>https://", b"<link>javascript:alert(1)//"),
])
def test_the_feed_check_sees_injected_markup(old: bytes, new: bytes) -> None:
    from publish_samples import merged_info, site, stories

    from aggregator.publish.feeds import render_stories_rss

    feed = render_stories_rss(site(), merged_info(), stories())
    check_xml("clean", feed)
    with pytest.raises(AssertionError):
        check_xml("injected", feed.replace(old, new))


# ----------------------------------------------------------------- 3. the private-address guard

# Global addresses that stand in for members' public servers.  Nothing here ever connects to
# them: the network below the guard (``Network``) sends those connections to local servers.
PUBLIC_IP = "93.184.216.34"
OTHER_PUBLIC_IP = "93.184.216.35"
RSS_OK = rss_doc(rss_item("Berita dari jaringan dalam", "https://dalam.example.id/1", "Isi."),
                 site="dalam").encode()

PUBLIC_NAME = "kabar-publik.example"  # a member's site that redirects
# Names and what the stand-in DNS answers for them.
FAKE_DNS = {
    PUBLIC_NAME: [PUBLIC_IP],
    "intranet.example": ["10.1.2.3"],
    "metadata.example": ["169.254.169.254"],
    "loopback.example": ["127.0.0.1"],
    "v6-loopback.example": ["::1"],
    "ula.example": ["fc00::1"],
    "mapped.example": ["::ffff:10.0.0.1"],
    # One public and one private answer: the private one must not be tried, nor the host used.
    "mixed.example": [OTHER_PUBLIC_IP, "10.0.0.1"],
}


# Every way to name a private address, as id -> URL ("{port}": the private server's port, which
# the loopback forms use so that they would reach it even without the stand-in network).
LITERAL_ROUTES = {
    "metadata": "http://169.254.169.254/latest/meta-data/",
    "ten": "http://10.0.0.1/",
    "ten-high": "http://10.255.255.254/",
    "loopback": "http://127.0.0.1:{port}/",
    "loopback-8": "http://127.8.9.10:{port}/",
    "v6-loopback": "http://[::1]:{port}/",
    "v6-loopback-long": "http://[0:0:0:0:0:0:0:1]:{port}/",
    "ula": "http://[fc00::1]/",
    "ula-fd": "http://[fd12:3456:789a::1]/",
    "decimal": "http://2130706433:{port}/",
    "hex": "http://0x7f000001:{port}/",
    "hex-dotted": "http://0x7f.0.0.1:{port}/",
    "octal-integer": "http://017700000001:{port}/",
    "octal-dotted": "http://0177.0.0.1:{port}/",
    "short": "http://127.1:{port}/",
    "unspecified": "http://0.0.0.0:{port}/",
    "v6-unspecified": "http://[::]:{port}/",
    "v4-mapped": "http://[::ffff:127.0.0.1]:{port}/",
    "v4-mapped-hex": "http://[::ffff:a9fe:a9fe]/",
    "nat64": "http://[64:ff9b::a9fe:a9fe]/",
    "6to4": "http://[2002:a9fe:a9fe::1]/",
    "userinfo": "http://kabar-publik.example@127.0.0.1:{port}/",
    "ideographic-dots": "http://127\u30020\u30020\u30021:{port}/",
}
RESOLVED_ROUTES = {
    "localhost": "http://localhost:{port}/",
    "localhost-upper": "http://LOCALHOST:{port}/",
    **{name.split(".")[0]: f"http://{name}/" for name in FAKE_DNS if name != PUBLIC_NAME},
}
# httpx refuses a dotted octal address outright: no request either, under another kind.
REFUSED_AS_URL = {"ip-octal-dotted"}


def private_routes(port: int) -> dict[str, str]:
    """Route id -> URL whose path is the id, so a hit at the private server names its route."""
    routes = {f"ip-{k}": v for k, v in LITERAL_ROUTES.items()}
    routes |= {f"dns-{k}": v for k, v in RESOLVED_ROUTES.items()}
    return {rid: url.format(port=port) + rid for rid, url in routes.items()}


@dataclass
class Network:
    """The network below the guard: it records every connection the guard lets through and
    sends it to a local server (public stand-ins to the redirector, the rest to the private
    server), so that a route the guard missed is seen as a request there."""

    redirector: Recorder
    private: Recorder
    targets: dict[str, str]  # the redirector's /to/<id> -> Location
    attempts: list[str] = field(default_factory=list)

    def route(self, host: str) -> tuple[str, int]:
        self.attempts.append(host)
        if host == PUBLIC_IP:
            return "127.0.0.1", self.redirector.port
        return "127.0.0.1", self.private.port


def redirecting_to(targets: dict[str, str]) -> type[BaseHTTPRequestHandler]:
    class Redirector(BaseHTTPRequestHandler):
        """``/to/<id>`` answers 302 to the URL registered for that id."""

        server: _RecordingServer

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            rec = self.server.recorder
            with rec.lock:
                rec.paths.append(self.path)
            target = targets.get(self.path.rsplit("/", 1)[-1], "")
            self.send_response(302 if target else 404)
            if target:
                self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Redirector


def fake_getaddrinfo(real: Callable[..., Any]) -> Callable[..., Any]:
    """``socket.getaddrinfo`` answering FAKE_DNS's names itself and the rest as before."""

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in FAKE_DNS:
            return real(host, port, *args, **kwargs)
        found: list[tuple[Any, ...]] = []
        for address in FAKE_DNS[name]:
            if ipaddress.ip_address(address).version == 6:
                found.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "",
                              (address, int(port or 0), 0, 0)))
            else:
                found.append((socket.AF_INET, socket.SOCK_STREAM, 6, "",
                              (address, int(port or 0))))
        return found

    return getaddrinfo


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> Iterator[Network]:
    targets: dict[str, str] = {}
    with ExitStack() as stack:
        private = stack.enter_context(serving(
            Recorder(body=RSS_OK, content_type="application/rss+xml")))
        redirector = stack.enter_context(serving(Recorder(), redirecting_to(targets)))
        net = Network(redirector, private, targets)

        class Routed(AutoBackend):
            async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                                  local_address: str | None = None,
                                  socket_options: Any = None) -> httpcore.AsyncNetworkStream:
                to_host, to_port = net.route(host)
                stream: httpcore.AsyncNetworkStream = await super().connect_tcp(
                    to_host, to_port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options)
                return stream

        # GuardedBackend makes its inner backend from this name when a client is built.
        monkeypatch.setattr(netguard, "AutoBackend", Routed)
        monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo(socket.getaddrinfo))
        yield net


def guard_config(workdir: Path, urls: dict[str, str], allow_private: bool) -> Path:
    members = [member(f"m{i:02d}", url) for i, url in enumerate(urls.values())]
    return make_config(workdir, members, allow_private=allow_private,
                       fetch={"timeout": {"connect": 2, "read": 3, "write": 2, "pool": 5},
                              "deadline": 5})


def route_urls(network: Network, via_redirect: bool) -> tuple[dict[str, str], dict[str, str]]:
    """(route id -> feed URL, route id -> error kind with the guard on)."""
    urls, kinds = {}, {}
    for rid, target in private_routes(network.private.port).items():
        kind = "bad_url" if rid in REFUSED_AS_URL else "blocked_address"
        if via_redirect:
            if not target.isascii():
                continue  # a Location header cannot carry it
            network.targets[rid] = target
            urls[rid] = f"http://kabar-publik.example/to/{rid}"
            kind = "bad_redirect" if kind == "bad_url" else kind
        else:
            urls[rid] = target
        kinds[rid] = kind
    if via_redirect:
        # Two hops through public hosts first, and a scheme-relative Location.
        port = network.private.port
        network.targets["two-hops"] = "http://kabar-publik.example/to/two-hops-2"
        network.targets["two-hops-2"] = f"http://127.0.0.1:{port}/two-hops"
        network.targets["scheme-relative"] = f"//127.0.0.1:{port}/scheme-relative"
        for rid in ("two-hops", "scheme-relative"):
            urls[rid] = f"http://kabar-publik.example/to/{rid}"
            kinds[rid] = "blocked_address"
    return urls, kinds


@pytest.mark.parametrize("via_redirect", [False, True], ids=["direct", "redirect"])
def test_every_route_to_a_private_address_is_refused_without_a_connection(
        workdir: Path, network: Network, cli: Any, via_redirect: bool) -> None:
    urls, kinds = route_urls(network, via_redirect)
    config = guard_config(workdir, urls, allow_private=False)
    result = cli("--config", config, "run", "--once", "--no-progress")
    assert result.code == 0, result.err
    state = feeds_json(cli, config)
    got = {rid: state[url]["error_kind"] for rid, url in urls.items()}
    assert got == kinds
    for rid, url in urls.items():
        row = state[url]
        assert row["last_status"] is None, (rid, row)
        if kinds[rid] == "blocked_address":
            assert "non-public address" in row["last_error"], (rid, row["last_error"])
    assert network.private.seen() == (0, [])
    # Below the guard, only the public stand-ins were ever connected to.
    assert set(network.attempts) <= {PUBLIC_IP}, network.attempts
    if via_redirect:
        hit = {path.rsplit("/", 1)[-1] for path in network.redirector.seen()[1]}
        assert hit >= set(urls), set(urls) - hit


@pytest.mark.parametrize("via_redirect", [False, True], ids=["direct", "redirect"])
def test_with_private_networks_allowed_every_route_reaches_the_private_server(
        workdir: Path, network: Network, cli: Any, via_redirect: bool) -> None:
    """The control: the same routes with the guard off all arrive, so the refusals above are
    the guard's doing and not a route that could not work anyway."""
    urls, kinds = route_urls(network, via_redirect)
    config = guard_config(workdir, urls, allow_private=True)
    result = cli("--config", config, "run", "--once", "--no-progress")
    assert result.code == 0, result.err
    state = feeds_json(cli, config)
    reachable = {rid for rid, kind in kinds.items() if kind == "blocked_address"}
    got = {rid: state[urls[rid]]["error_kind"] for rid in reachable}
    assert got == dict.fromkeys(reachable), got
    arrived = {path.rsplit("/", 1)[-1] for path in network.private.seen()[1]}
    assert arrived >= reachable, reachable - arrived


GUARD_HOSTS = ["169.254.169.254", "10.0.0.1", "10.255.255.254", "127.0.0.1", "127.8.9.10", "::1",
               "[::1]", "fc00::1", "fd00::1", "0.0.0.0", "::", "2130706433", "0x7f000001",
               "0x7f.1", "017700000001", "127.1", "0", "::ffff:127.0.0.1", "::ffff:a9fe:a9fe",
               "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "::127.0.0.1", "localhost",
               *(n for n in FAKE_DNS if n != PUBLIC_NAME)]


@pytest.mark.parametrize("host", GUARD_HOSTS)
async def test_guarded_backend_refuses_every_private_form_before_the_network(
        host: str, network: Network) -> None:
    with pytest.raises(BlockedAddress):
        await GuardedBackend(allow_private=False).connect_tcp(host, network.private.port,
                                                              timeout=2)
    assert network.attempts == []
    assert network.private.seen() == (0, [])


@pytest.mark.parametrize("host", [PUBLIC_NAME, PUBLIC_IP])
async def test_guarded_backend_lets_a_public_address_through(host: str, network: Network) -> None:
    """The stand-in network is what the tests above rely on: a public answer is connected."""
    stream = await GuardedBackend(allow_private=False).connect_tcp(host, 80, timeout=2)
    await stream.aclose()
    assert network.attempts == [PUBLIC_IP]
    deadline = time.monotonic() + 5
    while network.redirector.seen()[0] == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)  # the server thread accepts in its own time
    assert network.redirector.seen()[0] == 1
