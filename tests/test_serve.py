"""aggregator.serve against a real uvicorn on 127.0.0.1: what feed readers and caches depend on."""

from __future__ import annotations

import gzip
import http.client
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

import httpx
import pytest

from aggregator.serve import DirectoryNotFound, ServeError, make_app, serve, start_background

RSS = "application/rss+xml; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"
SITEMAP = "application/xml; charset=utf-8"

FILES: dict[str, bytes] = {
    "index.html": b"<!doctype html><title>Sindikasi</title>" + b"<p>berita</p>" * 100,
    "regions/jawa-timur.html": b"<!doctype html><title>Jawa Timur</title>",
    "feed.xml": b"<?xml version='1.0'?><rss>" + b"<item>Surabaya</item>" * 200 + b"</rss>",
    "atom.xml": b"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'/>",
    "feed.json": b'{"version": "https://jsonfeed.org/version/1.1", "items": []}',
    "regions/jawa-timur.xml": b"<?xml version='1.0'?><rss/>",
    "regions/jawa-timur.atom": b"<?xml version='1.0'?><feed/>",
    "members/7.xml": b"<?xml version='1.0'?><rss/>",
    "sitemaps/news-1.xml": b"<?xml version='1.0'?><urlset/>",
    "sitemap.xml": b"<?xml version='1.0'?><sitemapindex/>",
    "sources.opml": b"<?xml version='1.0'?><opml version='2.0'/>",
    # What the publisher's write_atomic leaves behind for a moment (or after a crash).
    ".feed.xml.k2j4.tmp": b"half a feed",
    "regions/.jawa-timur.xml.x9.tmp": b"half a feed",
    ".git/config": b"[core]",
}
SECRET = b"outside the output folder"


def _publish(path: Path, data: bytes) -> None:
    """How the publisher replaces a file: write beside it, then rename over it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    base = tmp_path_factory.mktemp("serve")
    (base / "secret.txt").write_bytes(SECRET)
    root = base / "out"
    for name, data in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "escape.txt").symlink_to(base / "secret.txt")
    url, stop = start_background(root)
    yield url, root
    stop()


@pytest.fixture
def client(site: tuple[str, Path]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site[0], timeout=5) as c:
        yield c


def _raw_get(url: str, target: str) -> tuple[int, bytes]:
    """http.client sends the target as written; httpx would normalise away the ``..``."""
    parsed = httpx.URL(url)
    conn = http.client.HTTPConnection(parsed.host, parsed.port, timeout=5)
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _raw_body(client: httpx.Client, path: str, encoding: str) -> tuple[httpx.Response, bytes]:
    with client.stream("GET", path, headers={"Accept-Encoding": encoding}) as response:
        return response, b"".join(response.iter_raw())


@pytest.mark.parametrize(("path", "content_type", "cache"), [
    ("index.html", "text/html; charset=utf-8", "public, max-age=60"),
    ("regions/jawa-timur.html", "text/html; charset=utf-8", "public, max-age=60"),
    ("feed.xml", RSS, "public, max-age=300"),
    ("regions/jawa-timur.xml", RSS, "public, max-age=300"),
    ("members/7.xml", RSS, "public, max-age=300"),
    ("atom.xml", ATOM, "public, max-age=300"),
    ("regions/jawa-timur.atom", ATOM, "public, max-age=300"),
    ("feed.json", "application/feed+json; charset=utf-8", "public, max-age=300"),
    ("sitemap.xml", SITEMAP, "public, max-age=300"),
    ("sitemaps/news-1.xml", SITEMAP, "public, max-age=300"),
    ("sources.opml", "text/x-opml; charset=utf-8", "public, max-age=300"),
])
def test_content_type_and_cache_by_kind(client: httpx.Client, path: str, content_type: str,
                                        cache: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.content == FILES[path]
    assert response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == cache
    assert response.headers["x-content-type-options"] == "nosniff"


def test_root_serves_index(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.content == FILES["index.html"]
    assert response.headers["content-type"] == "text/html; charset=utf-8"


def test_validators_present(client: httpx.Client, site: tuple[str, Path]) -> None:
    response = client.get("/sitemap.xml", headers={"Accept-Encoding": "identity"})
    assert response.headers["etag"].startswith('"')
    mtime = (site[1] / "sitemap.xml").stat().st_mtime
    assert response.headers["last-modified"] == formatdate(mtime, usegmt=True)


@pytest.mark.parametrize("form", ["{}", "W/{}", '"other", {}'])
def test_if_none_match_gives_304_with_empty_body(client: httpx.Client, form: str) -> None:
    etag = client.get("/feed.xml", headers={"Accept-Encoding": "identity"}).headers["etag"]
    response = client.get("/feed.xml", headers={"If-None-Match": form.format(etag)})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["vary"] == "Accept-Encoding"


def test_other_etag_gives_200(client: httpx.Client) -> None:
    response = client.get("/feed.xml", headers={"If-None-Match": '"not-this-one"'})
    assert response.status_code == 200
    assert response.content == FILES["feed.xml"]


def test_if_modified_since(client: httpx.Client) -> None:
    last_modified = client.get("/atom.xml").headers["last-modified"]
    assert client.get("/atom.xml", headers={"If-Modified-Since": last_modified}).status_code == 304
    earlier = formatdate(parsedate_to_datetime(last_modified).timestamp() - 60, usegmt=True)
    response = client.get("/atom.xml", headers={"If-Modified-Since": earlier})
    assert response.status_code == 200
    assert response.content == FILES["atom.xml"]


def test_atomic_replacement_gets_new_etag(client: httpx.Client, site: tuple[str, Path]) -> None:
    path = site[1] / "members/replaced.xml"
    _publish(path, b"<rss>version A</rss>")
    before = path.stat()
    first = client.get("/members/replaced.xml")
    # Same size and, forced here, the same mtime: a rewrite within one clock tick, or an
    # rsync -t deploy. Only the new inode tells the versions apart.
    _publish(path, b"<rss>version B</rss>")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    second = client.get("/members/replaced.xml", headers={"If-None-Match": first.headers["etag"]})
    assert second.status_code == 200
    assert second.content == b"<rss>version B</rss>"
    assert second.headers["etag"] != first.headers["etag"]


def test_gzip_when_accepted(client: httpx.Client) -> None:
    identity = client.get("/feed.xml", headers={"Accept-Encoding": "identity"})
    response, raw = _raw_body(client, "/feed.xml", "gzip")
    assert response.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw) == FILES["feed.xml"]
    assert len(raw) < len(FILES["feed.xml"])
    assert response.headers["vary"] == "Accept-Encoding"
    # Not the file's bytes, so not the file's strong validator.
    assert response.headers["etag"] == f"W/{identity.headers['etag']}"


def test_identity_when_gzip_not_accepted(client: httpx.Client) -> None:
    response, raw = _raw_body(client, "/feed.xml", "identity")
    assert "content-encoding" not in response.headers
    assert raw == FILES["feed.xml"]
    assert response.headers["content-length"] == str(len(FILES["feed.xml"]))
    assert response.headers["vary"] == "Accept-Encoding"


def test_gzip_of_a_file_sent_in_many_chunks(client: httpx.Client, site: tuple[str, Path]) -> None:
    big = b"".join(b"<url><loc>https://example.id/%d</loc></url>\n" % i for i in range(8000))
    _publish(site[1] / "sitemaps/news-big.xml", big)
    response, raw = _raw_body(client, "/sitemaps/news-big.xml", "gzip")
    assert response.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw) == big
    plain = client.get("/sitemaps/news-big.xml", headers={"Accept-Encoding": "identity"})
    assert plain.content == big


@pytest.mark.parametrize("path", [
    "/missing.xml", "/regions/missing.html", "/.feed.xml.k2j4.tmp",
    "/regions/.jawa-timur.xml.x9.tmp", "/.git/config", "/regions/", "/regions",
])
def test_not_found(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert b"half a feed" not in response.content
    assert b"core" not in response.content


@pytest.mark.parametrize("target", [
    "/../secret.txt", "/regions/../../secret.txt", "/%2e%2e/secret.txt",
    "/regions/%2e%2e/%2e%2e/secret.txt", "/..%2fsecret.txt", "/escape.txt",
])
def test_traversal_refused(site: tuple[str, Path], target: str) -> None:
    status, body = _raw_get(site[0], target)
    assert status == 404
    assert SECRET not in body


def test_head(client: httpx.Client) -> None:
    get = client.get("/index.html", headers={"Accept-Encoding": "identity"})
    head = client.head("/index.html", headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(FILES["index.html"]))
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_only_get_and_head(client: httpx.Client, method: str) -> None:
    response = client.request(method, "/feed.xml")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_replacement_while_serving_never_mixes_versions(
    client: httpx.Client, site: tuple[str, Path]
) -> None:
    # Sizes differ and B spans several read chunks, so a length from one version and a body
    # from the other cannot pass unnoticed.
    versions = [b"<rss>" + b"a" * 3000 + b"</rss>", b"<rss>" + b"b" * 80_000 + b"</rss>"]
    path = site[1] / "regions/busy.xml"
    _publish(path, versions[0])
    done = threading.Event()

    def publisher() -> None:
        n = 0
        while not done.is_set():
            n += 1
            _publish(path, versions[n % 2])
            time.sleep(0.0005)

    thread = threading.Thread(target=publisher)
    thread.start()
    seen: dict[str, bytes] = {}
    try:
        for _ in range(100):
            response = client.get("/regions/busy.xml", headers={"Accept-Encoding": "identity"})
            assert response.status_code == 200
            assert response.content in versions
            assert seen.setdefault(response.headers["etag"], response.content) == response.content
    finally:
        done.set()
        thread.join()


def test_keep_alive_responses_are_not_held_back(client: httpx.Client) -> None:
    # With Nagle on, each response's body waits for the client's delayed ACK of its headers:
    # about 40 ms a request on Linux, so 10 requests would take 0.4 s instead of a few ms.
    client.get("/feed.xml")
    started = time.perf_counter()
    for _ in range(10):
        client.get("/feed.xml")
    assert time.perf_counter() - started < 0.3


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "not-published-yet"
    starters: list[Callable[[], object]] = [
        lambda: make_app(missing),
        lambda: start_background(missing),
        lambda: serve(missing, port=0),
    ]
    for start in starters:
        with pytest.raises(DirectoryNotFound, match="not-published-yet"):
            start()
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(DirectoryNotFound, match="a-file"):
        make_app(tmp_path / "a-file")


def test_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ServeError, match=f"127.0.0.1:{port}"):
            start_background(tmp_path, port=port)


def test_background_url_and_stop(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("hi")
    url, stop = start_background(tmp_path)
    assert url.startswith("http://127.0.0.1:")
    assert url.endswith("/")
    assert int(url.rstrip("/").rsplit(":", 1)[1]) > 0
    assert httpx.get(url).text == "hi"
    stop()
    stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_reports_url_and_stops_cleanly_on_signal(tmp_path: Path, sig: int) -> None:
    (tmp_path / "feed.xml").write_bytes(b"<rss/>")
    code = ("import sys; from pathlib import Path; from aggregator.serve import serve; "
            "serve(Path(sys.argv[1]), port=0, on_ready=lambda url: print(url, flush=True))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        assert ready, "serve() did not report its URL"
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert url != "http://127.0.0.1:0/"
        response = httpx.get(url + "feed.xml")
        assert response.headers["content-type"] == RSS
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
