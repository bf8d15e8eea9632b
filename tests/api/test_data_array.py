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
    assert group["components"] == ["result", "phenomenonTime"]  # those of $select, in its order
    assert group["dataArray@iot.count"] == 1 and len(group["dataArray"][0]) == 2
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
        assert group["components"] == ["result"]
        assert group["dataArray@iot.count"] == 2 and group["dataArray"] == [[70.4], [value]]
    assert client.get("/v1.1/Observations(1)?$resultFormat=dataArray").status_code == 400  # a single entity
    assert client.get("/v1.1/Observations?$resultFormat=dataArray&$expand=Datastream").status_code == 400


def test_data_array_components_follow_the_request(client: TestClient) -> None:
    """components: every property and id by default; else exactly $select's names, in its order."""
    ds = datastream(client)
    created = post(
        client,
        f"Datastreams({ds})/Observations",
        {"phenomenonTime": "2024-03-01T00:00:00Z", "result": 2.5, "parameters": {"k": 1}},
    )
    path = f"Datastreams({ds})/Observations?$resultFormat=dataArray&$orderby=phenomenonTime desc&$top=1"
    [group] = get(client, path)["value"]
    assert group["components"] == [
        "id", "phenomenonTime", "resultTime", "result", "resultQuality", "validTime", "parameters"
    ]  # fmt: skip
    row = dict(zip(group["components"], group["dataArray"][0], strict=True))
    assert row["id"] == created["@iot.id"] and row["result"] == 2.5 and row["parameters"] == {"k": 1}
    assert row["phenomenonTime"] == "2024-03-01T00:00:00Z"
    [group] = get(client, path + "&$select=FeatureOfInterest/id,result,@iot.id,result")["value"]
    feature = get(client, f"Observations({created['@iot.id']})/FeatureOfInterest")["@iot.id"]
    assert group["components"] == ["FeatureOfInterest/id", "result", "id"]
    assert group["dataArray"] == [[feature, 2.5, created["@iot.id"]]]
    [group] = get(client, path + "&$select=*")["value"]
    assert group["components"][0] == "id" and len(group["components"]) == 7
    for select in ("Datastream", "@iot.selfLink", "FeatureOfInterest/name", "colour"):
        response = client.get(f"/v1.1/{path}&$select={select}")
        assert response.status_code == 400, select
        error = response.json()
        assert error["parameter"] == "$select" and "dataArray component" in error["message"]


def test_what_is_read_as_a_data_array_can_be_posted_back(client: TestClient) -> None:
    """The read's components are the create's: a group read from one Datastream creates the same rows in another."""
    source, target = datastream(client), datastream(client)
    for minute in (1, 2):
        post(client, f"Datastreams({source})/Observations", {"phenomenonTime": f"2024-04-01T00:0{minute}:00Z",
                                                              "result": minute})  # fmt: skip
    read = get(
        client,
        f"Datastreams({source})/Observations?$resultFormat=dataArray&$filter=phenomenonTime ge 2024-04-01T00:00:00Z"
        "&$select=phenomenonTime,result,FeatureOfInterest/id",
    )
    [group] = read["value"]
    group["Datastream"] = {"@iot.id": target}
    del group["Datastream@iot.navigationLink"]
    response = client.post("/v1.1/CreateObservations", content=orjson.dumps([group]))
    assert response.status_code == 201 and "error" not in response.json(), response.text
    query = "$resultFormat=dataArray&$filter=phenomenonTime ge 2024-04-01T00:00:00Z"
    copied = get(
        client, f"Datastreams({target})/Observations?{query}&$select=phenomenonTime,result,FeatureOfInterest/id"
    )
    assert copied["value"][0]["dataArray"] == group["dataArray"]
