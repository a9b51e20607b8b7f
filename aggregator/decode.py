"""Bounded Content-Encoding decoders.

httpx decodes each network chunk in one call with no output limit, so one 64 kB chunk of a gzip
bomb inflates to tens of megabytes before any size check can run.  These decoders never produce
more than the caller's remaining budget, so a bomb is stopped after ``limit`` bytes, not after it
has been inflated.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Protocol

import brotli


class TooLarge(Exception):
    """The decoded body would exceed the configured cap."""


class DecodeError(Exception):
    """The body is not valid for its Content-Encoding."""


class _Decoder(Protocol):
    def feed(self, data: bytes, budget: int) -> Iterator[bytes]: ...

    def flush(self) -> bytes: ...


class _Identity:
    def feed(self, data: bytes, budget: int) -> Iterator[bytes]:
        yield data

    def flush(self) -> bytes:
        return b""


class _Zlib:
    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._obj = zlib.decompressobj(wbits)
        self._first = True

    def feed(self, data: bytes, budget: int) -> Iterator[bytes]:
        step = max(budget, 1) + 1
        try:
            out = self._obj.decompress(data, step)
        except zlib.error:
            if not (self._first and self._wbits == zlib.MAX_WBITS):
                raise
            # "deflate" is sent raw as often as zlib-wrapped.
            self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._obj.decompress(data, step)
        self._first = False
        yield out
        while self._obj.unconsumed_tail:
            yield self._obj.decompress(self._obj.unconsumed_tail, step)

    def flush(self) -> bytes:
        return self._obj.flush()


class _Brotli:
    def __init__(self) -> None:
        self._obj = brotli.Decompressor()

    def feed(self, data: bytes, budget: int) -> Iterator[bytes]:
        step = max(budget, 1) + 1
        yield self._obj.process(data, output_buffer_limit=step)
        while not self._obj.can_accept_more_data():
            yield self._obj.process(b"", output_buffer_limit=step)

    def flush(self) -> bytes:
        return b""


def make_decoder(content_encoding: str) -> _Decoder:
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return _Identity()
    if len(codings) > 1:
        raise DecodeError(f"stacked Content-Encoding {content_encoding!r} is not supported")
    coding = codings[0]
    if coding in ("gzip", "x-gzip"):
        return _Zlib(zlib.MAX_WBITS | 16)
    if coding == "deflate":
        return _Zlib(zlib.MAX_WBITS)
    if coding == "br":
        return _Brotli()
    raise DecodeError(f"unsupported Content-Encoding {coding!r}")


class BoundedBody:
    """Accumulates a decoded body, raising TooLarge as soon as it passes ``limit`` bytes."""

    def __init__(self, content_encoding: str, limit: int) -> None:
        self._decoder = make_decoder(content_encoding)
        self._limit = limit
        self._parts: list[bytes] = []
        self.size = 0

    def _add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self._limit:
            raise TooLarge(f"body exceeds {self._limit:,} bytes after decoding")
        if chunk:
            self._parts.append(chunk)

    def feed(self, raw: bytes) -> None:
        try:
            for chunk in self._decoder.feed(raw, self._limit - self.size):
                self._add(chunk)
        except (zlib.error, brotli.error) as exc:
            raise DecodeError(f"invalid compressed body: {exc}") from None

    def finish(self) -> bytes:
        try:
            self._add(self._decoder.flush())
        except (zlib.error, brotli.error) as exc:
            raise DecodeError(f"invalid compressed body: {exc}") from None
        return b"".join(self._parts)
