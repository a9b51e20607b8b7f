"""CPU cost of the pure per-item stages: region tagging and the MinHash fingerprint.

    python bench/stages.py [--feeds 50] [--corpus DIR] [--repeat 5] [--farm PATH]

Items are a feed-farm corpus (generated into a temporary directory unless ``--corpus`` names
one; parsed and normalised once, untimed), the same joined into ~450-word items, and the labelled
set's items.  Each stage runs over
all items ``--repeat`` times and the fastest round counts, measured with ``time.process_time``
(CPU time of this process, so that other load on the machine distorts it less than wall time).

The targets (about 2,000 items/s for clustering + tagging on one core) are for a 450-word item:
the joined items measure that; the last column scales each stage's cost to 450 words assuming
cost proportional to words (an overestimate for short items, which pay a fixed cost too).
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator import similarity  # noqa: E402
from aggregator.gazetteer import load  # noqa: E402
from aggregator.normalize import normalize_feed  # noqa: E402
from aggregator.parse import parse_feed  # noqa: E402
from aggregator.tagger import tag  # noqa: E402

DEFAULT_FARM = ROOT.parent / "shared" / "feedfarm" / "feedfarm.py"
LABELLED = ROOT / "tests" / "fixtures" / "eval" / "labelled.yaml"

# title, text, home region, outlet names: what enrich passes to the stages
Sample = tuple[str, str, str | None, list[str]]


def farm_samples(corpus: Path) -> list[Sample]:
    now = datetime.now(UTC)
    samples: list[Sample] = []
    for path in sorted(glob.glob(str(corpus / "feeds" / "*.xml"))):
        name = Path(path).stem
        doc = parse_feed(Path(path).read_bytes())
        for item in normalize_feed(doc, f"https://{name}.example/", now, timedelta(hours=1)):
            samples.append((item.title, item.content_text, None, [name]))
    return samples


def labelled_samples() -> list[Sample]:
    data: dict[str, Any] = yaml.safe_load(LABELLED.read_text("utf-8"))
    members = {m["id"]: m for m in data["members"]}
    return [(it["title"], it["text"], members[it["member"]]["home"],
             [members[it["member"]]["name"]]) for it in data["items"]]


def long_samples(samples: list[Sample], words: int = 450) -> list[Sample]:
    """Farm items are 125-230 words; the targets are for 450.  Consecutive items of one feed are
    joined (paragraphs appended, the first one's title kept) until each reaches ``words``."""
    joined: list[Sample] = []
    current: Sample | None = None
    for sample in samples:
        if current is not None and current[3] == sample[3]:
            current = (current[0], f"{current[1]}\n\n{sample[1]}", current[2], current[3])
        else:
            current = sample
        if len(current[0].split()) + len(current[1].split()) >= words:
            joined.append(current)
            current = None
    return joined


def cpu_ms_per_item(run: Callable[[Sample], object], samples: list[Sample],
                    repeat: int) -> float:
    """The fastest of ``repeat`` rounds over all samples, in CPU milliseconds per item."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for sample in samples:
            run(sample)
        best = min(best, time.process_time() - start)
    return 1000 * best / len(samples)


STAGES: dict[str, Callable[[Sample], object]] = {
    "tag": lambda s: tag(s[0], s[1], home_region=s[2], outlet_names=s[3]),
    "signature": lambda s: similarity.signature(s[0], s[1]),
    "facts": lambda s: similarity.facts(s[0], s[1]),
    "fingerprint": lambda s: similarity.fingerprint(s[0], s[1]),
}


def report(label: str, samples: list[Sample], repeat: int) -> None:
    words = sum(len(s[0].split()) + len(s[1].split()) for s in samples) / len(samples)
    print(f"\n{label}: {len(samples):,} items, {words:.0f} words an item on average")
    print("| stage | items | ms/item CPU | ms per 450 words |")
    print("|---|---|---|---|")
    for name, run in STAGES.items():
        ms = cpu_ms_per_item(run, samples, repeat)
        print(f"| {name} | {len(samples):,} | {ms:.3f} | {ms * 450 / words:.3f} |", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--feeds", type=int, default=50)
    p.add_argument("--corpus", type=Path, help="an existing feed-farm corpus directory")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--farm", type=Path, default=Path(os.environ.get("FEEDFARM", DEFAULT_FARM)))
    args = p.parse_args()
    load()  # the gazetteer is built once per process: not part of any item's cost
    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus
        if corpus is None:
            corpus = Path(tmp) / "corpus"
            subprocess.run([sys.executable, str(args.farm), "generate", "--feeds",
                            str(args.feeds), "--items", "30", "--out", str(corpus),
                            "--epoch", "now"], check=True, stdout=subprocess.DEVNULL)
        farm = farm_samples(corpus)
    report("feed farm", farm, args.repeat)
    report("feed farm, items of one feed joined to >= 450 words", long_samples(farm), args.repeat)
    report("labelled set", labelled_samples(), args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
