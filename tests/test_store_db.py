"""The connection pool: checked on checkout unless given back moments ago; a lost server connection heals."""

from __future__ import annotations

import time

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from store import db


def _terminate(admin_url: str, pid: int) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    deadline = time.monotonic() + 10
    with psycopg.connect(admin_url, autocommit=True) as admin:
        while time.monotonic() < deadline:
            if admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() == (0,):
                return
            time.sleep(0.05)
    raise AssertionError(f"backend {pid} did not end")


def _pid(pool: ConnectionPool) -> int:
    with pool.connection() as conn:
        return int(conn.info.backend_pid)


def test_a_connection_idle_past_the_window_is_checked_and_replaced(
    scratch_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = db.create_pool(scratch_db, min_size=1, max_size=1, name="test")
    try:
        first = _pid(pool)
        _terminate(scratch_db, first)
        monkeypatch.setattr(db, "RECENTLY_USED_S", 0.0)
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.info.backend_pid != first
    finally:
        pool.close()


def test_a_connection_given_back_moments_ago_skips_the_round_trip(
    scratch_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within the window the pool hands the connection out unchecked: a server that went away
    costs that one request an error, and the broken connection is dropped on return."""
    monkeypatch.setattr(db, "RECENTLY_USED_S", 3600.0)
    pool = db.create_pool(scratch_db, min_size=1, max_size=1, name="test")
    try:
        first = _pid(pool)
        _terminate(scratch_db, first)
        with pytest.raises(psycopg.OperationalError), pool.connection() as conn:
            conn.execute("SELECT 1")
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.info.backend_pid != first
    finally:
        pool.close()
