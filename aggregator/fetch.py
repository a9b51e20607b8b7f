"""HTTP fetching of feeds: the only module that knows httpx.

One shared AsyncClient per process.  Its transport spreads requests over several small httpcore
pools because httpcore's per-request CPU grows with the requests in flight on one pool (see
bench/fetch_pools.py for the measurement behind the default).  Every fetch has an overall deadline
on top of httpx's per-phase timeouts, a cap on the decoded body, and hand-followed redirects so
that each hop's permanence is known.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urljoin

import httpcore
import httpx

from . import __version__
from .config import Config
from .decode import BoundedBody, DecodeError, TooLarge
from .netguard import BlockedAddress, GuardedBackend, ResolveError

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
)
REDIRECTS = {301, 302, 303, 307, 308}
PERMANENT = {301, 308}


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one fetch produced.  ``status`` is 'ok', 'not_modified' or 'error'."""

    status: str
    final_url: str
    http_status: int | None = None
    body: bytes = b""
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None
    cache_control: str | None = None
    expires: str | None = None
    retry_after: str | None = None
    permanent_url: str | None = None
    error_kind: str | None = None
    error: str | None = None
    redirects: tuple[tuple[int, str], ...] = field(default=())


def user_agent(config: Config) -> str:
    if config.fetch.user_agent:
        return config.fetch.user_agent
    contact = config.association.contact_url or config.association.base_url
    return f"Sindikasi/{__version__} (+{contact}; feed aggregator of {config.association.name})"


class ShardedTransport(httpx.AsyncBaseTransport):
    """Routes each request to the least busy of several connection pools."""

    def __init__(self, shards: list[httpx.AsyncHTTPTransport]) -> None:
        self._shards = shards
        self._busy = [0] * len(shards)
        self._order = itertools.cycle(range(len(shards)))

    def _pick(self) -> int:
        start, n = next(self._order), len(self._shards)
        return min(((start + k) % n for k in range(n)), key=lambda i: self._busy[i])

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = self._pick()
        self._busy[index] += 1
        try:
            response = await self._shards[index].handle_async_request(request)
        except BaseException:
            self._busy[index] -= 1
            raise
        stream = response.stream
        busy = self._busy

        class _Tracked(httpx.AsyncByteStream):
            closed = False

            async def __aiter__(self) -> AsyncIterator[bytes]:
                async for chunk in stream:  # type: ignore[union-attr]
                    yield chunk

            async def aclose(self) -> None:
                if not self.closed:
                    self.closed = True
                    busy[index] -= 1
                await stream.aclose()  # type: ignore[union-attr]

        response.stream = _Tracked()
        return response

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()


def _shard(config: Config, ssl_context: ssl.SSLContext, per_shard: int) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(verify=ssl_context, http2=False, retries=0)
    # httpx offers no hook for the network backend; replace its pool with one that has our guard.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=per_shard,
        max_keepalive_connections=per_shard,
        keepalive_expiry=30.0,
        http1=True,
        http2=False,
        network_backend=GuardedBackend(config.fetch.allow_private_networks,
                                       config.fetch.timeout.connect),
    )
    return transport


def build_client(config: Config, shards: int | None = None) -> httpx.AsyncClient:
    f = config.fetch
    # Two requests in flight per pool: bench/fetch_pools.py measured 1.0 ms of client CPU per
    # request at 2 per pool against 2.1 ms at 16 and 7.7 ms at 64 in one pool.
    count = shards or max(1, -(-f.concurrency // 2))
    per_shard = max(1, -(-f.concurrency // count))
    ssl_context = httpx.create_ssl_context()
    transport = ShardedTransport([_shard(config, ssl_context, per_shard) for _ in range(count)])
    timeout = httpx.Timeout(connect=f.timeout.connect, read=f.timeout.read, write=f.timeout.write,
                            pool=f.timeout.pool)
    return httpx.AsyncClient(
        transport=transport,
        timeout=timeout,
        follow_redirects=False,
        headers={"User-Agent": user_agent(config), "Accept": ACCEPT,
                 "Accept-Encoding": "gzip, deflate, br"},
    )


def _error(url: str, kind: str, message: str, status: int | None = None,
           redirects: tuple[tuple[int, str], ...] = (), retry_after: str | None = None,
           ) -> FetchResult:
    return FetchResult(status="error", final_url=url, http_status=status, error_kind=kind,
                       error=message, redirects=redirects, retry_after=retry_after)


async def fetch_feed(
    client: httpx.AsyncClient,
    url: str,
    *,
    etag: str | None,
    last_modified: str | None,
    max_bytes: int,
    max_redirects: int,
    deadline: float,
    validators_url: str | None = None,
) -> FetchResult:
    """Fetch one feed; never raises for anything the network or the server does.

    ``etag`` and ``last_modified`` are sent only to ``validators_url`` (default ``url``), the URL
    that gave them: behind a temporary redirect that is the last hop, not the first.
    """
    validators = (validators_url or url, etag, last_modified)
    try:
        async with asyncio.timeout(deadline):
            return await _fetch(client, url, validators, max_bytes, max_redirects)
    except TimeoutError:
        return _error(url, "timeout", f"no complete response within the {deadline:g} s deadline")


async def _fetch(
    client: httpx.AsyncClient, url: str, validators: tuple[str, str | None, str | None],
    max_bytes: int, max_redirects: int,
) -> FetchResult:
    hops: list[tuple[int, str]] = []
    current = url
    visited = {url}
    while True:
        headers = {}
        validators_url, etag, last_modified = validators
        if current == validators_url:
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
        try:
            async with client.stream("GET", current, headers=headers) as response:
                status = response.status_code
                if status in REDIRECTS and "location" in response.headers:
                    target = urljoin(current, response.headers["location"].strip())
                    hops.append((status, target))
                    if target in visited:
                        return _error(current, "redirect_loop",
                                      f"redirect loop: {target} was already visited",
                                      status, tuple(hops))
                    if len(hops) > max_redirects:
                        return _error(current, "too_many_redirects",
                                      f"more than {max_redirects} redirects", status, tuple(hops))
                    if not target.startswith(("http://", "https://")):
                        return _error(current, "bad_redirect", f"redirect to {target!r}",
                                      status, tuple(hops))
                    visited.add(target)
                    current = target
                    continue
                return await _finish(response, url, current, hops, max_bytes)
        except BlockedAddress as exc:
            return _error(current, "blocked_address", str(exc), None, tuple(hops))
        except ResolveError as exc:
            return _error(current, "dns", str(exc), None, tuple(hops))
        except httpx.TimeoutException as exc:
            return _error(current, "timeout", f"{type(exc).__name__}: {str(exc) or 'timed out'}",
                          None, tuple(hops))
        except httpx.ConnectError as exc:
            kind = "tls" if "SSL" in str(exc) or "CERTIFICATE" in str(exc).upper() else "connect"
            return _error(current, kind, f"cannot connect: {exc}", None, tuple(hops))
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            if "location header" in str(exc):  # httpx parses Location even when not following
                return _error(current, "bad_redirect", f"redirect to an invalid URL: {exc}",
                              None, tuple(hops))
            return _error(current, "connection", f"connection broken: {_detail(exc)}",
                          None, tuple(hops))
        except httpx.InvalidURL as exc:
            return _error(current, "bad_url", f"invalid URL: {exc}", None, tuple(hops))
        except httpx.HTTPError as exc:
            return _error(current, "http", f"{type(exc).__name__}: {exc}", None, tuple(hops))
        except ssl.SSLError as exc:
            return _error(current, "tls", f"TLS failure: {exc}", None, tuple(hops))
        except OSError as exc:
            return _error(current, "connect", f"network error: {exc}", None, tuple(hops))
        except ValueError as exc:
            # httpx lets idna's errors out of URL handling, e.g. for "Location: http://xn--/".
            return _error(current, "bad_url", f"unusable URL: {type(exc).__name__}: {exc}",
                          None, tuple(hops))


def _detail(exc: BaseException) -> str:
    """The most telling text of an exception chain.

    httpx often re-raises with an empty message (a reset is ``ReadError('')``), and an exception
    object is always truthy, so ``exc or default`` printed nothing: the OS error underneath
    ("Connection reset by peer") is what a webmaster can act on.  (Not for timeouts: under those
    lies only anyio's cancel-scope bookkeeping.)
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        text = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
        if text:
            return text
        cause = cause.__cause__ or cause.__context__
    return type(exc).__name__


async def _finish(
    response: httpx.Response, url: str, current: str, hops: list[tuple[int, str]], max_bytes: int
) -> FetchResult:
    status = response.status_code
    h = response.headers
    common = dict(
        final_url=current, http_status=status, etag=h.get("etag"),
        last_modified=h.get("last-modified"), cache_control=h.get("cache-control"),
        expires=h.get("expires"), redirects=tuple(hops),
        permanent_url=current if hops and all(s in PERMANENT for s, _ in hops) else None,
    )
    if status == 304:
        return FetchResult(status="not_modified", **common)
    if status >= 400 or status < 200 or status in REDIRECTS:
        retry = h.get("retry-after")
        kind = {410: "gone", 429: "rate_limited", 503: "unavailable"}.get(status, "http_status")
        if status in REDIRECTS:
            kind = "bad_redirect"
        reason = response.reason_phrase or ""
        return _error(current, kind, f"HTTP {status} {reason}".strip(), status, tuple(hops), retry)
    length = h.get("content-length")
    if length and length.isdigit() and not h.get("content-encoding") and int(length) > max_bytes:
        return _error(current, "too_large",
                      f"Content-Length {int(length):,} exceeds the {max_bytes:,}-byte cap",
                      status, tuple(hops))
    try:
        body = BoundedBody(h.get("content-encoding", ""), max_bytes)
        async for raw in response.aiter_raw():
            body.feed(raw)
        data = body.finish()
    except TooLarge as exc:
        return _error(current, "too_large", str(exc), status, tuple(hops))
    except DecodeError as exc:
        return _error(current, "decode", str(exc), status, tuple(hops))
    return FetchResult(status="ok", body=data, content_type=h.get("content-type", ""),
                       **common)
