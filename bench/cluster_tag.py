"""Region tagging and story clustering: quality on the labelled set, speed on 100,000 items.

    python bench/cluster_tag.py [--items 100000] [--quality-only]

Quality: region precision/recall/F1 at kabupaten/kota level and cluster pair precision/recall on
tests/fixtures/eval/labelled.yaml, through the aggregator's own path (normalise, enrich, store,
cluster in SQLite); the same on the feed farm's truth (syndicated copies, dateline regions).

Speed, on one core: items come from feed-farm corpora of 200 feeds x 30 items (parsed untimed),
one corpus per round with its own seed and an epoch four days after the previous one, so rounds
are different stories; they are fed in publication order through enrich (tag + MinHash + facts)
and the store's incremental clustering.
Times are CPU time of this process (``time.process_time``): the work of the one core, which
other load on the machine distorts far less than wall time would.
Matching cost per item is shown when the store holds about 10k and about 100k items: flat,
because lookups only touch the window's buckets and older buckets are pruned.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from calibrate import describe  # noqa: E402

from aggregator import store  # noqa: E402
from aggregator.clustering import cluster_items, prune_buckets  # noqa: E402
from aggregator.config import parse_config  # noqa: E402
from aggregator.db import make_engine  # noqa: E402
from aggregator.enrich import enrich  # noqa: E402
from aggregator.evaluate import run_labelled  # noqa: E402
from aggregator.gazetteer import load  # noqa: E402
from aggregator.migrate import upgrade  # noqa: E402
from aggregator.models import Item  # noqa: E402
from aggregator.normalize import normalize_feed  # noqa: E402
from aggregator.parse import parse_feed  # noqa: E402
from aggregator.store import (  # noqa: E402
    FeedUpdate,
    Poll,
    claim_feeds,
    record_polls,
    sync_config,
)

DEFAULT_FARM = ROOT.parent / "shared" / "feedfarm" / "feedfarm.py"
LABELLED = ROOT / "tests" / "fixtures" / "eval" / "labelled.yaml"


def quality() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        regions, clusters, info = run_labelled(LABELLED, Path(tmp))
    print(f"labelled set ({info['items']} items):")
    print("| measure | precision | recall | F1 | target |")
    print("|---|---|---|---|---|")
    print(f"| regions (kab/kota) | {regions.precision:.3f} | {regions.recall:.3f} | "
          f"{regions.f1:.3f} | F1 >= 0.95 |")
    print(f"| cluster pairs | {clusters.precision:.3f} | {clusters.recall:.3f} | "
          f"{clusters.f1:.3f} | P >= 0.99, R >= 0.95 |")


def corpus_items(farm: Path, feeds: int, workdir: Path, seed: int = 1,
                 epoch: datetime | None = None) -> list[tuple[str, Item]]:
    out = workdir / f"corpus{seed}"
    now = epoch or datetime.now(UTC)
    subprocess.run([sys.executable, str(farm), "generate", "--feeds", str(feeds), "--items", "30",
                    "--seed", str(seed), "--out", str(out), "--epoch", now.isoformat()],
                   check=True, stdout=subprocess.DEVNULL)
    found = []
    for path in sorted(glob.glob(str(out / "feeds" / "*.xml"))):
        name = Path(path).stem
        doc = parse_feed(Path(path).read_bytes())
        for item in normalize_feed(doc, f"https://{name}.example/", now, timedelta(hours=1)):
            found.append((name, item))
    return found


def speed(farm: Path, total: int, batch_size: int, group: int) -> None:
    g = load()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = corpus_items(farm, 200, work)
        names = sorted({n for n, _ in base})
        config = parse_config("association: {name: B, base_url: 'https://b.example/'}\nmembers:\n"
                              + "".join(f"  - {{id: {n}, name: {n}, site: 'https://{n}.example/',"
                                        f" feeds: ['https://{n}.example/feed/']}}\n"
                                        for n in names))
        engine = make_engine(f"sqlite:///{work / 'speed.db'}")
        upgrade(engine)
        start = min(i.published_at for _, i in base)
        sync_config(engine, config, start)
        feeds = {f.member_id: f for f in claim_feeds(engine, "bench", start, timedelta(days=365),
                                                     10_000, due_only=False)}
        cluster_time = [0.0]

        def timed_cluster(*args: object, **kwargs: object) -> object:
            t = time.process_time()
            placed = cluster_items(*args, **kwargs)  # type: ignore[arg-type]
            cluster_time[0] += time.process_time() - t
            return placed

        store.cluster_items = timed_cluster  # type: ignore[attr-defined,assignment]
        rounds = -(-total // len(base))
        epoch = datetime.now(UTC)
        window = timedelta(hours=72)
        print(f"\nspeed: {total:,} items from {len(base):,} farm items x {rounds} rounds, "
              f"{batch_size} new items per feed poll, {group} poll(s) per transaction, "
              f"one core, SQLite; {describe()}")
        print("| stored items | enrich ms/item | cluster ms/item | store+cluster ms/item | "
              "items/s (enrich + cluster) |")
        print("|---|---|---|---|---|")
        done = 0
        totals = [0.0, 0.0, 0.0]  # enrich, cluster, store + cluster seconds over all rounds
        for r in range(rounds):
            shift = timedelta(days=4 * r)
            fresh = base if r == 0 else corpus_items(farm, 200, work, seed=r + 1,
                                                     epoch=epoch + shift)
            # Each round's outlets take the places of the first round's, in name order.
            order = {n: names[k % len(names)]
                     for k, n in enumerate(sorted({n for n, _ in fresh}))}
            batch = [(order[n], i) for n, i in fresh][: total - done]
            batch.sort(key=lambda b: b[1].published_at)
            t0 = time.process_time()
            enriched = [(n, enrich(i, member_name=n, home_region=None)) for n, i in batch]
            t_enrich = time.process_time() - t0
            cluster_time[0] = 0.0
            t1 = time.process_time()
            by_feed: dict[str, list[Item]] = {}
            polls: list[Poll] = []
            for n, i in enriched:
                by_feed.setdefault(n, []).append(i)
                if len(by_feed[n]) == batch_size:  # new items of one feed in one poll
                    polls.append(_poll(feeds[n], by_feed.pop(n)))
                    if len(polls) == group:  # polls finished together: one transaction
                        record_polls(engine, polls)
                        polls = []
            polls += [_poll(feeds[n], items) for n, items in by_feed.items()]
            for start_at in range(0, len(polls), group):
                record_polls(engine, polls[start_at:start_at + group])
            t_store = time.process_time() - t1
            done += len(batch)
            with engine.begin() as conn:
                prune_buckets(conn, start + shift - 2 * window)
            totals = [a + b for a, b in zip(totals, (t_enrich, cluster_time[0], t_store),
                                            strict=True)]
            if r in (0, 1) or r == rounds - 1 or done >= total:
                _row(f"{done:,}", len(batch), t_enrich, cluster_time[0], t_store)
            if done >= total:
                break
        # The whole run: single rounds swing by a third on this virtual machine, the sum less.
        _row(f"all {done:,}", done, *totals)
        print(f"at the end: {describe()}")
        engine.dispose()
    del g


def _row(label: str, count: int, t_enrich: float, t_cluster: float, t_store: float) -> None:
    print(f"| {label} | {1000 * t_enrich / count:.3f} | {1000 * t_cluster / count:.3f} | "
          f"{1000 * t_store / count:.3f} | {count / (t_enrich + t_cluster):,.0f} |", flush=True)


def _poll(feed: store.FeedState, items: list[Item]) -> Poll:
    now = max(i.published_at for i in items)
    return Poll(feed, FeedUpdate(outcome="ok", now=now, next_poll_at=now), items)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--quality-only", action="store_true")
    p.add_argument("--batch", type=int, nargs="+", default=[5, 30],
                   help="new items per feed poll")
    p.add_argument("--group", type=int, nargs="+", default=[1, 16],
                   help="polls per store transaction (the poller's group commit)")
    p.add_argument("--farm", type=Path, default=Path(os.environ.get("FEEDFARM", DEFAULT_FARM)))
    args = p.parse_args()
    quality()
    if not args.quality_only:
        for batch in args.batch:
            for group in args.group:
                speed(args.farm, args.items, batch, group)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
