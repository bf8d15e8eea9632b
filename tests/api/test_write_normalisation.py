"""Observations written over HTTP to a provisioned device's Datastream go through the ingest normaliser."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from schemas.provisioning import Provisioning
from store.provisioning import import_provisioning
from tests.api.test_create_update_delete import BASE, get, post, thing_body

AIRROHR = {
    "version": 1,
    "municipality": "Testby",
    "sites": [],
    "devices": [
        {"id": "13597771", "model": "airrohr-sds011-bme280", "name": "Bodø", "location": {"lat": 67.28, "lon": 14.4}}
    ],
}


@pytest.fixture(params=["migrated_db", "plain_db"])
def app(request: pytest.FixtureRequest) -> Iterator[tuple[TestClient, int]]:
    url = request.getfixturevalue(request.param)
    with psycopg.connect(url) as conn:
        import_provisioning(conn, Provisioning.model_validate(AIRROHR))
        row = conn.execute(
            "SELECT id FROM datastreams WHERE device_id = '13597771' AND property_key = 'pm10'"
        ).fetchone()
    assert row is not None
    with TestClient(create_app(url, pool_min=1, pool_max=3, public_url=BASE), base_url=BASE) as client:
        yield client, int(row[0])


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def flags(observation: dict[str, Any]) -> list[str]:
    quality = observation.get("resultQuality")
    return list(quality["qualityFlags"]) if quality else []


def test_results_are_typed_checked_and_flagged_like_ingest(app: tuple[TestClient, int]) -> None:
    client, ds = app
    now = datetime.now(UTC).replace(microsecond=0)
    path = f"Datastreams({ds})/Observations"
    text = post(client, path, {"phenomenonTime": iso(now - timedelta(minutes=30)), "result": "12.30"})
    assert text["result"] == 12.3  # a number sent as text is a number of a numeric property
    assert flags(text) == ["low_cost_sensor"]  # the airrohr model is a low-cost sensor
    high = post(client, path, {"phenomenonTime": iso(now - timedelta(minutes=29)), "result": 2500})
    assert flags(high) == ["out_of_range", "spike", "low_cost_sensor"]  # > 2000 µg/m³, +2488 within 600 s
    assumed = post(client, path, {"result": 11})  # no phenomenonTime: the server's, flagged
    assert flags(assumed) == ["low_cost_sensor", "time_assumed"]
    assert abs(datetime.fromisoformat(assumed["phenomenonTime"]) - datetime.now(UTC)) < timedelta(minutes=1)
    late = post(client, path, {"phenomenonTime": "2020-01-01T00:00:00Z", "result": 10})
    assert flags(late) == ["stale_time", "low_cost_sensor"]
    # the flags are stored, not only shown: read back and by $filter on the stored result
    assert get(client, f"Observations({high['@iot.id']})")["resultQuality"] == {
        "qualityFlags": ["out_of_range", "spike", "low_cost_sensor"]
    }


def test_a_result_the_property_cannot_take_is_a_400_naming_why(app: tuple[TestClient, int]) -> None:
    client, ds = app
    response = client.post(f"/v1.1/Datastreams({ds})/Observations", json={"result": "N/A"})
    assert response.status_code == 400
    assert "result" in response.json()["message"] and "N/A" in response.json()["message"]
    assert get(client, f"Datastreams({ds})/Observations?$count=true&$top=0")["@iot.count"] == 0


def test_client_quality_wins_and_updates_are_judged_again(app: tuple[TestClient, int]) -> None:
    client, ds = app
    now = datetime.now(UTC).replace(microsecond=0)
    given = {"accuracy": 0.5}
    kept = post(
        client,
        f"Datastreams({ds})/Observations",
        {"phenomenonTime": iso(now - timedelta(hours=2)), "result": 9000, "resultQuality": given},
    )
    assert kept["resultQuality"] == given
    plain = post(
        client, f"Datastreams({ds})/Observations", {"phenomenonTime": iso(now - timedelta(hours=1)), "result": 5}
    )
    assert flags(plain) == ["low_cost_sensor"]
    changed = client.patch(f"/v1.1/Observations({plain['@iot.id']})", json={"result": 5000})
    assert changed.status_code == 200, changed.text
    assert "out_of_range" in flags(changed.json())
    back = client.patch(f"/v1.1/Observations({plain['@iot.id']})", json={"result": 6})
    assert flags(back.json()) == ["low_cost_sensor"]
    # a change that does not touch result or times keeps the flags it has
    client.patch(f"/v1.1/Observations({plain['@iot.id']})", json={"result": 5000})
    tagged = client.patch(f"/v1.1/Observations({plain['@iot.id']})", json={"parameters": {"note": "checked"}})
    assert "out_of_range" in flags(tagged.json())


def test_datastreams_of_clients_take_results_as_given(app: tuple[TestClient, int]) -> None:
    client, _ = app
    thing = post(client, "Things", thing_body())
    ds = get(client, f"Things({thing['@iot.id']})/Datastreams")["value"][0]["@iot.id"]
    created = post(
        client, f"Datastreams({ds})/Observations", {"phenomenonTime": "2020-01-01T00:00:00Z", "result": "12.30"}
    )
    assert created["result"] == "12.30" and created["resultQuality"] is None


def test_create_observations_normalises_each_row(app: tuple[TestClient, int]) -> None:
    client, ds = app
    now = datetime.now(UTC).replace(microsecond=0)
    payload = [
        {
            "Datastream": {"@iot.id": ds},
            "components": ["phenomenonTime", "result"],
            "dataArray": [[iso(now - timedelta(minutes=10)), "7"], [iso(now - timedelta(minutes=9)), "x"]],
        }
    ]
    response = client.post("/v1.1/CreateObservations", json=payload)
    assert response.status_code == 201, response.text
    first, second = response.json()
    assert second == "error" and "x" in response.headers["Bydata-Errors"]
    assert get(client, first.removeprefix(BASE + "/v1.1/"))["result"] == 7.0


def test_moving_an_ingested_observation_meets_no_uniqueness_rule(migrated_db: str) -> None:
    """Ingest's dedup key is unique per Datastream and time; a PATCH that moves a row leaves it behind."""
    from schemas.observation import NormalisedObservation
    from store.observations import IncomingMessage, ObservationWriter, Outcome

    with psycopg.connect(migrated_db) as conn:
        import_provisioning(conn, Provisioning.model_validate(AIRROHR))
        row = conn.execute("SELECT id FROM datastreams WHERE property_key = 'pm10'").fetchone()
    assert row is not None
    ds, t1, t2 = int(row[0]), datetime(2025, 3, 4, 8, 0, tzinfo=UTC), datetime(2025, 3, 4, 8, 5, tzinfo=UTC)

    def reading(t: datetime) -> IncomingMessage:
        return IncomingMessage("s/1", b"x", t, [NormalisedObservation(ds, t, t, 12.5)])

    writer = ObservationWriter.connect(migrated_db, "w")
    try:
        first, second = (writer.write([reading(t)]).new[0].id for t in (t1, t2))
        with TestClient(create_app(migrated_db, pool_min=1, pool_max=2, public_url=BASE), base_url=BASE) as client:
            # the same result at the same time as the other ingested row: no 409
            moved = client.patch(f"/v1.1/Observations({second})", json={"phenomenonTime": iso(t1)})
            assert moved.status_code == 200, moved.text
            at_t1 = get(client, f"Datastreams({ds})/Observations?$filter=phenomenonTime eq {iso(t1)}")["value"]
            assert [o["@iot.id"] for o in at_t1] == [first, second]
        # the reading still at t1 still absorbs its redelivery; the moved one no longer holds t2
        assert writer.write([reading(t1)]).outcomes == [Outcome.DUPLICATE]
        assert writer.write([reading(t2)]).outcomes == [Outcome.STORED]
    finally:
        writer.close()
