"""Fixtures of the SensorThings API tests: one loaded database per server flavour, shared by a session.

The tests only read, so each flavour is migrated and loaded once: ``full`` has TimescaleDB
and PostGIS, ``plain`` is plain PostgreSQL (point geometry without PostGIS).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from api.app import create_app
from store.migrations import upgrade
from tests.api import sample

BASE = "http://sta.test"
ROOT = BASE + "/v1.1"


def _database(server_url: str, *, extensions: bool) -> Iterator[str]:
    name = f"bydata_sta_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    url = make_conninfo("", **params)
    try:
        with psycopg.connect(url) as conn:
            upgrade(conn, timescaledb=extensions, postgis=extensions)
        sample.load(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def sta_full_db(pg_server_url: str) -> Iterator[str]:
    yield from _database(pg_server_url, extensions=True)


@pytest.fixture(scope="session")
def sta_plain_db(pg_server_url: str) -> Iterator[str]:
    yield from _database(pg_server_url, extensions=False)


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
