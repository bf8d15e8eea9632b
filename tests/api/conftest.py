"""Fixtures of the SensorThings API tests: one loaded database per server flavour, shared by a session.

The tests only read, so each flavour is migrated and loaded once: ``full`` has TimescaleDB
and PostGIS, ``plain`` is plain PostgreSQL (point geometry without PostGIS).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from store.migrations import upgrade
from tests.api import sample
from tests.conftest import own_database

BASE = "http://sta.test"
ROOT = BASE + "/v1.1"


@contextmanager
def sample_database(
    server_url: str, prefix: str = "bydata_sta", *, extensions: bool = True, timezone: str | None = None
) -> Iterator[str]:
    """A database of its own at the current schema, loaded with the sample data; dropped after."""
    with own_database(server_url, prefix, timezone=timezone) as url:
        with psycopg.connect(url) as conn:
            upgrade(conn, timescaledb=extensions, postgis=extensions)
        sample.load(url)
        yield url


@pytest.fixture(scope="session")
def sta_full_db(pg_server_url: str) -> Iterator[str]:
    with sample_database(pg_server_url, extensions=True) as url:
        yield url


@pytest.fixture(scope="session")
def sta_plain_db(pg_server_url: str) -> Iterator[str]:
    with sample_database(pg_server_url, extensions=False) as url:
        yield url


def _client(url: str) -> Iterator[TestClient]:
    app = create_app(url, pool_min=1, pool_max=4, public_url=BASE, default_top=100, max_top=1000)
    with TestClient(app, base_url=BASE) as client:
        yield client


@pytest.fixture(scope="session")
def full(sta_full_db: str) -> Iterator[TestClient]:
    yield from _client(sta_full_db)


@pytest.fixture(scope="session")
def plain(sta_plain_db: str) -> Iterator[TestClient]:
    yield from _client(sta_plain_db)


@pytest.fixture(params=["full", "plain"])
def client(request: pytest.FixtureRequest) -> TestClient:
    """Each test using it runs on both flavours."""
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]
