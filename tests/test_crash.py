"""Crashes and restarts: ``kill -9`` of ``aggregator run`` at random moments, a full disk, a
read-only output folder.

The kill test drives a real process against the feed farm for dozens of rounds, killing it while
it polls and while it publishes, and checks after every kill that each published file is whole,
and at the end that the store holds every article the farm served exactly once, with clusters
that add up.  Kill moments come from a seeded generator and from the run's own log (how many
feeds it has stored), not from guessed sleeps, so the spread over the stages is the same on a
slow machine.
"""

from __future__ import annotations

import contextlib
import errno
import json
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import lxml.etree
import lxml.html
import pytest
from conftest import (
    FEEDFARM,
    Farm,
    farm_members,
    generate_corpus,
    make_config,
    needs_farm,
    serving_farm,
    snapshot,
)

from aggregator import leases
from aggregator.config import load_config
from aggregator.db import make_engine
from aggregator.files import is_temporary
from aggregator.migrate import upgrade
from aggregator.poller import worker_id
from aggregator.store import claim_feeds, sync_config

AGGREGATOR = [sys.executable, "-m", "aggregator"]
FEEDS, ITEMS = 40, 30
ROUNDS = 25
SEED = 20241129
# Where each round's kill is aimed (the moment within the stage is drawn at random); a kill that
# comes too late for its stage counts as a run that ran to the end.
SCHEDULE = ("polling", "publishing", "polling", "publishing", "startup",
            "publishing", "polling", "publishing", "polling", "complete")


# ------------------------------------------------------------------------------ the process
@dataclass
class Run:
    """One ``aggregator run`` process, with what its log has said so far."""

    proc: subprocess.Popen[str]
    feeds: int
    polled_feeds: Counter[str] = field(default_factory=Counter)  # "feed polled" events a feed
    published: bool = False
    all_polled: float | None = None
    published_at: float | None = None
    ended: bool = False  # its log closed
    last_event: str | None = None
    errors: list[str] = field(default_factory=list)
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=12))  # for failure messages
    changed: threading.Condition = field(default_factory=threading.Condition)
    reader: threading.Thread | None = None
    stdout: IO[str] | None = None
    out: str = ""

    @classmethod
    def start(cls, config: Path, *args: str, feeds: int = FEEDS) -> Run:
        """``aggregator run *args`` on a config of ``feeds`` feeds."""
        stdout = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by finish)
        proc = subprocess.Popen(
            [*AGGREGATOR, "--config", str(config), "--log-format", "json", "--log-level", "info",
             "run", *args], stdout=stdout, stderr=subprocess.PIPE, text=True)
        run = cls(proc, feeds, stdout=stdout)
        run.reader = threading.Thread(target=run._read, daemon=True)
        run.reader.start()
        return run

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": line.strip()}
            with self.changed:
                self.tail.append(line.rstrip())
                self.last_event = event.get("event")
                if event.get("event") == "feed polled":
                    self.polled_feeds[event.get("feed", "")] += 1
                    if self.polled == self.feeds:
                        self.all_polled = time.monotonic()
                elif event.get("event") == "published":
                    self.published = True
                    self.published_at = time.monotonic()
                elif event.get("level") in ("error", "critical") or "Traceback" in line:
                    self.errors.append(line.strip())
                self.changed.notify_all()
        with self.changed:
            self.ended = True
            self.changed.notify_all()

    @property
    def polled(self) -> int:
        """Polls stored so far."""
        return self.polled_feeds.total()

    def wait_polled(self, count: int, timeout: float = 60) -> None:
        """Until ``count`` feeds are stored, or the process ended."""
        with self.changed:
            self.changed.wait_for(lambda: self.polled >= count or self.ended, timeout)

    def publish_s(self) -> float | None:
        if self.all_polled is None or self.published_at is None:
            return None
        return self.published_at - self.all_polled

    def kill(self) -> tuple[int, bool] | None:
        """SIGKILL; then what the process had logged before it died (feeds stored, whether it
        published), or None if it had exited already."""
        if self.proc.poll() is not None:
            return None
        self.proc.send_signal(signal.SIGKILL)
        self.finish(30)
        return self.polled, self.published

    def finish(self, timeout: float = 120) -> int:
        code = self.proc.wait(timeout)
        assert self.reader is not None and self.stdout is not None
        self.reader.join(10)  # it has seen the last line
        self.stdout.seek(0)
        self.out = self.stdout.read()
        self.stdout.close()
        return code


def advance(corpus: Path, new: int = 1, fraction: float = 0.3) -> None:
    """New articles in some feeds; a small clock step keeps them within the allowed skew."""
    subprocess.run([sys.executable, str(FEEDFARM), "advance", "--dir", str(corpus), "--new",
                    str(new), "--fraction", str(fraction), "--hours", "0.01"],
                   check=True, stdout=subprocess.DEVNULL)


# ------------------------------------------------------------------------------ the output
class OutputChecker:
    """Parses every published file, re-reading only those replaced since the last look."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.seen: dict[str, tuple[int, int, int]] = {}
        self.parsed = 0

    def check(self, allow_temporary: bool) -> list[str]:
        problems = []
        temporary = 0
        for path in sorted(p for p in self.out.rglob("*") if p.is_file()):
            rel = path.relative_to(self.out).as_posix()
            if is_temporary(path.name):
                temporary += 1
                continue
            st = path.stat()
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            if self.seen.get(rel) == key:
                continue
            problem = file_problem(path)
            self.parsed += 1
            if problem:
                problems.append(f"{rel}: {problem}")
            else:
                self.seen[rel] = key
        if temporary and not allow_temporary:
            problems.append(f"{temporary} temporary files left in {self.out}")
        return problems

    def temporary(self) -> int:
        return sum(1 for p in self.out.rglob("*") if is_temporary(p.name))


def file_problem(path: Path) -> str | None:
    """Why this published file is not a whole, valid document (None when it is)."""
    data = path.read_bytes()
    try:
        if path.suffix in (".xml", ".atom", ".opml"):
            lxml.etree.fromstring(data, lxml.etree.XMLParser(resolve_entities=False,
                                                             huge_tree=True))
        elif path.suffix == ".json":
            json.loads(data)
        elif path.suffix == ".html":
            if not data.rstrip().endswith(b"</html>"):
                return "HTML cut short"
            lxml.html.document_fromstring(data)
        else:
            return "not a file the publisher writes"
    except (ValueError, lxml.etree.LxmlError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


# ------------------------------------------------------------------------------ the store
def store_problems(db: Path) -> list[str]:
    """Integrity, foreign keys, one row per article, and clusters that add up."""
    problems: list[str] = []
    with contextlib.closing(sqlite3.connect(db)) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchall()
        if integrity != [("ok",)]:
            problems.append(f"integrity_check: {integrity[:5]}")
        fk = conn.execute("PRAGMA foreign_key_check").fetchall()
        if fk:
            problems.append(f"foreign_key_check: {fk[:5]}")
        for label, sql in {
            "duplicate (feed_id, item_key)":
                "SELECT feed_id, item_key, count(*) FROM items GROUP BY 1, 2 HAVING count(*) > 1",
            "duplicate (feed_id, url)":
                "SELECT feed_id, url, count(*) FROM items WHERE url IS NOT NULL "
                "GROUP BY 1, 2 HAVING count(*) > 1",
            "items without a cluster": "SELECT id FROM items WHERE cluster_id IS NULL",
            "items in a missing cluster":
                "SELECT i.id FROM items i LEFT JOIN clusters c ON c.id = i.cluster_id "
                "WHERE i.cluster_id IS NOT NULL AND c.id IS NULL",
            "empty clusters":
                "SELECT c.id FROM clusters c WHERE NOT EXISTS "
                "(SELECT 1 FROM items i WHERE i.cluster_id = c.id)",
            "cluster size, first or last wrong":
                "SELECT c.id, c.size, count(i.id), c.first_published_at, min(i.published_at), "
                "c.last_published_at, max(i.published_at) FROM clusters c "
                "JOIN items i ON i.cluster_id = c.id GROUP BY c.id "
                "HAVING c.size != count(i.id) OR c.first_published_at != min(i.published_at) "
                "OR c.last_published_at != max(i.published_at)",
            "representative not the cluster's earliest item":
                "SELECT c.id, c.representative_id FROM clusters c "
                "LEFT JOIN items r ON r.id = c.representative_id "
                "WHERE r.id IS NULL OR r.cluster_id != c.id "
                "OR r.published_at != c.first_published_at",
            "LSH buckets of missing items":
                "SELECT b.item_id FROM lsh_keys b LEFT JOIN items i ON i.id = b.item_id "
                "WHERE i.id IS NULL",
            "regions of missing items":
                "SELECT r.item_id FROM item_regions r LEFT JOIN items i ON i.id = r.item_id "
                "WHERE i.id IS NULL",
        }.items():
            rows = conn.execute(sql).fetchall()
            if rows:
                problems.append(f"{label}: {len(rows)}, e.g. {rows[:3]}")
    return problems


def stored_articles(db: Path) -> Counter[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return Counter(conn.execute(
            "SELECT f.config_url, i.url FROM items i JOIN feeds f ON f.id = i.feed_id"))


def served_articles(farm: Farm) -> set[tuple[str, str]]:
    return {(f"{farm.base}/feeds/{t['feed']}/feed/", t["url"]) for t in farm.truth()}


@pytest.fixture
def corpus_farm(tmp_path: Path) -> Iterator[Farm]:
    """A farm of its own over a fresh corpus that the test may advance."""
    if FEEDFARM is None:
        pytest.skip("feedfarm.py not found (set FEEDFARM=path/to/feedfarm.py)")
    with serving_farm(generate_corpus(tmp_path / "corpus", FEEDS, ITEMS, seed=5)) as farm:
        yield farm


# ------------------------------------------------------------------------------ kill -9
@needs_farm
def test_kill_9_at_random_moments_loses_nothing_and_tears_no_file(
        tmp_path: Path, corpus_farm: Farm) -> None:
    farm = corpus_farm
    # Default leases (600 s): a restart must not have to wait out those of the killed process.
    config = make_config(tmp_path, farm_members(farm), publish={"max_items": 30})
    db, out = tmp_path / "var" / "aggregator.db", tmp_path / "output"
    rng = random.Random(SEED)
    checker = OutputChecker(out)
    started = time.monotonic()

    # A first cycle stores every article before any can scroll out of the feeds: from here on a
    # feed gains at most ITEMS articles, so everything the farm serves stays in it to the end.
    first = Run.start(config, "--once")
    assert first.finish() == 0, first.errors
    kills: Counter[str] = Counter()
    # How long a warm publish takes here, from the last feed stored to the "published" event.
    publish_s = [first.publish_s() or 1.0]
    torn_publishes = leftovers = 0
    for n in range(ROUNDS):
        advance(farm.dir)
        before = {p: p.stat().st_ino for p in out.rglob("*") if p.is_file()}
        run = Run.start(config, "--once")
        mode = SCHEDULE[n % len(SCHEDULE)]
        if mode == "complete":
            assert run.finish() == 0, run.errors
            publish_s.append(run.publish_s() or publish_s[-1])
            kills["none (ran to the end)"] += 1
            continue
        if mode == "startup":  # migrations, config sync, the first claims
            time.sleep(rng.uniform(0.2, 2.0))
        elif mode == "polling":  # mid-batch: fetches in flight, a poll's transaction open
            run.wait_polled(rng.randint(1, FEEDS - 1))
            time.sleep(rng.uniform(0, 0.02))
        else:  # rendering, staging, renaming, saving the publish state
            run.wait_polled(FEEDS)
            time.sleep(rng.uniform(0, 0.9 * min(publish_s[-3:])))
        seen = run.kill()
        if seen is None or seen[1]:
            kills["none (ran to the end)"] += 1
            continue
        polled, _ = seen
        stage = "before polling" if polled == 0 else "polling" if polled < FEEDS else "publishing"
        kills[stage] += 1
        if stage == "publishing" and any(
                p.exists() and p.stat().st_ino != ino for p, ino in before.items()):
            torn_publishes += 1  # killed after replacing some files, before recording the publish
        leftovers += checker.temporary() > 0
        # Never half written: every file in place is whole, whatever the moment of the kill.
        assert checker.check(allow_temporary=True) == []
        assert store_problems(db) == []

    # Restart: one clean cycle and a publish, as an operator would after a crash.
    last = Run.start(config, "--once")
    assert last.finish() == 0, last.errors
    assert last.polled == FEEDS, "a feed was left leased to a killed process"
    publish = subprocess.run([*AGGREGATOR, "--config", str(config), "publish"],
                             capture_output=True, text=True, timeout=120)
    assert publish.returncode == 0, publish.stdout + publish.stderr

    assert store_problems(db) == []
    added = Counter(t["feed"] for t in farm.truth() if t["cycle"] > 0)
    assert max(added.values()) <= ITEMS, "articles scrolled out of a feed: not a fair test"
    served, stored = served_articles(farm), stored_articles(db)
    lost = served - set(stored)
    twice = {k: n for k, n in stored.items() if n > 1}
    extra = set(stored) - served
    assert not lost and not twice and not extra, (len(lost), twice, len(extra))
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM feeds WHERE lease_owner IS NOT NULL"
                            ).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM locks").fetchone() == (0,)
    assert checker.check(allow_temporary=False) == []
    assert unpublished_members(config) == []  # the output caught up with the store
    summary = {
        "rounds": ROUNDS, "kills": sum(v for k, v in kills.items() if not k.startswith("none")),
        "during_polling": kills["polling"], "during_publishing": kills["publishing"],
        "before_polling": kills["before polling"], "ran_to_the_end": kills["none (ran to the end)"],
        "publishes_killed_after_replacing_files": torn_publishes,
        "kills_that_left_temporary_files": leftovers, "files_parsed": checker.parsed,
        "items_checked": len(served), "lost": len(lost), "duplicated": len(twice),
        "seconds": round(time.monotonic() - started, 1),
    }
    (tmp_path / "kill-summary.json").write_text(json.dumps(summary))
    print(f"\nkill -9 test: {json.dumps(summary)}")
    assert kills["polling"] >= 5 and kills["publishing"] >= 5, kills


# ------------------------------------------------------------------------------ restarts
@pytest.fixture
def small_farm(tmp_path: Path, farm_corpus: Path) -> Iterator[Farm]:
    """The shared 20-feed corpus, copied so that the test may advance it."""
    corpus = tmp_path / "corpus"
    shutil.copytree(farm_corpus, corpus)
    with serving_farm(corpus) as farm:
        yield farm


@pytest.fixture
def stand_in() -> Iterator[subprocess.Popen[bytes]]:
    """A process of this host to name as the holder of a lease, and to kill."""
    proc = subprocess.Popen(["sleep", "300"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _owner(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}:0badf00d"


def test_leases_of_a_killed_process_are_taken_over_at_once(
        tmp_path: Path, stand_in: subprocess.Popen[bytes]) -> None:
    config = load_config(make_config(tmp_path, [
        {"id": "a", "name": "A", "site": "https://a.example/",
         "feeds": ["http://127.0.0.1:9/a.xml", "http://127.0.0.1:9/b.xml"]}]))
    engine = make_engine(config.database_url)
    upgrade(engine)
    now, lease = datetime.now(UTC), timedelta(minutes=10)
    sync_config(engine, config, now)
    try:
        victim, other, elsewhere = _owner(stand_in.pid), worker_id(), "elsewhere:1:0badf00d"
        assert len(claim_feeds(engine, victim, now, lease, 1, due_only=False)) == 1
        assert leases.acquire(engine, "publish", victim, now, lease)
        # While the holder lives, its leases hold.
        assert len(claim_feeds(engine, other, now, lease, 10, due_only=False)) == 1
        assert not leases.acquire(engine, "publish", other, now, lease)
        stand_in.kill()
        end = time.monotonic() + 10  # killed, not yet reaped: a zombie is as dead
        while not leases.abandoned(victim) and time.monotonic() < end:
            time.sleep(0.05)
        assert leases.abandoned(victim)
        stand_in.wait()
        assert leases.abandoned(victim) and not leases.abandoned(elsewhere)
        assert len(claim_feeds(engine, other, now, lease, 10, due_only=False)) == 1
        assert leases.acquire(engine, "publish", other, now, lease)
        # Another host's process, or a holder of another form, is waited out as before.
        for holder in (elsewhere, "w1"):
            leases.release(engine, "publish", other)
            assert leases.acquire(engine, "publish", holder, now, lease)
            assert not leases.acquire(engine, "publish", other, now, lease)
            leases.release(engine, "publish", holder)
    finally:
        engine.dispose()


def _newest_per_member(db: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return dict(conn.execute(
            "SELECT member_id, url FROM items i WHERE published_at = (SELECT max(published_at) "
            "FROM items j WHERE j.member_id = i.member_id)"))


def unpublished_members(config: Path) -> list[str]:
    """Members whose newest stored article is missing from their published feed."""
    out = config.parent / "output"
    return [member for member, url in _newest_per_member(config.parent / "var/aggregator.db")
            .items() if url not in (out / "members" / f"{member}.xml").read_text("utf-8")]


def _publisher_killed_mid_publish(config: Path, pid: int) -> None:
    """What ``kill -9`` of a publisher leaves in the store: its lease, for ten minutes."""
    until = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with contextlib.closing(sqlite3.connect(config.parent / "var/aggregator.db")) as conn, conn:
        conn.execute("INSERT INTO locks (name, owner, until) VALUES ('publish', ?, ?)",
                     (_owner(pid), until))


@needs_farm
def test_publish_right_after_a_killed_publisher(
        tmp_path: Path, small_farm: Farm, cli: Any, stand_in: subprocess.Popen[bytes]) -> None:
    config = make_config(tmp_path, farm_members(small_farm))
    assert cli("--config", config, "run", "--once").code == 0
    _publisher_killed_mid_publish(config, stand_in.pid)
    advance(small_farm.dir, new=2, fraction=0.5)
    held = cli("--config", config, "run", "--once")
    assert held.code == 0 and "publish: skipped (another process is publishing)" in held.out
    assert unpublished_members(config)
    stand_in.kill()
    stand_in.wait()
    result = cli("--config", config, "publish")
    assert result.code == 0, result.out + result.err
    assert unpublished_members(config) == []


@needs_farm
def test_a_restart_publishes_what_a_killed_run_had_stored(
        tmp_path: Path, small_farm: Farm, cli: Any, stand_in: subprocess.Popen[bytes]) -> None:
    config = make_config(tmp_path, farm_members(small_farm))
    assert cli("--config", config, "run", "--once").code == 0
    _publisher_killed_mid_publish(config, stand_in.pid)
    advance(small_farm.dir, new=2, fraction=0.5)
    assert cli("--config", config, "run", "--once").code == 0  # stored, not published
    stand_in.kill()
    stand_in.wait()
    restart = cli("--config", config, "run", "--once")
    assert restart.code == 0 and "0 new items" in restart.out
    assert unpublished_members(config) == []


# ------------------------------------------------------------------------------ full disk
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """output_dir on a tmpfs of its own: a disk that really fills up (ENOSPC) or really is
    read-only (EROFS), which permissions cannot fake for root."""
    mount = shutil.which("mount")
    out = tmp_path / "output"
    out.mkdir()
    if mount is None:
        pytest.skip("no mount command: a real full disk needs a filesystem of its own")
    made = subprocess.run([mount, "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(out)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {made.stderr.strip()}")
    try:
        yield out
    finally:
        subprocess.run(["umount", "-l", str(out)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """Fill the filesystem of ``disk`` but for about ``leave`` bytes; the filler's path."""
    spare, filler = disk / ".spare", disk / ".filler"
    spare.write_bytes(b"\0" * leave)
    with filler.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    spare.unlink()
    return filler


def _output(out: Path) -> dict[str, bytes]:
    return {k: v for k, v in snapshot(out).items() if k not in (".filler", ".spare")}


@needs_farm
@pytest.mark.parametrize("room", [0.0, 1.5], ids=["full", "room-for-one-file"])
def test_full_disk_is_a_clear_error_and_keeps_the_previous_output(
        tmp_path: Path, small_farm: Farm, small_disk: Path, cli: Any, room: float) -> None:
    config = make_config(tmp_path, farm_members(small_farm))
    assert cli("--config", config, "run", "--once").code == 0
    before = _output(small_disk)
    # Room for the merged feed, the first file a publish writes, but not for all it changes.
    leave = int(room * len(before["feed.xml"]))
    filler = _fill(small_disk, leave)
    advance(small_farm.dir, new=2, fraction=0.5)
    result = cli("--config", config, "run", "--once")
    assert result.code == 1
    assert "error: publish: cannot write" in result.err and "No space left" in result.err, \
        result.err
    # Not a single file replaced, not even one that fitted; no temporary file left behind.
    assert _output(small_disk) == before
    assert unpublished_members(config), "the new articles were not stored"
    filler.unlink()
    again = cli("--config", config, "publish", "--json")
    assert again.code == 0, again.err
    assert unpublished_members(config) == []
    assert OutputChecker(small_disk).check(allow_temporary=False) == []
    if leave:  # the test is not trivially true: the first file fitted, the whole did not
        sizes = {p: (small_disk / p).stat().st_size for p in again.json()["files"]}
        assert sizes["feed.xml"] < leave < sum(sizes.values())


@needs_farm
def test_read_only_output_filesystem_is_a_clear_error_even_for_root(
        tmp_path: Path, small_farm: Farm, small_disk: Path, cli: Any) -> None:
    config = make_config(tmp_path, farm_members(small_farm))
    assert cli("--config", config, "run", "--once").code == 0
    before = _output(small_disk)
    remount = ["mount", "-o", "remount,ro", str(small_disk)]
    subprocess.run(remount, check=True)
    try:
        advance(small_farm.dir, new=2, fraction=0.5)
        result = cli("--config", config, "run", "--once")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert result.code == 1
    assert "error: publish: cannot write" in result.err and "Read-only file system" in result.err
    assert _output(small_disk) == before
    again = cli("--config", config, "publish")
    assert again.code == 0, again.err
    assert unpublished_members(config) == []
