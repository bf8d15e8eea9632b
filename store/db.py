"""Connections and pools. Every SQL statement in Bydata runs through ``store``."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

RECENTLY_USED_S = 1.0


def connect(url: str, *, autocommit: bool = False, **kwargs: Any) -> psycopg.Connection[Any]:
    """One connection; rows come back as tuples unless ``row_factory`` says otherwise."""
    return psycopg.connect(url, autocommit=autocommit, **kwargs)


def connect_dict(url: str, *, autocommit: bool = False) -> psycopg.Connection[dict[str, Any]]:
    """A connection whose rows are dicts (for reporting and the API)."""
    return psycopg.connect(url, autocommit=autocommit, row_factory=dict_row)


def create_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    name: str = "bydata",
    configure: Callable[[psycopg.Connection[Any]], None] | None = None,
) -> ConnectionPool:
    """An open pool that checks connections on checkout, so a restarted server heals the pool.

    The check is a round trip to the server; a connection handed out less than
    :data:`RECENTLY_USED_S` ago skips it (under steady traffic, nearly every checkout). It came
    back in good order (the pool drops broken ones), so it worked moments ago; a server that
    went away in that second costs one request a 503 ("try again").
    """
    handed_out: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = weakref.WeakKeyDictionary()

    def check(conn: psycopg.Connection[Any]) -> None:
        now = time.monotonic()
        at = handed_out.get(conn)
        if at is None or now - at >= RECENTLY_USED_S or conn.pgconn.status != pq.ConnStatus.OK:
            ConnectionPool.check_connection(conn)
        handed_out[conn] = now

    pool = ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        check=check,
        configure=configure,
    )
    pool.open(wait=min_size > 0, timeout=30)
    return pool


# SQLSTATE classes (PostgreSQL appendix A) of errors the rows themselves cause: retrying the same
# rows cannot help, so the message they came from is set aside. 22 data exception (a NUL byte,
# a value out of range), 23 integrity constraint, 54 program limit exceeded (an index row too big).
_DATA_CLASSES = frozenset({"22", "23", "54"})
# Errors that clear with time, like an outage: 08 connection, 40 transaction rollback (serialisation,
# deadlock), 53 insufficient resources (disk full, too many connections), 57 operator intervention
# (admin/crash shutdown, cannot connect now, statement cancelled), 58 system error (I/O).
_TRANSIENT_CLASSES = frozenset({"08", "40", "53", "57", "58"})
# ... and single states: read-only transaction (a primary that became a standby in a failover),
# idle-session and transaction timeouts, lock not available, object in use.
_TRANSIENT_STATES = frozenset({"25006", "25P03", "25P04", "55P03", "55006"})


def is_data_error(exc: BaseException) -> bool:
    """Whether ``exc`` was caused by the data written (not by the server's state): do not retry it.

    Client-side refusals count too: psycopg's ``DataError`` and a text it cannot encode.
    """
    if isinstance(exc, UnicodeEncodeError):
        return True
    if not isinstance(exc, psycopg.Error):
        return False
    state = exc.sqlstate
    if state is None:
        return isinstance(exc, psycopg.DataError | psycopg.IntegrityError)
    return state[:2] in _DATA_CLASSES


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is an outage or another state of the server that clears with time: back off, retry.

    A lost connection (no SQLSTATE) is one; so are a failover's read-only transactions, an
    administrator's shutdown, resource exhaustion and lock conflicts. Anything else (a missing
    table, a syntax error) is a fault of the deployment or of Bydata and is raised.
    """
    if isinstance(exc, psycopg.InterfaceError):
        return True
    if not isinstance(exc, psycopg.Error):
        return False
    state = exc.sqlstate
    if state is None:
        return isinstance(exc, psycopg.OperationalError)
    return state[:2] in _TRANSIENT_CLASSES or state in _TRANSIENT_STATES
