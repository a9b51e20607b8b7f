"""The fetcher through the public surface: feeds.yaml in, `run --once`, `feeds --json` out.

Every server here listens on 127.0.0.1 only: the feed farm (conftest's ``farm`` fixture) or a tiny
threaded http.server whose routes each test writes.  Where a property is about one fetch rather
than a cycle, ``aggregator.fetch.fetch_feed`` is called directly.
"""

from __future__ import annotations

import asyncio
import ipaddress
import resource
import socket
import sqlite3
import struct
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Farm, feeds_json, make_config

from aggregator.config import parse_config
from aggregator.fetch import build_client, fetch_feed
from aggregator.netguard import BlockedAddress, GuardedBackend, is_public

# ------------------------------------------------------------------------------ a tiny server

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
<title>Kabar Uji</title><link>https://kabar-uji.example/</link><description>uji</description>
<item><title>Banjir surut di Sidoarjo</title><link>https://kabar-uji.example/2024/05/01/banjir/</link>
<guid>https://kabar-uji.example/?p=1</guid><pubDate>Wed, 01 May 2024 08:00:00 +0700</pubDate>
<description>Air mulai surut.</description></item>
<item><title>Pasar baru dibuka di Malang</title><link>https://kabar-uji.example/2024/05/02/pasar/</link>
<guid>https://kabar-uji.example/?p=2</guid><pubDate>Thu, 02 May 2024 09:30:00 +0700</pubDate>
<description>Pedagang pindah ke gedung baru.</description></item>
<item><title>Festival budaya Banyuwangi</title><link>https://kabar-uji.example/2024/05/03/festival/</link>
<guid>https://kabar-uji.example/?p=3</guid><pubDate>Fri, 03 May 2024 19:00:00 +0700</pubDate>
<description>Ribuan penonton hadir.</description></item>
</channel></rss>
"""
RSS_ITEMS = 3

Route = Callable[["_Handler"], None]


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        site = self.server.site
        with site.lock:
            site.requests.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
        route = site.routes.get(self.path)
        if route is None:
            send(self, 404, b"not found\n", "text/plain")
        else:
            route(self)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    site: Site


@dataclass
class Site:
    """A threaded HTTP/1.1 server on 127.0.0.1 with per-path routes and a log of requests."""

    port: int = 0
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def hits(self, path: str) -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


def send(h: BaseHTTPRequestHandler, code: int, body: bytes = b"", ctype: str | None = None,
         headers: dict[str, str] | None = None) -> None:
    h.send_response(code)
    if ctype:
        h.send_header("Content-Type", ctype)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def feed(body: bytes = RSS, headers: dict[str, str] | None = None) -> Route:
    return lambda h: send(h, 200, body, "application/rss+xml; charset=UTF-8", headers)


def redirect(status: int, location: str) -> Route:
    return lambda h: send(h, status, b"moved\n", "text/plain", {"Location": location})


def status(code: int, headers: dict[str, str] | None = None) -> Route:
    return lambda h: send(h, code, b"<html><body>no</body></html>\n", "text/html", headers)


def reset_mid_body(h: BaseHTTPRequestHandler) -> None:
    """Promise the whole feed, send a third of it, then reset the connection (RST, not FIN)."""
    h.send_response(200)
    h.send_header("Content-Type", "application/rss+xml")
    h.send_header("Content-Length", str(len(RSS)))
    h.end_headers()
    h.wfile.write(RSS[: len(RSS) // 3])
    h.wfile.flush()
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.connection.close()
    h.close_connection = True


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.site = s
    s.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield s
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# ------------------------------------------------------------------------------------ helpers

def member(mid: str, *urls: str) -> dict[str, Any]:
    return {"id": mid, "name": f"Anggota {mid}", "site": f"https://{mid}.example/",
            "feeds": list(urls)}


def run_once(cli: Any, config: Path) -> str:
    result = cli("--config", config, "run", "--once", "--no-progress")
    assert result.code == 0, result.err
    assert result.out.startswith("cycle: "), result.out
    out: str = result.out
    return out


def seconds_until(iso: str, since: float) -> float:
    return datetime.fromisoformat(iso).timestamp() - since


def stored_urls(db: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    with sqlite3.connect(db) as conn:
        for config_url, url in conn.execute(
                "SELECT f.config_url, i.url FROM items i JOIN feeds f ON f.id = i.feed_id"):
            found.setdefault(config_url, set()).add(url)
    return found


# ------------------------------------------------------------------ 1. every farm fault at once

# error_kind and state of each /faults/<kind>/ feed ("warning": stored, with a remark for the
# webmaster; for wrongcharset, the windows-1252 bytes under a UTF-8 declaration, none is fine too).
FAULT_EXPECT: dict[str, tuple[str | None, str]] = {
    "500": ("http_status", "failing"),
    "404": ("http_status", "failing"),
    "410": ("gone", "disabled"),
    "429": ("rate_limited", "failing"),
    "301": (None, "ok"),
    "slow": ("timeout", "failing"),
    "huge": ("too_large", "failing"),
    "notxml": ("not_a_feed", "failing"),
    "badxml": ("truncated", "failing"),
    "wrongcharset": ("warning", "ok"),
    "gzipbomb": ("too_large", "failing"),
    "hang": ("timeout", "failing"),
}
DEADLINE_S = 3
MAX_BODY = 2_000_000
WALL_BOUND_S = 20.0  # a 3 s deadline, 31 feeds; slow dribbles for 30 s and hang holds for 60 s
MEMORY_BOUND = 32 * 1024 * 1024  # peak Python allocations; huge is 40 MB, the bomb 200 MB
RSS_BOUND = 64 * 1024 * 1024  # growth of the process peak RSS (C buffers too); about 14 MB here


def test_every_farm_fault_in_one_cycle_alongside_normal_feeds(
        tmp_path: Path, farm: Farm, cli: Any) -> None:
    rows = farm.feeds(faults=True)
    normal = [r for r in rows if not r["name"].startswith("fault-")]
    faults = {r["name"].removeprefix("fault-"): r for r in rows if r["name"].startswith("fault-")}
    assert set(faults) == set(FAULT_EXPECT) and len(normal) == 20
    # The 429 answers Retry-After: 120, which (by design, see test_retry_after_*) blocks its whole
    # host name; served under "localhost" it cannot defer the normal feeds on 127.0.0.1.
    faults["429"]["url"] = faults["429"]["url"].replace("127.0.0.1", "localhost")
    members = [member(r["name"], r["url"]) for r in [*normal, *faults.values()]]
    config = make_config(tmp_path, members, fetch={"deadline": DEADLINE_S,
                                                   "max_body_bytes": MAX_BODY},
                         schedule={"failing_after": 0})

    # The same cycle over the normal feeds first: what a first cycle imports and builds (the
    # parsers, the publishing templates) is not what this test measures.
    warm = tmp_path / "warm"
    warm.mkdir()
    run_once(cli, make_config(warm, [member(r["name"], r["url"]) for r in normal]))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.monotonic()
    try:
        out = run_once(cli, config)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
    assert elapsed < WALL_BOUND_S, (elapsed, out)
    assert peak < MEMORY_BOUND, f"peak {peak:,} bytes of Python allocations during the cycle"
    assert rss_growth < RSS_BOUND, f"peak RSS grew by {rss_growth:,} bytes during the cycle"
    assert out.startswith("cycle: 32 feeds: 22 ok, 0 not modified, 10 failed"), out

    state = feeds_json(cli, config)
    victim = faults["500"]["url"].split("/")[-3]
    truth = Counter(t["feed"] for t in farm.truth())
    for kind, (error_kind, expected_state) in FAULT_EXPECT.items():
        row = state[faults[kind]["url"]]
        assert row["state"] == expected_state, (kind, row)
        acceptable = {error_kind, None} if error_kind == "warning" else {error_kind}
        assert row["error_kind"] in acceptable, (kind, row)
        if expected_state == "ok":
            assert row["consecutive_errors"] == 0 and row["last_success"], (kind, row)
            assert row["items"] == truth[victim], (kind, row)
        else:
            assert row["consecutive_errors"] == 1 and row["last_success"] is None, (kind, row)
            assert row["items"] == 0 and row["last_error"], (kind, row)

    # The specifics a webmaster is told.
    assert state[faults["500"]["url"]]["last_status"] == 500
    assert "HTTP 500" in state[faults["500"]["url"]]["last_error"]
    assert state[faults["404"]["url"]]["last_status"] == 404
    assert "HTTP 404" in state[faults["404"]["url"]]["last_error"]
    gone = state[faults["410"]["url"]]
    assert gone["next_poll"] is None and "disabled" in gone["last_error"]
    limited = state[faults["429"]["url"]]
    assert limited["last_status"] == 429
    assert seconds_until(limited["next_poll"], time.time()) >= 120 - 5  # honours Retry-After
    for kind in ("slow", "hang"):
        assert f"{DEADLINE_S} s deadline" in state[faults[kind]["url"]]["last_error"], kind
    for kind in ("huge", "gzipbomb"):
        assert f"{MAX_BODY:,}" in state[faults[kind]["url"]]["last_error"], kind
    assert "HTML page" in state[faults["notxml"]["url"]]["last_error"]
    assert "truncated" in state[faults["badxml"]["url"]]["last_error"]
    moved = state[faults["301"]["url"]]
    assert moved["url"] == f"{farm.base}/feeds/{victim}/feed/"
    assert moved["last_status"] == 200

    # Every normal feed is untouched by its neighbours' faults: ok, and every article stored.
    stored = stored_urls(tmp_path / "var" / "aggregator.db")
    for r in normal:
        row = state[r["url"]]
        assert row["state"] == "ok" and row["error_kind"] is None, row
        assert row["consecutive_errors"] == 0 and row["last_status"] == 200, row
        expected = {t["url"] for t in farm.truth() if t["feed"] == r["name"]}
        assert stored.get(r["url"]) == expected, r["name"]
        assert row["items"] == len(expected), row


# ---------------------------------------------------------------------- 2-3. conditional GET

def test_second_cycle_is_a_conditional_get_answered_304(
        tmp_path: Path, farm: Farm, cli: Any) -> None:
    rows = farm.feeds()[:3]
    config = make_config(tmp_path, [member(r["name"], r["url"]) for r in rows])
    run_once(cli, config)
    farm.stats(reset=True)
    out = run_once(cli, config)
    assert "3 feeds: 0 ok, 3 not modified, 0 failed" in out
    assert "0 new items, 0 updated" in out
    paths = farm.stats()["paths"]
    assert paths == {r["url"].removeprefix(farm.base): {"304": 1} for r in rows}
    state = feeds_json(cli, config)
    for r in rows:
        assert state[r["url"]]["last_status"] == 304 and state[r["url"]]["state"] == "ok"
        assert state[r["url"]]["items"] > 0


def test_conditional_get_sends_the_stored_validators(tmp_path: Path, site: Site, cli: Any) -> None:
    etag, modified = '"v1-abc"', "Wed, 01 May 2024 10:00:00 GMT"

    def conditional(h: _Handler) -> None:
        if h.headers.get("If-None-Match") == etag:
            h.send_response(304)
            h.send_header("ETag", etag)
            h.end_headers()
        else:
            send(h, 200, RSS, "application/rss+xml", {"ETag": etag, "Last-Modified": modified})

    site.routes["/feed"] = conditional
    config = make_config(tmp_path, [member("kabar", site.url("/feed"))])
    assert "1 ok" in run_once(cli, config)
    assert "1 not modified" in run_once(cli, config)
    first, second = site.hits("/feed")
    assert "if-none-match" not in first.headers and "if-modified-since" not in first.headers
    assert second.headers["if-none-match"] == etag
    assert second.headers["if-modified-since"] == modified
    row = feeds_json(cli, config)[site.url("/feed")]
    assert row["last_status"] == 304 and row["items"] == RSS_ITEMS


def test_validators_follow_a_temporary_redirect_to_the_url_that_gave_them(
        tmp_path: Path, site: Site, cli: Any) -> None:
    etag = '"v2-final"'

    def conditional(h: _Handler) -> None:
        if h.headers.get("If-None-Match") == etag:
            h.send_response(304)
            h.end_headers()
        else:
            send(h, 200, RSS, "application/rss+xml", {"ETag": etag})

    site.routes["/feed"] = redirect(302, site.url("/current"))
    site.routes["/current"] = conditional
    config = make_config(tmp_path, [member("kabar", site.url("/feed"))])
    assert "1 ok" in run_once(cli, config)
    assert "1 not modified" in run_once(cli, config)
    assert all("if-none-match" not in r.headers for r in site.hits("/feed"))
    assert site.hits("/current")[1].headers["if-none-match"] == etag
    assert feeds_json(cli, config)[site.url("/feed")]["url"] == site.url("/feed")


def test_unchanged_body_without_validators_is_not_modified(
        tmp_path: Path, site: Site, cli: Any) -> None:
    site.routes["/feed"] = feed()  # no ETag, no Last-Modified: only the body hash can tell
    config = make_config(tmp_path, [member("kabar", site.url("/feed"))])
    first = run_once(cli, config)
    assert "1 ok" in first and f"{RSS_ITEMS} new items" in first
    second = run_once(cli, config)
    assert "1 feeds: 0 ok, 1 not modified, 0 failed" in second
    assert "0 new items, 0 updated" in second
    assert len(site.hits("/feed")) == 2
    assert all("if-none-match" not in s.headers for s in site.hits("/feed"))
    row = feeds_json(cli, config)[site.url("/feed")]
    assert row["state"] == "ok" and row["items"] == RSS_ITEMS and row["last_status"] == 200


# -------------------------------------------------------------------------------- 4. redirects

def test_redirects(tmp_path: Path, site: Site, cli: Any) -> None:
    site.routes["/feed"] = feed()
    u = site.url
    site.routes["/temp"] = redirect(302, u("/feed"))
    site.routes["/perm"] = redirect(301, "/perm2")  # relative Location
    site.routes["/perm2"] = redirect(308, u("/feed"))
    site.routes["/mixed"] = redirect(301, u("/mixed2"))
    site.routes["/mixed2"] = redirect(302, u("/feed"))
    site.routes["/loop"] = redirect(302, u("/loop2"))
    site.routes["/loop2"] = redirect(301, u("/loop"))
    for n in range(6):  # /five: five hops, the most allowed; /six: one more
        site.routes[f"/five{n}"] = redirect(301, u(f"/five{n + 1}") if n < 4 else u("/feed"))
        site.routes[f"/six{n}"] = redirect(301, u(f"/six{n + 1}") if n < 5 else u("/feed"))
    names = ["temp", "perm", "mixed", "loop", "five0", "six0"]
    config = make_config(tmp_path, [member(n, u(f"/{n}")) for n in names])
    out = run_once(cli, config)
    assert "6 feeds: 4 ok" in out and "2 failed" in out, out

    state = feeds_json(cli, config)
    assert state[u("/temp")]["url"] == u("/temp")  # 302: keep polling the old URL
    assert state[u("/perm")]["url"] == u("/feed")  # 301 -> 308: moved for good
    assert state[u("/mixed")]["url"] == u("/mixed")  # one temporary hop: not permanent
    assert state[u("/five0")]["url"] == u("/feed")
    for name in ("temp", "perm", "mixed", "five0"):
        row = state[u(f"/{name}")]
        assert row["state"] == "ok" and row["items"] == RSS_ITEMS, row
    loop = state[u("/loop")]
    assert loop["error_kind"] == "redirect_loop" and loop["url"] == u("/loop"), loop
    six = state[u("/six0")]
    assert six["error_kind"] == "too_many_redirects" and six["url"] == u("/six0"), six
    assert "5 redirects" in six["last_error"]
    assert len(site.hits("/six5")) == 1 and site.hits("/end") == []  # sixth hop not followed
    assert len(site.hits("/loop")) == 1 and len(site.hits("/loop2")) == 1

    # The next cycle polls the new URL directly and the old one not at all.
    before = len(site.hits("/perm"))
    run_once(cli, config)
    assert len(site.hits("/perm")) == before
    assert len(site.hits("/temp")) == 2


# ----------------------------------------------------------------------- 5. Retry-After per host

def test_retry_after_blocks_the_host_for_the_next_cycle(
        tmp_path: Path, site: Site, cli: Any) -> None:
    site.routes["/a"] = status(429, {"Retry-After": "3600"})
    site.routes["/b"] = feed()
    config = make_config(tmp_path, [member("a", site.url("/a")), member("b", site.url("/b"))])
    started = time.time()
    first = run_once(cli, config)
    assert "1 ok" in first and "1 failed (rate_limited 1)" in first, first
    state = feeds_json(cli, config)
    assert state[site.url("/a")]["error_kind"] == "rate_limited"
    # At least Retry-After; the backoff it raises is jittered by up to +25 %.
    assert 3600 - 2 <= seconds_until(state[site.url("/a")]["next_poll"], started) <= 4500 + 5

    second = run_once(cli, config)
    assert "2 feeds: 0 ok, 0 not modified, 0 failed, 2 deferred" in second, second
    assert len(site.hits("/a")) == 1 and len(site.hits("/b")) == 1  # nothing sent to the host
    state = feeds_json(cli, config)
    assert state[site.url("/b")]["state"] == "ok"  # deferral is not a failure
    assert state[site.url("/b")]["consecutive_errors"] == 0
    assert 3600 - 2 <= seconds_until(state[site.url("/b")]["next_poll"], started) <= 3600 + 30


def test_retry_after_defers_the_rest_of_the_host_in_the_same_cycle(
        tmp_path: Path, site: Site, cli: Any) -> None:
    site.routes["/a"] = status(429, {"Retry-After": "3600"})
    site.routes["/b"] = feed()
    site.routes["/c"] = feed()
    members = [member("a", site.url("/a")), member("b", site.url("/b")),
               member("c", site.url("/c", host="localhost"))]
    # One request at a time per host: /a (listed first) answers 429 before /b is asked.
    config = make_config(tmp_path, members, fetch={"per_host": 1})
    out = run_once(cli, config)
    assert "3 feeds: 1 ok, 0 not modified, 1 failed (rate_limited 1), 1 deferred" in out, out
    assert len(site.hits("/b")) == 0
    assert len(site.hits("/c")) == 1  # another host name is not held back


# ------------------------------------------------------------------- 6. private-network guard

def test_private_addresses_are_refused_without_a_request(
        tmp_path: Path, site: Site, cli: Any) -> None:
    site.routes["/feed"] = feed()
    urls = [site.url("/feed"), site.url("/feed", host="localhost"),
            site.url("/feed", host="[::1]")]
    config = make_config(tmp_path, [member(f"m{i}", u) for i, u in enumerate(urls)],
                         allow_private=False)
    out = run_once(cli, config)
    assert "3 feeds: 0 ok, 0 not modified, 3 failed (blocked_address 3)" in out, out
    state = feeds_json(cli, config)
    for u in urls:
        assert state[u]["error_kind"] == "blocked_address", state[u]
        assert "non-public address" in state[u]["last_error"]
        assert state[u]["last_status"] is None
    assert site.requests == []


@pytest.mark.parametrize(("address", "public"), [
    ("10.0.0.1", False), ("172.16.5.4", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("127.0.0.1", False), ("100.64.0.1", False), ("0.0.0.0", False),
    ("::1", False), ("fc00::1", False), ("fe80::1", False), ("::ffff:127.0.0.1", False),
    ("::ffff:10.1.2.3", False), ("::ffff:169.254.169.254", False),
    ("8.8.8.8", True), ("1.1.1.1", True), ("2001:4860:4860::8888", True),
    ("::ffff:8.8.8.8", True),
])
def test_is_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "::1", "10.0.0.1",
                                  "169.254.169.254", "::ffff:127.0.0.1"])
async def test_guarded_backend_refuses_before_connecting(host: str) -> None:
    with pytest.raises(BlockedAddress):
        await GuardedBackend(allow_private=False).connect_tcp(host, 9, timeout=1)


async def test_redirect_from_a_public_host_to_a_private_address_is_refused(
        tmp_path: Path, site: Site) -> None:
    site.routes["/feed"] = feed()
    path = make_config(tmp_path, [member("kabar", "https://kabar.example/feed/")],
                       allow_private=False)
    config = parse_config(path.read_text(encoding="utf-8"), str(path))
    guarded = build_client(config)

    class PublicThenReal(httpx.AsyncBaseTransport):
        """kabar.example (a stand-in for a public site) redirects; the rest goes to the network."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.host == "kabar.example":
                return httpx.Response(301, headers={"Location": site.url("/feed")})
            return await guarded._transport.handle_async_request(request)

    async with guarded, httpx.AsyncClient(transport=PublicThenReal()) as client:
        result = await fetch_feed(client, "https://kabar.example/feed/", etag=None,
                                  last_modified=None, max_bytes=MAX_BODY, max_redirects=5,
                                  deadline=5)
    assert result.status == "error" and result.error_kind == "blocked_address", result
    assert result.redirects == ((301, site.url("/feed")),)
    assert site.requests == []


# ------------------------------------------------------------------------------------ 410 Gone

def test_gone_disables_the_feed_until_re_enabled(tmp_path: Path, site: Site, cli: Any) -> None:
    site.routes["/feed"] = status(410)
    config = make_config(tmp_path, [member("tutup", site.url("/feed"))])
    assert "1 failed (gone 1)" in run_once(cli, config)
    row = feeds_json(cli, config)[site.url("/feed")]
    assert row["state"] == "disabled" and row["error_kind"] == "gone" and row["next_poll"] is None
    assert "cycle: 0 feeds" in run_once(cli, config)  # a disabled feed is not polled at all
    assert len(site.hits("/feed")) == 1

    site.routes["/feed"] = feed()  # the member restored it
    enabled = cli("--config", config, "enable-feed", site.url("/feed"))
    assert enabled.code == 0, enabled.err
    assert "1 ok" in run_once(cli, config)
    row = feeds_json(cli, config)[site.url("/feed")]
    assert row["state"] == "ok" and row["items"] == RSS_ITEMS


# ------------------------------------------------------------------------------- 7. backoff

def test_failures_back_off_exponentially(tmp_path: Path, site: Site, cli: Any) -> None:
    site.routes["/feed"] = status(500)
    minimum = 100
    config = make_config(tmp_path, [member("kabar", site.url("/feed"))],
                         schedule={"min_interval": minimum})
    delays = []
    for _ in range(2):
        started = time.time()
        out = run_once(cli, config)
        assert "1 failed (http_status 1)" in out, out
        row = feeds_json(cli, config)[site.url("/feed")]
        delays.append(seconds_until(row["next_poll"], started))
    assert row["consecutive_errors"] == 2
    assert row["state"] == "error"  # failing for seconds, not for schedule.failing_after (2 days)
    assert row["failing_since"] is not None
    # min_interval, then twice that, each with +/-25 % jitter (and 1-2 s of rounding and clock).
    assert 0.75 * minimum - 2 <= delays[0] <= 1.25 * minimum + 2, delays
    assert 0.75 * 2 * minimum - 2 <= delays[1] <= 1.25 * 2 * minimum + 2, delays
    assert len(site.hits("/feed")) == 2


def test_feed_failing_longer_than_failing_after_is_flagged(
        tmp_path: Path, site: Site, cli: Any) -> None:
    site.routes["/bad"] = status(500)
    site.routes["/good"] = feed()
    config = make_config(tmp_path, [member("bad", site.url("/bad")),
                                    member("good", site.url("/good"))],
                         schedule={"failing_after": 0})
    run_once(cli, config)
    state = feeds_json(cli, config)
    assert state[site.url("/bad")]["state"] == "failing"
    assert state[site.url("/good")]["state"] == "ok"
    listed = cli("--config", config, "feeds", "--failing", "--json")
    assert listed.code == 0, listed.err
    assert [r["config_url"] for r in listed.json()] == [site.url("/bad")]


# --------------------------------------------------------------------------- 8. request headers

def test_user_agent_and_accept(tmp_path: Path, site: Site, cli: Any) -> None:
    site.routes["/feed"] = feed()
    config = make_config(tmp_path, [member("kabar", site.url("/feed"))])
    run_once(cli, config)
    (seen,) = site.hits("/feed")
    assert "Sindikasi" in seen.headers["user-agent"]
    assert "AMSI Jawa Timur" in seen.headers["user-agent"]  # the association, for webmasters
    accept = seen.headers["accept"]
    assert "application/rss+xml" in accept and "application/atom+xml" in accept
    assert "gzip" in seen.headers["accept-encoding"]


# ------------------------------------------------------------------ 9-10. network-level failures

def test_dns_failure(tmp_path: Path, cli: Any) -> None:
    url = "http://does-not-exist.invalid/feed/"
    config = make_config(tmp_path, [member("hilang", url)])
    out = run_once(cli, config)
    assert "1 failed (dns 1)" in out, out
    row = feeds_json(cli, config)[url]
    assert row["error_kind"] == "dns" and "does-not-exist.invalid" in row["last_error"], row
    assert row["last_status"] is None


def test_connection_reset_and_empty_body(tmp_path: Path, site: Site, cli: Any) -> None:
    site.routes["/reset"] = reset_mid_body
    site.routes["/empty"] = feed(b"")
    site.routes["/feed"] = feed()
    config = make_config(tmp_path, [member("putus", site.url("/reset")),
                                    member("kosong", site.url("/empty")),
                                    member("kabar", site.url("/feed"))])
    out = run_once(cli, config)
    assert "3 feeds: 1 ok, 0 not modified, 2 failed (connection 1, empty 1)" in out, out
    state = feeds_json(cli, config)
    reset = state[site.url("/reset")]
    assert reset["error_kind"] == "connection" and reset["items"] == 0, reset
    assert "connection broken" in reset["last_error"]
    empty = state[site.url("/empty")]
    assert empty["error_kind"] == "empty" and empty["last_status"] == 200, empty
    assert state[site.url("/feed")]["items"] == RSS_ITEMS


# --------------------------------------------------------------- fetch_feed with MockTransport

async def _mock_fetch(handler: Callable[[httpx.Request], Any], url: str,
                      **kwargs: Any) -> Any:
    options: dict[str, Any] = dict(etag=None, last_modified=None, max_bytes=MAX_BODY,
                                   max_redirects=5, deadline=5)
    options.update(kwargs)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        return await fetch_feed(client, url, **options)


async def test_fetch_feed_validators_go_to_the_stored_url_only() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/old":
            return httpx.Response(301, headers={"Location": "/new"})
        return httpx.Response(200, stream=httpx.ByteStream(RSS), headers={"ETag": '"n"'})

    result = await _mock_fetch(handler, "https://kabar.example/old", etag='"o"',
                               last_modified="Wed, 01 May 2024 10:00:00 GMT")
    assert result.status == "ok" and result.permanent_url == "https://kabar.example/new"
    assert result.etag == '"n"' and result.body == RSS
    assert seen[0].headers["if-none-match"] == '"o"' and "if-modified-since" in seen[0].headers
    assert "if-none-match" not in seen[1].headers and "if-modified-since" not in seen[1].headers


async def test_fetch_feed_caps_a_declared_length_without_reading_it() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(10 * MAX_BODY)}, content=b"")

    result = await _mock_fetch(handler, "https://kabar.example/feed")
    assert result.error_kind == "too_large" and "Content-Length" in (result.error or "")


async def test_fetch_feed_deadline() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        return httpx.Response(200, stream=httpx.ByteStream(RSS))

    started = time.monotonic()
    result = await _mock_fetch(slow, "https://kabar.example/feed", deadline=0.3)
    assert result.error_kind == "timeout" and time.monotonic() - started < 2
