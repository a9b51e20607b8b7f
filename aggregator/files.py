"""Atomic file writes: readers never see half a file; a crash never loses the old one.

A write is two steps, so that a caller replacing many files can stage them all before renaming
any, and a failure while staging (a full disk) changes none of them.  What a crash leaves behind
is a temporary file named ``.<name>.<random>.tmp``, which ``is_temporary`` recognises.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside the target, fsync, then rename over it."""
    tmp = stage(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        discard([tmp])
        raise


def stage(path: Path, data: bytes) -> Path:
    """The temporary file beside ``path`` holding ``data``, on disk and with the target's
    permissions: renaming it over ``path`` is then the whole write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644
        os.chmod(tmp, mode)
    except BaseException:
        discard([tmp])
        raise
    return tmp


def discard(paths: Iterable[Path]) -> None:
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p)


def sync_dirs(folders: Iterable[Path]) -> None:
    """Make renames in these folders durable: without it a power cut may bring back old names."""
    for folder in set(folders):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_TEMPORARY = re.compile(r"\..+\.[A-Za-z0-9_]{8}\.tmp")


def is_temporary(name: str) -> bool:
    return _TEMPORARY.fullmatch(name) is not None
