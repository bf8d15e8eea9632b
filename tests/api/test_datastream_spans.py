"""Datastreams keep their phenomenonTime, resultTime and observedArea as Observations come and go."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from api.app import create_app
from store import datastream_spans
from tests.api.test_create_update_delete import BASE, get, post, thing_body

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def columns(url: str, ds: int) -> tuple[Any, ...]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT phenomenon_time_start, phenomenon_time_end, result_time_start, result_time_end, observed_area"
            " FROM datastreams WHERE id = %s",
            (ds,),
        ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.fixture(params=["migrated_db", "plain_db"])
def app(request: pytest.FixtureRequest) -> Iterator[tuple[TestClient, str]]:
    url = request.getfixturevalue(request.param)
    with TestClient(create_app(url, pool_min=1, pool_max=3, public_url=BASE), base_url=BASE) as client:
        yield client, url


def new_datastream(client: TestClient) -> int:
    thing = post(client, "Things", thing_body())
    return int(get(client, f"Things({thing['@iot.id']})/Datastreams")["value"][0]["@iot.id"])


def test_writes_keep_the_columns(app: tuple[TestClient, str]) -> None:
    client, url = app
    ds = new_datastream(client)  # its deep insert stored one Observation at 2024-01-01T10:00:00Z
    assert columns(url, ds)[:2] == (T0 + timedelta(hours=10), T0 + timedelta(hours=10))
    assert columns(url, ds)[4] == {"type": "Point", "coordinates": [14.4, 67.28]}  # the Thing's Location
    later = post(
        client,
        f"Datastreams({ds})/Observations",
        {
            "phenomenonTime": "2024-01-03T00:00:00Z/2024-01-03T06:00:00Z",
            "result": 2,
            "resultTime": "2024-01-04T00:00:00Z",
        },
    )
    post(client, f"Datastreams({ds})/Observations", {"phenomenonTime": "2023-12-31T00:00:00Z", "result": 3})
    start, end, r0, r1, _ = columns(url, ds)
    assert (start, end) == (datetime(2023, 12, 31, tzinfo=UTC), datetime(2024, 1, 3, 6, tzinfo=UTC))
    assert r0 == r1 == datetime(2024, 1, 4, tzinfo=UTC)
    body = get(client, f"Datastreams({ds})")
    assert body["phenomenonTime"] == "2023-12-31T00:00:00Z/2024-01-03T06:00:00Z"
    assert body["resultTime"] == "2024-01-04T00:00:00Z/2024-01-04T00:00:00Z"
    # deleting the Observation on the end bound moves the end back; the start stays
    assert client.delete(f"/v1.1/Observations({later['@iot.id']})").status_code == 200
    start, end, r0, r1, _ = columns(url, ds)
    assert (start, end) == (datetime(2023, 12, 31, tzinfo=UTC), T0 + timedelta(hours=10))
    assert r0 is None and r1 is None


def test_a_feature_elsewhere_widens_the_observed_area_to_a_box(app: tuple[TestClient, str]) -> None:
    client, _ = app
    ds = new_datastream(client)
    feature = post(
        client,
        "FeaturesOfInterest",
        {"name": "b", "description": "b", "encodingType": "application/geo+json",
         "feature": {"type": "Feature", "geometry": {"type": "Point", "coordinates": [15.0, 67.0]}}},
    )  # fmt: skip
    post(
        client,
        f"Datastreams({ds})/Observations",
        {"phenomenonTime": "2024-01-05T00:00:00Z", "result": 1, "FeatureOfInterest": {"@iot.id": feature["@iot.id"]}},
    )
    ring = [[14.4, 67.0], [15.0, 67.0], [15.0, 67.28], [14.4, 67.28], [14.4, 67.0]]
    assert get(client, f"Datastreams({ds})")["observedArea"] == {"type": "Polygon", "coordinates": [ring]}


def test_patch_moves_an_observation_between_datastreams(app: tuple[TestClient, str]) -> None:
    client, url = app
    first, second = new_datastream(client), new_datastream(client)
    moved = post(client, f"Datastreams({first})/Observations", {"phenomenonTime": "2024-02-01T00:00:00Z", "result": 1})
    assert columns(url, first)[1] == datetime(2024, 2, 1, tzinfo=UTC)
    response = client.patch(f"/v1.1/Observations({moved['@iot.id']})", json={"Datastream": {"@iot.id": second}})
    assert response.status_code == 200, response.text
    assert columns(url, first)[1] == T0 + timedelta(hours=10)
    assert columns(url, second)[1] == datetime(2024, 2, 1, tzinfo=UTC)


def _plain_datastreams(conn: psycopg.Connection[Any], n: int, *, located: bool = True) -> list[int]:
    thing = conn.execute("INSERT INTO things (name) VALUES ('t') RETURNING id").fetchone()
    sensor = conn.execute(
        "INSERT INTO sensors (name, encoding_type, metadata) VALUES ('s', 'text/plain', '1') RETURNING id"
    ).fetchone()
    prop = conn.execute(
        "INSERT INTO observed_properties (name, definition) VALUES ('p', 'urn:p') RETURNING id"
    ).fetchone()
    assert thing and sensor and prop
    if located:
        location = conn.execute(
            "INSERT INTO locations (name, encoding_type, location)"
            " VALUES ('l', 'application/geo+json', %s) RETURNING id",
            (Jsonb({"type": "Feature", "geometry": {"type": "Point", "coordinates": [5.8, 59.1]}}),),
        ).fetchone()
        assert location
        conn.execute("INSERT INTO thing_locations VALUES (%s, %s)", (thing[0], location[0]))
    rows = conn.execute(
        "INSERT INTO datastreams (name, unit_of_measurement, observation_type, thing_id, sensor_id,"
        " observed_property_id) SELECT 'd', '{}', 'x', %s, %s, %s FROM generate_series(1, %s) RETURNING id",
        (thing[0], sensor[0], prop[0], n),
    ).fetchall()
    return [r[0] for r in rows]


def _insert(conn: psycopg.Connection[Any], rows: list[tuple[int, datetime, datetime | None]]) -> None:
    conn.cursor().executemany(
        "INSERT INTO observations (datastream_id, phenomenon_time, result_time, result_number) VALUES (%s, %s, %s, 1)",
        rows,
    )


def test_widen_per_batch_without_features_takes_the_thing_location(migrated_db: str) -> None:
    """The ingest batch writer's call: rows without a feature, Datastreams loaded before spans were kept."""
    with psycopg.connect(migrated_db) as conn:
        a, b = _plain_datastreams(conn, 2)
        _insert(conn, [(a, T0, None)])  # stored before anyone kept the spans: found by the probe
        conn.commit()
        batch = [(a, T0 + timedelta(hours=h), T0 + timedelta(days=1)) for h in (1, 2)] + [(b, T0, None)]
        _insert(conn, batch)
        assert datastream_spans.widen(conn, *zip(*[(ds, t, None, r) for ds, t, r in batch], strict=True)) == 2
        conn.commit()
    assert columns(migrated_db, a) == (
        T0, T0 + timedelta(hours=2), T0 + timedelta(days=1), T0 + timedelta(days=1),
        {"type": "Point", "coordinates": [5.8, 59.1]},
    )  # fmt: skip
    assert columns(migrated_db, b)[:4] == (T0, T0, None, None)


def test_refresh_recomputes_from_the_rows(plain_db: str) -> None:
    with psycopg.connect(plain_db) as conn:
        [a] = _plain_datastreams(conn, 1, located=False)
        _insert(conn, [(a, T0 + timedelta(hours=h), T0 + timedelta(hours=h + 1)) for h in range(5)])
        conn.execute("UPDATE datastreams SET phenomenon_time_end = '2030-01-01Z' WHERE id = %s", (a,))
        assert datastream_spans.refresh(conn, [a]) == 1
        conn.commit()
    assert columns(plain_db, a) == (T0, T0 + timedelta(hours=4), T0 + timedelta(hours=1), T0 + timedelta(hours=5), None)


def test_concurrent_batches_over_the_same_datastreams_both_count(migrated_db: str) -> None:
    """Two writers widening the same Datastreams at once (listed in opposite orders): neither span is lost."""
    with psycopg.connect(migrated_db) as conn:
        extra, *ids = _plain_datastreams(conn, 21)
        _insert(conn, [(extra, T0, None)])  # the time chunk exists before the writers race
        conn.commit()
    errors: list[BaseException] = []
    barrier = threading.Barrier(2, timeout=10)

    def writer(order: list[int], hour: int) -> None:
        try:
            with psycopg.connect(migrated_db) as conn:
                conn.execute("SET lock_timeout = '10s'")
                rows = [(ds, T0 + timedelta(hours=hour, minutes=i)) for ds in order for i in range(3)]
                conn.cursor().executemany(
                    "INSERT INTO observations (datastream_id, phenomenon_time, result_number) VALUES (%s, %s, 1)", rows
                )
                barrier.wait()
                ds, times = zip(*rows, strict=True)
                datastream_spans.widen(conn, ds, times, [None] * len(ds), [None] * len(ds))
                conn.commit()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(ids, 1)),
        threading.Thread(target=writer, args=(ids[::-1], 2)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    for ds in ids:
        assert columns(migrated_db, ds)[:2] == (T0 + timedelta(hours=1), T0 + timedelta(hours=2, minutes=2))


def test_spans_are_closed_in_filters(app: tuple[TestClient, str]) -> None:
    """A Datastream's phenomenonTime and resultTime include their last time: not before it, and at it."""
    client, _ = app
    ds = new_datastream(client)  # one Observation at 2024-01-01T10:00:00Z
    post(client, f"Datastreams({ds})/Observations", {"phenomenonTime": "2024-01-01T11:00:00Z/2024-01-01T12:00:00Z",
                                                      "result": 1, "resultTime": "2024-01-01T12:05:00Z"})  # fmt: skip
    post(client, f"Datastreams({ds})/Observations", {"phenomenonTime": "2024-01-01T10:30:00Z", "result": 2,
                                                      "resultTime": "2024-01-01T12:00:00Z"})  # fmt: skip

    def found(expression: str) -> bool:
        page = get(client, f"Datastreams?$filter=id eq {ds} and {expression}")
        return bool(page["value"])

    assert not found("phenomenonTime lt 2024-01-01T12:00:00Z") and found("phenomenonTime le 2024-01-01T12:00:00Z")
    assert not found("resultTime lt 2024-01-01T12:05:00Z") and found("resultTime lt 2024-01-01T12:05:01Z")
    assert not found("2024-01-01T12:05:00Z gt resultTime") and found("resultTime le 2024-01-01T12:05:00Z")
    # the Observation itself is half-open: the hour 11:00/12:00 is before 12:00
    observations = get(client, f"Datastreams({ds})/Observations?$filter=phenomenonTime lt 2024-01-01T12:00:00Z")
    assert len(observations["value"]) == 3
