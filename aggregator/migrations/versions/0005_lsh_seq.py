"""LSH buckets carry the order in which their transactions committed.

Each process mirrors the bucket table in memory and reads only what was added since it last
looked.  Item ids do not do for that: ids are handed out when items are inserted, and a
transaction that took lower ids can commit after one that took higher ids, so its buckets would
be skipped.  ``seq`` is assigned while the clustering lock is held, which is until commit.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lsh_buckets") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger, nullable=False, server_default="0"))
    op.execute("UPDATE lsh_buckets SET seq = item_id")
    op.create_index("ix_lsh_seq", "lsh_buckets", ["seq"])


def downgrade() -> None:
    op.drop_index("ix_lsh_seq", "lsh_buckets")
    with op.batch_alter_table("lsh_buckets") as batch:
        batch.drop_column("seq")
