"""Story clusters, MinHash LSH buckets and item regions.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aggregator.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("text_hash", sa.String(64)))
        batch.add_column(sa.Column("signature", sa.LargeBinary))
        batch.add_column(sa.Column("sig_version", sa.Integer))
        batch.add_column(sa.Column("facts", sa.Text))
        batch.add_column(sa.Column("cluster_id", _ID))
        batch.add_column(sa.Column("cluster_reason", sa.Text))
    op.create_index("ix_items_guid", "items", ["guid"])
    op.create_index("ix_items_text_hash", "items", ["text_hash"])
    op.create_index("ix_items_cluster", "items", ["cluster_id"])
    op.create_table(
        "clusters",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("representative_id", _ID, nullable=False),
        sa.Column("first_published_at", UTCDateTime, nullable=False),
        sa.Column("last_published_at", UTCDateTime, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_clusters_last_published", "clusters", ["last_published_at"])
    op.create_table(
        "lsh_buckets",
        sa.Column("bucket", sa.BigInteger, primary_key=True),
        sa.Column("band", sa.SmallInteger, primary_key=True),
        sa.Column("item_id", _ID, primary_key=True),
        sa.Column("published_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_lsh_published", "lsh_buckets", ["published_at"])
    op.create_index("ix_lsh_item", "lsh_buckets", ["item_id"])
    op.create_table(
        "item_regions",
        sa.Column("item_id", _ID, primary_key=True),
        sa.Column("code", sa.String(40), primary_key=True),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("published_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_item_regions_code_published", "item_regions", ["code", "published_at"])


def downgrade() -> None:
    op.drop_table("item_regions")
    op.drop_table("lsh_buckets")
    op.drop_table("clusters")
    op.drop_index("ix_items_cluster", "items")
    op.drop_index("ix_items_text_hash", "items")
    op.drop_index("ix_items_guid", "items")
    with op.batch_alter_table("items") as batch:
        for column in ("cluster_reason", "cluster_id", "facts", "sig_version", "signature",
                       "text_hash"):
            batch.drop_column(column)
