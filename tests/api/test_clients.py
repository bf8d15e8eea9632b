"""The query shapes real SensorThings clients send: Grafana's data source and QGIS's provider."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import ROOT


def test_grafana_time_range_with_paging(client: TestClient) -> None:
    """Grafana: a dashboard time range on one Datastream, $top=1000, then nextLinks until done."""
    url: str | None = (
        ROOT + "/Datastreams(1)/Observations?$filter=phenomenonTime ge 2024-01-01T02:00:00.000Z and "
        "phenomenonTime le 2024-01-01T20:00:00.000Z&$select=phenomenonTime,result&$orderby=phenomenonTime desc"
        "&$top=1000"
    )
    points = []
    for _ in range(10):
        if url is None:
            break
        page = client.get(url).json()
        points += [(o["phenomenonTime"], o["result"]) for o in page["value"]]
        url = page.get("@iot.nextLink")
    assert url is None
    assert len(points) == 19
    assert points[0] == ("2024-01-01T20:00:00Z", 30)
    assert points[-1] == ("2024-01-01T02:00:00Z", 12)


def test_grafana_small_pages_follow_next_links(client: TestClient) -> None:
    """The same range in pages of 4: next links carry the filter and order, nothing repeats or goes missing."""
    url: str | None = (
        ROOT + "/Datastreams(1)/Observations?$filter=phenomenonTime ge 2024-01-01T02:00:00Z and "
        "phenomenonTime le 2024-01-01T20:00:00Z&$orderby=phenomenonTime asc&$top=4"
    )
    got = []
    for _ in range(10):
        if url is None:
            break
        page = client.get(url).json()
        got += [o["@iot.id"] for o in page["value"]]
        url = page.get("@iot.nextLink")
    assert got == list(range(3, 22))


def test_grafana_things_and_latest_location(client: TestClient) -> None:
    things = client.get(ROOT + "/Things?$select=name,@iot.id&$top=1000").json()["value"]
    assert {t["@iot.id"] for t in things} == {1, 2, 3}
    loc = client.get(ROOT + "/Things(2)/Locations?$top=1").json()["value"][0]
    assert loc["location"]["geometry"]["coordinates"] == [7.73, 63.11]
    hist = client.get(ROOT + "/Things(1)/HistoricalLocations?$orderby=time desc&$expand=Locations&$top=1").json()
    assert hist["value"][0]["Locations"][0]["@iot.id"] == 1


QGIS_EXTENT = "geography'POLYGON((4 55, 16 55, 16 70, 4 70, 4 55))'"


def test_qgis_locations_in_the_map_extent(client: TestClient) -> None:
    """QGIS: features in the current extent, paged, with Things and their Datastreams expanded."""
    response = client.get(
        ROOT + "/Locations",
        params={
            "$filter": f"geo.intersects(location, {QGIS_EXTENT})",
            "$top": "2",
            "$count": "false",
            "$expand": "Things/Datastreams($orderby=name desc;$top=10;$filter=phenomenonTime ge 2024-01-01T00:00:00Z)",
        },
    )
    assert response.status_code == 200, response.text
    page = response.json()
    first = page["value"]
    assert [loc["@iot.id"] for loc in first] == [1, 2]
    bodo = first[0]
    assert [t["@iot.id"] for t in bodo["Things"]] == [1]
    assert [d["name"] for d in bodo["Things"][0]["Datastreams"]] == ["PM2.5 Bodø", "PM10 Bodø"]
    # the school is a polygon: found by PostGIS only (without it, points are served)
    if client.app.state.sta.translator.features.postgis:  # type: ignore[attr-defined]
        rest = client.get(page["@iot.nextLink"]).json()
        assert [loc["@iot.id"] for loc in rest["value"]] == [3]
    else:
        assert "@iot.nextLink" not in page


def test_qgis_observations_of_features_in_an_extent(client: TestClient) -> None:
    response = client.get(
        ROOT + "/Observations",
        params={
            "$filter": f"geo.intersects(FeatureOfInterest/feature, {QGIS_EXTENT}) and result gt 30",
            "$orderby": "phenomenonTime desc",
            "$top": "10",
            "$expand": "Datastream($select=name,unitOfMeasurement)",
        },
    )
    assert response.status_code == 200, response.text
    values = response.json()["value"]
    assert [o["result"] for o in values] == [33, 32, 31]
    assert values[0]["Datastream"] == {
        "name": "PM10 Bodø",
        "unitOfMeasurement": {"name": "microgram per cubic metre", "symbol": "µg/m³", "definition": "ug/m3"},
    }
