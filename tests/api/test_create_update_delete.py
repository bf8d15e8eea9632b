"""Conformance: SensorThings 1.1 Create-Update-Delete class (OGC 18-088, clause 10), requirement by requirement."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.write.body import geojson_problem

BASE = "http://sta.test"
ROOT = BASE + "/v1.1"
UOM = {"name": "degree Celsius", "symbol": "°C", "definition": "http://unitsofmeasure.org/ucum.html#para-30"}
MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
POINT = {"type": "Point", "coordinates": [14.4, 67.28]}


@pytest.fixture(params=["migrated_db", "plain_db"])
def client(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    url = request.getfixturevalue(request.param)
    with TestClient(create_app(url, pool_min=1, pool_max=3, public_url=BASE), base_url=BASE) as c:
        yield c


def post(client: TestClient, path: str, body: Any) -> dict[str, Any]:
    response = client.post(f"/v1.1/{path}", json=body)
    assert response.status_code == 201, response.text
    location = response.headers["location"]
    created: dict[str, Any] = response.json()
    assert location == created["@iot.selfLink"]
    assert location.startswith(ROOT + "/")
    return created


def get(client: TestClient, path: str) -> Any:
    response = client.get(f"/v1.1/{path}")
    assert response.status_code == 200, response.text
    return response.json()


def thing_body() -> dict[str, Any]:
    return {
        "name": "oven",
        "description": "A thing with a temperature datastream",
        "properties": {"case": "energy"},
        "Locations": [
            {"name": "CCIT", "description": "Calgary", "encodingType": "application/geo+json", "location": POINT}
        ],
        "Datastreams": [
            {
                "name": "oven temperature",
                "description": "internal temperature",
                "unitOfMeasurement": UOM,
                "observationType": MEASUREMENT,
                "ObservedProperty": {"name": "Temperature", "definition": "urn:t", "description": "heat"},
                "Sensor": {
                    "name": "DS18B20",
                    "description": "sensor",
                    "encodingType": "application/pdf",
                    "metadata": "http://example.org/ds18b20.pdf",
                },
                "Observations": [{"phenomenonTime": "2024-01-01T10:00:00Z", "result": 70.4}],
            }
        ],
    }


def test_create_entity_gives_201_location_and_the_entity(client: TestClient) -> None:
    """req/create-update-delete/create-entity and deep-insert-status-code."""
    created = post(client, "Things", {"name": "thermostat", "description": "smart thermostat"})
    assert created["name"] == "thermostat" and isinstance(created["@iot.id"], int)
    assert get(client, f"Things({created['@iot.id']})")["description"] == "smart thermostat"


def test_deep_insert_creates_and_relates_everything(client: TestClient) -> None:
    """req/create-update-delete/deep-insert, with the HistoricalLocation and the generated FeatureOfInterest."""
    thing = post(client, "Things", thing_body())
    tid = thing["@iot.id"]
    locations = get(client, f"Things({tid})/Locations")["value"]
    assert [loc["name"] for loc in locations] == ["CCIT"]
    history = get(client, f"Things({tid})/HistoricalLocations?$expand=Locations")["value"]
    assert len(history) == 1 and history[0]["Locations"][0]["@iot.id"] == locations[0]["@iot.id"]
    datastreams = get(client, f"Things({tid})/Datastreams?$expand=Sensor,ObservedProperty,Observations")["value"]
    assert len(datastreams) == 1
    ds = datastreams[0]
    assert ds["Sensor"]["name"] == "DS18B20" and ds["ObservedProperty"]["name"] == "Temperature"
    assert [o["result"] for o in ds["Observations"]] == [70.4]
    feature = get(client, f"Observations({ds['Observations'][0]['@iot.id']})/FeatureOfInterest")
    assert feature["feature"] == POINT and feature["name"] == "CCIT"


def test_feature_from_location_is_reused(client: TestClient) -> None:
    """18-088 10.2 special case #1: the FeatureOfInterest made from the Thing's Location is created once."""
    thing = post(client, "Things", thing_body())
    ds = get(client, f"Things({thing['@iot.id']})/Datastreams")["value"][0]["@iot.id"]
    first = post(client, f"Datastreams({ds})/Observations", {"phenomenonTime": "2024-01-01T11:00:00Z", "result": 1})
    second = post(client, "Observations", {"Datastream": {"@iot.id": ds}, "result": 2})
    f1 = get(client, f"Observations({first['@iot.id']})/FeatureOfInterest")["@iot.id"]
    f2 = get(client, f"Observations({second['@iot.id']})/FeatureOfInterest")["@iot.id"]
    assert f1 == f2
    assert second["phenomenonTime"]  # the server's time when none is given


def test_links_by_id_even_with_the_whole_entity(client: TestClient) -> None:
    """req/create-update-delete/link-to-existing-entities; an object with @iot.id is a link."""
    thing = post(client, "Things", {"name": "t", "description": "d"})
    sensor = post(client, "Sensors", {"name": "s", "description": "d", "encodingType": "text/html", "metadata": "m"})
    prop = post(client, "ObservedProperties", {"name": "p", "definition": "urn:p", "description": "d"})
    ds = post(
        client,
        "Datastreams",
        {
            "name": "ds",
            "description": "d",
            "unitOfMeasurement": UOM,
            "observationType": MEASUREMENT,
            "Thing": {"@iot.id": thing["@iot.id"]},
            "Sensor": {**sensor, "name": "ignored: a link carries no changes"},
            "ObservedProperty": {"@iot.id": prop["@iot.id"]},
        },
    )
    assert get(client, f"Datastreams({ds['@iot.id']})/Sensor")["name"] == "s"
    feature = post(
        client,
        "FeaturesOfInterest",
        {"name": "f", "description": "d", "encodingType": "application/geo+json", "feature": POINT},
    )
    obs = post(
        client,
        f"Things({thing['@iot.id']})/Datastreams({ds['@iot.id']})/Observations",
        {"result": "on", "FeatureOfInterest": {"@iot.id": feature["@iot.id"]}, "resultTime": "2024-01-01T00:00:00Z"},
    )
    assert obs["result"] == "on"
    assert get(client, f"Datastreams({ds['@iot.id']})")["resultTime"] == "2024-01-01T00:00:00Z/2024-01-01T00:00:00Z"


def test_navigation_post_links_to_the_parent(client: TestClient) -> None:
    thing = post(client, "Things", thing_body())
    tid = thing["@iot.id"]
    ds = get(client, f"Things({tid})/Datastreams")["value"][0]
    body = {k: ds[k] for k in ("name", "description", "unitOfMeasurement", "observationType")}
    sensor_id = get(client, f"Datastreams({ds['@iot.id']})/Sensor")["@iot.id"]
    prop_id = get(client, f"Datastreams({ds['@iot.id']})/ObservedProperty")["@iot.id"]
    created = post(
        client,
        f"Things({tid})/Datastreams",
        {**body, "name": "second", "Sensor": {"@iot.id": sensor_id}, "ObservedProperty": {"@iot.id": prop_id}},
    )
    assert get(client, f"Datastreams({created['@iot.id']})/Thing")["@iot.id"] == tid
    # A new Location through the Thing moves it: one current Location, two HistoricalLocations.
    moved = {"type": "Point", "coordinates": [5, 59]}
    location = {"name": "new", "description": "moved", "encodingType": "application/geo+json", "location": moved}
    post(client, f"Things({tid})/Locations", location)
    assert [loc["name"] for loc in get(client, f"Things({tid})/Locations")["value"]] == ["new"]
    assert get(client, f"Things({tid})/HistoricalLocations?$count=true")["@iot.count"] == 2


@pytest.mark.parametrize(
    ("path", "body", "parameter"),
    [
        ("Things", {"description": "no name"}, "name"),
        ("Things", {"name": "x", "description": "d", "colour": "red"}, "colour"),
        ("Sensors", {"name": "s", "description": "d", "encodingType": "x"}, "metadata"),
        ("Datastreams", {"name": "d", "description": "d", "unitOfMeasurement": UOM, "observationType": "x"}, "Thing"),
        ("Observations", {"result": 1}, "Datastream"),
        ("Observations", {"result": 1, "Datastream": {"@iot.id": 1}, "phenomenonTime": "2024-01-01T00:00"},
         "phenomenonTime"),
        ("Things", {"name": "x", "description": "d", "Locations": {"name": "not a list"}}, "Locations"),
        ("Things", {"name": "x", "description": "d", "Datastreams": [{"@iot.id": "abc"}]}, "Datastreams[0].@iot.id"),
        # GeoJSON that is not GeoJSON: a clear 400, on every server (PostGIS would refuse it with a 500)
        ("Locations", {"name": "l", "description": "d", "encodingType": "application/geo+json",
                       "location": {"type": "Nope", "coordinates": [1, 2]}}, "location"),
        ("Locations", {"name": "l", "description": "d", "encodingType": "application/vnd.geo+json",
                       "location": {"type": "Point"}}, "location"),
        ("Locations", {"name": "l", "description": "d", "encodingType": "application/geo+json",
                       "location": {"type": "LineString", "coordinates": [[1, "x"], [2, 3]]}}, "location"),
        ("FeaturesOfInterest", {"name": "f", "description": "d", "encodingType": "application/geo+json",
                                "feature": {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [1, 2]}}},
         "feature"),
        ("Locations", {"name": "l", "description": "d", "encodingType": "application/geo+json", "location": "x"},
         "location"),
    ],
)  # fmt: skip
def test_invalid_bodies_are_400_and_say_where(
    client: TestClient, path: str, body: dict[str, Any], parameter: str
) -> None:
    response = client.post(f"/v1.1/{path}", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["parameter"] == parameter


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"type": "Point", "coordinates": [8, 51]}, None),
        ({"type": "Point", "coordinates": [8, 51, 4]}, None),
        ({"type": "Polygon", "coordinates": [[[8, 53], [7, 52], [7, 53], [8, 53]]]}, None),
        ({"type": "MultiPolygon", "coordinates": []}, None),
        ({"type": "Feature", "geometry": None, "properties": {}}, None),
        ({"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[5, 52], [5, 53]]}}, None),
        ({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [1, 2]}]}, None),
        ({"type": "Point", "coordinates": [8]}, "a GeoJSON Point needs coordinates: [x, y]"),
        ({"type": "Point", "coordinates": [True, 1]}, "a GeoJSON Point needs coordinates: [x, y]"),
        ({"type": "Polygon", "coordinates": [[8, 53]]},
         "a GeoJSON Polygon needs coordinates: arrays of arrays of [x, y]"),
        ({"type": "Circle", "coordinates": [8, 53]}, "unknown GeoJSON type 'Circle'"),
        ({"coordinates": [8, 53]}, "expected a GeoJSON object with a type"),
        ("POINT(8 53)", "expected a GeoJSON object with a type"),
        ({"type": "GeometryCollection", "geometries": [{"type": "Point"}]},
         "a GeoJSON Point needs coordinates: [x, y]"),
        ({"type": "GeometryCollection", "geometries": [{"type": "Feature", "geometry": None}]},
         "a GeoJSON Feature cannot stand where a geometry is expected"),
        ({"type": "Feature", "geometry": {"type": "FeatureCollection", "features": []}},
         "a GeoJSON FeatureCollection cannot stand where a geometry is expected"),
        ({"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": None}]}, None),
    ],
)  # fmt: skip
def test_geojson_problems_are_named(value: Any, problem: str | None) -> None:
    assert geojson_problem(value) == problem


def test_locations_and_features_of_any_encoding(client: TestClient) -> None:
    """req/datamodel/location/properties, feature-of-interest/properties: location and feature are of type Any,
    defined by encodingType. A Thing may have a GeoJSON Location beside others (an address in text); its
    Observations' FeatureOfInterest is made from the GeoJSON one."""
    thing = {"name": "t", "description": "d", "Locations": [
        {"name": "address", "description": "d", "encodingType": "text/plain", "location": "Storgata 1, Bodø"},
        {"name": "point", "description": "d", "encodingType": "application/geo+json", "location": POINT},
        {"name": "directions", "description": "d", "encodingType": "text/plain", "location": ""},
    ], "Datastreams": thing_body()["Datastreams"]}  # fmt: skip
    tid = post(client, "Things", thing)["@iot.id"]
    locations = {x["name"]: x["location"] for x in get(client, f"Things({tid})/Locations")["value"]}
    assert locations == {"address": "Storgata 1, Bodø", "point": POINT, "directions": ""}
    ds = get(client, f"Things({tid})/Datastreams")["value"][0]["@iot.id"]
    obs = get(client, f"Datastreams({ds})/Observations")["value"][0]["@iot.id"]
    assert get(client, f"Observations({obs})/FeatureOfInterest")["feature"] == POINT
    near = get(client, "Locations?$filter=geo.distance(location, geography'POINT(14.4 67.28)') lt 1")["value"]
    assert [x["name"] for x in near] == ["point"]
    foi = post(client, "FeaturesOfInterest", {"name": "f", "description": "d", "encodingType": "application/json",
                                              "feature": {"river": "Saltelva", "reach": 3}})  # fmt: skip
    assert get(client, f"FeaturesOfInterest({foi['@iot.id']})")["feature"] == {"river": "Saltelva", "reach": 3}
    address = next(x for x in get(client, f"Things({tid})/Locations")["value"] if x["name"] == "address")
    patched = client.patch(f"/v1.1/Locations({address['@iot.id']})", json={"location": "Storgata 2, Bodø"})
    assert patched.status_code == 200, patched.text


def test_deep_insert_is_all_or_nothing(client: TestClient) -> None:
    body = thing_body()
    body["Datastreams"][0]["Sensor"] = {"@iot.id": 999999}
    response = client.post("/v1.1/Things", json=body)
    assert response.status_code == 400 and "999999" in response.json()["message"]
    assert get(client, "Things?$count=true")["@iot.count"] == 0
    assert get(client, "Locations?$count=true")["@iot.count"] == 0


def test_observations_may_share_a_phenomenon_time(client: TestClient) -> None:
    """OGC 18-088 has no uniqueness rule for Observations: a second one at the same time is created, not refused."""
    thing = post(client, "Things", thing_body())
    ds = get(client, f"Things({thing['@iot.id']})/Datastreams")["value"][0]["@iot.id"]
    first = get(client, f"Datastreams({ds})/Observations")["value"][0]
    same_time = post(client, f"Datastreams({ds})/Observations", {"phenomenonTime": "2024-01-01T10:00:00Z", "result": 1})
    identical = post(client, f"Datastreams({ds})/Observations", {"phenomenonTime": "2024-01-01T10:00:00Z",
                                                                 "result": 70.4})  # fmt: skip
    later = post(client, f"Datastreams({ds})/Observations", {"phenomenonTime": "2024-01-01T11:00:00Z", "result": 2})
    ids = [first["@iot.id"], same_time["@iot.id"], identical["@iot.id"], later["@iot.id"]]
    listed = get(client, f"Datastreams({ds})/Observations")["value"]
    assert [o["@iot.id"] for o in listed] == ids  # by phenomenonTime, then id
    desc = get(client, f"Datastreams({ds})/Observations?$orderby=phenomenonTime desc&$top=2")["value"]
    assert [o["@iot.id"] for o in desc] == [ids[3], ids[2]]  # of the three at 10:00, the newest: ties reversed too
    # moving one onto another's time is no conflict either
    moved = client.patch(f"/v1.1/Observations({later['@iot.id']})", json={"phenomenonTime": "2024-01-01T10:00:00Z"})
    assert moved.status_code == 200, moved.text
    # paging through ties: every Observation once, none twice
    seen, url = [], f"/v1.1/Datastreams({ds})/Observations?$top=1"
    for _ in range(10):
        page = client.get(url).json()
        seen += [o["@iot.id"] for o in page["value"]]
        if "@iot.nextLink" not in page:
            break
        url = page["@iot.nextLink"].removeprefix(BASE)
    assert seen == ids


def test_an_observation_moves_to_any_phenomenon_time(client: TestClient) -> None:
    """req/create-update-delete/update-entity: PATCH and PUT set any phenomenonTime, months from the stored one.

    On a hypertable the new time lies in another chunk than the row; the row still keeps its id and links.
    """
    thing = post(client, "Things", thing_body())
    ds = get(client, f"Things({thing['@iot.id']})/Datastreams")["value"][0]["@iot.id"]
    obs = get(client, f"Datastreams({ds})/Observations")["value"][0]
    oid, foi = obs["@iot.id"], get(client, f"Observations({obs['@iot.id']})/FeatureOfInterest")["@iot.id"]
    patched = client.patch(f"/v1.1/Observations({oid})", json={"phenomenonTime": "2015-07-01T00:40:00Z"})
    assert patched.status_code == 200, patched.text
    assert get(client, f"Observations({oid})")["phenomenonTime"] == "2015-07-01T00:40:00Z"
    put = client.put(f"/v1.1/Observations({oid})", json={"result": "99", "phenomenonTime": "2031-08-01T00:40:00Z"})
    assert put.status_code == 200, put.text
    moved = get(client, f"Observations({oid})")
    assert (moved["phenomenonTime"], moved["result"]) == ("2031-08-01T00:40:00Z", "99")
    assert get(client, f"Observations({oid})/Datastream")["@iot.id"] == ds
    assert get(client, f"Observations({oid})/FeatureOfInterest")["@iot.id"] == foi
    assert [o["@iot.id"] for o in get(client, f"Datastreams({ds})/Observations")["value"]] == [oid]
    assert get(client, f"Datastreams({ds})")["phenomenonTime"] == "2031-08-01T00:40:00Z/2031-08-01T00:40:00Z"


def test_patch_put_and_json_patch(client: TestClient) -> None:
    """req/create-update-delete/update-entity: PATCH merges, PUT replaces, JSON Patch (RFC 6902) applies."""
    thing = post(client, "Things", {"name": "t", "description": "d", "properties": {"a": 1}})
    tid = thing["@iot.id"]
    response = client.patch(f"/v1.1/Things({tid})", json={"description": "oven"})
    assert response.status_code == 200 and response.json()["description"] == "oven"
    assert get(client, f"Things({tid})")["properties"] == {"a": 1}
    # PUT: frost-sta-client sends @iot.id and links back; omitted optional properties become null.
    response = client.put(f"/v1.1/Things({tid})", json={"@iot.id": tid, "name": "n", "description": "d2",
                                                        "Datastreams@iot.navigationLink": "x"})  # fmt: skip
    assert response.status_code == 200, response.text
    assert get(client, f"Things({tid})")["properties"] is None
    assert client.put(f"/v1.1/Things({tid})", json={"name": "n"}).status_code == 400
    patch = [{"op": "replace", "path": "/name", "value": "patched"}, {"op": "add", "path": "/properties", "value":
                                                                      {"b": 2}}]  # fmt: skip
    response = client.patch(
        f"/v1.1/Things({tid})", content=__import__("orjson").dumps(patch),
        headers={"content-type": "application/json-patch+json"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert get(client, f"Things({tid})")["name"] == "patched"
    assert get(client, f"Things({tid})")["properties"] == {"b": 2}
    assert client.patch("/v1.1/Things(999999)", json={"name": "x"}).status_code == 404


def test_patch_thing_locations_records_history(client: TestClient) -> None:
    thing = post(client, "Things", thing_body())
    tid = thing["@iot.id"]
    other = post(client, "Locations", {"name": "other", "description": "d", "encodingType": "application/geo+json",
                                       "location": POINT})  # fmt: skip
    assert client.patch(f"/v1.1/Things({tid})", json={"Locations": [{"@iot.id": other["@iot.id"]}]}).status_code == 200
    assert [loc["name"] for loc in get(client, f"Things({tid})/Locations")["value"]] == ["other"]
    assert get(client, f"Things({tid})/HistoricalLocations?$count=true")["@iot.count"] == 2
    inline = client.patch(f"/v1.1/Things({tid})", json={"Locations": [{"name": "inline"}]})
    assert inline.status_code == 400


def test_a_historical_location_created_as_the_latest_moves_the_thing(client: TestClient) -> None:
    """req/create-update-delete/historical-location-manual-creation: a HistoricalLocation created with
    a later time than the Thing's others puts the Thing at its Locations; an earlier one is history only."""
    tid = post(client, "Things", {"name": "t", "description": "d"})["@iot.id"]
    loc = [post(client, "Locations", {"name": f"l{i}", "description": "d", "encodingType": "application/geo+json",
                                      "location": {"type": "Point", "coordinates": [8, 50 + i]}})["@iot.id"]
           for i in range(3)]  # fmt: skip
    assert client.patch(f"/v1.1/Things({tid})", json={"Locations": [{"@iot.id": loc[0]}]}).status_code == 200
    (first,) = get(client, f"Things({tid})/HistoricalLocations")["value"]
    assert (
        client.patch(
            f"/v1.1/HistoricalLocations({first['@iot.id']})", json={"time": "2016-01-01T06:00:00Z"}
        ).status_code
        == 200
    )

    def at() -> list[int]:
        return [x["@iot.id"] for x in get(client, f"Things({tid})/Locations")["value"]]

    later = {"time": "2016-01-01T07:00:00Z", "Thing": {"@iot.id": tid}, "Locations": [{"@iot.id": loc[1]}]}
    post(client, "HistoricalLocations", later)
    assert at() == [loc[1]]
    earlier = {"time": "2016-01-01T05:00:00Z", "Thing": {"@iot.id": tid}, "Locations": [{"@iot.id": loc[2]}]}
    post(client, "HistoricalLocations", earlier)
    assert at() == [loc[1]]
    assert get(client, f"Things({tid})/HistoricalLocations?$count=true")["@iot.count"] == 3


def test_observation_update_moves_its_datastream_span(client: TestClient) -> None:
    thing = post(client, "Things", thing_body())
    ds = get(client, f"Things({thing['@iot.id']})/Datastreams")["value"][0]["@iot.id"]
    obs = get(client, f"Datastreams({ds})/Observations")["value"][0]["@iot.id"]
    response = client.patch(f"/v1.1/Observations({obs})", json={"result": 5, "resultTime": "2024-02-01T00:00:00Z"})
    assert response.status_code == 200 and response.json()["result"] == 5
    assert get(client, f"Datastreams({ds})")["resultTime"] == "2024-02-01T00:00:00Z/2024-02-01T00:00:00Z"


def test_delete_cascades(client: TestClient) -> None:
    """req/create-update-delete/delete-entity with the integrity constraints of table 25."""
    thing = post(client, "Things", thing_body())
    tid = thing["@iot.id"]
    ds = get(client, f"Things({tid})/Datastreams")["value"][0]["@iot.id"]
    obs = get(client, f"Datastreams({ds})/Observations")["value"][0]["@iot.id"]
    location = get(client, f"Things({tid})/Locations")["value"][0]["@iot.id"]
    # Deleting a Location deletes its HistoricalLocations.
    assert client.delete(f"/v1.1/Locations({location})").status_code == 200
    assert get(client, f"Things({tid})/HistoricalLocations?$count=true")["@iot.count"] == 0
    # Deleting the Thing deletes its Datastreams and their Observations.
    assert client.delete(f"/v1.1/Things({tid})").status_code == 200
    assert client.get(f"/v1.1/Datastreams({ds})").status_code == 404
    assert client.get(f"/v1.1/Observations({obs})").status_code == 404
    assert client.delete(f"/v1.1/Things({tid})").status_code == 404


def test_delete_sensor_and_feature_cascade(client: TestClient) -> None:
    thing = post(client, "Things", thing_body())
    ds = get(client, f"Things({thing['@iot.id']})/Datastreams")["value"][0]["@iot.id"]
    obs = get(client, f"Datastreams({ds})/Observations?$expand=FeatureOfInterest")["value"][0]
    assert client.delete(f"/v1.1/FeaturesOfInterest({obs['FeatureOfInterest']['@iot.id']})").status_code == 200
    assert client.get(f"/v1.1/Observations({obs['@iot.id']})").status_code == 404
    sensor = get(client, f"Datastreams({ds})/Sensor")["@iot.id"]
    assert client.delete(f"/v1.1/Sensors({sensor})").status_code == 200
    assert client.get(f"/v1.1/Datastreams({ds})").status_code == 404
    assert get(client, f"Things({thing['@iot.id']})")["name"] == "oven"


def test_delete_observed_property_cascades_to_its_datastreams_and_observations(client: TestClient) -> None:
    """OGC 18-088 table 25: deleting an ObservedProperty deletes its Datastreams, and so their Observations."""
    thing = post(client, "Things", thing_body())
    tid = thing["@iot.id"]
    first = get(client, f"Things({tid})/Datastreams?$expand=ObservedProperty,Sensor")["value"][0]
    prop, sensor = first["ObservedProperty"]["@iot.id"], first["Sensor"]["@iot.id"]

    def datastream(observed_property: dict[str, Any], time: str) -> tuple[int, int]:
        body = {
            "name": "another", "description": "d", "unitOfMeasurement": UOM, "observationType": MEASUREMENT,
            "Thing": {"@iot.id": tid}, "Sensor": {"@iot.id": sensor}, "ObservedProperty": observed_property,
            "Observations": [{"phenomenonTime": time, "result": 1}],
        }  # fmt: skip
        ds = post(client, "Datastreams", body)["@iot.id"]
        return ds, get(client, f"Datastreams({ds})/Observations")["value"][0]["@iot.id"]

    same = datastream({"@iot.id": prop}, "2024-05-01T00:00:00Z")
    other = datastream({"name": "Humidity", "definition": "urn:h", "description": "wet"}, "2024-05-01T00:00:00Z")
    gone = [(first["@iot.id"], get(client, f"Datastreams({first['@iot.id']})/Observations")["value"][0]["@iot.id"]),
            same]  # fmt: skip
    assert get(client, f"ObservedProperties({prop})/Datastreams?$count=true")["@iot.count"] == 2

    assert client.delete(f"/v1.1/ObservedProperties({prop})").status_code == 200
    assert client.get(f"/v1.1/ObservedProperties({prop})").status_code == 404
    for ds, obs in gone:
        assert client.get(f"/v1.1/Datastreams({ds})").status_code == 404
        assert client.get(f"/v1.1/Observations({obs})").status_code == 404
    # what does not depend on it stays: the other Datastream and its Observation, the Thing, the Sensor
    assert [d["@iot.id"] for d in get(client, f"Things({tid})/Datastreams")["value"]] == [other[0]]
    assert get(client, f"Observations({other[1]})")["result"] == 1
    assert get(client, f"Sensors({sensor})/Datastreams?$count=true")["@iot.count"] == 1
    assert get(client, f"Things({tid})/Locations?$count=true")["@iot.count"] == 1


def test_service_root_names_the_write_classes(client: TestClient) -> None:
    root = get(client, "")
    conformance = root["serverSettings"]["conformance"]
    for uri in ("create-update-delete", "batch-request/batch-request", "data-array/data-array"):
        assert f"http://www.opengis.net/spec/iot_sensing/1.1/req/{uri}" in conformance
    aggregation = "https://bydata.no/spec/sensorthings-aggregates/1.0"
    assert aggregation in conformance and root["serverSettings"][aggregation]["endpoint"].startswith(BASE)
    assert {v["name"] for v in root["value"]} == {
        "Things", "Locations", "HistoricalLocations", "Datastreams", "Sensors", "ObservedProperties",
        "Observations", "FeaturesOfInterest",
    }  # fmt: skip


def test_a_deeply_nested_body_is_a_clear_400(client: TestClient) -> None:
    """orjson reads up to 1,024 levels; the body check must answer, not overflow Python's stack."""
    deep = '{"a": [' * 500 + '"leaf"' + "]}" * 500  # 1,000 levels, as text: json.dumps would overflow
    body = '{"name": "n", "description": "d", "properties": ' + deep + "}"
    response = client.post("/v1.1/Things", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert "nested deeper than 64 levels" in response.json()["message"]
    fine: Any = "leaf"
    for _ in range(20):
        fine = {"a": fine}
    assert post(client, "Things", {"name": "n", "description": "d", "properties": fine})["properties"] == fine


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("Things(999999)/Datastreams", {"name": "d"}),
        ("Things(999999)/Locations", {"name": "l", "description": "d", "encodingType": "application/geo+json",
                                      "location": POINT}),
        ("Locations(999999)/Things", {"name": "t", "description": "d"}),
        ("Sensors(999999)/Datastreams", {"name": "d"}),
        ("FeaturesOfInterest(999999)/Observations", {"result": 1}),
        ("Things(999999)/HistoricalLocations", {"time": "2024-01-01T00:00:00Z"}),
        ("Datastreams(999999)/Observations", {"result": 1}),
    ],
)  # fmt: skip
def test_post_under_a_parent_that_does_not_exist_is_404(client: TestClient, path: str, body: dict[str, Any]) -> None:
    response = client.post(f"/v1.1/{path}", json=body)
    assert response.status_code == 404, response.text
    parent, child = path.split("/")
    assert response.json()["message"] == f"no entity at {parent}"
    assert get(client, child)["value"] == []  # nothing was created


@pytest.mark.parametrize("result", [-(2**63), 2**53 + 1, 4611686018427387904 + 7, 2**63 - 1])
def test_integers_a_double_cannot_hold_come_back_exactly(client: TestClient, result: int) -> None:
    """The OGC suite creates Observations with random 64-bit results and compares them as sent."""
    thing = post(client, "Things", thing_body())
    ds = get(client, f"Things({thing['@iot.id']})/Datastreams")["value"][0]["@iot.id"]
    created = post(client, f"Datastreams({ds})/Observations", {"phenomenonTime": "2024-02-01T00:00:00Z",
                                                               "result": result})  # fmt: skip
    path = f"Observations({created['@iot.id']})"
    assert created["result"] == result and get(client, path)["result"] == result
    assert client.get(f"/v1.1/{path}/result/$value").text == str(result)
    page = get(client, f"Datastreams({ds})/Observations?$resultFormat=dataArray")["value"][0]
    assert [row[page["components"].index("result")] for row in page["dataArray"]][-1] == result
    # the rounded double takes part in numeric filters and ordering
    near = client.get(f"/v1.1/Datastreams({ds})/Observations", params={"$filter": f"result eq {float(result)!r}"})
    near = near.json()["value"]
    assert [o["@iot.id"] for o in near] == [created["@iot.id"]]
    # a text literal compares the result's JSON text: its exact digits
    text = client.get(f"/v1.1/Datastreams({ds})/Observations", params={"$filter": f"result eq '{result}'"})
    assert [o["@iot.id"] for o in text.json()["value"]] == [created["@iot.id"]]
    client.patch(f"/v1.1/{path}", json={"result": 5})
    assert get(client, path)["result"] == 5  # an update clears the exact digits with the rest
