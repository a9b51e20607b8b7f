"""Poll-cycle benchmark against the feed farm on 127.0.0.1, with newsboat as the reference.

For each farm size (feeds x 30 items) and each setup, three cycles: cold (empty database),
warm (nothing changed: all 304) and incremental (10% of feeds with 3 new items each).  A cycle
is fetch, parse, normalise, tag, cluster, store and publish, as an operator runs it:

- ``sqlite``: one ``aggregator run --once`` process on a SQLite file;
- ``pg1``, ``pg2``: 1 or 2 ``aggregator run`` worker processes (scheduled mode, as deployed) on a
  fresh PostgreSQL schema; every feed is made due, and the cycle ends when every feed has been
  polled and the result published.
- ``newsboat``: newsboat's reload of the same feeds (``-x reload``; 8 reload threads), cold with an
  empty cache and warm with the cache of the cold run.

Wall time includes starting the processes.  CPU is the processes' user + system time, their
children included; peak MB is the largest resident set among them (the parse workers are
children of the forkserver, so a worker's own figure is its largest process).

    python bench/cycles.py [--feeds 1000 10000] [--setups sqlite pg1 pg2 newsboat]
                           [--postgres URL] [--farm PATH]

PostgreSQL comes from ``--postgres`` or ``$AGGREGATOR_TEST_POSTGRES_URL``; without one the pg
setups are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from calibrate import describe

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FARM = ROOT.parent / "shared" / "feedfarm" / "feedfarm.py"
NEWSBOAT_THREADS = 8


def farm_cmd(farm: Path, *args: str) -> list[str]:
    return [sys.executable, str(farm), *args]


def start_farm(farm: Path, corpus: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(farm_cmd(farm, "serve", "--dir", str(corpus), "--port", "0"),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    match = re.search(r"127\.0\.0\.1:(\d+)", proc.stdout.readline())
    if not match:
        proc.kill()
        raise SystemExit("feedfarm did not start")
    return proc, int(match.group(1))


def stats(port: int, reset: bool) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/_stats" + ("?reset" if reset else "")
    with urllib.request.urlopen(url, timeout=30) as r:
        data: dict[str, Any] = json.load(r)
        return data


def farm_rows(farm: Path, corpus: Path, port: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = yaml.safe_load(subprocess.check_output(
        farm_cmd(farm, "yaml", "--dir", str(corpus), "--port", str(port)), text=True))
    return rows


def write_config(rows: list[dict[str, Any]], workdir: Path, storage: str,
                 scheduled: bool) -> Path:
    config: dict[str, Any] = {
        "association": {"name": "Bench", "base_url": "https://sindikasi.example.id/"},
        "storage": {"url": storage},
        "output_dir": str(workdir / "output"),
        "fetch": {"allow_private_networks": True},
        "members": [{"id": r["name"], "name": r["title"], "site": f"https://{r['name']}.example/",
                     "feeds": [r["url"]], "region": r["region"]} for r in rows],
    }
    if scheduled:  # workers look for due feeds often; nothing comes due again during a cycle
        config["schedule"] = {"tick_seconds": 0.5, "min_interval": 86400,
                              "max_interval": 86400}
    path = workdir / "feeds.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    return path


@contextmanager
def children_usage() -> Iterator[dict[str, float]]:
    """CPU seconds and peak RSS (MB) of the child processes waited for inside the block."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    found: dict[str, float] = {}
    yield found
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    found["peak_mb"] = after.ru_maxrss / 1024  # the largest child so far (never reset)


def run_once(config: Path) -> dict[str, Any]:
    started = time.perf_counter()
    with children_usage() as usage:
        out = subprocess.run([sys.executable, "-m", "aggregator", "--config", str(config), "run",
                              "--once", "--json", "--no-progress"], check=True,
                             capture_output=True, text=True, cwd=ROOT).stdout
    summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return {"wall_s": time.perf_counter() - started, "cpu_s": usage["cpu_s"],
            "peak_mb": summary["peak_rss_mb"], "new": summary["new_items"]}


def run_workers(config: Path, url: str, workers: int, feeds: int) -> dict[str, Any]:
    """Start ``workers`` scheduled processes with every feed due; stop them once every feed was
    polled and the result published."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE feeds SET next_poll_at = now() - interval '1 second'"))
    t0 = datetime.now(UTC)
    started = time.perf_counter()
    with children_usage() as usage:
        procs = [subprocess.Popen([sys.executable, "-m", "aggregator", "--config", str(config),
                                   "run"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, cwd=ROOT) for _ in range(workers)]
        try:
            while True:
                time.sleep(0.1)
                if any(p.poll() is not None for p in procs):
                    raise SystemExit("a worker stopped: " + "".join(
                        p.stderr.read() if p.stderr else "" for p in procs if p.poll()))
                try:
                    with engine.connect() as conn:
                        done = conn.execute(sa.text(
                            "SELECT count(*), max(last_fetch_at) FROM feeds "
                            "WHERE last_fetch_at >= :t0"), {"t0": t0}).one()
                        published = conn.execute(sa.text(
                            "SELECT value FROM publish_state WHERE key = 'now'")).scalar()
                except sa.exc.ProgrammingError:  # the first worker is creating the schema
                    continue
                if done[0] < feeds:
                    continue
                # Every poll has committed.  A cycle that stored nothing publishes nothing;
                # otherwise it ends with a publish that started after the last poll.
                if _nothing_new(engine, t0):
                    break
                if published and datetime.fromisoformat(published) >= done[1]:
                    break
            wall = time.perf_counter() - started
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(120)
    with engine.connect() as conn:
        new = conn.execute(sa.text("SELECT count(*) FROM items WHERE first_seen_at >= :t0"),
                           {"t0": t0}).scalar()
    engine.dispose()
    return {"wall_s": wall, "cpu_s": usage["cpu_s"], "peak_mb": usage["peak_mb"], "new": new}


def _nothing_new(engine: sa.Engine, t0: datetime) -> bool:
    with engine.connect() as conn:
        return not conn.execute(sa.text("SELECT 1 FROM items WHERE first_seen_at >= :t0 LIMIT 1"),
                                {"t0": t0}).first()


def stored_items(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM items")).scalar() or 0)
    finally:
        engine.dispose()


@contextmanager
def pg_schema(base: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def newsboat_cycles(urls: list[str], work: Path, port: int) -> list[dict[str, Any]]:
    home = work / "newsboat"
    (home / ".newsboat").mkdir(parents=True)
    (home / ".newsboat" / "urls").write_text("".join(u + "\n" for u in urls))
    (home / ".newsboat" / "config").write_text(f"reload-threads {NEWSBOAT_THREADS}\n")
    out = []
    for _ in ("cold", "warm"):
        stats(port, reset=True)
        started = time.perf_counter()
        with children_usage() as usage:
            subprocess.run(["newsboat", "-x", "reload"], check=True, env={**os.environ,
                           "HOME": str(home)}, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        out.append({"wall_s": time.perf_counter() - started, "cpu_s": usage["cpu_s"],
                    "peak_mb": usage["peak_mb"], "requests": stats(port, False)["requests"]})
    return out


def bench_size(farm: Path, feeds: int, items: int, setups: list[str],
               postgres: str | None) -> Iterator[list[Any]]:
    with tempfile.TemporaryDirectory(prefix="sindikasi-bench-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus"
        subprocess.run(farm_cmd(farm, "generate", "--feeds", str(feeds), "--items", str(items),
                                "--seed", "1", "--out", str(corpus), "--epoch", "now"),
                       check=True, stdout=subprocess.DEVNULL)
        pristine = work / "pristine"
        shutil.copytree(corpus, pristine)
        proc, port = start_farm(farm, corpus)
        try:
            rows = farm_rows(farm, corpus, port)
            reference: dict[str, float] = {}
            if "newsboat" in setups:
                if shutil.which("newsboat") is None:
                    print(f"({feeds} feeds: newsboat is not installed; skipped)", file=sys.stderr)
                else:
                    for name, r in zip(("cold", "warm"),
                                       newsboat_cycles([r["url"] for r in rows], work, port),
                                       strict=True):
                        reference[name] = r["wall_s"]
                        yield [feeds, "newsboat", name, f"{r['wall_s']:.2f}",
                               f"{r['cpu_s']:.2f}", f"{r['peak_mb']:.0f}", r["requests"], "-",
                               "-", "1.00"]
            for setup in setups:
                if setup == "newsboat":
                    continue
                if setup.startswith("pg") and not postgres:
                    print(f"({setup}: no PostgreSQL URL; skipped)", file=sys.stderr)
                    continue
                _restore(pristine, corpus)
                yield from _setup_rows(setup, rows, work / setup, feeds, farm, corpus, port,
                                       postgres, reference)
        finally:
            proc.terminate()
            proc.wait(10)


def _restore(pristine: Path, corpus: Path) -> None:
    """Every setup starts from the same corpus (``advance`` changed it)."""
    for path in pristine.rglob("*"):
        if path.is_file():
            target = corpus / path.relative_to(pristine)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def _setup_rows(setup: str, rows: list[dict[str, Any]], work: Path, feeds: int, farm: Path,
                corpus: Path, port: int, postgres: str | None,
                reference: dict[str, float]) -> Iterator[list[Any]]:
    work.mkdir()
    with _storage(setup, work, postgres) as url:
        config = write_config(rows, work, url, scheduled=setup != "sqlite")
        for name in ("cold", "warm", "incremental"):
            if name == "incremental":
                subprocess.run(farm_cmd(farm, "advance", "--dir", str(corpus), "--new", "3",
                                        "--fraction", "0.1"), check=True,
                               stdout=subprocess.DEVNULL)
            stats(port, reset=True)
            if setup == "sqlite":
                r = run_once(config)
            else:
                if name == "cold":  # create the schema and the feeds, as a deployment would
                    _prepare(config)
                r = run_workers(config, url, int(setup[2:]), feeds)
            served = stats(port, reset=False)
            ratio = (f"{reference[name] / r['wall_s']:.2f}" if name in reference else "-")
            yield [feeds, setup, name, f"{r['wall_s']:.2f}", f"{r['cpu_s']:.2f}",
                   f"{r['peak_mb']:.0f}", served.get("requests", "-"), r["new"],
                   stored_items(url), ratio]


def _prepare(config: Path) -> None:
    """Schema and feeds rows in place before the clock starts (workers would race to it)."""
    code = ("import sys; from datetime import UTC, datetime; "
            "from aggregator.config import load_config; from aggregator.db import make_engine; "
            "from aggregator.migrate import upgrade; from aggregator.store import sync_config; "
            "c = load_config(sys.argv[1]); e = make_engine(c.database_url); upgrade(e); "
            "sync_config(e, c, datetime.now(UTC))")
    subprocess.run([sys.executable, "-c", code, str(config)], check=True, cwd=ROOT)


@contextmanager
def _storage(setup: str, work: Path, postgres: str | None) -> Iterator[str]:
    if setup == "sqlite":
        yield f"sqlite:///{work / 'bench.db'}"
        return
    assert postgres is not None
    with pg_schema(postgres) as url:
        yield url


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--feeds", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--items", type=int, default=30)
    p.add_argument("--setups", nargs="+", default=["newsboat", "sqlite", "pg1", "pg2"],
                   choices=["newsboat", "sqlite", "pg1", "pg2"])
    p.add_argument("--postgres", default=os.environ.get("AGGREGATOR_TEST_POSTGRES_URL"))
    p.add_argument("--farm", type=Path, default=Path(os.environ.get("FEEDFARM", DEFAULT_FARM)))
    args = p.parse_args()
    if not args.farm.is_file():
        raise SystemExit(f"feedfarm not found at {args.farm} (use --farm or $FEEDFARM)")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
          f"{args.items} items a feed; {describe()}")
    header = ["feeds", "setup", "cycle", "wall s", "CPU s", "peak MB", "requests", "new items",
              "items stored", "newsboat / this (wall)"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for n in args.feeds:
        for row in bench_size(args.farm, n, args.items, args.setups, args.postgres):
            print("| " + " | ".join(str(c) for c in row) + " |", flush=True)
    print(f"at the end: {describe()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
