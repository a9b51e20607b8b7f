"""Named leases in the database: one holder at a time, across processes and machines.

A lease expires on its own, so a process killed while holding one blocks the others only until
``until``; the holder renews it by acquiring again.  Waiting that long is needless when the holder
was a process on this machine that no longer exists: ``abandoned`` tells, and such a lease is
taken over at once (a restart after ``kill -9`` would otherwise skip publishing for the lease's
ten minutes).
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from .db import locks


def acquire(engine: Engine, name: str, owner: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease; False while another live holder has it."""
    with engine.begin() as conn:
        return take(conn, name, owner, now, ttl)


def release(engine: Engine, name: str, owner: str) -> None:
    with engine.begin() as conn:
        give_back(conn, name, owner)


def take(conn: Connection, name: str, owner: str, now: datetime, ttl: timedelta) -> bool:
    """``acquire`` within the caller's transaction, for a caller that writes more with it."""
    taken = conn.execute(
        update(locks).where(locks.c.name == name,
                            or_(locks.c.until < now, locks.c.owner == owner))
        .values(owner=owner, until=now + ttl)).rowcount
    if taken:
        return True
    holder = conn.scalar(select(locks.c.owner).where(locks.c.name == name))
    if holder is not None:
        if not abandoned(holder):
            return False
        # Only if still the same holder: another process may have taken it over meanwhile.
        return bool(conn.execute(
            update(locks).where(locks.c.name == name, locks.c.owner == holder)
            .values(owner=owner, until=now + ttl)).rowcount)
    try:
        with conn.begin_nested():
            conn.execute(insert(locks).values(name=name, owner=owner, until=now + ttl))
    except IntegrityError:  # held by someone else, and not expired
        return False
    return True


def give_back(conn: Connection, name: str, owner: str) -> None:
    conn.execute(delete(locks).where(locks.c.name == name, locks.c.owner == owner))


def abandoned(owner: str) -> bool:
    """Whether ``owner`` (``host:pid:nonce``, see ``poller.worker_id``) names a process of this
    host that has exited.

    Anything else counts as alive: another host's process, an owner of another form, a pid that
    exists (even if reused: the lease then just runs out as before).  This trusts that processes
    sharing a host name share a pid namespace, which holds unless containers with the host's
    network (and so its name) but pid namespaces of their own share one database.
    """
    host, sep, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if not sep or not pid_text.isdigit() or host != socket.gethostname():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, under another user
        return False
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    """A killed process not yet reaped by its parent still answers ``kill(pid, 0)``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat.rpartition(b")")[2].split()[:1] == [b"Z"]
