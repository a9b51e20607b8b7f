"""`aggregator run` as a user runs it: a real process, signals, logs, progress bar."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import Farm, farm_members, feeds_json, make_config, serving_farm

AGGREGATOR = [sys.executable, "-m", "aggregator"]


def _wait_for(predicate: Any, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_run_polls_on_schedule_and_stops_cleanly_on_sigterm(tmp_path: Path, farm: Farm,
                                                            cli: Any) -> None:
    config = make_config(tmp_path, farm_members(farm)[:4], schedule={"tick_seconds": 0.5})
    proc = subprocess.Popen([*AGGREGATOR, "--config", str(config), "--log-format", "json",
                             "--log-level", "info", "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_for(lambda: sum(farm.stats()["paths"].get(p, {}).get("200", 0)
                                     for p in farm.stats()["paths"]) >= 4, 30)
        time.sleep(1.5)  # a few more ticks: nothing is due, nothing is fetched again
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    requests = farm.stats()["paths"]
    assert len(requests) == 4 and all(sum(c.values()) == 1 for c in requests.values()), requests
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(e.get("event") == "feed polled" and e.get("outcome") == "ok" for e in events)
    assert events[-1]["event"] == "stopped"
    rows = feeds_json(cli, config)
    now = datetime.now(UTC)
    assert all(datetime.fromisoformat(r["next_poll"]) > now for r in rows.values())


def test_sigterm_lets_the_polls_in_flight_finish(tmp_path: Path, farm_corpus: Path) -> None:
    """Stopped while its fetches wait on a slow server, the run stores what they bring and
    gives their leases back: nothing fetched is thrown away, no feed stays leased (for ten
    minutes, to a process that is gone) to hold up the next run."""
    with serving_farm(farm_corpus, "--latency-ms", "1500") as slow:
        config = make_config(tmp_path, farm_members(slow)[:4],
                             fetch={"concurrency": 4, "per_host": 4},
                             schedule={"tick_seconds": 0.2})
        # The requests are out, their answers a second away; ticks pass.
        code, _out, err = _signal_once_claimed(config, 4, [(0.6, signal.SIGTERM)])
        fetched = slow.stats()["paths"]
    assert code == 0, err
    # JSON lines only, APScheduler's included; its skipped ticks (the cycle outlasted several)
    # are by design, not worth a line each.
    events = [json.loads(line) for line in err.splitlines()]
    assert not [e for e in events if "skipped" in e["event"]], events
    polled = [e for e in events if e.get("event") == "feed polled"]
    assert len(fetched) == 4 and len(polled) == 4, (fetched, [e["event"] for e in events])
    assert all(e["outcome"] == "ok" and e["new"] > 0 for e in polled)
    assert events[-1]["event"] == "stopped"
    assert _leased(tmp_path / "var" / "aggregator.db") == 0


def test_sigterm_hands_back_the_feeds_claimed_but_not_started(tmp_path: Path,
                                                              farm_corpus: Path) -> None:
    """A cycle claims feeds by the batch; stopped, it polls only those already in flight and
    frees the others' leases, so that it stops within one fetch and the next run polls them."""
    with serving_farm(farm_corpus, "--latency-ms", "1500") as slow:
        config = make_config(tmp_path, farm_members(slow)[:8],
                             fetch={"concurrency": 2, "per_host": 2})
        # Two requests out, their answers a second away.
        code, out, err = _signal_once_claimed(config, 8, [(0.5, signal.SIGTERM)],
                                              "--once", "--json", "--no-progress")
        fetched = slow.stats()["paths"]
        assert code == 0, err
        assert json.loads(out.splitlines()[-1])["feeds"] == 2
        assert len(fetched) == 2, fetched
        assert _leased(tmp_path / "var" / "aggregator.db") == 0
        again = subprocess.run([*AGGREGATOR, "--config", str(config), "run", "--once", "--json",
                                "--no-progress"], capture_output=True, text=True, timeout=60)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout.splitlines()[-1])["feeds"] == 8


@pytest.mark.parametrize("once", [True, False], ids=["once", "scheduled"])
def test_a_second_signal_stops_at_once(tmp_path: Path, farm_corpus: Path, once: bool) -> None:
    """Whoever signals twice does not want to wait for a slow server: the run exits 130 without
    the answers in flight, and the next start (on this host) polls those feeds at once."""
    with serving_farm(farm_corpus, "--latency-ms", "20000") as stuck:
        config = make_config(tmp_path, farm_members(stuck)[:2],
                             fetch={"concurrency": 2, "per_host": 2, "deadline": 60,
                                    "timeout": {"connect": 3, "read": 30, "write": 3,
                                                "pool": 10}},
                             schedule={"tick_seconds": 0.5})
        # Exits long before the 20 s the server takes (the helper waits 30 s at most).
        code, _out, err = _signal_once_claimed(
            config, 2, [(0.3, signal.SIGTERM), (0.3, signal.SIGINT)],
            *(["--once", "--no-progress"] if once else []))
    assert code == 130, err
    events = [json.loads(line) for line in err.splitlines()]
    assert [e["event"] for e in events][-1] == "stopped at once"
    assert not [e for e in events if e.get("level") == "error"], events
    with serving_farm(farm_corpus) as farm:
        config = make_config(tmp_path, farm_members(farm)[:2])
        again = subprocess.run([*AGGREGATOR, "--config", str(config), "run", "--once", "--json",
                                "--no-progress"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout.splitlines()[-1])
    assert (summary["feeds"], summary["ok"]) == (2, 2), summary


def _signal_once_claimed(config: Path, claimed: int, signals: list[tuple[float, signal.Signals]],
                         *args: str) -> tuple[int, str, str]:
    """``aggregator run *args`` (JSON log); once it holds leases on ``claimed`` feeds, each
    signal after its delay.  Its exit status, stdout and stderr."""
    proc = subprocess.Popen([*AGGREGATOR, "--config", str(config), "--log-format", "json",
                             "--log-level", "info", "run", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = config.parent / "var" / "aggregator.db"
    try:
        assert _wait_for(lambda: _leased(db) == claimed, 30), "the run never claimed its feeds"
        for delay, sig in signals:
            time.sleep(delay)
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


def _leased(db: Path) -> int:
    """Feeds leased to some process, in the SQLite store at ``db``."""
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM feeds "
                                    "WHERE lease_owner IS NOT NULL").fetchone()[0])
        except sqlite3.OperationalError:  # the schema is not there yet
            return 0


def test_run_once_shows_progress_on_a_terminal(tmp_path: Path, farm: Farm) -> None:
    config = make_config(tmp_path, farm_members(farm)[:3])
    pid, fd = pty.fork()
    if pid == 0:  # child: stdin/stdout/stderr are the pseudo-terminal
        os.execvp(sys.executable, [*AGGREGATOR, "--config", str(config), "run", "--once"])
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert os.waitstatus_to_exitcode(status) == 0
    assert "polling feeds" in screen
    assert "cycle: 3 feeds: 3 ok" in screen


def test_summary_counts_new_and_updated_items(tmp_path: Path, farm_corpus: Path, cli: Any) -> None:
    import shutil

    from conftest import FEEDFARM, start_farm

    corpus = tmp_path / "corpus"
    shutil.copytree(farm_corpus, corpus)
    farm = start_farm(corpus)
    try:
        config = make_config(tmp_path, farm_members(farm))
        first = cli("--config", config, "run", "--once")
        assert "20 ok" in first.out
        before = {(t["feed"], t["url"]) for t in farm.truth()}
        subprocess.run([sys.executable, str(FEEDFARM), "advance", "--dir", str(corpus), "--new",
                        "3", "--fraction", "0.3"], check=True, stdout=subprocess.DEVNULL)
        added = {(t["feed"], t["url"]) for t in farm.truth()} - before
        changed_feeds = {feed for feed, _ in added}
        second = cli("--config", config, "run", "--once")
        assert second.code == 0
        assert f"{len(changed_feeds)} ok, {20 - len(changed_feeds)} not modified, 0 failed" \
            in second.out
        assert f"; {len(added)} new items, 0 updated;" in second.out
    finally:
        farm.process.terminate()
        farm.process.wait(10)
