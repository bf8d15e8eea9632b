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

    The check is a round trip to the server; a connection given back in good order less than
    :data:`RECENTLY_USED_S` ago skips it (under steady traffic, nearly every checkout): a server
    that went away in that second costs one request a 503 ("try again"), and the pool drops the
    broken connection when it comes back.
    """
    returned: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = weakref.WeakKeyDictionary()

    def check(conn: psycopg.Connection[Any]) -> None:
        at = returned.pop(conn, None)
        if at is not None and time.monotonic() - at < RECENTLY_USED_S and conn.pgconn.status == pq.ConnStatus.OK:
            return
        ConnectionPool.check_connection(conn)

    def reset(conn: psycopg.Connection[Any]) -> None:
        returned[conn] = time.monotonic()

    pool = ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        check=check,
        configure=configure,
        reset=reset,
    )
    pool.open(wait=min_size > 0, timeout=30)
    return pool
