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
