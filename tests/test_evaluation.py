"""The labelled set's targets: region F1 >= 0.95, cluster pair precision >= 0.99, recall >= 0.95.

The items go through the aggregator's own path (normalise, enrich, store, cluster in SQLite).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.evaluate import Scores, run_labelled

LABELLED = Path(__file__).parent / "fixtures" / "eval" / "labelled.yaml"


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scores, Scores]:
    regions, clusters, _ = run_labelled(LABELLED, tmp_path_factory.mktemp("eval"))
    return regions, clusters


def test_region_tagging_meets_its_target(scores: tuple[Scores, Scores]) -> None:
    regions = scores[0]
    assert regions.f1 >= 0.95, "\n".join(regions.errors)


def test_clustering_meets_its_targets(scores: tuple[Scores, Scores]) -> None:
    clusters = scores[1]
    assert clusters.precision >= 0.99, "\n".join(clusters.errors)
    assert clusters.recall >= 0.95, "\n".join(clusters.errors)
