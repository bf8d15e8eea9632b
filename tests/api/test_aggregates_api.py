"""The aggregation extension over HTTP: its path, its document, its errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.api.test_aggregates_store import make_datastream


@pytest.fixture
def client_and_ds(migrated_db: str) -> Iterator[tuple[TestClient, int]]:
    with psycopg.connect(migrated_db) as conn:
        ds = make_datastream(conn)
        start = datetime(2024, 3, 1, tzinfo=UTC)
        rows = [(ds, start + timedelta(minutes=15 * i), float(i % 8)) for i in range(4 * 24 * 3)]
        conn.cursor().executemany(
            "INSERT INTO observations (datastream_id, phenomenon_time, result_number) VALUES (%s, %s, %s)", rows
        )
    with TestClient(create_app(migrated_db, pool_min=1, pool_max=2, aggregate_max_buckets=500)) as client:
        yield client, ds


def test_hourly_document(client_and_ds: tuple[TestClient, int]) -> None:
    client, ds = client_and_ds
    response = client.get(
        f"/ext/aggregates/v1/Datastreams({ds})",
        params={
            "interval": "PT1H",
            "from": "2024-03-01T00:00:00Z",
            "to": "2024-03-01T03:00:00Z",
            "aggregates": "count,avg,max,last",
            "timeZone": "Europe/Oslo",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["Datastream@iot.id"] == ds
    assert body["Datastream@iot.navigationLink"].endswith(f"/v1.1/Datastreams({ds})")
    assert body["interval"] == "PT1H" and body["timeZone"] == "Europe/Oslo"
    assert body["aggregates"] == ["count", "avg", "max", "last"]
    assert body["unitOfMeasurement"] == {"name": "kWh", "symbol": "kWh"}
    assert body["source"] == "observations"
    assert body["value"] == [
        {"start": "2024-03-01T01:00:00+01:00", "end": "2024-03-01T02:00:00+01:00", "count": 4, "avg": 1.5,
         "max": 3.0, "last": 3.0},
        {"start": "2024-03-01T02:00:00+01:00", "end": "2024-03-01T03:00:00+01:00", "count": 4, "avg": 5.5,
         "max": 7.0, "last": 7.0},
        {"start": "2024-03-01T03:00:00+01:00", "end": "2024-03-01T04:00:00+01:00", "count": 4, "avg": 1.5,
         "max": 3.0, "last": 3.0},
    ]  # fmt: skip


def test_daily_in_oslo(client_and_ds: tuple[TestClient, int]) -> None:
    client, ds = client_and_ds
    response = client.get(
        f"/ext/aggregates/v1/Datastreams({ds})",
        params={"interval": "P1D", "from": "2024-02-29T23:00:00Z", "to": "2024-03-04T00:00:00+01:00",
                "aggregates": "count", "timeZone": "Europe/Oslo"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    value = response.json()["value"]
    # 72 hours of UTC readings fall on four Oslo days: 23 h, 24 h, 24 h and the first hour of the fourth.
    assert [(v["start"], v["count"]) for v in value] == [
        ("2024-03-01T00:00:00+01:00", 92),
        ("2024-03-02T00:00:00+01:00", 96),
        ("2024-03-03T00:00:00+01:00", 96),
    ]
    assert sum(v["count"] for v in value) == 4 * 24 * 3 - 4


@pytest.mark.parametrize(
    ("params", "code", "parameter"),
    [
        ({"from": "2024-03-01T00:00:00Z", "to": "2024-03-02T00:00:00Z"}, 400, "interval"),
        ({"interval": "P1DT1H", "from": "2024-03-01T00:00:00Z", "to": "2024-03-02T00:00:00Z"}, 400, "interval"),
        ({"interval": "PT1M", "from": "2024-03-01T00:00:00Z", "to": "2024-03-02T00:00:00Z"}, 400, "interval"),
        ({"interval": "PT1H", "from": "2024-03-01T00:00:00Z", "to": "2024-03-02T00:00:00Z",
          "source": "observations_hourly"}, 400, "source"),
    ],
)  # fmt: skip
def test_errors_use_the_one_shape(
    client_and_ds: tuple[TestClient, int], params: dict[str, str], code: int, parameter: str
) -> None:
    client, ds = client_and_ds
    response = client.get(f"/ext/aggregates/v1/Datastreams({ds})", params=params)
    assert response.status_code == code
    body = response.json()
    assert body["code"] == code and body["type"] == "bad_request" and body["parameter"] == parameter
    assert body["message"]


def test_unknown_datastream(client_and_ds: tuple[TestClient, int]) -> None:
    client, ds = client_and_ds
    response = client.get(
        f"/ext/aggregates/v1/Datastreams({ds + 1000})",
        params={"interval": "PT1H", "from": "2024-03-01T00:00:00Z", "to": "2024-03-02T00:00:00Z"},
    )
    assert response.status_code == 404
    assert response.json()["type"] == "not_found"


def test_documented_in_openapi(client_and_ds: tuple[TestClient, int]) -> None:
    client, _ = client_and_ds
    paths = client.get("/openapi.json").json()["paths"]
    operation = paths["/ext/aggregates/v1/Datastreams({datastream_id})"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"interval", "from", "to", "aggregates", "timeZone"}
    assert "increase" in operation["description"]
    assert not any(path.startswith("/v1.1/ext") for path in paths)
