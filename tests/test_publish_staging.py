"""Staging files while the rest are rendered keeps the publisher's all-or-nothing promise.

The publisher stages each changed file (temporary file beside the target, fsync) in worker
threads as soon as it is rendered, and renames only once every file is on disk.  These tests
drive ``_Stager`` directly: unchanged files are left alone, a failure anywhere (one file that
cannot be written, or rendering that stops half-way) leaves the old files and no temporary ones.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from aggregator import files
from aggregator.files import is_temporary
from aggregator.publish.publisher import PublishError, _rename_all, _Stager


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def out(tmp_path: Path) -> Path:
    root = tmp_path / "output"
    (root / "members").mkdir(parents=True)
    (root / "feed.xml").write_bytes(b"old feed")
    (root / "members" / "a.xml").write_bytes(b"same")
    return root


def test_only_changed_files_are_staged_and_renamed_in_order(out: Path) -> None:
    rendered = {f"regions/r{n}.xml": f"region {n}".encode() for n in range(40)}
    rendered |= {"feed.xml": b"new feed", "members/a.xml": b"same"}
    with _Stager(out) as stager:
        for path, data in rendered.items():
            stager.offer(path, data)
        staged = stager.finish()
    assert "members/a.xml" not in staged
    assert list(staged) == [p for p in rendered if p != "members/a.xml"]
    assert _tree(out) == {"feed.xml": b"old feed", "members/a.xml": b"same"} | {
        f"{p.relative_to(out).as_posix()}": p.read_bytes() for p in staged.values()}
    assert _rename_all(out, staged) == list(staged)
    assert _tree(out) == dict(sorted(rendered.items()))


def test_the_last_offer_for_a_path_counts(out: Path) -> None:
    with _Stager(out) as stager:
        stager.offer("feed.xml", b"first")
        stager.offer("feed.xml", b"second")
        staged = stager.finish()
    _rename_all(out, staged)
    assert _tree(out) == {"feed.xml": b"second", "members/a.xml": b"same"}


def test_a_file_that_cannot_be_written_leaves_everything_as_it_was(out: Path) -> None:
    before = _tree(out)
    (out / "regions").write_text("a file where a folder must go")
    before["regions"] = b"a file where a folder must go"
    with _Stager(out) as stager:
        for n in range(30):
            stager.offer(f"members/m{n}.xml", b"x")
        stager.offer("regions/r.xml", b"y")
        stager.offer("feed.xml", b"new feed")
        with pytest.raises(PublishError, match=r"cannot write .*regions/r\.xml"):
            stager.finish()
    assert _tree(out) == before
    assert not [p for p in out.rglob("*") if is_temporary(p.name)]


def test_rendering_that_stops_discards_what_was_staged(out: Path) -> None:
    before = _tree(out)
    with pytest.raises(RuntimeError), _Stager(out) as stager:
        for n in range(30):
            stager.offer(f"members/m{n}.xml", b"x")
        raise RuntimeError("a renderer failed")
    assert _tree(out) == before


def test_staging_runs_beside_rendering(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offering returns before the file is on disk: the render loop does not wait for fsync."""
    release = threading.Event()
    real = files.stage

    def slow(path: Path, data: bytes) -> Path:
        release.wait(10)
        return real(path, data)

    monkeypatch.setattr("aggregator.publish.publisher.stage", slow)
    with _Stager(out) as stager:
        stager.offer("feed.xml", b"new feed")  # would block here if staging were inline
        release.set()
        staged = stager.finish()
    assert list(staged) == ["feed.xml"]
    _rename_all(out, staged)
