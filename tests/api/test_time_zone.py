"""Times mean UTC whatever the database's default time zone.

PostgreSQL casts a date to timestamptz, and adds days to a timestamptz, in the session's time
zone. A database whose default is Europe/Oslo (one hour ahead of UTC in January, DST on
2024-03-31) shows any place where the translator's SQL depends on it: there, a date that
became a time in the session zone would start at 23:00Z the day before.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.sta.odata.parser import parse_query_options
from api.sta.resource_path import parse_resource_path
from api.sta.translate import ServerFeatures, Translator
from store.features import detect
from tests.api.conftest import BASE, ROOT, sample_database

ZONE = "Europe/Oslo"


@pytest.fixture(scope="module")
def oslo_db(pg_server_url: str) -> Iterator[str]:
    """The sample data in a database whose sessions default to Europe/Oslo."""
    with sample_database(pg_server_url, "bydata_tz", timezone=ZONE) as url:
        yield url


@pytest.fixture(scope="module")
def oslo(oslo_db: str) -> Iterator[TestClient]:
    app = create_app(oslo_db, pool_min=1, pool_max=2, public_url=BASE)
    with TestClient(app, base_url=BASE) as client:
        yield client


# (resource path, $filter, ids): each would differ if a date or a duration were read in Oslo time
CASES: list[tuple[str, str, list[int]]] = [
    # a date is midnight UTC: the 23:00Z reading is not on or after 2024-01-02
    ("Datastreams(1)/Observations", "phenomenonTime ge 2024-01-02", []),
    ("Datastreams(1)/Observations", "phenomenonTime lt 2024-01-01 add duration'PT1H'", [1]),
    ("Datastreams(1)/Observations", "resultTime gt 2024-01-02", []),
    ("Datastreams(2)/Observations", "phenomenonTime ge 2024-01-02", [103]),
    ("Datastreams", "phenomenonTime ge 2024-01-01 and phenomenonTime lt 2024-01-02", [1, 3]),
    ("HistoricalLocations", "time ge 2024-01-01 and time lt 2024-01-02", [1]),
    # date and time functions of dates and instants, in UTC
    ("Things", "year(2024-01-01) eq 2024 and month(2024-01-01) eq 1 and day(2024-01-01) eq 1", [1, 2, 3]),
    ("Things", "date(2024-01-01T00:30:00Z) eq 2024-01-01 and time(2024-01-01T00:30:00Z) eq 00:30:00", [1, 2, 3]),
    ("Datastreams(1)/Observations", "hour(phenomenonTime) eq 23", [24]),
    ("Datastreams(1)/Observations", "day(phenomenonTime) eq 1 and hour(phenomenonTime) eq 0", [1]),
    ("Datastreams(1)/Observations", "date(phenomenonTime) eq 2024-01-01", list(range(1, 25))),
    ("Datastreams(1)/Observations", "time(phenomenonTime) lt 01:00:00", [1]),
    ("Datastreams(1)/Observations", "mindatetime(phenomenonTime) ge 2024-01-01T23:00:00Z", [24]),
    # a day of duration is 24 hours, also across Oslo's change to summer time
    ("Things", "2024-03-30T12:00:00Z add duration'P1D' eq 2024-03-31T12:00:00Z", [1, 2, 3]),
    ("Things", "2024-04-01T12:00:00Z sub duration'P2D' eq 2024-03-30T12:00:00Z", [1, 2, 3]),
    ("Datastreams(1)/Observations", "phenomenonTime add duration'P1D' eq 2024-01-02T23:00:00Z", [24]),
]  # fmt: skip


def _ids(rows: list[Any]) -> list[int]:
    return [orjson.loads(row)["@iot.id"] for row in rows]


@pytest.mark.parametrize(("path", "expr", "expected"), CASES, ids=[c[1] for c in CASES])
def test_translated_sql_does_not_depend_on_the_session_zone(
    oslo_db: str, path: str, expr: str, expected: list[int]
) -> None:
    """The statements themselves, run on a connection left in the database's default zone."""
    with psycopg.connect(oslo_db, autocommit=True) as conn:
        assert conn.execute("SHOW TimeZone").fetchone() == (ZONE,)
        translator = Translator(ServerFeatures(postgis=detect(conn).postgis_installed is not None))
        resource = parse_resource_path(path)
        query = translator.collection(resource.steps, parse_query_options([("$filter", expr)]), ROOT)
        rows = [row[0] for row in conn.execute(query.statement, query.params).fetchall()]
    assert _ids(rows) == expected


@pytest.mark.parametrize(("path", "expr", "expected"), CASES, ids=[c[1] for c in CASES])
def test_api_answers_in_utc_on_a_database_in_another_zone(
    oslo: TestClient, path: str, expr: str, expected: list[int]
) -> None:
    response = oslo.get(f"{ROOT}/{path}", params={"$filter": expr})
    assert response.status_code == 200, response.text
    assert [e["@iot.id"] for e in response.json()["value"]] == expected


def test_api_sessions_are_utc_and_times_render_in_utc(oslo: TestClient) -> None:
    pool = oslo.app.state.pool  # type: ignore[attr-defined]
    with pool.connection() as conn:
        assert conn.execute("SHOW TimeZone").fetchone() == ("UTC",)
    obs = oslo.get(f"{ROOT}/Observations(101)").json()
    assert obs["phenomenonTime"] == "2024-01-01T00:00:00Z/2024-01-01T01:00:00Z"
    assert obs["validTime"] == "2024-01-01T00:00:00Z/2024-01-02T00:00:00Z"
    ds = oslo.get(f"{ROOT}/Datastreams(1)", params={"$select": "phenomenonTime"}).json()
    assert ds == {"phenomenonTime": "2024-01-01T00:00:00Z/2024-01-01T23:00:00Z"}
