"""Initial schema: members, feeds, hosts, items, locks.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aggregator.db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "members",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("site", sa.String(2000), nullable=False),
        sa.Column("region", sa.String(200)),
        sa.Column("language", sa.String(20), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("member_id", sa.String(64), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("config_url", sa.String(2000), nullable=False, unique=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("disabled_reason", sa.Text),
        sa.Column("title", sa.Text),
        sa.Column("etag", sa.String(500)),
        sa.Column("last_modified", sa.String(100)),
        sa.Column("body_hash", sa.String(64)),
        sa.Column("server_hint_s", sa.Integer, nullable=False),
        sa.Column("interval_s", sa.Integer),
        sa.Column("next_poll_at", UTCDateTime, nullable=False),
        sa.Column("last_fetch_at", UTCDateTime),
        sa.Column("last_success_at", UTCDateTime),
        sa.Column("last_status", sa.Integer),
        sa.Column("consecutive_errors", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_kind", sa.String(40)),
        sa.Column("last_error_at", UTCDateTime),
        sa.Column("failing_since", UTCDateTime),
        sa.Column("items_total", sa.Integer, nullable=False),
        sa.Column("last_new", sa.Integer, nullable=False),
        sa.Column("last_updated", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(100)),
        sa.Column("lease_until", UTCDateTime),
    )
    op.create_index("ix_feeds_due", "feeds", ["next_poll_at"])
    op.create_table(
        "hosts",
        sa.Column("host", sa.String(300), primary_key=True),
        sa.Column("blocked_until", UTCDateTime, nullable=False),
        sa.Column("reason", sa.Text),
    )
    op.create_table(
        "items",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id"), nullable=False),
        sa.Column("member_id", sa.String(64), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("item_key", sa.String(64), nullable=False),
        sa.Column("guid", sa.Text),
        sa.Column("url", sa.Text),
        sa.Column("link", sa.Text),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("content_html", sa.Text, nullable=False),
        sa.Column("content_text", sa.Text, nullable=False),
        sa.Column("author", sa.Text),
        sa.Column("categories", sa.Text, nullable=False),
        sa.Column("published_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime),
        sa.Column("date_missing", sa.Boolean, nullable=False),
        sa.Column("first_seen_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
        sa.Column("changed_at", UTCDateTime, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("fallback_key", sa.String(64), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.UniqueConstraint("feed_id", "item_key", name="uq_items_feed_key"),
    )
    op.create_index("ix_items_feed_guid", "items", ["feed_id", "guid"])
    op.create_index("ix_items_feed_url", "items", ["feed_id", "url"])
    op.create_index("ix_items_url", "items", ["url"])
    op.create_index("ix_items_published", "items", ["published_at"])
    op.create_index("ix_items_member_published", "items", ["member_id", "published_at"])
    op.create_table(
        "locks",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("until", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    for table in ("locks", "items", "hosts", "feeds", "members"):
        op.drop_table(table)
