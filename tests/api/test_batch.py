"""Conformance: SensorThings 1.1 batch requests (OGC 18-088, 11.2), JSON format; change sets are atomic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.write.batch import BatchError, parse_batch
from tests.api.test_create_update_delete import BASE, get

SENSOR = {"name": "DS18B20", "description": "air temperature", "encodingType": "application/pdf", "metadata": "x"}


@pytest.fixture
def client(migrated_db: str) -> Iterator[TestClient]:
    with TestClient(create_app(migrated_db, pool_min=1, pool_max=3, public_url=BASE), base_url=BASE) as c:
        yield c


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "requests"),
        ({"requests": [{"method": "fetch", "url": "Things"}]}, "method"),
        ({"requests": [{"method": "get"}]}, "url"),
        ({"requests": [{"id": "a", "method": "get", "url": "Things"}, {"id": "a", "method": "get", "url": "x"}]},
         "twice"),
        ({"requests": [{"method": "post", "url": "Things", "atomicityGroup": "g"},
                       {"method": "get", "url": "Things"},
                       {"method": "post", "url": "Things", "atomicityGroup": "g"}]}, "adjacent"),
        ({"requests": [{"method": "get", "url": "Things", "atomicityGroup": "g"}]}, "GET"),
    ],
)  # fmt: skip
def test_refused_batches(payload: Any, message: str) -> None:
    with pytest.raises(BatchError, match=message):
        parse_batch(payload)


def test_batch_runs_in_order_and_references_created_entities(client: TestClient) -> None:
    batch = {
        "requests": [
            {"id": "t", "atomicityGroup": "g1", "method": "post", "url": "Things",
             "body": {"name": "thing", "description": "d"}},
            {"id": "s", "atomicityGroup": "g1", "method": "post", "url": "Sensors", "body": SENSOR},
            {"id": "p", "atomicityGroup": "g1", "method": "post", "url": "ObservedProperties",
             "body": {"name": "T", "definition": "urn:t", "description": "d"}},
            {"id": "d", "atomicityGroup": "g1", "method": "post", "url": "Things($t)/Datastreams",
             "body": {"name": "ds", "description": "d", "observationType": "OM_Measurement",
                      "unitOfMeasurement": {"name": "C"}, "Sensor": {"@iot.id": "$s"},
                      "ObservedProperty": {"@iot.id": "$p"}}},
            {"id": "q", "method": "get", "url": "Things?$expand=Datastreams"},
            {"id": "u", "method": "patch", "url": f"{BASE}/v1.1/Things(999999)", "body": {"name": "x"}},
        ]
    }  # fmt: skip
    response = client.post("/v1.1/$batch", json=batch)
    assert response.status_code == 200, response.text
    answers = {r["id"]: r for r in response.json()["responses"]}
    assert [r["id"] for r in response.json()["responses"]] == ["t", "s", "p", "d", "q", "u"]
    assert answers["t"]["status"] == 201 and answers["t"]["headers"]["location"].startswith(BASE + "/v1.1/Things(")
    assert answers["d"]["status"] == 201
    thing_id = answers["t"]["body"]["@iot.id"]
    assert get(client, f"Datastreams({answers['d']['body']['@iot.id']})/Thing")["@iot.id"] == thing_id
    listed = answers["q"]["body"]["value"]
    assert listed[0]["Datastreams"][0]["name"] == "ds"
    assert answers["u"]["status"] == 404 and answers["u"]["body"]["type"] == "not_found"


def test_a_failing_change_set_applies_nothing(client: TestClient) -> None:
    batch = {
        "requests": [
            {"id": "1", "atomicityGroup": "g", "method": "post", "url": "Sensors", "body": SENSOR},
            {"id": "2", "atomicityGroup": "g", "method": "post", "url": "Sensors", "body": {"name": "no metadata"}},
            {"id": "3", "method": "post", "url": "Sensors", "body": {**SENSOR, "name": "outside"}},
        ]
    }
    response = client.post("/v1.1/$batch", json=batch)
    assert response.status_code == 200
    statuses = [r["status"] for r in response.json()["responses"]]
    assert statuses == [424, 400, 201]
    assert [s["name"] for s in get(client, "Sensors")["value"]] == ["outside"]


def test_only_json_batches(client: TestClient) -> None:
    response = client.post("/v1.1/$batch", content=b"--b\r\n", headers={"content-type": "multipart/mixed;boundary=b"})
    assert response.status_code == 415 and "JSON" in response.json()["message"]
