"""The exact text of entity JSON: what PostgreSQL's ``json_build_object`` and ``json_agg`` write.

The statements write each entity's JSON text themselves (``concat`` of escaped constants and
values' JSON text); these bodies are the ones ``json_build_object``/``json_agg`` wrote for the
same requests, byte for byte, so clients that keep responses as text see no change. Runs on
both flavours.
"""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.sta import entities as em
from api.sta.odata.parser import parse_query_options
from api.sta.translate import PathStep, ServerFeatures, Translator
from tests.api.conftest import ROOT

DATASTREAM_2 = (
    '{"@iot.id" : 2, "@iot.selfLink" : "http://sta.test/v1.1/Datastreams(2)", "name" : "PM2.5 Bodø",'
    ' "description" : "Hourly PM2.5", "unitOfMeasurement" : {"name": "microgram per cubic metre",'
    ' "symbol": "µg/m³", "definition": "ug/m3"}, "observationType" :'
    ' "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement", "observedArea" : null,'
    ' "phenomenonTime" : "2024-01-01T00:00:00Z/2024-01-02T00:00:00Z", "resultTime" : null, "properties" : null,'
    ' "Thing@iot.navigationLink" : "http://sta.test/v1.1/Datastreams(2)/Thing",'
    ' "Sensor@iot.navigationLink" : "http://sta.test/v1.1/Datastreams(2)/Sensor",'
    ' "ObservedProperty@iot.navigationLink" : "http://sta.test/v1.1/Datastreams(2)/ObservedProperty",'
    ' "Observations@iot.navigationLink" : "http://sta.test/v1.1/Datastreams(2)/Observations",'
    ' "Observations@iot.count" : 3, "Observations" : [{"@iot.id" : 101,'
    ' "@iot.selfLink" : "http://sta.test/v1.1/Observations(101)",'
    ' "phenomenonTime" : "2024-01-01T00:00:00Z/2024-01-01T01:00:00Z", "resultTime" : null, "result" : 4.5,'
    ' "resultQuality" : {"flag": "ok"}, "validTime" : "2024-01-01T00:00:00Z/2024-01-02T00:00:00Z",'
    ' "parameters" : {"level": 2, "method": "gravimetric"}},'
    ' {"@iot.id" : 102, "@iot.selfLink" : "http://sta.test/v1.1/Observations(102)",'
    ' "phenomenonTime" : "2024-01-01T01:00:00Z/2024-01-01T02:00:00Z", "resultTime" : null, "result" : 7.25,'
    ' "resultQuality" : null, "validTime" : null, "parameters" : null}],'
    ' "Thing" : {"name" : "Bodø air station", "properties" : {"case": "air", "capacity": 5,'
    ' "stationKind": "reference"}, "Locations" : [{"location" : {"type": "Point", "coordinates": [14.4, 67.28]}}]},'
    ' "Observations@iot.nextLink": "http://sta.test/v1.1/Datastreams(2)/Observations?$count=true&$top=2&$skip=2"}'
)

BODIES = [
    (
        "/Datastreams(2)?$expand=Observations($top=2;$count=true),Thing($select=name,properties;"
        "$expand=Locations($select=location))",
        DATASTREAM_2,
    ),
    (
        "/Observations(204)",
        '{"@iot.id" : 204, "@iot.selfLink" : "http://sta.test/v1.1/Observations(204)",'
        ' "phenomenonTime" : "2024-01-01T11:00:00Z", "resultTime" : null,'
        ' "result" : {"state": "occupied", "minutes": 74}, "resultQuality" : null, "validTime" : null,'
        ' "parameters" : null, "Datastream@iot.navigationLink" : "http://sta.test/v1.1/Observations(204)/Datastream",'
        ' "FeatureOfInterest@iot.navigationLink" : "http://sta.test/v1.1/Observations(204)/FeatureOfInterest"}',
    ),
    (
        "/Datastreams(3)/Observations?$top=2&$select=result",
        '{"@iot.nextLink":"http://sta.test/v1.1/Datastreams(3)/Observations?$select=result&$top=2&$skip=2",'
        '"value":[{"result" : true},{"result" : false}]}',
    ),
    (
        "/Datastreams?$top=1&$select=phenomenonTime,resultTime,observedArea&$expand=Observations($top=1;"
        "$orderby=phenomenonTime desc;$select=id;$expand=FeatureOfInterest($select=feature))",
        '{"@iot.nextLink":"http://sta.test/v1.1/Datastreams?$select=phenomenonTime,resultTime,observedArea'
        "&$expand=Observations($top=1;$orderby=phenomenonTime%20desc;$select=id;"
        '$expand=FeatureOfInterest($select=feature))&$top=1&$skip=1","value":[{"observedArea" : null,'
        ' "phenomenonTime" : "2024-01-01T00:00:00Z/2024-01-01T23:00:00Z", "resultTime" : null,'
        ' "Observations" : [{"@iot.id" : 24, "FeatureOfInterest" : {"feature" : {"type": "Point",'
        ' "coordinates": [14.4, 67.28]}}}], "Observations@iot.nextLink":'
        ' "http://sta.test/v1.1/Datastreams(1)/Observations?$orderby=phenomenonTime%20desc&$select=id'
        '&$expand=FeatureOfInterest($select=feature)&$top=1&$skip=1"}]}',
    ),
    ("/Things(1)?$select=id,name", '{"@iot.id" : 1, "name" : "Bodø air station"}'),
]


@pytest.mark.parametrize(("path", "body"), BODIES, ids=[b[0] for b in BODIES])
def test_bodies_are_the_text_postgresql_json_functions_write(client: TestClient, path: str, body: str) -> None:
    response = client.get(ROOT + path)
    assert response.status_code == 200
    assert response.content.decode() == body


TRICKY = ["plain", 'quote " and \\ backslash', "\b\f\n\r\t", "".join(chr(c) for c in range(1, 32)), "Bodø µg/m³ 😀"]


@pytest.mark.parametrize("text", TRICKY)
def test_constants_are_escaped_as_to_json_escapes(sta_full_db: str, text: str) -> None:
    with psycopg.connect(sta_full_db) as conn:
        row = conn.execute("SELECT to_json(%s::text)::text", (text,)).fetchone()
    assert row is not None and row[0] == '"' + em.json_string_body(text) + '"'


def test_base_url_with_characters_to_escape_gives_valid_links(sta_full_db: str) -> None:
    """The base URL is written into the constants, escaped, and travels as a parameter."""
    base = 'http://x/"odd"\\path/v1.1'
    query = Translator(ServerFeatures(postgis=False)).collection(
        [PathStep("Things")], parse_query_options([("$top", "1"), ("$select", "id,@iot.selfLink")]), base
    )
    assert "odd" not in query.statement.as_string(None)
    with psycopg.connect(sta_full_db) as conn:
        row = conn.execute(query.statement, query.params).fetchone()
        expected = conn.execute(
            "SELECT json_build_object('@iot.id', 1, '@iot.selfLink', %s::text || '/Things(1)')::text", (base,)
        ).fetchone()
    assert row is not None and expected is not None and row[0] == expected[0]
