"""Database engine, column types and table definitions (SQLite by default, PostgreSQL alike).

The tables here are what queries use; the migrations in ``aggregator/migrations`` create and upgrade
them, and the test suite checks that the two agree.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    bindparam,
    create_engine,
    event,
    select,
    union,
)
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import CompoundSelect


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite has no time-zone type, so store naive UTC there."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

members = Table(
    "members",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("site", String(2000), nullable=False),
    Column("region", String(200)),
    Column("language", String(20), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
)

feeds = Table(
    "feeds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("member_id", String(64), ForeignKey("members.id"), nullable=False),
    Column("config_url", String(2000), nullable=False, unique=True),
    Column("url", String(2000), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("disabled_reason", Text),
    Column("title", Text),
    Column("etag", String(500)),
    Column("last_modified", String(100)),
    Column("validators_url", String(2000)),
    Column("body_hash", String(64)),
    # The RSS <ttl> of the last parsed body, in seconds: a 304 carries no body to read it from.
    Column("server_hint_s", Integer, nullable=False, default=0),
    Column("interval_s", Integer),
    Column("next_poll_at", UTCDateTime, nullable=False),
    Column("last_fetch_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("last_status", Integer),
    Column("consecutive_errors", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("last_error_kind", String(40)),
    Column("last_error_at", UTCDateTime),
    Column("failing_since", UTCDateTime),
    Column("items_total", Integer, nullable=False, default=0),
    Column("last_new", Integer, nullable=False, default=0),
    Column("last_updated", Integer, nullable=False, default=0),
    Column("lease_owner", String(100)),
    Column("lease_until", UTCDateTime),
    Index("ix_feeds_due", "next_poll_at"),
)

hosts = Table(
    "hosts",
    metadata,
    Column("host", String(300), primary_key=True),
    Column("blocked_until", UTCDateTime, nullable=False),
    Column("reason", Text),
)

items = Table(
    "items",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("feed_id", Integer, ForeignKey("feeds.id"), nullable=False),
    Column("member_id", String(64), ForeignKey("members.id"), nullable=False),
    Column("item_key", String(64), nullable=False),
    Column("guid", Text),
    Column("url", Text),
    Column("link", Text),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("content_html", Text, nullable=False),
    Column("content_text", Text, nullable=False),
    Column("author", Text),
    Column("categories", Text, nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime),
    Column("date_missing", Boolean, nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("fallback_key", String(64), nullable=False),
    Column("revision", Integer, nullable=False, default=1),
    # Clustering and tagging (migration 0003).
    Column("text_hash", String(64)),
    Column("signature", LargeBinary),
    Column("sig_version", Integer),
    Column("facts", Text),
    Column("cluster_id", BigInteger().with_variant(Integer, "sqlite")),
    Column("cluster_reason", Text),
    UniqueConstraint("feed_id", "item_key", name="uq_items_feed_key"),
    Index("ix_items_feed_guid", "feed_id", "guid"),
    Index("ix_items_feed_url", "feed_id", "url"),
    Index("ix_items_feed_fallback", "feed_id", "fallback_key"),  # migration 0007
    Index("ix_items_url", "url"),
    Index("ix_items_published", "published_at"),
    Index("ix_items_member_published", "member_id", "published_at"),
    Index("ix_items_guid", "guid"),
    Index("ix_items_text_hash", "text_hash"),
    Index("ix_items_cluster", "cluster_id"),
    Index("ix_items_changed", "changed_at"),
)

clusters = Table(
    "clusters",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("representative_id", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("first_published_at", UTCDateTime, nullable=False),
    Column("last_published_at", UTCDateTime, nullable=False),
    Column("size", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_clusters_last_published", "last_published_at"),
    Index("ix_clusters_first_published", "first_published_at"),
)

# MinHash LSH buckets, one row an item (migration 0006): its BANDS bucket keys packed in band
# order.  A row a bucket cost 25 rows and 125 index insertions an item, most of clustering's time;
# lookups by bucket happen in each process's in-memory index (clustering._BucketIndex), which is
# filled from this table and kept up to date through ``seq``.
lsh_keys = Table(
    "lsh_keys",
    metadata,
    Column("item_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=False),
    Column("published_at", UTCDateTime, nullable=False),
    # Commit order of the transaction that placed the item, assigned under the clustering lock:
    # what each process reads to bring its in-memory index up to date (see migration 0005).
    Column("seq", BigInteger, nullable=False),
    # BANDS little-endian signed 64-bit keys; empty for an empty signature (it matches nothing).
    Column("bucket_keys", LargeBinary, nullable=False),
    Index("ix_lsh_keys_published", "published_at"),
    Index("ix_lsh_keys_seq", "seq"),
)

item_regions = Table(
    "item_regions",
    metadata,
    Column("item_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("code", String(40), primary_key=True),
    Column("confidence", Float, nullable=False),
    Column("evidence", Text, nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    Index("ix_item_regions_code_published", "code", "published_at"),
)

# The store's version in ``publish_state``: a new value with every commit that changed items
# (store._note_change), compared by the publisher with the version it last rendered.  Here rather
# than in the store so that publishing need not import the clustering stack.
CHANGES_KEY = "store_changes"

# What the publisher last did (its watermark, the config it rendered): small key/value rows.
publish_state = Table(
    "publish_state",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

locks = Table(
    "locks",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("owner", String(100), nullable=False),
    Column("until", UTCDateTime, nullable=False),
)


# How long a SQLite connection waits for another's lock, whatever it is doing.
SQLITE_LOCK_WAIT_S = 30.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's begin event issue BEGIN IMMEDIATE instead of pysqlite's deferred BEGIN,
    # so that two processes never deadlock upgrading read locks to write locks.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    _set_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_LOCK_WAIT_S * 1000)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _set_wal(cursor: Any) -> None:
    """Switch a new database to WAL (once set, the mode stays with the file).

    The switch needs the database to itself, and SQLite refuses it at once, without waiting
    the busy timeout, while another connection holds a write lock: two processes started
    together on a fresh database (one creating the schema) would see one of them die with
    "database is locked".  So wait here, as long as any other lock is waited for.
    """
    deadline = time.monotonic() + SQLITE_LOCK_WAIT_S
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """An engine with the settings each backend needs for several writers and crash safety."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_LOCK_WAIT_S})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def prefer_indexes(conn: Any) -> None:
    """For the rest of this transaction, have PostgreSQL look rows up by index.

    Every query of storing a poll looks up a few keys (GUIDs, URLs, text hashes, ids) among all
    items.  On a table that grew from nothing in the last minutes, before autovacuum analysed
    it, the planner has no statistics and scans the whole table instead: 40 ms a lookup at 30,000
    items, most of a cold cycle on PostgreSQL.  SQLite plans by its indexes anyway.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")


def any_key(columns: Sequence[ColumnElement[Any]],
            keys: Sequence[tuple[ColumnElement[Any], str]],
            *where: ColumnElement[bool]) -> CompoundSelect[Any]:
    """Rows whose value in any of ``keys``' columns is among that column's values (an
    expanding bind parameter, named beside it), and that meet ``where``.

    One index lookup per column, joined by UNION.  With the keys ORed in one WHERE, the
    databases walked far more than the keys: SQLite every item of the feed when one of the
    columns had no index of its own, PostgreSQL every placed item when a table that grew in the
    last minutes had no statistics yet.  Build it once: constructing the expression for each
    use cost more than running it.
    """
    return union(*(select(*columns).where(*where, column.in_(bindparam(name, expanding=True)))
                   for column, name in keys))


def serialize(conn: Any, name: str) -> None:
    """Let one transaction at a time past this point, across processes, until it commits.

    PostgreSQL takes a transaction-scoped advisory lock named after ``name``; SQLite needs
    nothing, its writers already take turns for whole transactions (BEGIN IMMEDIATE).
    """
    if conn.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big",
                             signed=True)
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({key})")
