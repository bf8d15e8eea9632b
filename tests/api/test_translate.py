"""The pure translator, datasette style: OData text in, exact SQL text and parameters out.

``as_string(None)`` renders the composed statement without a connection; placeholders stay
placeholders, so a test shows that every value travels as a parameter.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from api.sta import entities as em
from api.sta.odata.parser import QueryError, parse_filter, parse_orderby, parse_query_options
from api.sta.translate import NotImplementedQuery, PathNotFound, PathStep, ServerFeatures, Translator

PLAIN = Translator(ServerFeatures(postgis=False))
POSTGIS = Translator(ServerFeatures(postgis=True))
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def filter_sql(entity: str, text: str, translator: Translator = PLAIN) -> tuple[str, dict[str, Any]]:
    condition, params = translator.filter_sql(em.entity(entity), parse_filter(text))
    return condition.as_string(None), params


FILTERS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("Thing", "name eq 'x'", '("a0"."name" = %(p0)s::text)', {"p0": "x"}),
    # OData's ne is two-valued: a Thing without a description is not equal to 'x'
    ("Thing", "name ne 'x'", '("a0"."name" IS DISTINCT FROM %(p0)s::text)', {"p0": "x"}),
    # under not, a comparison must be false (not NULL) where OData says false
    ("Thing", "not (description eq 'x')", '(NOT ("a0"."description" IS NOT DISTINCT FROM %(p0)s::text))',
     {"p0": "x"}),
    ("Observation", "not (result gt 5)", '(NOT coalesce(("a0"."result_number" > %(p0)s::bigint), false))', {"p0": 5}),
    ("Observation", "not (resultTime le 2024-01-01T00:00:00Z)",
     '(NOT coalesce(("a0"."result_time" <= %(p0)s::timestamptz), ("a0"."result_time" IS NULL AND'
     ' %(p0)s::timestamptz IS NULL)))', {"p0": T0}),
    ("Observation", "not (phenomenonTime ge 2024-01-01T00:00:00Z)",
     '(NOT coalesce(("a0"."phenomenon_time" >= %(p0)s::timestamptz), false))', {"p0": T0}),
    # a boolean function of a null stays null: left out with or without not
    ("Thing", "not startswith(description, 'a')",
     '(NOT (left("a0"."description", char_length(%(p0)s::text)) = %(p0)s::text))', {"p0": "a"}),
    # two columns: null equals null
    ("Thing", "name eq description", '("a0"."name" IS NOT DISTINCT FROM "a0"."description")', {}),
    ("Thing", "name ge description",
     'coalesce(("a0"."name" >= "a0"."description"), ("a0"."name" IS NULL AND "a0"."description" IS NULL))', {}),
    # comparisons with null other than eq/ne: gt/lt are false, ge/le mean eq
    ("Thing", "description gt null", "FALSE", {}),
    ("Thing", "description le null", '("a0"."description" IS NULL)', {}),
    # a constant time (never null) keeps the plain comparison, which the index serves
    ("HistoricalLocation", "time ge now() sub duration'P1D'",
     "(\"a0\".\"time\" >= (((now() AT TIME ZONE 'UTC') - %(p0)s::interval) AT TIME ZONE 'UTC'))", {"p0": "P1D"}),
    # a time minus a time is a duration
    ("Observation", "resultTime sub phenomenonTime gt duration'PT5M'",
     '(("a0"."result_time" - "a0"."phenomenon_time") > %(p0)s::interval)', {"p0": "PT5M"}),
    ("Observation", "totaloffsetminutes(2024-01-01T00:00:00+01:30) eq 90", '(%(p1)s::bigint = %(p2)s::bigint)',
     {"p0": datetime(2024, 1, 1, tzinfo=timezone(timedelta(minutes=90))), "p1": 90, "p2": 90}),
    ("Observation", "hour(2024-01-01T10:00:00+01:00) eq 10",
     "(extract(hour FROM ((%(p0)s::timestamptz) AT TIME ZONE %(p1)s::interval))::integer = %(p2)s::bigint)",
     {"p0": datetime(2024, 1, 1, 10, tzinfo=timezone(timedelta(hours=1))), "p1": timedelta(hours=1), "p2": 10}),
    ("Observation", "result gt 5", '("a0"."result_number" > %(p0)s::bigint)', {"p0": 5}),
    ("Observation", "result le 2.5", '("a0"."result_number" <= %(p0)s::double precision)', {"p0": 2.5}),
    ("Observation", "result eq 'on'",
     '(coalesce("a0"."result_text", CASE WHEN jsonb_typeof("a0"."result_json") = \'number\' THEN "a0"."result_json"'
     ' #>> \'{}\' END, "a0"."result_number"::text, "a0"."result_boolean"::text) = %(p0)s::text)',
     {"p0": "on"}),
    ("Observation", "result eq false", '("a0"."result_boolean" = %(p0)s::boolean)', {"p0": False}),
    ("Observation", "result eq null",
     '("a0"."result_number" IS NULL AND "a0"."result_boolean" IS NULL AND "a0"."result_text" IS NULL'
     " AND coalesce(\"a0\".\"result_json\" = 'null'::jsonb, true))", {}),
    ("Thing", "description eq null", '("a0"."description" IS NULL)', {}),
    ("Thing", "properties/capacity gt 10",
     "((CASE WHEN jsonb_typeof((\"a0\".\"properties\" -> %(p0)s::text)) = 'number'"
     " THEN ((\"a0\".\"properties\" -> %(p0)s::text) #>> '{}')::double precision END) > %(p1)s::bigint)",
     {"p0": "capacity", "p1": 10}),
    ("Thing", "properties/stationKind eq 'reference'",
     "((CASE WHEN jsonb_typeof((\"a0\".\"properties\" -> %(p0)s::text)) IN ('string', 'number', 'boolean')"
     " THEN (\"a0\".\"properties\" -> %(p0)s::text) #>> '{}' END) = %(p1)s::text)",
     {"p0": "stationKind", "p1": "reference"}),
    ("Thing", "properties/tags[1] eq 'b'",
     "((CASE WHEN jsonb_typeof(((\"a0\".\"properties\" -> %(p0)s::text) #> ARRAY[%(p1)s::integer::text]))"
     " IN ('string', 'number', 'boolean')"
     " THEN ((\"a0\".\"properties\" -> %(p0)s::text) #> ARRAY[%(p1)s::integer::text]) #>> '{}' END)"
     " = %(p2)s::text)",
     {"p0": "tags", "p1": 1, "p2": "b"}),
    ("Observation", "Datastream/ObservedProperty/name eq 'PM10'",
     'EXISTS (SELECT 1 FROM "datastreams" "b1", "observed_properties" "b2"'
     ' WHERE "b1"."id" = "a0"."datastream_id" AND "b2"."id" = "b1"."observed_property_id"'
     ' AND (("b2"."name" = %(p0)s::text)))', {"p0": "PM10"}),
    ("Observation", "Datastream/Thing/properties/stationKind eq 'reference'",
     'EXISTS (SELECT 1 FROM "datastreams" "b1", "things" "b2"'
     ' WHERE "b1"."id" = "a0"."datastream_id" AND "b2"."id" = "b1"."thing_id"'
     " AND (((CASE WHEN jsonb_typeof((\"b2\".\"properties\" -> %(p0)s::text)) IN ('string', 'number', 'boolean')"
     " THEN (\"b2\".\"properties\" -> %(p0)s::text) #>> '{}' END) = %(p1)s::text)))",
     {"p0": "stationKind", "p1": "reference"}),
    ("Thing", "Datastreams/name eq 'a' and not startswith(name, 'B')",
     '(EXISTS (SELECT 1 FROM "datastreams" "b1" WHERE "b1"."thing_id" = "a0"."id" AND (("b1"."name" = %(p0)s::text)))'
     ' AND (NOT (left("a0"."name", char_length(%(p1)s::text)) = %(p1)s::text)))', {"p0": "a", "p1": "B"}),
    ("Thing", "Locations/name eq 'x'",
     'EXISTS (SELECT 1 FROM "locations" "b1" WHERE EXISTS (SELECT 1 FROM "thing_locations" l'
     ' WHERE l."thing_id" = "a0"."id" AND l."location_id" = "b1"."id") AND (("b1"."name" = %(p0)s::text)))',
     {"p0": "x"}),
    ("Observation", "phenomenonTime ge 2024-01-01T00:00:00Z",
     '("a0"."phenomenon_time" >= %(p0)s::timestamptz)', {"p0": T0}),
    ("Observation", "phenomenonTime le 2024-01-01T00:00:00Z",
     '("a0"."phenomenon_time" <= %(p0)s::timestamptz'
     ' AND coalesce("a0"."phenomenon_time_end", "a0"."phenomenon_time") <= %(p0)s::timestamptz)', {"p0": T0}),
    ("Observation", "resultTime gt 2024-01-01T00:00:00Z", '("a0"."result_time" > %(p0)s::timestamptz)', {"p0": T0}),
    # a quoted date-time compared with a time is a time (the conformance suite quotes them)
    ("HistoricalLocation", "time lt '2024-01-01T00:00:00.000Z'", '("a0"."time" < %(p1)s::timestamptz)',
     {"p0": "2024-01-01T00:00:00.000Z", "p1": T0}),
    ("Observation", "(result sub 5) mul 2 gt 10 or result mod 3 eq 1",
     '(((("a0"."result_number" - %(p0)s::bigint) * %(p1)s::bigint) > %(p2)s::bigint) OR'
     ' ((mod(("a0"."result_number")::numeric, NULLIF((%(p3)s::bigint)::numeric, 0))::double precision)'
     ' = %(p4)s::bigint))', {"p0": 5, "p1": 2, "p2": 10, "p3": 3, "p4": 1}),
    ("Observation", "result div 2 gt 1", '(("a0"."result_number" / NULLIF(%(p0)s::bigint, 0)) > %(p1)s::bigint)',
     {"p0": 2, "p1": 1}),
    ("Observation", "year(phenomenonTime) eq 2024",
     "(extract(year FROM ((\"a0\".\"phenomenon_time\") AT TIME ZONE 'UTC'))::integer = %(p0)s::bigint)", {"p0": 2024}),
    ("Thing", "substringof('air', name)", '(strpos("a0"."name", %(p0)s::text) > 0)', {"p0": "air"}),
    ("Thing", "tolower(name) eq 'x'", '(lower("a0"."name") = %(p0)s::text)', {"p0": "x"}),
    ("Thing", "length(name) gt 3", '(char_length("a0"."name") > %(p0)s::bigint)', {"p0": 3}),
    ("Observation", "round(result) eq 4", '(round(("a0"."result_number")::numeric)::double precision = %(p0)s::bigint)',
     {"p0": 4}),
    ("Location", "geo.distance(location, geography'POINT(14 67)') lt 1",
     '(sqrt(power("a0"."point_lon" - %(p0)s::double precision, 2)'
     ' + power("a0"."point_lat" - %(p1)s::double precision, 2))'
     " < %(p2)s::bigint)", {"p0": 14.0, "p1": 67.0, "p2": 1}),
]  # fmt: skip


@pytest.mark.parametrize(("entity", "text", "expected", "params"), FILTERS, ids=[f"{f[0]}: {f[1]}" for f in FILTERS])
def test_filter_translation(entity: str, text: str, expected: str, params: dict[str, Any]) -> None:
    assert filter_sql(entity, text) == (expected, params)


POSTGIS_FILTERS = [
    ("Location", "geo.intersects(location, geography'POLYGON((0 0, 1 0, 1 1, 0 0))')",
     'ST_Intersects("a0"."geom", ST_GeomFromText(%(p0)s::text, 4326))',
     {"p0": "POLYGON((0.0 0.0, 1.0 0.0, 1.0 1.0, 0.0 0.0))"}),
    ("FeatureOfInterest", "st_within(feature, geography'POLYGON((0 0, 1 0, 1 1, 0 0))')",
     'ST_Within("a0"."geom", ST_GeomFromText(%(p0)s::text, 4326))',
     {"p0": "POLYGON((0.0 0.0, 1.0 0.0, 1.0 1.0, 0.0 0.0))"}),
    ("Location", "geo.length(location) gt 1", '(ST_Length("a0"."geom") > %(p0)s::bigint)', {"p0": 1}),
    ("Location", "st_relate(location, geography'POINT(1 2)', 'T********')",
     'ST_Relate("a0"."geom", ST_GeomFromText(%(p1)s::text, 4326), %(p0)s::text)',
     {"p0": "T********", "p1": "POINT(1.0 2.0)"}),
    ("Datastream", "st_intersects(observedArea, geography'POINT(1 2)')",
     'ST_Intersects("geojson_geometry"("a0"."observed_area"), ST_GeomFromText(%(p0)s::text, 4326))',
     {"p0": "POINT(1.0 2.0)"}),
]  # fmt: skip


@pytest.mark.parametrize(("entity", "text", "expected", "params"), POSTGIS_FILTERS, ids=[f[1] for f in POSTGIS_FILTERS])
def test_geospatial_translation_with_postgis(entity: str, text: str, expected: str, params: dict[str, Any]) -> None:
    assert filter_sql(entity, text, POSTGIS) == (expected, params)


def test_point_in_polygon_without_postgis() -> None:
    text, params = filter_sql("Location", "geo.intersects(location, geography'POLYGON((0 0, 4 0, 4 4, 0 4, 0 0))')")
    # a bounding box, then the crossings of the two non-horizontal edges, all bound
    assert text.startswith('("a0"."point_lon" BETWEEN %(p10)s::double precision AND %(p11)s::double precision')
    assert text.count("CASE WHEN") == 2
    assert "mod(" in text and "% 2" not in text
    assert all(isinstance(v, float) for v in params.values())


def test_order_keys() -> None:
    keys, params = PLAIN.order_sql(em.OBSERVATION, parse_orderby("result desc, Datastream/name"))
    assert keys.as_string(None) == (
        '"a0"."result_number" DESC, "a0"."result_boolean" DESC, "a0"."result_text" DESC,'
        ' (SELECT "b1"."name" FROM "datastreams" "b1" WHERE "b1"."id" = "a0"."datastream_id" LIMIT 1),'
        ' "a0"."phenomenon_time", "a0"."id"'
    )
    assert params == {}


def test_navigation_path_is_an_indexable_set_of_ids() -> None:
    query = PLAIN.collection(
        [PathStep("Things", 1), PathStep("Datastreams", 2), PathStep("Observations")],
        parse_query_options([("$top", "10"), ("$select", "result")]),
        "http://x/v1.1",
    )
    text = query.statement.as_string(None)
    assert (
        'WHERE a0."datastream_id" IN (SELECT a0.id FROM "datastreams" a0 WHERE a0."thing_id" IN (%(p0)s::bigint)'
        " AND a0.id = %(p1)s::bigint)"
    ) in text
    # Observations may share a phenomenonTime: the time order ends with the id, so pages are stable
    assert text.endswith('ORDER BY "a0"."phenomenon_time", "a0"."id"')
    assert query.params["p0"] == 1 and query.params["p1"] == 2 and query.top == 10


def test_latest_observation_expansion_is_lateral_order_limit() -> None:
    query = PLAIN.collection(
        [PathStep("Datastreams")],
        parse_query_options([("$top", "1000"), ("$expand", "Observations($top=1;$orderby=phenomenonTime desc)")]),
        "http://x/v1.1",
    )
    text = query.statement.as_string(None)
    assert "DISTINCT" not in text
    page = re.search(
        r'LEFT JOIN LATERAL \(SELECT .*string_agg\(.*FROM "observations" "a2" WHERE "a2"."datastream_id" = "a0"."id"'
        r' ORDER BY "a2"."phenomenon_time" DESC, "a2"."id" DESC'
        r" LIMIT %\((p\d+)\)s::bigint \+ 1 OFFSET %\((p\d+)\)s::bigint",
        text,
    )
    assert page is not None
    assert query.params[page.group(1)] == 1 and query.params[page.group(2)] == 0
    # the page of Datastreams is cut before the expansion runs
    assert 'FROM (SELECT a0.* FROM "datastreams" a0 WHERE TRUE ORDER BY "a0"."id" LIMIT' in text


REJECTED: list[tuple[str, str, type[Exception], str]] = [
    ("Thing", "nope eq 1", QueryError, "Thing has no property or navigation property 'nope'"),
    ("Thing", "name eq 1", QueryError, "cannot compare a string with a number"),
    ("Thing", "name gt true", QueryError, "cannot compare a string with a boolean"),
    ("Thing", "name add 1 eq 2", QueryError, "expected a number, found a string"),
    ("Thing", "Datastreams eq 1", QueryError, "Datastreams is a navigation property"),
    ("Thing", "name/first eq 'x'", QueryError, "name is not an object"),
    ("Thing", "frobnicate(name)", QueryError, "unknown function frobnicate()"),
    ("Thing", "startswith(name)", QueryError, "startswith() takes 2 argument(s), got 1"),
    ("Thing", "name", QueryError, "expected a boolean, found a string"),
    ("Thing", "Locations/location eq 1", QueryError, "geometries cannot be compared"),
    ("Observation", "phenomenonTime gt 'yesterday'", QueryError, "compare times with a date-time with zone"),
    ("Observation", "phenomenonTime gt '2024-01-01T00:00:00'", QueryError, "compare times with a date-time with zone"),
    ("Observation", "result gt 2024-01-01T00:00:00Z", QueryError, "result cannot be used as a date-time"),
    ("Observation", "hour(result) eq 1", QueryError, "result cannot be used as a date-time"),
    ("Location", "geo.length(location) gt 1", NotImplementedQuery, "needs PostGIS"),
    ("Location", "st_touches(location, geography'POLYGON((0 0, 1 0, 1 1, 0 0))')", NotImplementedQuery,
     "needs PostGIS"),
    ("Location", "st_relate(location, geography'POINT(1 2)', 'T********')", NotImplementedQuery, "needs PostGIS"),
    ("Location", "geo.intersects(location, geography'LINESTRING(0 0, 1 1)')", NotImplementedQuery, "needs PostGIS"),
    ("Datastream", "geo.intersects(observedArea, geography'POINT(1 2)')", NotImplementedQuery, "needs PostGIS"),
    ("Location", "geo.distance(location, 'x') lt 1", QueryError, "takes geometries"),
    # PostGIS reports a malformed pattern as an internal error: checked before
    ("Location", "st_relate(location, geography'POINT(1 2)', 'T*F')", QueryError, "takes a DE-9IM pattern"),
    ("Location", "st_relate(location, geography'POINT(1 2)', name)", QueryError, "takes a DE-9IM pattern"),
]  # fmt: skip


@pytest.mark.parametrize(("entity", "text", "error", "message"), REJECTED, ids=[r[1] for r in REJECTED])
def test_rejected_filters(entity: str, text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        filter_sql(entity, text)
    assert message in str(info.value)
    assert isinstance(info.value, QueryError) and info.value.parameter == "$filter"


@pytest.mark.parametrize(
    ("steps", "params", "error", "message"),
    [
        ([PathStep("Thingz")], [], PathNotFound, "no entity set"),
        ([PathStep("Things", 1), PathStep("Sensor")], [], PathNotFound, "no navigation property"),
        ([PathStep("Things"), PathStep("Datastreams")], [], QueryError, "needs an id first"),
        ([PathStep("Things")], [("$select", "nope")], QueryError, "Thing has no property 'nope'"),
        ([PathStep("Things")], [("$select", "Datastreams/name")], QueryError, "cannot select"),
        ([PathStep("Things")], [("$expand", "Sensors")], QueryError, "no navigation property 'Sensors'"),
        ([PathStep("Things")], [("$orderby", "Datastreams/name")], QueryError, "to-many navigation"),
        ([PathStep("Things")], [("$orderby", "Locations")], QueryError, "navigation property"),
        ([PathStep("Locations")], [("$orderby", "geography'POINT(1 2)'")], QueryError, "cannot order by a literal"),
    ],
)
def test_rejected_requests(
    steps: list[PathStep], params: list[tuple[str, str]], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        PLAIN.collection(steps, parse_query_options(params), "http://x/v1.1")
    assert message in str(info.value)


INJECTIONS = [
    "'; DROP TABLE things; --",
    "x' OR '1'='1",
    "\\'; SELECT pg_sleep(10); --",
    'x"); DELETE FROM observations; --',
    "$$; DROP TABLE things; $$",
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_string_literals_are_bound(payload: str) -> None:
    literal = "'" + payload.replace("'", "''") + "'"
    for entity, text in [
        ("Thing", f"name eq {literal}"),
        ("Thing", f"startswith(name, {literal})"),
        ("Thing", f"properties/stationKind eq {literal}"),
        ("Observation", f"result eq {literal}"),
    ]:
        sql_text, params = filter_sql(entity, text, POSTGIS)
        assert payload not in sql_text
        assert payload in params.values()


def test_placeholder_lookalike_is_a_value() -> None:
    assert filter_sql("Thing", "name eq '%(p0)s'") == ('("a0"."name" = %(p0)s::text)', {"p0": "%(p0)s"})


@pytest.mark.parametrize(
    "key", ["x'; DROP TABLE things; --", 'x"; DROP', "a b", "%(p0)s"], ids=["quote", "dquote", "space", "placeholder"]
)
def test_json_keys_are_bound_or_refused(key: str) -> None:
    text = f"properties/{key} eq 1"
    try:
        sql_text, params = filter_sql("Thing", text)
    except QueryError:
        return  # refused by the grammar: names are [A-Za-z_@][A-Za-z0-9_.]*
    pytest.fail(f"accepted {text!r} as {sql_text} {params}")


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ([("$filter", "name eq 'x'); DROP TABLE things; --")], "$filter"),
        ([("$filter", "name; DROP TABLE things eq 'x'")], "$filter"),
        ([("$orderby", "name; DROP TABLE things")], "$orderby"),
        ([("$orderby", "name desc, (SELECT 1)")], "$orderby"),
        ([("$select", 'name, "id"')], "$select"),
        ([("$select", "name FROM things; --")], "$select"),
        ([("$expand", "Datastreams($filter=name eq 'x' OR 1=1)")], "$expand"),
        ([("$expand", "Datastreams;DROP TABLE things")], "$expand"),
        ([("$top", "1; DROP TABLE things")], "$top"),
        ([("$skip", "0 OR 1=1")], "$skip"),
        ([("$filter", "geo.intersects(location, geography'POINT(1 2)); DROP TABLE things; --')")], "$filter"),
    ],
)
def test_identifier_and_structure_injections_are_refused(params: list[tuple[str, str]], parameter: str) -> None:
    with pytest.raises(QueryError) as info:
        options = parse_query_options(params)
        PLAIN.collection([PathStep("Things")], options, "http://x/v1.1")
    assert info.value.parameter == parameter


def test_names_only_come_from_the_model() -> None:
    """Unknown property names never reach SQL text: they are refused before composition."""
    for name in ["pg_sleep", "things", "id2", "name2"]:
        with pytest.raises(QueryError):
            filter_sql("Thing", f"{name} eq 1")
