"""Serve the published output folder over HTTP: for small installations, local checks and the demo.

Starlette's ``StaticFiles`` does the path handling (normalisation, the symlink and ``..`` escape
check, ``index.html`` for ``/``, 404/405) and the conditional-request logic; ``GZipMiddleware``
compresses. What is ours is there because the stock behaviour is wrong for a folder whose files
the publisher replaces (temp file + rename) while they are being served:

* The file is opened once and everything (ETag, Last-Modified, Content-Length, body) comes from
  that open handle. ``FileResponse`` stats the path and opens it again later; a rename in between
  pairs the old length with the new body and the connection dies mid-response.
* The ETag covers the inode as well as mtime and size. A replacement is always a new inode, so it
  always gets a new ETag, even when it has the same size and lands in the same clock tick (file
  times here are only as fine as the kernel tick) or keeps the old mtime (``rsync -t``).
* Names starting with a dot (the publisher's temp files, ``.git``) are never served: 404.
* Content types and Cache-Control come from the file's place in the published layout, not from the
  host's ``mimetypes`` table (which says nothing of RSS vs sitemap, or of ``.opml``).

Cache policy: feeds, sitemaps and OPML ``public, max-age=300``; HTML ``public, max-age=60`` since
people reload pages and expect news; everything is revalidated cheaply with ETag/304 after that.

Compressed responses carry a weak ETag (``W/"..."``), as nginx does, since the gzip bytes are not
the file's bytes; ``If-None-Match`` compares weakly, so either form revalidates to 304.
Last-Modified has one-second resolution, so a client that sends only If-Modified-Since can miss a
replacement made within the second it last fetched; ETags have no such gap.
"""

from __future__ import annotations

import contextlib
import hashlib
import mimetypes
import os
import signal
import socket
import stat
import threading
import time
from collections.abc import Callable, Generator
from email.utils import formatdate
from pathlib import Path, PurePath
from typing import BinaryIO

import anyio.to_thread
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DirectoryNotFound", "ServeError", "make_app", "serve", "start_background"]

RSS = "application/rss+xml; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"
JSON_FEED = "application/feed+json; charset=utf-8"
SITEMAP = "application/xml; charset=utf-8"
HTML = "text/html; charset=utf-8"
OPML = "text/x-opml; charset=utf-8"

HTML_CACHE = "public, max-age=60"
FEED_CACHE = "public, max-age=300"

CHUNK_SIZE = 64 * 1024
# Level 6 is most of level 9's saving for a fraction of the CPU; nothing caches the gzip bytes,
# so every request pays for it.
GZIP_LEVEL = 6
GZIP_MIN_SIZE = 500
# uvicorn would otherwise wait for slow in-flight responses forever on shutdown.
GRACEFUL_SHUTDOWN_SECONDS = 5
READY_TIMEOUT_SECONDS = 10.0


class ServeError(Exception):
    """Something the CLI should report in one line rather than as a traceback."""


class DirectoryNotFound(ServeError):
    """Serving a folder that is not there would only ever answer 404; say so up front instead."""


def _media_type(relative: PurePath) -> str:
    """The published layout decides the type: ``.xml`` alone could be RSS or a sitemap."""
    parts = relative.parts
    name = relative.name
    suffix = relative.suffix.lower()
    folder = parts[0] if len(parts) == 2 else None
    top = len(parts) == 1
    if suffix == ".html":
        return HTML
    if suffix == ".atom" or (top and name == "atom.xml"):
        return ATOM
    if top and name == "feed.json":
        return JSON_FEED
    if suffix == ".xml" and ((top and name == "feed.xml") or folder in ("regions", "members")):
        return RSS
    if suffix == ".xml" and ((top and name == "sitemap.xml") or folder == "sitemaps"):
        return SITEMAP
    if suffix == ".opml":
        return OPML
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def _cache_control(media_type: str) -> str:
    return HTML_CACHE if media_type == HTML else FEED_CACHE


def _etag(st: os.stat_result) -> str:
    """Hashed so the validator does not publish inode numbers and device ids."""
    key = f"{st.st_dev}:{st.st_ino}:{st.st_mtime_ns}:{st.st_size}".encode()
    return f'"{hashlib.blake2b(key, digest_size=10).hexdigest()}"'


def _is_hidden(path: str) -> bool:
    """Dot names are the publisher's temp files (and ``..`` is an escape attempt): never served."""
    return any(part.startswith(".") for part in PurePath(path).parts)


def _open_pinned(path: str) -> tuple[BinaryIO, os.stat_result]:
    handle = open(path, "rb")  # noqa: SIM115 - closed by the response that owns it
    try:
        return handle, os.fstat(handle.fileno())
    except BaseException:
        handle.close()
        raise


class _PinnedFileResponse(Response):
    """A file response whose headers and body come from one open handle (see module docstring).

    Only ``__call__`` is used by ``StaticFiles``, so the base initialiser (which renders a body
    held in memory) is deliberately not run.
    """

    def __init__(
        self,
        full_path: str,
        media_type: str,
        not_modified: Callable[[Headers, Headers], bool],
    ) -> None:
        self.full_path = full_path
        self.content_type = media_type
        self.not_modified = not_modified

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            handle, st = await anyio.to_thread.run_sync(_open_pinned, self.full_path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            # Removed or swapped for a folder between the lookup and the open.
            raise HTTPException(status_code=404) from None
        with handle:
            if not stat.S_ISREG(st.st_mode):
                raise HTTPException(status_code=404)
            headers = Headers(
                headers={
                    "content-type": self.content_type,
                    "content-length": str(st.st_size),
                    "last-modified": formatdate(st.st_mtime, usegmt=True),
                    "etag": _etag(st),
                    "cache-control": _cache_control(self.content_type),
                    "x-content-type-options": "nosniff",
                }
            )
            if self.not_modified(headers, Headers(scope=scope)):
                await NotModifiedResponse(headers)(scope, receive, send)
                return
            await send({"type": "http.response.start", "status": 200, "headers": headers.raw})
            remaining = 0 if scope["method"] == "HEAD" else st.st_size
            if remaining == 0:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            while remaining > 0:
                chunk = await anyio.to_thread.run_sync(handle.read, min(CHUNK_SIZE, remaining))
                if not chunk:
                    # Only an in-place writer can do this; the publisher never does.
                    raise RuntimeError(f"{self.full_path} shrank while it was being sent")
                remaining -= len(chunk)
                more = remaining > 0
                await send({"type": "http.response.body", "body": chunk, "more_body": more})


class _PublishedFiles(StaticFiles):
    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        if _is_hidden(path):
            return "", None
        return super().lookup_path(path)

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        assert self.directory is not None  # always set by make_app
        root = os.path.realpath(self.directory)
        relative = PurePath(os.path.relpath(full_path, root))
        return _PinnedFileResponse(os.fspath(full_path), _media_type(relative),
                                   self.is_not_modified)


class _RepresentationHeaders:
    """Vary on every response, and a weak ETag on compressed ones, which GZipMiddleware leaves out.

    GZipMiddleware adds ``Vary: Accept-Encoding`` only when it looked at a body of at least its
    minimum size, so 304s and HEADs went without it and a shared cache could hand gzip to a
    client that cannot read it; here every response says it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_fixed(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                tokens: dict[str, str] = {}
                for value in [*headers.getlist("vary"), "Accept-Encoding"]:
                    for token in value.split(","):
                        if token.strip():
                            tokens.setdefault(token.strip().lower(), token.strip())
                headers["vary"] = ", ".join(tokens.values())
                etag = headers.get("etag")
                if etag and "content-encoding" in headers and not etag.startswith("W/"):
                    headers["etag"] = f"W/{etag}"
            await send(message)

        await self.app(scope, receive, send_fixed)


def _check_directory(directory: Path) -> Path:
    if not directory.exists():
        raise DirectoryNotFound(f"output directory {directory} does not exist (publish first?)")
    if not directory.is_dir():
        raise DirectoryNotFound(f"output directory {directory} is not a directory")
    # Absolute but not resolved: a root that is a symlink keeps being followed, so switching the
    # symlink to a new release takes effect without a restart.
    return directory.absolute()


def make_app(directory: Path) -> Starlette:
    """The ASGI app on its own, for tests and for anyone who runs their own ASGI server."""
    root = _check_directory(directory)
    files = _PublishedFiles(directory=root, html=True)
    return Starlette(
        routes=[Mount("/", app=files)],
        middleware=[
            Middleware(_RepresentationHeaders),
            Middleware(GZipMiddleware, minimum_size=GZIP_MIN_SIZE, compresslevel=GZIP_LEVEL),
        ],
    )


def _listen(host: str, port: int) -> socket.socket:
    """Bind before uvicorn starts, so a busy port is an exception here and port 0 has a number.

    The socket is made with the resolver's protocol (IPPROTO_TCP), not 0: asyncio only sets
    TCP_NODELAY on accepted sockets whose protocol says TCP, and without it every keep-alive
    response waits 40 ms for a delayed ACK between its header and body writes.
    """
    sock: socket.socket | None = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
        return sock
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc}") from exc


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, url: str,
                 on_ready: Callable[[str], None] | None) -> None:
        super().__init__(config)
        self._url = url
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self._on_ready is not None:
            self._on_ready(self._url)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Stop on SIGINT/SIGTERM and return normally.

        uvicorn's own version re-raises the signal after shutting down, which turns a clean stop
        into a KeyboardInterrupt traceback (SIGINT) or death by signal (SIGTERM).
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _build_server(directory: Path, host: str, port: int,
                  on_ready: Callable[[str], None] | None) -> tuple[_Server, socket.socket]:
    app = make_app(directory)
    sock = _listen(host, port)
    config = uvicorn.Config(
        app,
        host=host,
        port=sock.getsockname()[1],
        lifespan="off",
        # Leave logging to the host program: uvicorn's default config would replace its handlers.
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    return _Server(config, _url(sock), on_ready), sock


def serve(
    directory: Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM, then return; ``on_ready`` gets the URL once it is listening."""
    server, sock = _build_server(directory, host, port, on_ready)
    with sock:
        server.run(sockets=[sock])


def start_background(
    directory: Path, host: str = "127.0.0.1", port: int = 0
) -> tuple[str, Callable[[], None]]:
    """Serve from a daemon thread: the demo needs the member feeds and the output up at once.

    Returns the base URL and a stop function (idempotent, waits for the thread to finish).
    """
    ready = threading.Event()
    server, sock = _build_server(directory, host, port, lambda _url: ready.set())
    url = _url(sock)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with sock:
                server.run(sockets=[sock])
        except BaseException as exc:  # reported to the caller below, not lost with the thread
            failure.append(exc)

    def stop() -> None:
        server.should_exit = True
        thread.join(GRACEFUL_SHUTDOWN_SECONDS + 1)
        if thread.is_alive():
            server.force_exit = True
            thread.join(GRACEFUL_SHUTDOWN_SECONDS)

    thread = threading.Thread(target=run, name=f"serve {url}", daemon=True)
    thread.start()
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not ready.wait(0.02):
        if not thread.is_alive() or time.monotonic() > deadline:
            stop()
            cause = failure[0] if failure else None
            raise ServeError(f"server for {directory} did not start") from cause
    return url, stop
