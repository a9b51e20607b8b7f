"""Move a store to another database (``aggregator migrate-db --to URL``): SQLite to PostgreSQL
when one machine is no longer enough, or back.

Rows keep their ids, so clusters, representatives and LSH buckets stay valid, and feeds keep
their validators and schedule: the first cycle on the new database is as warm as the last one on
the old.  The target is brought to the newest schema first and must hold no data; rows are
copied in key order, in chunks (memory stays flat whatever the store's size), in one transaction
on the target, so a failed copy leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ColumnElement, Table, and_, func, insert, or_, select, text
from sqlalchemy.engine import Connection, Engine

from .db import (
    clusters,
    feeds,
    hosts,
    item_regions,
    items,
    lsh_keys,
    members,
    publish_state,
)
from .migrate import upgrade

# Parents before children (foreign keys); locks are not copied: they belong to live processes.
TABLES: tuple[Table, ...] = (members, feeds, hosts, items, clusters, lsh_keys, item_regions,
                             publish_state)
CHUNK = 2000


class CopyError(Exception):
    """The copy cannot start (target not empty, same database) or the counts disagree."""


@dataclass(frozen=True)
class CopyResult:
    rows: dict[str, int]


def copy_store(source: Engine, target: Engine,
               progress: Callable[[str, int], None] | None = None) -> CopyResult:
    """Copy every table from ``source`` to an empty ``target``; returns rows per table."""
    if source.url.render_as_string(hide_password=False) == \
            target.url.render_as_string(hide_password=False):
        raise CopyError("the target is the source database")
    upgrade(source)
    upgrade(target)
    with target.connect() as conn:
        filled = [t.name for t in TABLES
                  if conn.execute(select(func.count()).select_from(t)).scalar()]
    if filled:
        raise CopyError(f"the target database already holds data ({', '.join(filled)}); "
                        "copy into an empty one")
    copied: dict[str, int] = {}
    with source.connect() as src, target.begin() as dst:
        for table in TABLES:
            copied[table.name] = _copy_table(src, dst, table, progress)
        if dst.dialect.name == "postgresql":
            for table in (feeds, items, clusters):
                # Ids were copied as they were: the sequences must continue after them.
                dst.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"COALESCE((SELECT max(id) FROM {table.name}), 0) + 1, false)"))
    with target.connect() as conn:
        for table in TABLES:
            found = conn.execute(select(func.count()).select_from(table)).scalar()
            if found != copied[table.name]:
                raise CopyError(f"{table.name}: copied {copied[table.name]} rows, "
                                f"the target holds {found}")
    return CopyResult(copied)


def _copy_table(src: Connection, dst: Connection, table: Table,
                progress: Callable[[str, int], None] | None) -> int:
    key: list[Column[Any]] = list(table.primary_key.columns)
    done = 0
    last: tuple[Any, ...] | None = None
    while True:
        query = select(table).order_by(*key).limit(CHUNK)
        if last is not None:
            query = query.where(_after(key, last))
        rows = [dict(r._mapping) for r in src.execute(query)]
        if not rows:
            return done
        dst.execute(insert(table), rows)
        done += len(rows)
        last = tuple(rows[-1][c.name] for c in key)
        if progress:
            progress(table.name, done)


def _after(key: list[Column[Any]], last: tuple[Any, ...]) -> ColumnElement[bool]:
    """Rows after ``last`` in key order (a row-value comparison, spelt out for SQLite)."""
    terms = []
    for i, column in enumerate(key):
        equal = [key[j] == last[j] for j in range(i)]
        terms.append(and_(*equal, column > last[i]))
    return or_(*terms)
