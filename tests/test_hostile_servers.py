"""Hostile or broken servers: each one a real server on 127.0.0.1, each through the CLI.

Every case runs ``aggregator run --once --json`` over a config that holds the hostile feed next
to ordinary feeds of the feed farm, then reads ``aggregator feeds --json`` and the database, and
checks the four things the issue asks for: the hostile feed's status names a specific error, the
cycle finishes, every item of every ordinary feed arrives, and the next poll is sensible.

"Sensible" is pinned down here as follows, with ``schedule.min_interval`` = 60 s in the tables:

* transient failure: the first step of the backoff, min_interval +/-25 % (45-75 s); never
  "immediately", never a day away;
* 429 with Retry-After: exactly the server's wait (plus 0-2 % and a second), not the shorter
  backoff; an absurd Retry-After is cut to ``schedule.max_backoff`` (a day);
* 410 Gone: no next poll at all (disabled until ``aggregator enable-feed``);
* success: min_interval..max_interval +/-10 % of jitter.

Memory bound: ``MEMORY_BOUND_MB`` = 400 MB of peak RSS for a whole ``run --once`` process (the
interpreter with every dependency imported is about 165 MB of it), measured with ``os.wait4`` on
a child process, for the heavy cases: a 40 MB body without Content-Length, a 200 MB gzip bomb, a
512 MB brotli bomb, a 5 MB item title (all in one cycle: 235 MB measured), and a 20,000-item feed
(about 600 MB measured: an expected failure until a per-feed item cap exists).  The heavy cases
run with the shipped 15 MiB body cap, not the tables' 2 MB.

Fault -> error kind -> test.  ``farm[k]`` is test_farm_fault[k], ``net[k]`` test_network_fault[k]
of this module; ``fetch:`` names a test of tests/test_fetch.py that covers the fault too.

====================================  ==================  =========================================
fault                                 error kind          tests
====================================  ==================  =========================================
HTTP 500 / 404                        http_status         farm[500], farm[404];
                                                          fetch:test_every_farm_fault_in_one_cycle*
410 Gone                              gone (disabled)     farm[410]; fetch:test_gone_disables_*
429 + Retry-After: 120                rate_limited        farm[429]; fetch:test_retry_after_*
Retry-After "²" / 5,000 digits        rate_limited        net[retry-after-superscript],
                                                          net[retry-after-5000-digits]
301 permanent redirect                none, URL updated   farm[301]; fetch:test_redirects
308 permanent redirect                none, URL updated   net[permanent-redirect-308]
302 / 307 temporary redirect          none, URL kept      net[temporary-redirect-302], [-307]
redirect loop                         redirect_loop       net[redirect-loop]; fetch:test_redirects
more than max_redirects hops          too_many_redirects  fetch:test_redirects
Location: http://[::1                 bad_redirect        net[redirect-to-unparsable-url]
Location: http://xn--/ (bad IDNA)     bad_url             net[redirect-to-invalid-idna]
slow dribble                          timeout             farm[slow]
hang                                  timeout             farm[hang]
huge body (40 MB, no length)          too_large           farm[huge], test_heavy_bodies_*
gzip bomb (200 MB)                    too_large           farm[gzipbomb], test_heavy_bodies_*
brotli bomb (512 MB)                  too_large           net[brotli-bomb], test_heavy_bodies_*
corrupt gzip                          decode              net[corrupt-gzip]
HTML instead of a feed                not_a_feed          farm[notxml]
truncated XML                         truncated           farm[badxml]
wrong charset (cp1252 said UTF-8)     warning, stored     farm[wrongcharset]: same text as the feed
TLS: self-signed certificate          tls                 net[tls-self-signed]
TLS: https:// to a plain HTTP port    tls                 net[tls-to-plain-http]
DNS failure                           dns                 net[dns-failure]; fetch:test_dns_failure
connection refused                    connect             net[connection-refused]
connection reset (RST) mid-body       connection          net[reset-mid-body];
                                                          fetch:test_connection_reset_and_empty_body
FIN mid-body (short body)             connection          net[fin-mid-body]
closed without a response             connection          net[no-response]
not HTTP at all (an SSH banner)       connection          net[not-http]
2 MB of response headers              connection          net[header-flood]
empty 200                             empty               net[empty-200];
                                                          fetch:test_connection_reset_and_empty_body
max-age of 5,000 digits, Expires      none (ok), polled   net[absurd-cache-headers]
  with a day of month 32 digits long    after max_interval
5 MB item title                       none, cut to 500    test_heavy_bodies_*
5 MB channel title                    stored cut to 500   test_a_5_mb_channel_title_*
20,000 items                          newest 500 kept     test_a_feed_of_20000_items
private address (guard on)            blocked_address     fetch:test_private_addresses_*,
                                                          fetch:test_redirect_from_a_public_host_*
====================================  ==================  =========================================
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any

import brotli
import pytest
from conftest import Farm, feeds_json, make_config, serving_farm

from aggregator.normalize import MAX_TITLE

DEADLINE_S = 2  # the tables' fetch deadline: short, so that slow and hang cost 2 s each
MAX_BODY = 2_000_000  # the tables' body cap
MIN_INTERVAL = 60  # the tables' schedule.min_interval: below the farm's Retry-After of 120 s
MAX_INTERVAL = 86_400  # schedule.max_interval and max_backoff defaults
FARM_RETRY_AFTER = 120  # what the farm's /faults/429 sends
NORMAL_FEEDS = 5  # ordinary farm feeds polled alongside each hostile one
MEMORY_BOUND_MB = 400  # peak RSS of a whole `run --once` process in the heavy cases
MEMORY_CEILING_MB = 1024  # beyond this even a known gap is a failure, not an expected one
AGGREGATOR = [sys.executable, "-m", "aggregator"]

# Windows of seconds from the poll to next_poll_at (see the module docstring).
POLL_WINDOWS: dict[str, tuple[float, float]] = {
    "backoff": (0.75 * MIN_INTERVAL, 1.25 * MIN_INTERVAL),
    "retry_after": (FARM_RETRY_AFTER, FARM_RETRY_AFTER * 1.02 + 1),
    "capped": (MAX_INTERVAL, MAX_INTERVAL * 1.02 + 1),
    "success": (0.9 * MIN_INTERVAL, 1.1 * MAX_INTERVAL),
    "max": (0.9 * MAX_INTERVAL, 1.1 * MAX_INTERVAL),
}


@dataclass(frozen=True)
class Expect:
    """What `aggregator feeds --json` must say about the hostile feed after one cycle."""

    kind: str | None  # error_kind; None when the feed is fine
    state: str
    poll: str  # a POLL_WINDOWS key, or "never"
    says: str = ""  # a phrase of last_error: the specific thing a webmaster is told
    status: int | None = None  # last_status
    url: str | None = None  # the feed URL afterwards, relative to its server; None: unchanged
    items: int = 0


# ------------------------------------------------------------------------------ local servers

Route = Callable[[socket.socket], None]
RSS_TYPE = "application/rss+xml; charset=UTF-8"
SMALL_RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Kabar Uji</title><link>https://uji.example/</link>
<description>uji</description>
<item><title>Jembatan baru di Kediri dibuka</title><link>https://uji.example/1/</link>
<guid>https://uji.example/?p=1</guid><pubDate>Wed, 01 May 2024 08:00:00 +0700</pubDate>
<description>Warga menyambut jembatan baru.</description></item>
<item><title>Panen raya di Ngawi</title><link>https://uji.example/2/</link>
<guid>https://uji.example/?p=2</guid><pubDate>Thu, 02 May 2024 09:30:00 +0700</pubDate>
<description>Petani panen lebih awal.</description></item>
</channel></rss>
"""
SMALL_ITEMS = 2
# What an HTTP server answers to bytes that are not HTTP, e.g. a TLS ClientHello (nginx does so).
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _read_request(conn: socket.socket) -> str | None:
    """The request path, or None for bytes that are not an HTTP request."""
    head = b""
    while b"\r\n\r\n" not in head:
        data = conn.recv(65536)
        if not data:
            return None
        head += data
        if not head[:1].isalpha() or len(head) > 65536:
            return None
    parts = head.split(b" ", 2)
    return parts[1].decode("latin-1") if len(parts) == 3 else None


class RawServer:
    """A threaded TCP server on 127.0.0.1 whose routes write raw bytes to the socket.

    http.server cannot send half a body and then a reset, a non-HTTP banner, or a Location that
    no URL parser accepts; writing the bytes by hand can.  Every response closes its connection,
    so no case depends on keep-alive.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._tls = tls
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        # ssl.SSLError is an OSError: a client refusing our certificate ends up here too.
        with contextlib.suppress(OSError):
            conn.settimeout(10)
            if self._tls is not None:
                conn = self._tls.wrap_socket(conn, server_side=True)
            path = _read_request(conn)
            if path is None:
                conn.sendall(BAD_REQUEST)
            else:
                with self._lock:
                    self.hits[path] += 1
                self.routes.get(path, respond(404, b"not found\n", "text/plain"))(conn)
        conn.close()


def respond(status: int, body: bytes = b"", ctype: str = RSS_TYPE,
            headers: dict[str, str] | None = None) -> Route:
    head = f"HTTP/1.1 {status} Whatever\r\nContent-Type: {ctype}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    data = (head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("latin-1")
    return lambda conn: conn.sendall(data + body)


def send_raw(data: bytes) -> Route:
    return lambda conn: conn.sendall(data)


def redirect(status: int, location: str) -> Route:
    return respond(status, b"moved\n", "text/plain", {"Location": location})


def _reset(conn: socket.socket) -> None:
    """Close with RST instead of FIN: SO_LINGER on, with a zero timeout."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def reset_mid_body(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(SMALL_RSS) + SMALL_RSS[: len(SMALL_RSS) // 3])
    time.sleep(0.1)  # let the client read the first third before the reset discards anything
    _reset(conn)


def close_mid_body(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(SMALL_RSS) + SMALL_RSS[: len(SMALL_RSS) // 3])


def no_response(conn: socket.socket) -> None:
    """Read the request, answer nothing, close."""


def brotli_bomb(megabytes: int) -> bytes:
    """A body of a few kB that decodes to ``megabytes`` MB of XML whitespace.

    The farm has a gzip bomb; brotli goes through its own decoder with its own output limit.
    """
    comp = brotli.Compressor(quality=1)
    parts = [comp.process(b'<?xml version="1.0"?>\n<rss version="2.0">')]
    chunk = b" " * (1 << 20)
    parts += [comp.process(chunk) for _ in range(megabytes)]
    parts.append(comp.finish())
    return b"".join(parts)


BROTLI_BOMB_MB = 512


@pytest.fixture(scope="module")
def site() -> Iterator[RawServer]:
    server = RawServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def tls_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawServer]:
    """HTTPS with a certificate made now, for 127.0.0.1, signed by nobody the client trusts."""
    openssl = shutil.which("openssl")
    if openssl is None:  # the `cryptography` package is not a dependency; openssl's CLI is enough
        pytest.skip("openssl is not installed: cannot make a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = RawServer(tls=context)
    server.routes["/feed"] = respond(200, SMALL_RSS)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def hfarm(farm_corpus: Path) -> Iterator[Farm]:
    """One farm for the module: its faults hold no state between requests."""
    with serving_farm(farm_corpus, "--slow-s", "20", "--hang-s", "30", "--huge-mb", "40",
                   "--bomb-mb", "200") as f:
        yield f


@pytest.fixture(scope="module")
def farm_rows(hfarm: Farm) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = hfarm.feeds(faults=True)
    return rows


# ------------------------------------------------------------------------------------ helpers

def member(mid: str, url: str) -> dict[str, Any]:
    return {"id": mid, "name": f"Anggota {mid}", "site": f"https://{mid}.example/",
            "feeds": [url]}


def table_config(directory: Path, normal: list[dict[str, Any]], hostile_url: str,
                 deadline: float = DEADLINE_S) -> Path:
    members = [member(r["name"], r["url"]) for r in normal] + [member("hostile", hostile_url)]
    return make_config(directory, members,
                       fetch={"deadline": deadline, "max_body_bytes": MAX_BODY},
                       schedule={"min_interval": MIN_INTERVAL})


@dataclass
class Cycle:
    summary: dict[str, Any]
    started: float
    finished: float


def run_cycle(cli: Any, config: Path) -> Cycle:
    started = time.time()
    result = cli("--config", config, "run", "--once", "--json", "--no-progress")
    finished = time.time()
    assert result.code == 0, result.err
    return Cycle(json.loads(result.out), started, finished)


def stored(db: Path) -> dict[str, list[tuple[str, str]]]:
    """(url, title) of every stored item, by the feed's configured URL."""
    found: dict[str, list[tuple[str, str]]] = {}
    with contextlib.closing(sqlite3.connect(db)) as conn:
        for config_url, url, title in conn.execute(
                "SELECT f.config_url, i.url, i.title FROM items i JOIN feeds f ON f.id = i.feed_id"
                " ORDER BY i.url"):
            found.setdefault(config_url, []).append((url, title))
    return found


def check_next_poll(row: dict[str, Any], poll: str, cycle: Cycle) -> None:
    """next_poll_at lies in the window, whenever during the cycle the feed was polled."""
    if poll == "never":
        assert row["next_poll"] is None and row["state"] == "disabled", row
        return
    low, high = POLL_WINDOWS[poll]
    when = datetime.fromisoformat(row["next_poll"]).timestamp()
    # The poll happened between started and finished; next_poll is cut to whole seconds.
    assert when - cycle.started >= low - 1, (poll, when - cycle.started, row)
    assert when - cycle.finished <= high, (poll, when - cycle.finished, row)


def check_normal_feeds(state: dict[str, dict[str, Any]], items: dict[str, list[tuple[str, str]]],
                       normal: list[dict[str, Any]], truth: list[dict[str, Any]],
                       cycle: Cycle) -> None:
    """Every ordinary feed is untouched by its hostile neighbour: ok, every article stored."""
    for r in normal:
        row = state[r["url"]]
        assert row["state"] == "ok" and row["error_kind"] is None, row
        assert row["last_status"] == 200 and row["consecutive_errors"] == 0, row
        # A set: the farm's "utm_twin" items are one article listed twice, stored once.
        expected = {t["url"] for t in truth if t["feed"] == r["name"]}
        assert {u for u, _ in items.get(r["url"], [])} == expected, r["name"]
        assert row["items"] == len(expected), row
        check_next_poll(row, "success", cycle)


def check_hostile(row: dict[str, Any], expect: Expect, cycle: Cycle, url: str) -> None:
    assert row["error_kind"] == expect.kind, row
    assert row["state"] == expect.state, row
    assert row["last_status"] == expect.status, row
    assert row["url"] == url, row
    assert row["items"] == expect.items, row
    if expect.state in ("error", "disabled"):
        assert row["consecutive_errors"] == 1 and row["last_success"] is None, row
        assert expect.says in (row["last_error"] or ""), row
    else:
        assert row["consecutive_errors"] == 0 and row["last_success"], row
    check_next_poll(row, expect.poll, cycle)


def check_summary(cycle: Cycle, expect: Expect, normal: int) -> None:
    """The cycle went on: every feed was polled, exactly one failed, and for the right reason."""
    s = cycle.summary
    failed = expect.state in ("error", "disabled")
    assert s["feeds"] == normal + 1, s
    assert s["ok"] == normal + (0 if failed else 1), s
    assert s["failed"] == (1 if failed else 0) and s["deferred"] == 0, s
    assert s["errors"] == ({expect.kind: 1} if failed else {}), s


# ------------------------------------------------------------- 1. every fault of the feed farm

FARM_CASES: dict[str, Expect] = {
    "500": Expect("http_status", "error", "backoff", "HTTP 500", 500),
    "404": Expect("http_status", "error", "backoff", "HTTP 404", 404),
    "410": Expect("gone", "disabled", "never", "disabled until re-enabled", 410),
    "429": Expect("rate_limited", "error", "retry_after", "HTTP 429", 429),
    "301": Expect(None, "ok", "success", status=200, url="/feeds/{victim}/feed/"),
    "slow": Expect("timeout", "error", "backoff", f"the {DEADLINE_S} s deadline"),
    "hang": Expect("timeout", "error", "backoff", f"the {DEADLINE_S} s deadline"),
    "huge": Expect("too_large", "error", "backoff", f"exceeds {MAX_BODY:,} bytes", 200),
    "gzipbomb": Expect("too_large", "error", "backoff", f"exceeds {MAX_BODY:,} bytes", 200),
    "notxml": Expect("not_a_feed", "error", "backoff", "HTML page instead of a feed", 200),
    "badxml": Expect("truncated", "error", "backoff", "no closing </rss>", 200),
    "wrongcharset": Expect("warning", "ok", "success", status=200),
}


@pytest.mark.parametrize("fault", list(FARM_CASES))
def test_farm_fault(fault: str, tmp_path: Path, hfarm: Farm, farm_rows: list[dict[str, Any]],
                    cli: Any) -> None:
    expect = FARM_CASES[fault]
    normal = [r for r in farm_rows if not r["name"].startswith("fault-")][:NORMAL_FEEDS]
    (row,) = [r for r in farm_rows if r["name"] == f"fault-{fault}"]
    victim = row["url"].split("/")[-3]  # the farm feed whose content the fault serves
    assert victim == normal[0]["name"]
    url = row["url"]
    if fault == "429":
        # Retry-After holds back the whole host name (tests/test_fetch.py test_retry_after_*);
        # under another name the ordinary feeds on 127.0.0.1 are not held back with it.
        url = url.replace("127.0.0.1", "localhost")
    path = url.split(str(hfarm.port), 1)[1]
    before = sum(hfarm.stats()["paths"].get(path, {}).values())
    config = table_config(tmp_path, normal, url)

    cycle = run_cycle(cli, config)
    state = feeds_json(cli, config)
    items = stored(tmp_path / "var" / "aggregator.db")
    truth = hfarm.truth()
    check_normal_feeds(state, items, normal, truth, cycle)
    victim_count = len({t["url"] for t in truth if t["feed"] == victim})
    ok = expect.state == "ok"
    moved = hfarm.base + expect.url.format(victim=victim) if expect.url else url
    check_hostile(state[url], dataclasses.replace(expect, items=victim_count if ok else 0),
                  cycle, moved)
    check_summary(cycle, expect, len(normal))
    assert cycle.finished - cycle.started < DEADLINE_S + 10, cycle  # slow and hang are cut off

    # One request, no retries within the cycle (slow and huge count theirs when the farm notices
    # that the client went away, which may be a moment later).
    after = sum(hfarm.stats()["paths"].get(path, {}).values())
    assert after - before == 1 or (fault in ("slow", "huge") and after - before == 0), after

    if fault == "wrongcharset":
        # Decoded as what it is (windows-1252), the text is the same as the real feed's.
        assert sorted(t for _, t in items[url]) == sorted(t for _, t in items[normal[0]["url"]])
        assert "CharacterEncodingOverride" in (state[url]["last_error"] or ""), state[url]
    if fault == "410":  # disabled: the next cycle does not even ask
        assert run_cycle(cli, config).summary["feeds"] == len(normal)
        assert sum(hfarm.stats()["paths"].get(path, {}).values()) == after


# ------------------------------------------- 2. TLS, DNS, sockets, redirects, encodings, headers

@dataclass(frozen=True)
class NetCase:
    expect: Expect
    route: Route | None = None  # served at /<case> on the plain server
    target: str = "plain"  # plain | tls | https-to-plain | dns | refused
    host: str = "127.0.0.1"
    deadline: float = DEADLINE_S


HUGE_NUMBER = "9" * 5000
NET_CASES: dict[str, NetCase] = {
    "tls-self-signed": NetCase(
        Expect("tls", "error", "backoff", "certificate verify failed: self-signed certificate"),
        target="tls"),
    "tls-to-plain-http": NetCase(
        Expect("tls", "error", "backoff", "WRONG_VERSION_NUMBER"), target="https-to-plain"),
    "dns-failure": NetCase(
        Expect("dns", "error", "backoff", "cannot resolve hostile-feed.invalid"), target="dns",
        deadline=10),  # a slow resolver still says "DNS timed out" after the 3 s connect timeout
    "connection-refused": NetCase(
        Expect("connect", "error", "backoff", "cannot connect"), target="refused"),
    "reset-mid-body": NetCase(
        Expect("connection", "error", "backoff", "Connection reset by peer"), reset_mid_body),
    "fin-mid-body": NetCase(
        Expect("connection", "error", "backoff", "without sending complete message body"),
        close_mid_body),
    "no-response": NetCase(
        Expect("connection", "error", "backoff", "disconnected without sending a response"),
        no_response),
    "not-http": NetCase(
        Expect("connection", "error", "backoff", "connection broken"),
        send_raw(b"SSH-2.0-OpenSSH_9.6\r\n")),
    "header-flood": NetCase(
        Expect("connection", "error", "backoff", "connection broken"),
        respond(200, SMALL_RSS, headers={f"X-Pad-{i}": "a" * 1000 for i in range(2000)})),
    "empty-200": NetCase(
        Expect("empty", "error", "backoff", "empty response body", 200), respond(200, b"")),
    "corrupt-gzip": NetCase(
        Expect("decode", "error", "backoff", "invalid compressed body", 200),
        respond(200, b"\x1f\x8b\x08\x00garbage, not deflate",
                headers={"Content-Encoding": "gzip"})),
    "brotli-bomb": NetCase(
        Expect("too_large", "error", "backoff", f"exceeds {MAX_BODY:,} bytes", 200),
        respond(200, brotli_bomb(BROTLI_BOMB_MB), headers={"Content-Encoding": "br"})),
    "temporary-redirect-302": NetCase(
        Expect(None, "ok", "success", status=200, items=SMALL_ITEMS), redirect(302, "/ok")),
    "temporary-redirect-307": NetCase(
        Expect(None, "ok", "success", status=200, items=SMALL_ITEMS), redirect(307, "/ok")),
    "permanent-redirect-308": NetCase(
        Expect(None, "ok", "success", status=200, url="/ok", items=SMALL_ITEMS),
        redirect(308, "/ok")),
    "redirect-loop": NetCase(
        Expect("redirect_loop", "error", "backoff", "was already visited", 302),
        redirect(302, "/loop")),
    "redirect-to-unparsable-url": NetCase(
        Expect("bad_redirect", "error", "backoff", "Invalid URL in location header"),
        redirect(301, "http://[::1")),
    "redirect-to-invalid-idna": NetCase(
        Expect("bad_url", "error", "backoff", "IDNAError"), redirect(301, "http://xn--/")),
    # Retry-After blocks the host name: these are served as "localhost", apart from the farm.
    "retry-after-superscript": NetCase(
        Expect("rate_limited", "error", "backoff", "HTTP 429", 429),
        respond(429, b"slow down\n", "text/plain", {"Retry-After": "\u00b2"}), host="localhost"),
    "retry-after-5000-digits": NetCase(
        Expect("rate_limited", "error", "capped", "HTTP 429", 429),
        respond(429, b"slow down\n", "text/plain", {"Retry-After": HUGE_NUMBER}),
        host="localhost"),
    "absurd-cache-headers": NetCase(
        Expect(None, "ok", "max", status=200, items=SMALL_ITEMS),
        respond(200, SMALL_RSS, headers={
            "Cache-Control": f"max-age={HUGE_NUMBER}",
            "Expires": "Mon 33333333333333333333333333333301 Jan 2024 00:00:00 GMT"})),
}


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("case", list(NET_CASES))
def test_network_fault(case: str, tmp_path: Path, hfarm: Farm, farm_rows: list[dict[str, Any]],
                       site: RawServer, tls_site: RawServer, cli: Any) -> None:
    spec = NET_CASES[case]
    normal = [r for r in farm_rows if not r["name"].startswith("fault-")][:NORMAL_FEEDS]
    site.routes["/ok"] = respond(200, SMALL_RSS)
    site.routes["/loop"] = redirect(301, "/loop-back")
    site.routes["/loop-back"] = redirect(302, "/loop")
    path = f"/{case}"
    if spec.route is not None:
        site.routes[path] = spec.route
    url = {
        "plain": site.url(path, spec.host),
        "tls": tls_site.url("/feed", scheme="https"),
        "https-to-plain": site.url(path, scheme="https"),
        "dns": "http://hostile-feed.invalid/feed/",
        "refused": f"http://127.0.0.1:{_closed_port()}/feed/",
    }[spec.target]
    config = table_config(tmp_path, normal, url, spec.deadline)

    cycle = run_cycle(cli, config)
    state = feeds_json(cli, config)
    items = stored(tmp_path / "var" / "aggregator.db")
    check_normal_feeds(state, items, normal, hfarm.truth(), cycle)
    moved = site.url(spec.expect.url, spec.host) if spec.expect.url else url
    check_hostile(state[url], spec.expect, cycle, moved)
    check_summary(cycle, spec.expect, len(normal))
    if spec.expect.items:
        assert [t for _, t in items[url]] == ["Jembatan baru di Kediri dibuka",
                                              "Panen raya di Ngawi"]


# -------------------------------------------------------------- 3. heavy bodies, measured RSS

@dataclass
class Child:
    """A `run --once --json` child process, and what it reported once it ended."""

    proc: subprocess.Popen[bytes]
    cwd: Path
    started: float  # wall clock, for the next_poll windows
    summary: dict[str, Any] | None = None
    peak_mb: float = 0.0
    wall_s: float = 0.0


# Runs the application as its grandchild and reports its exit status and rusage.  Linux's
# ru_maxrss carries the high-water mark of the process that forked it across exec: forked from
# the test runner (460 MB late in a full run) a small run measured 460 MB.  Forked from this
# small process instead, the figure is the application's own (and its reaped workers').
_TRAMPOLINE = """
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"code": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss}, out)
"""


def start_child(config: Path, cwd: Path) -> Child:
    # Files, not pipes: nobody reads the child's output while it runs in the background.
    with (cwd / "stdout.txt").open("wb") as out, (cwd / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", _TRAMPOLINE, str(cwd / "rusage.json"),
                                 *AGGREGATOR[1:], "--config", str(config), "run", "--once",
                                 "--json", "--no-progress"],
                                cwd=cwd, stdout=out, stderr=err, start_new_session=True)
    return Child(proc, cwd, time.time())


def finish_child(child: Child) -> Child:
    """Wait for the child; its own peak RSS comes from os.wait4 in the trampoline, exactly,
    not from a max over every child this process ever had (RUSAGE_CHILDREN)."""
    if child.summary is None:
        assert child.proc.wait() == 0
        report = json.loads((child.cwd / "rusage.json").read_text())
        child.proc.returncode = report["code"]
        err = (child.cwd / "stderr.txt").read_text(errors="replace")
        assert child.proc.returncode == 0, err[-3000:]
        child.summary = json.loads((child.cwd / "stdout.txt").read_text())
        child.peak_mb = report["maxrss_kb"] / 1024
        child.wall_s = time.time() - child.started
    return child


def stop_child(child: Child) -> None:
    """Kill the trampoline and the application it started (one session)."""
    if child.proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.proc.pid, signal.SIGKILL)
        child.proc.wait()


def heavy_config(directory: Path, normal: list[dict[str, Any]],
                 hostile: dict[str, str]) -> Path:
    """The shipped defaults (15 MiB body cap, 5 min .. 1 day), only a shorter deadline."""
    members = [member(r["name"], r["url"]) for r in normal]
    members += [member(name, url) for name, url in hostile.items()]
    return make_config(directory, members, fetch={"deadline": 15})


def big_title_feed(size: int) -> bytes:
    words = "Gubernur meresmikan jalan tol baru yang menghubungkan Surabaya dan Malang "
    title = (words * (size // len(words) + 1))[:size]
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Judul</title>'
        "<link>https://judul.example/</link><description>x</description>"
        f"<item><title>{title}</title><link>https://judul.example/panjang/</link>"
        "<guid>https://judul.example/?p=1</guid><description>Isi pendek.</description></item>"
        "<item><title>Judul biasa</title><link>https://judul.example/biasa/</link>"
        "<guid>https://judul.example/?p=2</guid><description>Isi biasa.</description></item>"
        "</channel></rss>"
    ).encode()


def test_heavy_bodies_stay_under_the_memory_bound(
        tmp_path: Path, hfarm: Farm, farm_rows: list[dict[str, Any]], site: RawServer,
        cli: Any, record_property: Callable[[str, object], None]) -> None:
    normal = [r for r in farm_rows if not r["name"].startswith("fault-")][:NORMAL_FEEDS]
    faults = {r["name"]: r["url"] for r in farm_rows}
    site.routes["/heavy-brotli"] = respond(200, brotli_bomb(BROTLI_BOMB_MB),
                                           headers={"Content-Encoding": "br"})
    site.routes["/heavy-title"] = respond(200, big_title_feed(5_000_000))
    hostile = {"huge": faults["fault-huge"], "gzipbomb": faults["fault-gzipbomb"],
               "brotli": site.url("/heavy-brotli"), "title": site.url("/heavy-title")}
    config = heavy_config(tmp_path, normal, hostile)
    child = finish_child(start_child(config, tmp_path))
    assert child.summary is not None
    record_property("peak_rss_mb", round(child.peak_mb))  # in --junitxml reports

    assert child.peak_mb < MEMORY_BOUND_MB, child
    assert child.summary["peak_rss_mb"] < MEMORY_BOUND_MB, child.summary
    assert child.summary["errors"] == {"too_large": 3}, child.summary
    state = feeds_json(cli, config)
    cap = 15 * 1024 * 1024
    for name in ("huge", "gzipbomb", "brotli"):
        row = state[hostile[name]]
        assert row["error_kind"] == "too_large" and f"{cap:,}" in row["last_error"], row
    titled = state[hostile["title"]]
    assert titled["state"] == "ok" and titled["items"] == 2, titled
    items = stored(tmp_path / "var" / "aggregator.db")
    lengths = sorted(len(t) for _, t in items[hostile["title"]])
    assert lengths == [len("Judul biasa"), MAX_TITLE], lengths  # cut to normalize.MAX_TITLE
    truth = hfarm.truth()
    for r in normal:
        assert state[r["url"]]["items"] == len({t["url"] for t in truth if t["feed"] == r["name"]})


def test_a_5_mb_channel_title_is_not_stored_whole(tmp_path: Path, site: RawServer,
                                                  cli: Any) -> None:
    body = big_title_feed(1000).replace(b"<title>Judul</title>",
                                        b"<title>" + b"Kabar " * 1_000_000 + b"</title>", 1)
    site.routes["/channel-title"] = respond(200, body)
    config = make_config(tmp_path, [member("judul", site.url("/channel-title"))])
    cycle = run_cycle(cli, config)
    assert cycle.summary["ok"] == 1, cycle.summary
    with contextlib.closing(sqlite3.connect(tmp_path / "var" / "aggregator.db")) as conn:
        (length,) = conn.execute("SELECT max(length(title)) FROM feeds").fetchone()
    assert length <= MAX_TITLE, length


TWENTY_THOUSAND = 20_000
ITEM_CAP = 500  # fetch.max_items_per_feed's default
WORDS = ("banjir", "pasar", "festival", "jalan", "sekolah", "rumah", "sakit", "desa", "kota",
         "bupati", "warga", "petani", "nelayan", "harga", "beras", "hujan", "angin", "gempa",
         "kereta", "bandara", "pelabuhan")


def many_items_feed(count: int, now: float) -> bytes:
    """``count`` distinct dated items, newest first, 30 s apart, like a runaway CMS export."""
    rng = random.Random(20_000)
    words = WORDS
    parts = ['<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
             "<title>Banyak</title><link>https://banyak.example/</link><description>x"
             "</description>"]
    for i in range(count):
        text = " ".join(rng.choice(words) for _ in range(12))
        parts.append(f"<item><title>Kabar {i}: {text[:40]}</title>"
                     f"<link>https://banyak.example/{i}/</link>"
                     f"<guid>https://banyak.example/?p={i}</guid>"
                     f"<pubDate>{formatdate(now - 30 * i, usegmt=True)}</pubDate>"
                     f"<description>{text}</description></item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode()


@pytest.fixture(scope="module")
def twenty_thousand(tmp_path_factory: pytest.TempPathFactory, farm_rows: list[dict[str, Any]],
                    site: RawServer) -> Iterator[tuple[Child, Path, str]]:
    """The 20,000-item cycle, started in the background (see _start_the_slow_child_first)."""
    folder = tmp_path_factory.mktemp("many")
    normal = [r for r in farm_rows if not r["name"].startswith("fault-")][:NORMAL_FEEDS]
    body = many_items_feed(TWENTY_THOUSAND, time.time())
    assert len(body) < 15 * 1024 * 1024  # under the body cap: this is about the item count
    site.routes["/many"] = respond(200, body)
    url = site.url("/many")
    config = heavy_config(folder, normal, {"many": url})
    child = start_child(config, folder)
    try:
        yield child, config, url
    finally:
        stop_child(child)


@pytest.fixture(scope="module", autouse=True)
def _start_the_slow_child_first(request: pytest.FixtureRequest) -> None:
    """Parsing 20,000 items takes the application several seconds: when that test
    is selected, its cycle starts before the tables and runs alongside them."""
    if any(item.name == "test_a_feed_of_20000_items" for item in request.session.items):
        request.getfixturevalue("twenty_thousand")


def test_a_feed_of_20000_items(twenty_thousand: tuple[Child, Path, str], hfarm: Farm,
                               farm_rows: list[dict[str, Any]], cli: Any,
                               record_property: Callable[[str, object], None]) -> None:
    child, config, url = twenty_thousand
    finish_child(child)
    assert child.summary is not None
    cycle = Cycle(child.summary, child.started, time.time())
    record_property("peak_rss_mb", round(child.peak_mb))
    record_property("wall_s", round(child.wall_s, 1))
    normal = [r for r in farm_rows if not r["name"].startswith("fault-")][:NORMAL_FEEDS]

    assert child.summary["failed"] == 0 and child.summary["ok"] == len(normal) + 1, child.summary
    state = feeds_json(cli, config)
    row = state[url]
    # fetch.max_items_per_feed (500 by default) keeps the newest items, and says so.
    assert row["state"] == "ok" and row["items"] == ITEM_CAP, row
    assert f"lists {TWENTY_THOUSAND} items; only the newest {ITEM_CAP}" in row["last_error"], row
    low, high = 0.9 * 300, 1.1 * MAX_INTERVAL  # the shipped min_interval: a busy feed
    when = datetime.fromisoformat(row["next_poll"]).timestamp()
    assert when - cycle.started >= low - 1 and when - cycle.finished <= high, row
    truth = hfarm.truth()
    for r in normal:
        assert state[r["url"]]["items"] == len({t["url"] for t in truth if t["feed"] == r["name"]})
    assert child.peak_mb < MEMORY_CEILING_MB, child
    assert child.summary["peak_rss_mb"] < MEMORY_CEILING_MB, child.summary
    assert child.peak_mb < MEMORY_BOUND_MB, child
