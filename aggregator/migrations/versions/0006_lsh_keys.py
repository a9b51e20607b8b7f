"""LSH buckets as one row an item instead of one row a bucket.

With a row for each of an item's 25 buckets, and four indexes on them, writing the buckets cost
more than all the rest of placing an item.  Lookups by bucket are made in each process's
in-memory index, so the table only has to give an item's keys, its time and its commit order.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from alembic import op

from aggregator.db import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_CHUNK = 2000


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def upgrade() -> None:
    op.create_table(
        "lsh_keys",
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                  primary_key=True, autoincrement=False),
        sa.Column("published_at", UTCDateTime, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("bucket_keys", sa.LargeBinary, nullable=False),
    )
    bind = op.get_bind()
    old = bind.execute(sa.text(
        "SELECT item_id, published_at, seq, bucket FROM lsh_buckets ORDER BY item_id, band"))
    packed = (
        {"item_id": item_id, "published_at": first[1], "seq": first[2],
         "bucket_keys": struct.pack(f"<{len(rows)}q", *(r[3] for r in rows))}
        for item_id, group in groupby(old, key=lambda r: r[0])
        for rows in (list(group),)
        for first in (rows[0],)
    )
    insert = sa.text("INSERT INTO lsh_keys (item_id, published_at, seq, bucket_keys) "
                     "VALUES (:item_id, :published_at, :seq, :bucket_keys)")
    for chunk in _chunks(packed):
        bind.execute(insert, chunk)
    op.create_index("ix_lsh_keys_published", "lsh_keys", ["published_at"])
    op.create_index("ix_lsh_keys_seq", "lsh_keys", ["seq"])
    op.drop_table("lsh_buckets")


def downgrade() -> None:
    op.create_table(
        "lsh_buckets",
        sa.Column("bucket", sa.BigInteger, primary_key=True),
        sa.Column("band", sa.SmallInteger, primary_key=True),
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                  primary_key=True),
        sa.Column("published_at", UTCDateTime, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False, server_default="0"),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT item_id, published_at, seq, bucket_keys FROM lsh_keys ORDER BY item_id"))
    expanded = (
        {"bucket": key, "band": band, "item_id": r[0], "published_at": r[1], "seq": r[2]}
        for r in rows
        for band, key in enumerate(struct.unpack(f"<{len(r[3]) // 8}q", r[3]))
    )
    insert = sa.text("INSERT INTO lsh_buckets (bucket, band, item_id, published_at, seq) "
                     "VALUES (:bucket, :band, :item_id, :published_at, :seq)")
    for chunk in _chunks(expanded):
        bind.execute(insert, chunk)
    op.create_index("ix_lsh_published", "lsh_buckets", ["published_at"])
    op.create_index("ix_lsh_item", "lsh_buckets", ["item_id"])
    op.create_index("ix_lsh_seq", "lsh_buckets", ["seq"])
    op.drop_table("lsh_keys")
