"""Sensing Core (OGC 18-088, Annex A: datamodel, resource-path-to-entities, request-data read).

Each test names the requirement it checks. Runs on both flavours (TimescaleDB+PostGIS, plain).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.sta import entities as em
from tests.api import sample
from tests.api.conftest import ROOT

REQUIRED: dict[str, set[str]] = {
    "Things": {"name", "description"},
    "Locations": {"name", "description", "encodingType", "location"},
    "HistoricalLocations": {"time"},
    "Datastreams": {"name", "description", "unitOfMeasurement", "observationType"},
    "Sensors": {"name", "description", "encodingType", "metadata"},
    "ObservedProperties": {"name", "definition", "description"},
    "Observations": {"phenomenonTime", "resultTime", "result"},
    "FeaturesOfInterest": {"name", "description", "encodingType", "feature"},
}
NAVIGATION: dict[str, set[str]] = {
    "Things": {"Locations", "HistoricalLocations", "Datastreams"},
    "Locations": {"Things", "HistoricalLocations"},
    "HistoricalLocations": {"Thing", "Locations"},
    "Datastreams": {"Thing", "Sensor", "ObservedProperty", "Observations"},
    "Sensors": {"Datastreams"},
    "ObservedProperties": {"Datastreams"},
    "Observations": {"Datastream", "FeatureOfInterest"},
    "FeaturesOfInterest": {"Observations"},
}


def get(client: TestClient, path: str, status: int = 200) -> Any:
    response = client.get(ROOT + path)
    assert response.status_code == status, (path, response.text)
    return response.json() if response.content else None


def test_service_root_lists_every_entity_set_with_absolute_urls(client: TestClient) -> None:
    """req/resource-path/resource-path-to-entities: the service root (usage 1)."""
    body = get(client, "")
    assert {e["name"]: e["url"] for e in body["value"]} == {name: f"{ROOT}/{name}" for name in REQUIRED}
    conformance = body["serverSettings"]["conformance"]
    assert "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data" in conformance
    # only what is implemented: MQTT only with a broker (this app has none)
    assert not [c for c in conformance if "mqtt" in c]
    assert len(conformance) == len(set(conformance))
    assert get(client, "/") == body


@pytest.mark.parametrize("entity_set", list(REQUIRED))
def test_every_entity_has_control_information_properties_and_links(client: TestClient, entity_set: str) -> None:
    """req/datamodel/*: @iot.id, @iot.selfLink, the mandatory properties, every navigationLink."""
    body = get(client, f"/{entity_set}")
    assert body["value"], entity_set
    for entity in body["value"]:
        assert isinstance(entity["@iot.id"], int)
        assert entity["@iot.selfLink"] == f"{ROOT}/{entity_set}({entity['@iot.id']})"
        assert REQUIRED[entity_set] <= set(entity)
        for nav in NAVIGATION[entity_set]:
            assert entity[f"{nav}@iot.navigationLink"] == f"{entity['@iot.selfLink']}/{nav}"
        # the self link resolves to the same entity
        assert get(client, f"/{entity_set}({entity['@iot.id']})") == entity


def test_entity_sets_are_the_model() -> None:
    assert set(em.ENTITY_SETS) == set(REQUIRED)
    for name, entity in em.ENTITY_SETS.items():
        assert set(entity.relations) == NAVIGATION[name]
        assert REQUIRED[name] <= set(entity.properties)


def test_navigation_links_resolve(client: TestClient) -> None:
    """Usage 6: every navigationLink of an entity resolves (to an entity, a collection or 404-free null)."""
    thing = get(client, "/Things(1)")
    for nav in NAVIGATION["Things"]:
        linked = client.get(thing[f"{nav}@iot.navigationLink"])
        assert linked.status_code == 200
        assert "value" in linked.json()
    datastream = get(client, "/Datastreams(1)")
    assert client.get(datastream["Thing@iot.navigationLink"]).json()["@iot.id"] == 1
    assert client.get(datastream["Sensor@iot.navigationLink"]).json()["@iot.id"] == 1


def test_observation_results_are_typed(client: TestClient) -> None:
    """Observation.result keeps its JSON type: number, boolean, string, object."""
    assert get(client, "/Observations(1)")["result"] == 10
    assert get(client, "/Observations(101)")["result"] == 4.5
    assert get(client, "/Observations(201)")["result"] is True
    assert get(client, "/Observations(202)")["result"] is False
    assert get(client, "/Observations(203)")["result"] == "sensor fault"
    assert get(client, "/Observations(204)")["result"] == {"state": "occupied", "minutes": 74}
    assert get(client, "/Observations(103)")["result"] is None


def test_times_are_iso_instants_or_intervals(client: TestClient) -> None:
    instant = get(client, "/Observations(1)")
    assert instant["phenomenonTime"] == "2024-01-01T00:00:00Z"
    assert instant["resultTime"] == "2024-01-01T00:05:00Z"
    interval = get(client, "/Observations(101)")
    assert interval["phenomenonTime"] == "2024-01-01T00:00:00Z/2024-01-01T01:00:00Z"
    assert interval["validTime"] == "2024-01-01T00:00:00Z/2024-01-02T00:00:00Z"
    assert interval["parameters"] == {"method": "gravimetric", "level": 2}
    assert interval["resultQuality"] == {"flag": "ok"}
    assert get(client, "/HistoricalLocations(1)")["time"] == "2024-01-01T00:00:00Z"


def test_datastream_times_span_its_observations(client: TestClient) -> None:
    assert get(client, "/Datastreams(1)")["phenomenonTime"] == "2024-01-01T00:00:00Z/2024-01-01T23:00:00Z"
    # an interval observation extends the span to its end
    assert get(client, "/Datastreams(2)")["phenomenonTime"] == "2024-01-01T00:00:00Z/2024-01-02T00:00:00Z"
    assert get(client, "/Datastreams(4)")["phenomenonTime"] is None


def test_geometries_are_geojson(client: TestClient) -> None:
    assert get(client, "/Locations(1)")["location"] == {"type": "Point", "coordinates": [14.4, 67.28]}
    assert get(client, "/Locations(3)")["location"] == sample.SCHOOL_AREA
    assert get(client, "/FeaturesOfInterest(2)")["feature"]["type"] == "Point"
    assert get(client, "/Sensors(2)")["metadata"] == {"model": "NPS405"}
    assert get(client, "/Sensors(1)")["metadata"] == "https://example.org/nilu.pdf"


@pytest.mark.parametrize(
    ("path", "ids"),
    [
        ("/Things(1)/Datastreams", [1, 2]),
        ("/Things(1)/Locations", [1]),
        ("/Locations(1)/Things", [1]),
        ("/Things(1)/HistoricalLocations", [1, 3]),
        ("/Locations(2)/HistoricalLocations", [2, 3]),
        ("/HistoricalLocations(3)/Locations", [2]),
        ("/Sensors(1)/Datastreams", [1, 2, 4]),
        ("/ObservedProperties(3)/Datastreams", [3]),
        ("/FeaturesOfInterest(2)/Observations", [201, 202, 203, 204]),
        ("/Things(1)/Datastreams(2)/Observations", [101, 102, 103]),
        ("/Datastreams(1)/Thing/Locations", [1]),
        ("/Observations(201)/Datastream/Thing/Datastreams", [3]),
        ("/Things(2)/Locations(2)/HistoricalLocations", [2, 3]),
    ],
)
def test_navigation_paths_of_any_depth(client: TestClient, path: str, ids: list[int]) -> None:
    """Usage 6 and 8: collections addressed through navigation properties, nested."""
    assert [e["@iot.id"] for e in get(client, path)["value"]] == ids


@pytest.mark.parametrize(
    ("path", "entity_id"),
    [
        ("/Datastreams(1)/Thing", 1),
        ("/Datastreams(3)/Sensor", 2),
        ("/Datastreams(2)/ObservedProperty", 2),
        ("/Observations(201)/FeatureOfInterest", 2),
        ("/Observations(201)/Datastream", 3),
        ("/HistoricalLocations(2)/Thing", 2),
        ("/Things(1)/Datastreams(2)", 2),
        ("/Things(1)/Datastreams(2)/Sensor", 1),
    ],
)
def test_navigation_to_one_entity(client: TestClient, path: str, entity_id: int) -> None:
    assert get(client, path)["@iot.id"] == entity_id


@pytest.mark.parametrize(
    "path",
    [
        "/Things(99)",
        "/Things(1)/Datastreams(3)",  # exists, but not this Thing's
        "/Things(99)/Datastreams",
        "/Datastreams(4)/Observations(1)",
        "/Things(1)/Nothing",
        "/Nothing",
        "/Things(abc)",
        "/Things(1)/nope",
        "/Things(1)/name/extra",
        "/Things/Datastreams",
        "/Datastreams(1)/Thing(1)",
        "/Observations(99999)/Datastream",
    ],
)
def test_missing_resources_are_404(client: TestClient, path: str) -> None:
    body = get(client, path, status=404)
    assert body["code"] == 404 and body["type"] == "not_found" and body["message"]


def test_empty_collection_of_an_existing_entity_is_200(client: TestClient) -> None:
    assert get(client, "/Datastreams(4)/Observations") == {"value": []}


def test_property_and_value(client: TestClient) -> None:
    """Usages 4 and 5: a property as {name: value}, its raw value as text/plain."""
    assert get(client, "/Things(1)/name") == {"name": "Bodø air station"}
    assert get(client, "/Things(1)/properties") == {"properties": sample.THINGS[0][3]}
    assert get(client, "/Datastreams(1)/unitOfMeasurement")["unitOfMeasurement"]["symbol"] == "µg/m³"
    assert get(client, "/Observations(201)/result") == {"result": True}
    raw = client.get(ROOT + "/Things(1)/name/$value")
    assert raw.status_code == 200 and raw.text == "Bodø air station"
    assert raw.headers["content-type"].startswith("text/plain")
    assert client.get(ROOT + "/Observations(1)/result/$value").text == "10"
    assert client.get(ROOT + "/Observations(1)/phenomenonTime/$value").text == "2024-01-01T00:00:00Z"
    # a null property, and its raw value, have no content (OData 4.0 Part 1, 11.2.4.1: 204 No Content)
    for path in ("/Observations(1)/validTime", "/Observations(1)/validTime/$value"):
        empty = client.get(ROOT + path)
        assert (empty.status_code, empty.content) == (204, b""), path
    # $value of an object is its JSON; of anything else, plain text without braces
    assert client.get(ROOT + "/Locations(1)/location/$value").text.startswith("{")
    assert client.get(ROOT + "/Datastreams(1)/unitOfMeasurement/$value").json()["symbol"] == "µg/m³"
    assert "{" not in client.get(ROOT + "/Sensors(1)/metadata/$value").text
    assert client.get(ROOT + "/Things(1)/Datastreams(2)/name").json() == {"name": "PM2.5 Bodø"}


def test_ref(client: TestClient) -> None:
    """Usage 7: $ref gives self links only."""
    assert get(client, "/Things(1)/Datastreams/$ref") == {
        "value": [{"@iot.selfLink": f"{ROOT}/Datastreams(1)"}, {"@iot.selfLink": f"{ROOT}/Datastreams(2)"}]
    }
    assert get(client, "/Datastreams(1)/Thing/$ref") == {"@iot.selfLink": f"{ROOT}/Things(1)"}
    assert get(client, "/Things/$ref") == {"value": [{"@iot.selfLink": f"{ROOT}/Things({i})"} for i in (1, 2, 3)]}
    assert get(client, "/Things(2)/$ref") == {"@iot.selfLink": f"{ROOT}/Things(2)"}
    page = get(client, "/Datastreams(1)/Observations/$ref?$top=2&$count=true")
    assert page["@iot.count"] == 24
    assert page["value"] == [{"@iot.selfLink": f"{ROOT}/Observations(1)"}, {"@iot.selfLink": f"{ROOT}/Observations(2)"}]
    assert page["@iot.nextLink"].startswith(f"{ROOT}/Datastreams(1)/Observations/$ref?")


def test_collections_page_with_absolute_next_links(client: TestClient) -> None:
    """Server-driven paging: follow @iot.nextLink until it is gone; every entity once."""
    seen: list[int] = []
    url: str | None = ROOT + "/Observations?$top=7&$count=true"
    for _ in range(20):
        if url is None:
            break
        assert url.startswith(ROOT)
        body = client.get(url).json()
        assert body["@iot.count"] == 31
        assert len(body["value"]) <= 7
        seen += [e["@iot.id"] for e in body["value"]]
        url = body.get("@iot.nextLink")
    assert url is None
    assert sorted(seen) == sorted(o["id"] for o in sample.observations())
    assert len(seen) == len(set(seen))


def test_default_and_maximum_page_size(client: TestClient) -> None:
    # the test app serves default_top=100, max_top=1000
    assert len(get(client, "/Observations")["value"]) == 31
    big = get(client, "/Observations?$top=5000")
    assert len(big["value"]) == 31 and "@iot.nextLink" not in big


@pytest.mark.parametrize(
    ("path", "status"),
    [("", 200), ("/Things", 200), ("/Things(1)", 200), ("/Things(1)/name/$value", 200), ("/Things(999999)", 404),
     ("/Things?$filter=name eq", 400), ("/Observations(1)/validTime", 204)],
)  # fmt: skip
def test_head_answers_as_get_without_content(client: TestClient, path: str, status: int) -> None:
    """RFC 9110, 9.3.2: HEAD is GET without content (general-purpose servers must support both)."""
    got, head = client.get(ROOT + path), client.head(ROOT + path)
    assert (got.status_code, head.status_code, head.content) == (status, status, b"")
    assert head.headers.get("content-type") == got.headers.get("content-type")
