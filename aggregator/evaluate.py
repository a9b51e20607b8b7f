"""Score region tagging and story clustering against a labelled set.

Used by the test suite (the targets are tests) and by bench/cluster_tag.py (which prints the
figures).  Items go through the same path as polled ones: enrich, then store and cluster in a real
database, so the clustering measured is the incremental one the aggregator runs.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from .config import parse_config
from .db import items as items_table
from .db import make_engine
from .enrich import enrich
from .gazetteer import load
from .migrate import upgrade
from .models import RawEntry
from .normalize import normalize_entry
from .store import FeedUpdate, claim_feeds, record_poll, sync_config


@dataclass
class Scores:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class Labelled:
    members: dict[str, dict[str, Any]]
    items: list[dict[str, Any]]


def load_labelled(path: Path) -> Labelled:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Labelled({m["id"]: m for m in data["members"]}, data["items"])


def is_unit(code: str) -> bool:
    return code.startswith("35.")


def region_scores(expected: dict[str, set[str]], predicted: dict[str, set[str]]) -> Scores:
    """Micro-averaged precision/recall over (item, kabupaten/kota) pairs."""
    s = Scores()
    for item_id, want in expected.items():
        want_units = {c for c in want if is_unit(c)}
        got = {c for c in predicted.get(item_id, set()) if is_unit(c)}
        s.tp += len(want_units & got)
        s.fp += len(got - want_units)
        s.fn += len(want_units - got)
        if want_units != got:
            s.errors.append(f"{item_id}: want {sorted(want_units)} got {sorted(got)}")
    return s


def pair_scores(expected: dict[str, str | None], predicted: dict[str, int]) -> Scores:
    """Pair precision/recall: of item pairs put together, and of pairs that belong together."""
    def pairs(groups: Iterable[list[str]]) -> set[tuple[str, str]]:
        return {p for g in groups for p in itertools.combinations(sorted(g), 2)}

    want_groups: dict[str, list[str]] = defaultdict(list)
    got_groups: dict[int, list[str]] = defaultdict(list)
    for item_id, label in expected.items():
        if label:
            want_groups[label].append(item_id)
        if item_id in predicted:
            got_groups[predicted[item_id]].append(item_id)
    want, got = pairs(want_groups.values()), pairs(got_groups.values())
    s = Scores(tp=len(want & got), fp=len(got - want), fn=len(want - got))
    s.errors = [f"wrongly together: {a} {b}" for a, b in sorted(got - want)] + \
        [f"wrongly apart: {a} {b}" for a, b in sorted(want - got)]
    return s


def run_labelled(path: Path, workdir: Path) -> tuple[Scores, Scores, dict[str, Any]]:
    """Tag and cluster the labelled set through a fresh SQLite store; score both."""
    data = load_labelled(path)
    g = load()
    config = parse_config(yaml.safe_dump({
        "association": {"name": "Eval", "base_url": "https://eval.example/"},
        "members": [{"id": m["id"], "name": m["name"], "site": f"https://{m['id']}.example/",
                     "feeds": [f"https://{m['id']}.example/feed/"],
                     **({"region": g.regions[m["home"]].name} if m.get("home") else {})}
                    for m in data.members.values()],
    }))
    engine = make_engine(f"sqlite:///{workdir / 'eval.db'}")
    upgrade(engine)
    start = min(datetime.fromisoformat(i["published"]) for i in data.items)
    sync_config(engine, config, start)
    feeds = {f.member_id: f for f in
             claim_feeds(engine, "eval", start, timedelta(days=1), 10_000, due_only=False)}
    predicted_regions: dict[str, set[str]] = {}
    keys: dict[str, str] = {}
    for raw in sorted(data.items, key=lambda i: i["published"]):
        member = data.members[raw["member"]]
        published = datetime.fromisoformat(raw["published"])
        entry = RawEntry(guid=raw["id"], link=f"https://{member['id']}.example/{raw['id']}/",
                         title=raw["title"], summary_html="", content_html=_html(raw["text"]),
                         author=None, categories=(), published=published, updated=None)
        item = normalize_entry(entry, f"https://{member['id']}.example/", published,
                               timedelta(hours=1))
        assert item is not None
        home = g.regions[member["home"]].name if member.get("home") else None
        item = enrich(item, member_name=member["name"], home_region=home)
        predicted_regions[raw["id"]] = {r.code for r in item.regions}
        keys[raw["id"]] = item.url or ""
        feed = feeds[member["id"]]
        record_poll(engine, feed, FeedUpdate(outcome="ok", now=published,
                                             next_poll_at=published), [item])
    with engine.connect() as conn:
        by_url = dict(conn.execute(select(items_table.c.url, items_table.c.cluster_id)).all())
    engine.dispose()
    regions = region_scores({i["id"]: set(i.get("regions") or []) for i in data.items},
                            predicted_regions)
    clusters = pair_scores({i["id"]: i.get("cluster") for i in data.items},
                           {k: by_url[u] for k, u in keys.items() if u in by_url})
    return regions, clusters, {"items": len(data.items)}


def _html(text: str) -> str:
    from html import escape

    return "".join(f"<p>{escape(line.strip())}</p>" for line in text.splitlines() if line.strip())
