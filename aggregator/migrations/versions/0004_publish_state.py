"""Publishing: what was last published, and the indexes its queries use.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "publish_state",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_index("ix_items_changed", "items", ["changed_at"])
    op.create_index("ix_clusters_first_published", "clusters", ["first_published_at"])


def downgrade() -> None:
    op.drop_index("ix_clusters_first_published", "clusters")
    op.drop_index("ix_items_changed", "items")
    op.drop_table("publish_state")
