"""Running the SensorThings API's composed statements: the read side of the store.

Statements come from the API's pure translator (``psycopg.sql`` with named placeholders);
this module only executes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.adapt import Loader
from psycopg.pq import Format
from psycopg.types.json import set_json_loads

STATEMENT_TIMEOUT_MS = 30_000


def configure_connection(conn: psycopg.Connection[Any], *, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS) -> None:
    """Pool ``configure`` hook: autocommit reads (one round trip each), orjson for json, a time limit.

    The session's time zone is UTC whatever the server's or database's default: the API speaks
    UTC, and PostgreSQL casts between dates, timestamps and timestamptz in the session's zone.
    """
    set_json_loads(orjson.loads, conn)
    conn.autocommit = True
    conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(int(statement_timeout_ms))))
    conn.execute("SET TimeZone = 'UTC'")


def fetch_column(
    conn: psycopg.Connection[Any], statement: sql.SQL | sql.Composed, params: Mapping[str, Any]
) -> list[Any]:
    """The first column of every row (the translator's statements return one json column ``e``).

    Statements are bounded by their LIMIT, so the page is fetched whole before any byte of
    the response is sent: an error in the statement still becomes a proper status code.
    """
    with conn.cursor() as cur:
        cur.execute(statement, params)
        return [row[0] for row in cur.fetchall()]


class _TextAsBytes(Loader):
    """``text`` as the bytes the server sent: UTF-8 already, as the response body wants it."""

    format = Format.TEXT

    def load(self, data: Any) -> bytes:
        return bytes(data)


def fetch_texts(
    conn: psycopg.Connection[Any], statement: sql.SQL | sql.Composed, params: Mapping[str, Any]
) -> list[bytes]:
    """Like :func:`fetch_column`, the text column as bytes: the entities' JSON goes into the
    response body as the server sent it, never decoded into ``str`` and encoded back.
    """
    with conn.cursor() as cur:
        cur.adapters.register_loader("text", _TextAsBytes)
        cur.execute(statement, params)
        return [row[0] for row in cur.fetchall()]


def fetch_scalar(conn: psycopg.Connection[Any], statement: sql.SQL | sql.Composed, params: Mapping[str, Any]) -> Any:
    row = conn.execute(statement, params).fetchone()
    return None if row is None else row[0]
