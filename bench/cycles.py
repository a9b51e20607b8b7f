"""Poll-cycle benchmark against the feed farm on 127.0.0.1.

For each farm size: a cold cycle (empty database), a warm cycle (nothing changed: all 304) and an
incremental cycle (10% of feeds with 3 new items), each a separate `aggregator run --once`
process, as an operator would run it.  Prints a Markdown table.

    python bench/cycles.py --feeds 200 1000 [--items 30] [--storage URL] [--farm PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FARM = ROOT.parent / "shared" / "feedfarm" / "feedfarm.py"


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


def write_config(farm: Path, corpus: Path, port: int, workdir: Path, storage: str) -> Path:
    rows = yaml.safe_load(subprocess.check_output(
        farm_cmd(farm, "yaml", "--dir", str(corpus), "--port", str(port)), text=True))
    config = {
        "association": {"name": "Bench", "base_url": "https://sindikasi.example.id/"},
        "storage": {"url": storage},
        "fetch": {"allow_private_networks": True},
        "members": [{"id": r["name"], "name": r["title"], "site": f"https://{r['name']}.example/",
                     "feeds": [r["url"]], "region": r["region"]} for r in rows],
    }
    path = workdir / "feeds.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    return path


def run_cycle(config: Path) -> dict[str, Any]:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "aggregator", "--config", str(config), "run",
                          "--once", "--json", "--no-progress"], check=True, capture_output=True,
                         text=True, cwd=ROOT).stdout
    summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    summary["wall_s"] = time.perf_counter() - started
    return summary


def stored_items(storage: str) -> int | str:
    if not storage.startswith("sqlite:///"):
        return "-"
    with sqlite3.connect(storage.removeprefix("sqlite:///")) as conn:
        return int(conn.execute("SELECT count(*) FROM items").fetchone()[0])


def bench_size(farm: Path, feeds: int, items: int, storage_url: str | None) -> list[list[Any]]:
    rows: list[list[Any]] = []
    with tempfile.TemporaryDirectory(prefix="sindikasi-bench-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus"
        subprocess.run(farm_cmd(farm, "generate", "--feeds", str(feeds), "--items", str(items),
                                "--seed", "1", "--out", str(corpus), "--epoch", "now"),
                       check=True, stdout=subprocess.DEVNULL)
        proc, port = start_farm(farm, corpus)
        storage = storage_url or f"sqlite:///{work / 'bench.db'}"
        try:
            config = write_config(farm, corpus, port, work, storage)
            for name in ("cold", "warm", "incremental"):
                if name == "incremental":
                    subprocess.run(farm_cmd(farm, "advance", "--dir", str(corpus), "--new", "3",
                                            "--fraction", "0.1"), check=True,
                                   stdout=subprocess.DEVNULL)
                stats(port, reset=True)
                s = run_cycle(config)
                served = stats(port, reset=False)
                rows.append([feeds, name, f"{s['wall_s']:.2f}", f"{s['duration_s']:.2f}",
                             f"{s['cpu_s']:.2f}", f"{s['peak_rss_mb']:.0f}",
                             served.get("requests", "-"), s["ok"], s["not_modified"], s["failed"],
                             s["new_items"], stored_items(storage)])
        finally:
            proc.terminate()
            proc.wait(10)
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--feeds", type=int, nargs="+", default=[200, 1000])
    p.add_argument("--items", type=int, default=30)
    p.add_argument("--storage", help="database URL (default: a fresh SQLite file per size)")
    p.add_argument("--farm", type=Path, default=Path(os.environ.get("FEEDFARM", DEFAULT_FARM)))
    args = p.parse_args()
    if not args.farm.is_file():
        raise SystemExit(f"feedfarm not found at {args.farm} (use --farm or $FEEDFARM)")
    if shutil.which("nproc"):
        cores = subprocess.check_output(["nproc"], text=True).strip()
        print(f"machine: {cores} cores, Python {sys.version.split()[0]}")
    header = ["feeds", "cycle", "wall s", "cycle s", "CPU s", "peak MB", "requests", "ok",
              "304/same", "failed", "new items", "items stored"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for n in args.feeds:
        for row in bench_size(args.farm, n, args.items, args.storage):
            print("| " + " | ".join(str(c) for c in row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
