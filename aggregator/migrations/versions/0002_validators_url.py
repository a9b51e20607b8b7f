"""Remember which URL a feed's ETag and Last-Modified belong to.

Behind a temporary redirect the validators come from the final URL; sending them to the first hop
meant conditional GET never worked for such feeds.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.add_column(sa.Column("validators_url", sa.String(2000)))


def downgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("validators_url")
