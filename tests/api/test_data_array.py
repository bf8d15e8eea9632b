"""Conformance: SensorThings 1.1 dataArray class (OGC 18-088, 14.3 and 14.4)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.write.body import BodyError
from api.write.data_array import parse_create_observations
from tests.api.test_create_update_delete import BASE, ROOT, get, post, thing_body


@pytest.fixture
def client(migrated_db: str) -> Iterator[TestClient]:
    with TestClient(create_app(migrated_db, pool_min=1, pool_max=3, public_url=BASE), base_url=BASE) as c:
        yield c


def datastream(client: TestClient) -> int:
    thing = post(client, "Things", thing_body())
    return int(get(client, f"Things({thing['@iot.id']})/Datastreams")["value"][0]["@iot.id"])


def test_parse_rows() -> None:
    rows = parse_create_observations(
        [
            {
                "Datastream": {"@iot.id": 1},
                "components": ["phenomenonTime", "result", "FeatureOfInterest/id"],
                "dataArray@iot.count": 2,
                "dataArray": [["2024-01-01T00:00:00Z", 1, 7], ["2024-01-01T00:01:00Z"]],
            }
        ]
    )
    assert rows[0].body == {
        "Datastream": {"@iot.id": 1},
        "phenomenonTime": "2024-01-01T00:00:00Z",
        "result": 1,
        "FeatureOfInterest": {"@iot.id": 7},
    }
    assert rows[1].body is None and rows[1].error and "3 values" in rows[1].error


@pytest.mark.parametrize(
    "payload",
    [
        {"Datastream": {"@iot.id": 1}},
        [{"components": ["result"], "dataArray": []}],
        [{"Datastream": {"@iot.id": 1}, "components": ["result", "colour"], "dataArray": []}],
        [{"Datastream": {"@iot.id": 1}, "components": ["result", "result"], "dataArray": []}],
        [{"Datastream": {"@iot.id": 1}, "components": ["result"], "dataArray": "x"}],
    ],
)
def test_refused_structures(payload: Any) -> None:
    with pytest.raises(BodyError):
        parse_create_observations(payload)


def test_create_observations_links_or_error_per_row(client: TestClient) -> None:
    """req/data-array/create-observations: 201, one self link per row in order, "error" where a row failed."""
    ds = datastream(client)
    payload = [
        {
            "Datastream": {"@iot.id": ds},
            "components": ["phenomenonTime", "result", "resultTime"],
            "dataArray@iot.count": 4,
            "dataArray": [
                ["2024-02-01T00:00:00Z", 20, "2024-02-01T00:00:05Z"],
                ["2024-02-01T00:01:00Z", 21, None],
                ["2024-02-01T00:00:00Z", 22, None],  # same time as the first: an Observation of its own
                ["not a time", 23, None],
            ],
        }
    ]
    response = client.post("/v1.1/CreateObservations", content=orjson.dumps(payload))
    assert response.status_code == 201, response.text
    links = response.json()
    assert links[3:] == ["error"]
    assert all(link.startswith(f"{ROOT}/Observations(") for link in links[:3])
    errors = orjson.loads(response.headers["Bydata-Errors"])
    assert set(errors) == {"3"} and "phenomenonTime" in errors["3"]
    assert get(client, links[0].removeprefix(ROOT + "/"))["result"] == 20
    assert get(client, links[2].removeprefix(ROOT + "/"))["result"] == 22
    assert get(client, f"Datastreams({ds})/Observations?$count=true")["@iot.count"] == 4


def test_read_as_data_array(client: TestClient) -> None:
    """req/data-array/data-array: components, dataArray@iot.count and dataArray, grouped by Datastream."""
    ds = datastream(client)
    post(client, f"Datastreams({ds})/Observations", {"phenomenonTime": "2024-01-02T00:00:00Z", "result": 1.5})
    response = client.get(
        f"/v1.1/Datastreams({ds})/Observations",
        params={"$resultFormat": "dataArray", "$select": "result,phenomenonTime", "$top": "1", "$count": "true"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@iot.count"] == 2 and "@iot.nextLink" in body
    [group] = body["value"]
    assert group["Datastream@iot.navigationLink"] == f"{ROOT}/Datastreams({ds})"
    assert group["components"] == ["id", "result", "phenomenonTime"] or group["components"] == [
        "id", "phenomenonTime", "result"
    ]  # fmt: skip
    assert group["dataArray@iot.count"] == 1 and len(group["dataArray"][0]) == 3
    nxt = client.get(body["@iot.nextLink"].removeprefix(BASE))
    assert nxt.status_code == 200 and nxt.json()["value"][0]["dataArray@iot.count"] == 1
    assert client.get("/v1.1/Things", params={"$resultFormat": "dataArray"}).status_code == 400


def test_a_data_array_groups_observations_by_datastream(client: TestClient) -> None:
    """req/data-array/data-array: Observations of several Datastreams, one group each, rows in the page's order."""
    first, second = datastream(client), datastream(client)
    for ds, time, value in ((first, "2024-02-01T00:00:00Z", 1), (second, "2024-02-01T00:00:00Z", 2)):
        post(client, f"Datastreams({ds})/Observations", {"phenomenonTime": time, "result": value})
    body = get(client, "Observations?$resultFormat=dataArray&$select=result&$orderby=id")
    groups = {g["Datastream@iot.navigationLink"]: g for g in body["value"]}
    assert set(groups) == {f"{ROOT}/Datastreams({first})", f"{ROOT}/Datastreams({second})"}
    for ds, value in ((first, 1), (second, 2)):
        group = groups[f"{ROOT}/Datastreams({ds})"]
        assert group["components"] == ["id", "result"]
        assert group["dataArray@iot.count"] == 2 and [row[1] for row in group["dataArray"]] == [70.4, value]
    assert client.get("/v1.1/Observations(1)?$resultFormat=dataArray").status_code == 400  # a single entity
    assert client.get("/v1.1/Observations?$resultFormat=dataArray&$expand=Datastream").status_code == 400
