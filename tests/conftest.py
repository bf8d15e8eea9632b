"""Shared fixtures: scratch databases on the real PostgreSQL, the real MQTT broker, processes.

Integration tests need ``BYDATA_TEST_DATABASE_URL`` (a server URL; each test gets its own
scratch database, dropped afterwards) and ``BYDATA_TEST_MQTT_URL``. ``deploy/test.sh``
provides both. Without them an integration test fails with instructions, it is not skipped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent


def _required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(
            f"{name} is not set: run the tests with deploy/test.sh, which starts the services, "
            'or deselect integration tests with -m "not integration"',
            pytrace=False,
        )
    return value


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """URL of the PostgreSQL server's maintenance database (used only to create scratch databases)."""
    return _required_env("BYDATA_TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    return _required_env("BYDATA_TEST_MQTT_URL")


def _with_dbname(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo("", **params)


@contextmanager
def own_database(server_url: str, prefix: str = "bydata_test", *, timezone: str | None = None) -> Iterator[str]:
    """An empty database of its own (sessions in ``timezone`` if given); dropped with its connections after."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        if timezone is not None:
            admin.execute(
                sql.SQL("ALTER DATABASE {} SET timezone = {}").format(sql.Identifier(name), sql.Literal(timezone))
            )
    try:
        yield _with_dbname(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def scratch_db(pg_server_url: str) -> Iterator[str]:
    """An empty database of its own; dropped (with its connections) afterwards."""
    with own_database(pg_server_url) as url:
        yield url


@pytest.fixture
def migrated_db(scratch_db: str) -> str:
    """A scratch database at the current schema, with every feature the server offers."""
    from store.migrations import upgrade

    with psycopg.connect(scratch_db) as conn:
        upgrade(conn)
    return scratch_db


@pytest.fixture
def plain_db(scratch_db: str) -> str:
    """A scratch database at the current schema on plain PostgreSQL (no TimescaleDB, no PostGIS)."""
    from store.migrations import upgrade

    with psycopg.connect(scratch_db) as conn:
        upgrade(conn, timescaledb=False, postgis=False)
    return scratch_db


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def embedded_broker_url() -> Iterator[str]:
    """The embedded amqtt broker on a free loopback port (MQTT 3.1.1)."""
    from ingest.broker import EmbeddedBroker

    with EmbeddedBroker(free_port()) as broker:
        yield broker.url


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix no other test uses, so tests can share one broker."""
    return f"test-{uuid.uuid4().hex[:10]}"


Spawn = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start ``python -m <args>`` processes; every one is ended by PID at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env: dict[str, str] | None = None, log_name: str | None = None) -> subprocess.Popen[bytes]:
        log = (tmp_path / (log_name or f"proc-{len(procs)}.log")).open("wb")
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def wait_until(predicate: Callable[[], bool], *, timeout: float = 30.0, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass (bounded in time and count)."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 1):
        if predicate():
            return True
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    return bool(predicate())


_SERVICE_FIXTURES = {"pg_server_url", "mqtt_url"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that reaches a real service as ``integration`` (deselect with -m)."""
    for item in items:
        if _SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
