"""How to lay out httpx connection pools: CPU per request by requests in flight and pool count.

httpcore scans its pool's connections and waiting requests on every operation, so CPU per
request grows with the requests in flight on one pool.  This fetches every feed of a feed farm
once (fetch only: no parsing, no database) through aggregator.fetch with several layouts and
prints the client CPU per request, which is what `fetch.concurrency` and the shard count in
aggregator/fetch.py were chosen from.

    python bench/fetch_pools.py [--feeds 1000] [--inflight 4 16 32 64] [--shards 1 2 4 8 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cycles import DEFAULT_FARM, farm_cmd, start_farm

from aggregator.config import parse_config
from aggregator.fetch import build_client, fetch_feed


async def fetch_all(urls: list[str], inflight: int, shards: int) -> tuple[float, float, int]:
    config = parse_config(
        "association: {name: Bench, base_url: 'https://x.example/'}\n"
        f"fetch: {{allow_private_networks: true, concurrency: {inflight}, per_host: {inflight}}}\n"
        "members: [{id: a, name: A, site: 'https://x.example/', feeds: ['https://x.example/f']}]\n"
    )
    client = build_client(config, shards=shards)
    limit = asyncio.Semaphore(inflight)
    ok = 0

    async def one(url: str) -> None:
        nonlocal ok
        async with limit:
            result = await fetch_feed(client, url, etag=None, last_modified=None,
                                      max_bytes=15 << 20, max_redirects=5, deadline=60)
            ok += result.status == "ok"

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(u) for u in urls))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await client.aclose()
    return wall, cpu, ok


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--feeds", type=int, default=1000)
    p.add_argument("--inflight", type=int, nargs="+", default=[4, 16, 32, 64])
    p.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    p.add_argument("--farm", type=Path, default=Path(os.environ.get("FEEDFARM", DEFAULT_FARM)))
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="sindikasi-pools-") as tmp:
        corpus = Path(tmp) / "corpus"
        subprocess.run(farm_cmd(args.farm, "generate", "--feeds", str(args.feeds), "--items", "30",
                                "--out", str(corpus)), check=True, stdout=subprocess.DEVNULL)
        proc, port = start_farm(args.farm, corpus)
        try:
            urls = subprocess.check_output(
                farm_cmd(args.farm, "urls", "--dir", str(corpus), "--port", str(port)),
                text=True).split()
            asyncio.run(fetch_all(urls[:50], 4, 1))  # warm up imports and the server's cache
            print(f"{len(urls)} feeds of ~87 kB (gzip), Python {sys.version.split()[0]}")
            print("| in flight | pools | per pool | wall s | client CPU s | CPU ms/request | ok |")
            print("|---|---|---|---|---|---|---|")
            for inflight in args.inflight:
                for shards in args.shards:
                    if shards > inflight:
                        continue
                    wall, cpu, ok = asyncio.run(fetch_all(urls, inflight, shards))
                    print(f"| {inflight} | {shards} | {-(-inflight // shards)} | {wall:.2f} | "
                          f"{cpu:.2f} | {1000 * cpu / len(urls):.2f} | {ok} |", flush=True)
        finally:
            proc.terminate()
            proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
