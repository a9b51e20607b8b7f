"""`aggregator migrate-db --to URL`: the whole store moves, and work goes on where it stopped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from conftest import StaticSite, make_config, snapshot
from test_publish import RELEASE, _feeds, _touch_later

from aggregator.db import make_engine

TABLES = ("members", "feeds", "items", "clusters", "lsh_keys", "item_regions",
          "publish_state")


def _counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {t: int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() or 0)
                    for t in TABLES}
    finally:
        engine.dispose()


def _point_at(config: Path, url: str) -> None:
    data = yaml.safe_load(config.read_text("utf-8"))
    data["storage"]["url"] = url
    config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")


def test_a_store_moves_and_carries_on(static_site: StaticSite, workdir: Path, cli: Any,
                                      database_url: str) -> None:
    config = make_config(workdir, _feeds(static_site))
    assert cli("--config", config, "run", "--once").code == 0
    old_url = f"sqlite:///{workdir / 'var' / 'aggregator.db'}"
    before = _counts(old_url)
    out = snapshot(workdir / "output")

    moved = cli("--config", config, "migrate-db", "--to", database_url)
    assert moved.code == 0, moved.err
    assert f"items: {before['items']} rows" in moved.out
    assert _counts(database_url) == before
    assert _counts(old_url) == before, "the old database is left as it was"

    _point_at(config, database_url)
    # Same store, same files: a full publish finds nothing to change.
    again = cli("--config", config, "publish", "--json")
    assert again.code == 0 and again.json()["files"] == []
    assert snapshot(workdir / "output") == out
    # Validators and schedule came along: nothing is new.
    run = cli("--config", config, "run", "--once", "--json")
    assert run.code == 0 and run.json()["new_items"] == 0
    # A further copy of the release joins its old cluster; new ids follow the copied ones.
    make_config(workdir, _feeds(static_site, extra={"suarajatim": [(
        "Santri Sumenep bisa daftar beasiswa Pemkab sampai 15 Desember",
        "SUMENEP - " + " ".join(RELEASE[:4]), 0.5)]}), database=database_url)
    _touch_later(static_site)
    run = cli("--config", config, "run", "--once", "--json")
    assert run.code == 0 and run.json()["new_items"] == 1
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            sizes = sorted(conn.execute(sa.text("SELECT size FROM clusters")).scalars())
            top = conn.execute(sa.text("SELECT max(id) FROM items")).scalar()
    finally:
        engine.dispose()
    assert sizes[-1] == 4
    assert top == before["items"] + 1


def test_the_target_must_be_empty(static_site: StaticSite, workdir: Path, cli: Any,
                                  tmp_path: Path) -> None:
    config = make_config(workdir, _feeds(static_site))
    assert cli("--config", config, "run", "--once").code == 0
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    assert cli("--config", config, "migrate-db", "--to", target).code == 0
    second = cli("--config", config, "migrate-db", "--to", target)
    assert second.code == 1
    assert "already holds data" in second.err
    bad = cli("--config", config, "migrate-db", "--to", "mysql://x/y")
    assert bad.code == 2 and "--to" in bad.err


def test_the_source_is_not_its_own_target(workdir: Path, cli: Any,
                                          static_site: StaticSite) -> None:
    config = make_config(workdir, _feeds(static_site))
    url = f"sqlite:///{workdir / 'var' / 'aggregator.db'}"
    result = cli("--config", config, "migrate-db", "--to", url)
    assert result.code == 1 and "is the source" in result.err


@pytest.mark.parametrize("chunk", [1, 3])
def test_small_chunks_copy_every_row(static_site: StaticSite, workdir: Path, cli: Any,
                                     tmp_path: Path, chunk: int,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("aggregator.copydb.CHUNK", chunk)
    config = make_config(workdir, _feeds(static_site))
    assert cli("--config", config, "run", "--once").code == 0
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    assert cli("--config", config, "migrate-db", "--to", target).code == 0
    assert _counts(target) == _counts(f"sqlite:///{workdir / 'var' / 'aggregator.db'}")
