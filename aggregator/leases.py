"""Named leases in the database: one holder at a time, across processes and machines.

A lease expires on its own, so a process killed while holding one blocks the others only until
``until``; the holder renews it by acquiring again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, insert, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from .db import locks


def acquire(engine: Engine, name: str, owner: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease; False while another live holder has it."""
    with engine.begin() as conn:
        taken = conn.execute(
            update(locks).where(locks.c.name == name,
                                or_(locks.c.until < now, locks.c.owner == owner))
            .values(owner=owner, until=now + ttl)).rowcount
        if taken:
            return True
        try:
            with conn.begin_nested():
                conn.execute(insert(locks).values(name=name, owner=owner, until=now + ttl))
        except IntegrityError:  # held by someone else, and not expired
            return False
        return True


def release(engine: Engine, name: str, owner: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(locks).where(locks.c.name == name, locks.c.owner == owner))
