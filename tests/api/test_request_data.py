"""Request data and filtering (OGC 18-088, 9.3; Annex A request-data class): $filter, $expand,
$select, $orderby, $top, $skip, $count, on both flavours (TimescaleDB+PostGIS, plain PostgreSQL).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ROOT


def ids(client: TestClient, path: str, params: dict[str, str] | None = None) -> list[int]:
    response = client.get(ROOT + path, params=params)
    assert response.status_code == 200, response.text
    return [e["@iot.id"] for e in response.json()["value"]]


def body(client: TestClient, path: str, params: dict[str, str] | None = None, status: int = 200) -> Any:
    response = client.get(ROOT + path, params=params)
    assert response.status_code == status, response.text
    return response.json()


DS1 = list(range(1, 25))  # 24 hourly values 10..33, 2024-01-01T00..23

FILTERS: list[tuple[str, str, list[int]]] = [
    # comparison
    ("/Things", "name eq 'Parking zone A'", [2]),
    ("/Things", "name ne 'Parking zone A'", [1, 3]),
    ("/Datastreams(1)/Observations", "result gt 30", [22, 23, 24]),
    ("/Datastreams(1)/Observations", "result ge 32", [23, 24]),
    ("/Datastreams(1)/Observations", "result lt 11", [1]),
    ("/Datastreams(1)/Observations", "result le 11.0", [1, 2]),
    ("/Datastreams(1)/Observations", "result eq 20", [11]),
    ("/Datastreams(1)/Observations", "result ne 20 and result lt 13", [1, 2, 3]),
    # logical and grouping
    ("/Datastreams(1)/Observations", "result lt 11 or result gt 32", [1, 24]),
    ("/Datastreams(1)/Observations", "not (result gt 11)", [1, 2]),
    ("/Datastreams(1)/Observations", "(result lt 11 or result gt 32) and result gt 20", [24]),
    # arithmetic
    ("/Datastreams(1)/Observations", "result add 1 eq 12", [2]),
    ("/Datastreams(1)/Observations", "result sub 10 eq 0", [1]),
    ("/Datastreams(1)/Observations", "result mul 2 eq 40", [11]),
    ("/Datastreams(1)/Observations", "result div 2 eq 16", [23]),
    ("/Datastreams(1)/Observations", "result mod 10 eq 3", [4, 14, 24]),
    ("/Datastreams(1)/Observations", "(result add 2) mul 2 eq 24", [1]),
    ("/Datastreams(1)/Observations", "-result lt -32", [24]),
    # typed results
    ("/Observations", "result eq true", [201]),
    ("/Observations", "result eq false", [202]),
    ("/Observations", "result eq 'sensor fault'", [203]),
    # a text literal compares a result's text: a number or boolean by its JSON text
    ("/Datastreams(1)/Observations", "result eq '10'", [1]),
    ("/Datastreams(1)/Observations", "result gt '3'", [21, 22, 23, 24]),
    ("/Datastreams(3)/Observations", "result eq 'true' or result eq 'sensor fault'", [201, 203]),
    ("/Things", "properties/capacity eq '5'", [1]),
    ("/Observations", "result/state eq 'occupied'", [204]),
    ("/Observations", "result/minutes gt 70", [204]),
    ("/Observations", "result eq null", [103]),
    ("/Datastreams(2)/Observations", "result ne null", [101, 102]),
    # strings
    ("/Things", "substringof('zone', name)", [2]),
    ("/Things", "contains(name, 'zone')", [2]),
    ("/Things", "startswith(name, 'Bod')", [1]),
    ("/Things", "endswith(name, 'school')", [3]),
    ("/Things", "length(name) eq 14", [2]),
    ("/Things", "indexof(name, 'air') eq 5", [1]),
    ("/Things", "substring(name, 8) eq 'zone A'", [2]),
    ("/Things", "substring(name, 0, 3) eq 'Bod'", [1]),
    ("/Things", "tolower(name) eq 'parking zone a'", [2]),
    ("/Things", "toupper(name) eq 'PARKING ZONE A'", [2]),
    ("/Things", "trim(concat(' ', name)) eq 'Parking zone A'", [2]),
    ("/Things", "concat(concat(name, ' / '), description) eq 'Parking zone A / Kristiansund centre'", [2]),
    # date and time (UTC)
    ("/Datastreams(1)/Observations", "hour(phenomenonTime) eq 5", [6]),
    ("/Observations",
     "year(phenomenonTime) eq 2024 and month(phenomenonTime) eq 1 and day(phenomenonTime) eq 2", [103]),
    ("/Datastreams(1)/Observations", "minute(resultTime) eq 5 and hour(resultTime) eq 0", [1]),
    ("/Datastreams(1)/Observations", "second(phenomenonTime) eq 0 and hour(phenomenonTime) eq 1", [2]),
    ("/Datastreams(1)/Observations", "fractionalseconds(phenomenonTime) eq 0 and result eq 10", [1]),
    ("/Observations", "date(phenomenonTime) eq 2024-01-02", [103]),
    ("/Datastreams(1)/Observations", "time(phenomenonTime) eq 03:00:00", [4]),
    ("/Datastreams(1)/Observations", "totaloffsetminutes(phenomenonTime) eq 0 and result lt 12", [1, 2]),
    ("/Datastreams(1)/Observations", "phenomenonTime lt now() and result lt 11", [1]),
    ("/Datastreams(1)/Observations", "phenomenonTime gt mindatetime() and result lt 11", [1]),
    ("/Datastreams(1)/Observations", "phenomenonTime lt maxdatetime() and result lt 11", [1]),
    ("/Datastreams(2)/Observations", "maxdatetime(phenomenonTime) eq 2024-01-01T02:00:00Z", [102]),
    ("/Datastreams(2)/Observations", "mindatetime(phenomenonTime) eq 2024-01-01T01:00:00Z", [102]),
    ("/Datastreams(1)/Observations", "phenomenonTime ge 2024-01-01T22:00:00Z", [23, 24]),
    ("/Datastreams(1)/Observations", "phenomenonTime gt 2024-01-01T22:00:00+01:00", [23, 24]),
    ("/Datastreams(1)/Observations", "phenomenonTime lt 2024-01-01T01:30:00Z", [1, 2]),
    ("/Datastreams(1)/Observations", "phenomenonTime gt now() sub duration'P10000D'", DS1),
    ("/Datastreams(1)/Observations", "resultTime le 2024-01-01T00:05:00Z", [1]),
    ("/Datastreams(1)/Observations", "phenomenonTime gt '2024-01-01T22:00:00.000Z'", [24]),
    ("/HistoricalLocations", "time lt '2024-01-01T00:00:00.000Z'", [3]),
    # time intervals are half-open: before X when they end at X or earlier, after X when they start after it
    ("/Datastreams(2)/Observations", "phenomenonTime le 2024-01-01T01:00:00Z", [101]),
    ("/Datastreams(2)/Observations", "phenomenonTime lt 2024-01-01T01:30:00Z", [101]),
    ("/Datastreams(2)/Observations", "phenomenonTime lt 2024-01-01T01:00:00Z", [101]),
    ("/Datastreams(2)/Observations", "2024-01-01T01:00:00Z gt phenomenonTime", [101]),
    ("/Datastreams(2)/Observations", "phenomenonTime lt 2024-01-01T00:59:59Z", []),
    ("/Datastreams(2)/Observations", "phenomenonTime gt 2024-01-01T01:00:00Z", [103]),
    ("/Datastreams(2)/Observations", "phenomenonTime ge 2024-01-01T01:00:00Z", [102, 103]),
    ("/Datastreams(2)/Observations", "not phenomenonTime lt 2024-01-01T02:00:00Z", [103]),
    # two time objects: validTime [00:00, next day) starts with phenomenonTime [00:00, 01:00) and ends later
    ("/Datastreams(2)/Observations", "validTime ge phenomenonTime", [101]),
    ("/Datastreams(2)/Observations", "phenomenonTime le validTime", [101]),
    ("/Datastreams(2)/Observations", "phenomenonTime lt validTime or phenomenonTime gt validTime", []),
    ("/Datastreams(2)/Observations", "validTime eq null", [102, 103]),
    # Datastream 2 ends on 2024-01-02; 1 and 3 lie within the day
    ("/Datastreams", "phenomenonTime ge 2024-01-01T00:00:00Z and phenomenonTime le 2024-01-01T23:00:00Z", [1, 3]),
    ("/Datastreams", "phenomenonTime eq null", [4]),
    # math
    ("/Observations", "round(result) eq 5", [101]),  # 4.5: halves round away from zero
    ("/Observations", "floor(result) eq 7", [102]),
    ("/Observations", "ceiling(result) eq 5", [101]),
    # JSON properties
    ("/Things", "properties/capacity gt 10", [2]),
    ("/Things", "properties/stationKind eq 'reference'", [1]),
    ("/Things", "properties/tags[1] eq 'b'", [3]),
    ("/Things", "properties/capacity eq properties/capacity", [1, 2, 3]),
    ("/Datastreams", "unitOfMeasurement/symbol eq 'µg/m³'", [1, 2, 4]),
    ("/Observations", "parameters/method eq 'gravimetric'", [101]),
    # an index needs an array: the capacity (a number) and tags[0] (a string) have no [0]
    ("/Things", "properties/capacity[0] eq 8", []),
    ("/Things", "properties/tags[0][0] eq 'a'", []),
    ("/Things", "properties/tags[0] eq 'a'", [3]),
    # a JSON value that is not a boolean is no truth value: left out with or without not
    ("/Things", "properties/case", []),
    ("/Things", "not properties/case", []),
    # paths through navigation properties; a null test also finds entities with no related entity
    ("/Datastreams", "Observations/id eq null", [4]),
    ("/Datastreams", "Observations/id ne null", [1, 2, 3]),
    ("/Datastreams", "null eq Observations/result", [2, 4]),  # 2 has an Observation without a result
    ("/Datastreams", "not (Observations/id eq null)", [1, 2, 3]),
    ("/Things", "Datastreams/Observations/id eq null", [3]),  # Thing 3's Datastream 4 has no Observations
    ("/Things", "Datastreams/Observations/result eq null", [1, 3]),  # Thing 1's Datastream 2 has one without
    ("/Things", "Datastreams/Observations/id ne null", [1, 2]),
    ("/Sensors", "Datastreams/Observations/id eq null", [1]),  # Datastream 4, beside 1 and 2 with Observations
    ("/Observations", "Datastream/ObservedProperty/name eq 'PM2.5'", [101, 102, 103]),
    ("/Observations", "Datastream/Thing/properties/stationKind eq 'low-cost'", [201, 202, 203, 204]),
    ("/Datastreams", "Thing/properties/stationKind eq 'reference'", [1, 2]),
    ("/Datastreams", "ObservedProperty/@iot.id eq 1", [1, 4]),
    ("/Things", "Datastreams/ObservedProperty/name eq 'occupancy'", [2]),
    ("/Things", "Locations/name eq 'School grounds'", [3]),
    ("/Things", "HistoricalLocations/Locations/name eq 'Kristiansund centre'", [1, 2]),
    ("/Locations", "Things/Datastreams/Observations/result gt 32", [1]),
    ("/ObservedProperties", "Datastreams/Observations/result eq true", [3]),
    ("/FeaturesOfInterest", "Observations/Datastream/@iot.id eq 2", [1]),
    ("/Sensors", "Datastreams/Thing/name eq 'Parking zone A'", [2]),
    ("/HistoricalLocations", "Thing/name eq 'Bodø air station'", [1, 3]),
    ("/Things", "not (Datastreams/name eq 'PM10 Bodø')", [2, 3]),
    ("/Things", "id eq 2 or @iot.id eq 3", [2, 3]),
    ("/Observations", "FeatureOfInterest/id eq '2' and result eq true", [201]),
    # null as OData has it: equal to itself only, so ne and not include what is missing or null
    ("/Things", "properties/stationKind ne 'reference'", [2, 3]),
    ("/Things", "not (properties/stationKind eq 'reference')", [2, 3]),
    ("/Things", "(properties/stationKind eq 'reference') eq false", [2, 3]),
    ("/Datastreams(2)/Observations", "resultTime ne 2024-01-01T00:05:00Z", [101, 102, 103]),
    ("/Datastreams(2)/Observations", "not (result gt 5)", [101, 103]),
    ("/Datastreams(3)/Observations", "result ne 'sensor fault'", [201, 202, 204]),
    ("/Datastreams", "not (phenomenonTime ge 2024-01-01T12:00:00Z)", [1, 2, 3, 4]),
    ("/Datastreams", "not (phenomenonTime eq 2024-01-01T00:00:00Z)", [1, 2, 3, 4]),
    ("/Things", "description gt null or description lt null", []),
    ("/Observations", "result ge null", [103]),
    # a time minus a time is a duration (and so is a date minus a date)
    ("/Datastreams(1)/Observations", "resultTime sub phenomenonTime eq duration'PT5M'", DS1),
    ("/Datastreams(1)/Observations", "phenomenonTime sub 2024-01-01T00:00:00Z lt duration'PT2H'", [1, 2]),
    ("/Datastreams(1)/Observations",
     "phenomenonTime sub 2024-01-01T00:00:00Z eq duration'PT1H' add duration'PT1H'", [3]),
    ("/Things", "2024-03-01 sub 2024-02-01 eq duration'P29D'", [1, 2, 3]),
    ("/Datastreams(2)/Observations", "resultTime sub phenomenonTime eq null", [101, 102, 103]),
    # a date-time literal keeps its own offset
    ("/Things", "totaloffsetminutes(2024-01-01T00:00:00+01:00) eq 60", [1, 2, 3]),
    ("/Things", "hour(2024-01-01T10:00:00+01:00) eq 10 and date(2024-01-01T00:30:00+01:00) eq 2024-01-01",
     [1, 2, 3]),
]  # fmt: skip


@pytest.mark.parametrize(("path", "expr", "expected"), FILTERS, ids=[f[1] for f in FILTERS])
def test_filter(client: TestClient, path: str, expr: str, expected: list[int]) -> None:
    assert ids(client, path, {"$filter": expr, "$top": "100"}) == expected


GEO = [
    ("/Locations", "geo.intersects(location, geography'POLYGON((10 60, 20 60, 20 70, 10 70, 10 60))')", [1]),
    ("/Locations", "st_intersects(location, geography'POLYGON((6 55, 20 55, 20 70, 6 70, 6 55))')", [1, 2]),
    ("/Locations", "st_within(location, geography'POLYGON((7 63, 8 63, 8 64, 7 64, 7 63))')", [2]),
    ("/Locations", "st_contains(geography'POLYGON((7 63, 8 63, 8 64, 7 64, 7 63))', location)", [2]),
    ("/Locations", "st_disjoint(location, geography'POLYGON((7 63, 8 63, 8 64, 7 64, 7 63))') and id lt 3", [1]),
    ("/Locations", "st_equals(location, geography'POINT(14.4 67.28)')", [1]),
    ("/Locations", "geo.distance(location, geography'POINT(14.4 67.28)') lt 0.01", [1]),
    ("/Locations", "geo.distance(location, geography'POINT(7.73 63.11)') lt 1", [2]),
    ("/FeaturesOfInterest", "geo.intersects(feature, geography'POLYGON((7 63, 8 63, 8 64, 7 64, 7 63))')", [2]),
    ("/Things", "geo.intersects(Locations/location, geography'POLYGON((10 60, 20 60, 20 70, 10 70, 10 60))')", [1]),
    ("/Observations", "st_within(FeatureOfInterest/feature, geography'POLYGON((7 63, 8 63, 8 64, 7 64, 7 63))')"
     " and result eq true", [201]),
    ("/Locations", "geo.intersects(location, geography'MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)), "
     "((14 67, 15 67, 15 68, 14 68, 14 67)))')", [1]),
    # a polygon with a hole around Bodø: the point is in the hole, not in the polygon
    ("/Locations", "geo.intersects(location, geography'POLYGON((10 60, 20 60, 20 70, 10 70, 10 60),"
     " (14 67, 15 67, 15 68, 14 68, 14 67))')", []),
]  # fmt: skip


@pytest.mark.parametrize(("path", "expr", "expected"), GEO, ids=[g[1][:60] for g in GEO])
def test_geospatial_points_on_both_flavours(client: TestClient, path: str, expr: str, expected: list[int]) -> None:
    assert ids(client, path, {"$filter": expr}) == expected


def test_stored_polygons_need_postgis(full: TestClient, plain: TestClient) -> None:
    """A point literal against stored shapes: PostGIS finds the school's polygon; without it only
    stored points take part, so nothing is found (and nothing fails)."""
    for expr in [
        "geo.intersects(location, geography'POINT(5.8 59.1)')",
        "st_within(geography'POINT(5.8 59.1)', location)",
    ]:
        assert ids(full, "/Locations", {"$filter": expr}) == [3]
        assert ids(plain, "/Locations", {"$filter": expr}) == []


POSTGIS_ONLY = [
    ("/Locations", "st_overlaps(location, geography'POLYGON((5.8 59.1, 6 59.1, 6 59.3, 5.8 59.3, 5.8 59.1))')", [3]),
    ("/Locations", "st_touches(location, geography'LINESTRING(5.9 59.0, 6.5 58.5)')", [3]),
    ("/Locations", "st_crosses(geography'LINESTRING(5 59.1, 6 59.1)', location)", [3]),
    ("/Locations", "st_relate(location, geography'POINT(5.8 59.1)', 'T********')", [3]),
    ("/Locations", "geo.length(geography'LINESTRING(0 0, 3 4)') eq 5 and id eq 1", [1]),
    ("/Things", "st_intersects(Locations/location, geography'LINESTRING(5 59.1, 6 59.1)')", [3]),
]  # fmt: skip


@pytest.mark.parametrize(("path", "expr", "expected"), POSTGIS_ONLY, ids=[g[1][:60] for g in POSTGIS_ONLY])
def test_geospatial_shapes_with_postgis(full: TestClient, path: str, expr: str, expected: list[int]) -> None:
    assert ids(full, path, {"$filter": expr}) == expected


@pytest.mark.parametrize(("path", "expr", "expected"), POSTGIS_ONLY, ids=[g[1][:60] for g in POSTGIS_ONLY])
def test_geospatial_shapes_without_postgis_are_501(
    plain: TestClient, path: str, expr: str, expected: list[int]
) -> None:
    error = body(plain, path, {"$filter": expr}, status=501)
    assert error["type"] == "not_implemented" and "PostGIS" in error["message"] and error["parameter"] == "$filter"


def test_polygon_locations_are_skipped_without_postgis(plain: TestClient, full: TestClient) -> None:
    """Without PostGIS only points take part: the school's polygon is not found by a point test."""
    expr = "geo.intersects(location, geography'POLYGON((5 58, 6 58, 6 60, 5 60, 5 58))')"
    assert ids(plain, "/Locations", {"$filter": expr}) == []
    assert ids(full, "/Locations", {"$filter": expr}) == [3]


ORDERS = [
    ("/Things", "name", [1, 2, 3]),
    ("/Things", "name desc", [3, 2, 1]),
    ("/Things", "name DESC", [3, 2, 1]),
    ("/Things", "properties/capacity desc", [2, 3, 1]),
    ("/Datastreams", "Thing/name desc, name asc", [4, 3, 1, 2]),
    ("/Datastreams", "observationType, id desc", [4, 2, 1, 3]),
    ("/Datastreams(1)/Observations", "result desc", list(reversed(DS1))),
    ("/Datastreams(1)/Observations", "phenomenonTime DESC", list(reversed(DS1))),
    ("/Observations", "Datastream/name desc, phenomenonTime desc", [103, 102, 101, *reversed(DS1), 204, 203, 202, 201]),
    ("/HistoricalLocations", "time", [3, 1, 2]),
    ("/Things", "length(name)", [2, 3, 1]),
    # JSON and geometry properties order by their JSON value (the conformance suite asks for it)
    ("/Sensors", "metadata", [1, 2]),
    ("/Datastreams", "unitOfMeasurement, id", [3, 1, 2, 4]),
]  # fmt: skip


@pytest.mark.parametrize(("path", "orderby", "expected"), ORDERS, ids=[o[1] for o in ORDERS])
def test_orderby(client: TestClient, path: str, orderby: str, expected: list[int]) -> None:
    assert ids(client, path, {"$orderby": orderby, "$top": "100"}) == expected


def test_orderby_geometry_is_a_total_order(client: TestClient) -> None:
    ascending = ids(client, "/Locations", {"$orderby": "location"})
    assert sorted(ascending) == [1, 2, 3]
    assert ids(client, "/Locations", {"$orderby": "location desc"}) == list(reversed(ascending))


def test_top_skip_count_next_link(client: TestClient) -> None:
    page = body(
        client,
        "/Datastreams(1)/Observations",
        {"$top": "5", "$skip": "10", "$count": "true", "$filter": "result ge 12"},
    )
    assert page["@iot.count"] == 22
    assert [e["@iot.id"] for e in page["value"]] == [13, 14, 15, 16, 17]
    link = page["@iot.nextLink"]
    assert link.startswith(ROOT + "/Datastreams(1)/Observations?")
    assert "$skip=15" in link and "$top=5" in link and "$count=true" in link
    following = client.get(link).json()
    assert [e["@iot.id"] for e in following["value"]] == [18, 19, 20, 21, 22]
    assert body(client, "/Things", {"$count": "false"}).keys() == {"value"}
    # $top=0 asks only for the count: no next link (it would point at the same empty page)
    assert body(client, "/Things", {"$top": "0", "$count": "true"}) == {"@iot.count": 3, "value": []}
    expanded = body(client, "/Datastreams(1)", {"$expand": "Observations($top=0;$count=true)"})
    assert expanded["Observations"] == [] and expanded["Observations@iot.count"] == 24
    assert "Observations@iot.nextLink" not in expanded


def test_select(client: TestClient) -> None:
    things = body(client, "/Things", {"$select": "name"})["value"]
    assert things == [{"name": "Bodø air station"}, {"name": "Parking zone A"}, {"name": "Rennesøy school"}]
    one = body(client, "/Things(1)", {"$select": "id,name,Datastreams"})
    assert one == {
        "@iot.id": 1,
        "name": "Bodø air station",
        "Datastreams@iot.navigationLink": f"{ROOT}/Things(1)/Datastreams",
    }
    obs = body(client, "/Observations(201)", {"$select": "result,@iot.id,@iot.selfLink"})
    assert obs == {"@iot.id": 201, "@iot.selfLink": f"{ROOT}/Observations(201)", "result": True}
    assert body(client, "/Things(1)", {"$select": "*"})["@iot.selfLink"] == f"{ROOT}/Things(1)"


def test_expand_collections_and_entities(client: TestClient) -> None:
    thing = body(client, "/Things(1)", {"$expand": "Datastreams,Locations"})
    assert [d["@iot.id"] for d in thing["Datastreams"]] == [1, 2]
    assert thing["Datastreams"][0]["@iot.selfLink"] == f"{ROOT}/Datastreams(1)"
    assert [loc["@iot.id"] for loc in thing["Locations"]] == [1]
    assert thing["Datastreams@iot.navigationLink"] == f"{ROOT}/Things(1)/Datastreams"
    obs = body(client, "/Observations(201)", {"$expand": "Datastream/Thing,FeatureOfInterest"})
    assert obs["Datastream"]["@iot.id"] == 3
    assert obs["Datastream"]["Thing"]["name"] == "Parking zone A"
    assert obs["FeatureOfInterest"]["@iot.id"] == 2
    empty = body(client, "/Datastreams(4)", {"$expand": "Observations"})
    assert empty["Observations"] == []


def test_expanded_entities_have_no_navigation_links_unless_selected(client: TestClient) -> None:
    """req/request-data/expand: an expanded entity is shown inline, as in 18-088's $expand example: its
    properties and control information, no navigation links (the entity it is expanded from has them).
    A $select in the expansion that names navigation properties brings their links."""
    thing = body(client, "/Things(1)", {"$expand": "Datastreams($expand=Observations($top=1)),Locations"})
    assert thing["Datastreams@iot.navigationLink"] == f"{ROOT}/Things(1)/Datastreams"
    for inline in (thing["Datastreams"][0], thing["Datastreams"][0]["Observations"][0], thing["Locations"][0]):
        assert not [k for k in inline if k.endswith("@iot.navigationLink")], inline
        assert {"@iot.id", "@iot.selfLink"} <= set(inline)
    assert thing["Datastreams"][0]["unitOfMeasurement"]["symbol"] == "µg/m³"
    chosen = body(client, "/Datastreams(1)", {"$expand": "Thing($select=name,Locations)"})["Thing"]
    assert chosen == {"name": "Bodø air station", "Locations@iot.navigationLink": f"{ROOT}/Things(1)/Locations"}


def test_expand_nested_options(client: TestClient) -> None:
    page = body(
        client,
        "/Things",
        {
            "$filter": "id eq 1",
            "$select": "name",
            "$expand": "Datastreams($select=name;$orderby=name desc;"
            "$expand=Observations($top=2;$orderby=phenomenonTime desc;$select=result,phenomenonTime))",
        },
    )
    (thing,) = page["value"]
    assert list(thing) == ["name", "Datastreams"]
    ds2, ds1 = thing["Datastreams"]
    assert ds2["name"] == "PM2.5 Bodø" and ds1["name"] == "PM10 Bodø"
    assert ds1["Observations"] == [
        {"phenomenonTime": "2024-01-01T23:00:00Z", "result": 33},
        {"phenomenonTime": "2024-01-01T22:00:00Z", "result": 32},
    ]
    # the truncated expansion links to the rest, with the same options
    link = ds1["Observations@iot.nextLink"]
    assert link.startswith(f"{ROOT}/Datastreams(1)/Observations?")
    rest = client.get(link).json()
    assert [o["result"] for o in rest["value"]] == [31, 30]
    assert list(rest["value"][0]) == ["phenomenonTime", "result"]


def test_expand_with_filter_and_count(client: TestClient) -> None:
    ds = body(client, "/Datastreams(1)", {"$expand": "Observations($filter=result gt 30;$count=true;$top=1)"})
    assert ds["Observations@iot.count"] == 3
    assert [o["@iot.id"] for o in ds["Observations"]] == [22]
    assert "Observations@iot.nextLink" in ds


def test_latest_observation_of_every_datastream(client: TestClient) -> None:
    page = body(
        client, "/Datastreams", {"$top": "1000", "$expand": "Observations($top=1;$orderby=phenomenonTime desc)"}
    )
    latest = {d["@iot.id"]: [o["@iot.id"] for o in d["Observations"]] for d in page["value"]}
    assert latest == {1: [24], 2: [103], 3: [204], 4: []}


@pytest.mark.parametrize(
    ("params", "parameter", "column"),
    [
        ({"$filter": "name eq 'x"}, "$filter", 9),
        ({"$filter": "name eq 1"}, "$filter", 6),
        ({"$filter": "nope eq 1"}, "$filter", 1),
        ({"$orderby": "name sideways"}, "$orderby", 6),
        ({"$top": "-3"}, "$top", None),
        ({"$expand": "Nope"}, "$expand", None),
        ({"$select": "nope"}, "$select", None),
        ({"$unknown": "1"}, "$unknown", None),
    ],
)
def test_malformed_queries_are_400_with_what_and_where(
    client: TestClient, params: dict[str, str], parameter: str, column: int | None
) -> None:
    error = body(client, "/Things", params, status=400)
    assert error["code"] == 400 and error["type"] == "bad_request"
    assert error["parameter"] == parameter and error["column"] == column
    assert error["message"]


def test_injection_attempts_change_nothing(client: TestClient) -> None:
    attempts = [
        {"$filter": "name eq 'x''; DROP TABLE things; --'"},
        {"$filter": "name eq 'x' or 1 eq 1; DROP TABLE things"},
        {"$orderby": "name; DROP TABLE things"},
        {"$filter": "properties/capacity eq '1''); DROP TABLE things; --'"},
        {"$filter": "startswith(name, '%''; DROP TABLE things; --')"},
    ]
    for params in attempts:
        response = client.get(ROOT + "/Things", params=params)
        assert response.status_code in (200, 400)
        if response.status_code == 200:
            assert response.json()["value"] == []
    assert ids(client, "/Things") == [1, 2, 3]
    assert client.get(ROOT + "/Things(1);DROP TABLE things").status_code == 404
    assert ids(client, "/Things") == [1, 2, 3]


def test_several_truncated_expansions_each_get_a_next_link(client: TestClient) -> None:
    thing = body(client, "/Things(1)", {"$expand": "Datastreams($top=1),HistoricalLocations($top=1),Locations($top=1)"})
    assert [d["@iot.id"] for d in thing["Datastreams"]] == [1]
    assert [h["@iot.id"] for h in thing["HistoricalLocations"]] == [1]
    assert thing["Datastreams@iot.nextLink"] == f"{ROOT}/Things(1)/Datastreams?$top=1&$skip=1"
    assert thing["HistoricalLocations@iot.nextLink"] == f"{ROOT}/Things(1)/HistoricalLocations?$top=1&$skip=1"
    assert "Locations@iot.nextLink" not in thing  # one Location: nothing more
    page = body(client, "/Things", {"$expand": "Datastreams($top=1;$expand=Observations($top=2))", "$top": "1"})
    ds = page["value"][0]["Datastreams"][0]
    assert [o["@iot.id"] for o in ds["Observations"]] == [1, 2]
    assert ds["Observations@iot.nextLink"] == f"{ROOT}/Datastreams(1)/Observations?$top=2&$skip=2"
    assert page["value"][0]["Datastreams@iot.nextLink"].endswith(
        "/Things(1)/Datastreams?" + "$expand=Observations($top=2)&$top=1&$skip=1"
    )


def test_a_query_option_sent_with_encoded_delimiters_is_read(client: TestClient) -> None:
    """java.net.URLEncoder.encode("$filter=result eq 10") gives %24filter%3Dresult+eq+10: the whole option
    as one name without a value (as the OGC and FROST suites send their precedence filters). A name that
    starts with $ and holds = is read as that option; others are not touched."""
    encoded = client.get(ROOT + "/Datastreams(1)/Observations?%24filter%3Dresult+eq+10+or+result+eq+11&%24top=1")
    assert encoded.status_code == 200, encoded.text
    assert [o["@iot.id"] for o in encoded.json()["value"]] == [1]
    assert encoded.json()["@iot.nextLink"].endswith("$filter=result%20eq%2010%20or%20result%20eq%2011&$top=1&$skip=1")
    assert client.get(ROOT + "/Things?%24nope%3D1").status_code == 400


def test_system_query_option_names_are_matched_in_any_case(client: TestClient) -> None:
    """OData 4.01 has system query option names case-insensitive; the FROST suite sends $orderBy."""
    plain = body(client, "/Datastreams(1)/Observations", {"$orderby": "id desc", "$top": "2", "$filter": "result ge 0"})
    mixed = body(client, "/Datastreams(1)/Observations", {"$orderBy": "id desc", "$TOP": "2", "$Filter": "result ge 0"})
    assert mixed == plain
    assert [o["@iot.id"] for o in mixed["value"]] == sorted((o["@iot.id"] for o in mixed["value"]), reverse=True)
    assert len(mixed["value"]) == 2 and mixed["@iot.nextLink"] == plain["@iot.nextLink"]
    both = client.get(ROOT + "/Things", params=[("$top", "1"), ("$TOP", "2")])
    assert both.status_code == 400 and both.json()["parameter"] == "$top"  # one option given twice
