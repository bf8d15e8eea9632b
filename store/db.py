"""Connections and pools. Every SQL statement in Bydata runs through ``store``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool


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
    """An open pool that checks connections on checkout, so a restarted server heals the pool."""
    pool = ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        check=ConnectionPool.check_connection,
        configure=configure,
    )
    pool.open(wait=min_size > 0, timeout=30)
    return pool
