"""The OData query-option parser: trees for valid texts, errors that say what and where."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from api.sta.odata import ast
from api.sta.odata.parser import (
    QueryError,
    parse_expand,
    parse_filter,
    parse_orderby,
    parse_query_options,
    parse_select,
    parse_wkt,
)


def p(*names: str) -> ast.Path:
    return ast.Path(tuple(ast.Segment(n) for n in names), 0)


def strip(node: object) -> object:
    """The tree without column numbers, for comparing shapes."""
    if isinstance(node, ast.Literal):
        return ("lit", node.kind, node.value)
    if isinstance(node, ast.GeoLiteral):
        return ("geo", node.shape.kind, node.shape.coordinates)
    if isinstance(node, ast.Path):
        return ("path", *[(s.name, *s.indexes) if s.indexes else s.name for s in node.segments])
    if isinstance(node, ast.Call):
        return ("call", node.name, *[strip(a) for a in node.args])
    if isinstance(node, ast.Unary):
        return (node.op, strip(node.operand))
    if isinstance(node, ast.Binary):
        return (node.op, strip(node.left), strip(node.right))
    raise TypeError(node)


FILTERS = [
    ("name eq 'PM10'", ("eq", ("path", "name"), ("lit", "string", "PM10"))),
    ("name eq 'it''s'", ("eq", ("path", "name"), ("lit", "string", "it's"))),
    ("result gt 5", ("gt", ("path", "result"), ("lit", "int", 5))),
    ("result ge -2.5", ("ge", ("path", "result"), ("lit", "float", -2.5))),
    ("result lt 1.5e3", ("lt", ("path", "result"), ("lit", "float", 1500.0))),
    ("result le 10L", ("le", ("path", "result"), ("lit", "int", 10))),
    ("result ne 2d", ("ne", ("path", "result"), ("lit", "float", 2.0))),
    ("a eq 1 and b eq 2 or c eq 3",
     ("or", ("and", ("eq", ("path", "a"), ("lit", "int", 1)), ("eq", ("path", "b"), ("lit", "int", 2))),
      ("eq", ("path", "c"), ("lit", "int", 3)))),
    ("a eq 1 and (b eq 2 or c eq 3)",
     ("and", ("eq", ("path", "a"), ("lit", "int", 1)),
      ("or", ("eq", ("path", "b"), ("lit", "int", 2)), ("eq", ("path", "c"), ("lit", "int", 3))))),
    ("not startswith(name, 'a')", ("not", ("call", "startswith", ("path", "name"), ("lit", "string", "a")))),
    ("result add 2 mul 3 eq 8",
     ("eq", ("add", ("path", "result"), ("mul", ("lit", "int", 2), ("lit", "int", 3))), ("lit", "int", 8))),
    ("(result sub 5) div 2 mod 3 gt 0",
     ("gt", ("mod", ("div", ("sub", ("path", "result"), ("lit", "int", 5)), ("lit", "int", 2)), ("lit", "int", 3)),
      ("lit", "int", 0))),
    ("- result gt 0", ("gt", ("-", ("path", "result")), ("lit", "int", 0))),
    ("Datastream/ObservedProperty/name eq 'x'",
     ("eq", ("path", "Datastream", "ObservedProperty", "name"), ("lit", "string", "x"))),
    ("properties/list[1] eq 2", ("eq", ("path", "properties", ("list", 1)), ("lit", "int", 2))),
    ("@iot.id eq 3", ("eq", ("path", "@iot.id"), ("lit", "int", 3))),
    ("phenomenonTime ge 2024-01-01T00:00:00Z",
     ("ge", ("path", "phenomenonTime"), ("lit", "datetime", datetime(2024, 1, 1, tzinfo=UTC)))),
    ("phenomenonTime lt 2024-01-01T01:02:03.250+02:00",
     ("lt", ("path", "phenomenonTime"),
      ("lit", "datetime", datetime(2024, 1, 1, 1, 2, 3, 250000, tzinfo=timezone(timedelta(hours=2)))))),
    ("date(phenomenonTime) eq 2024-05-17",
     ("eq", ("call", "date", ("path", "phenomenonTime")), ("lit", "date", date(2024, 5, 17)))),
    ("time(phenomenonTime) gt 12:30:00",
     ("gt", ("call", "time", ("path", "phenomenonTime")), ("lit", "time", time(12, 30)))),
    ("phenomenonTime gt now() sub duration'P1D'",
     ("gt", ("path", "phenomenonTime"), ("sub", ("call", "now"), ("lit", "duration", "P1D")))),
    ("result eq true or result eq null",
     ("or", ("eq", ("path", "result"), ("lit", "bool", True)), ("eq", ("path", "result"), ("lit", "null", None)))),
    ("geo.intersects(location, geography'POLYGON((0 0, 1 0, 1 1, 0 0))')",
     ("call", "geo.intersects", ("path", "location"),
      ("geo", "Polygon", (((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 0.0)),)))),
    ("st_equals(location, geography'POINT(10.5 -3)')",
     ("call", "st_equals", ("path", "location"), ("geo", "Point", (10.5, -3.0)))),
    ("NAME EQ 'x' AND notes ne 'y'",
     ("and", ("eq", ("path", "NAME"), ("lit", "string", "x")), ("ne", ("path", "notes"), ("lit", "string", "y")))),
    ("concat(concat(name, ' '), description) eq 'a b'",
     ("eq", ("call", "concat", ("call", "concat", ("path", "name"), ("lit", "string", " ")), ("path", "description")),
      ("lit", "string", "a b"))),
]  # fmt: skip


@pytest.mark.parametrize(("text", "tree"), FILTERS, ids=[f[0] for f in FILTERS])
def test_filter_trees(text: str, tree: object) -> None:
    assert strip(parse_filter(text)) == tree


SYNTAX_ERRORS = [
    ("name eq", 8, "end of text"),
    ("name eq 'x", 9, "unexpected character"),
    ("(name eq 'x'", 13, "expected ')'"),
    ("name eq 'x' and", 16, "end of text"),
    ("name eq 1 1", 11, "unexpected '1'"),
    ("name = 'x'", 6, "unexpected '='; expected"),
    ('name eq "x"', 9, "unexpected character"),
    ("startswith(name 'a')", 17, "unexpected"),
    ("name eq 'x';DROP TABLE things", 12, "unexpected ';'; expected end of text"),
    ("result gt 2024-13-45T00:00:00Z", 11, "invalid date-time"),
    ("geo.intersects(location, geography'POLYGON((0 0, 1 1))')", 26, "polygon ring"),
    ("geo.intersects(location, geography'POINT(1)')", 26, "malformed WKT"),
    ("phenomenonTime gt duration'P1X'", 19, "invalid ISO 8601 duration"),
    ("", None, "empty value"),
]


@pytest.mark.parametrize(("text", "column", "message"), SYNTAX_ERRORS, ids=[s[0] or "empty" for s in SYNTAX_ERRORS])
def test_filter_syntax_errors_say_what_and_where(text: str, column: int | None, message: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_filter(text)
    assert info.value.parameter == "$filter"
    assert info.value.column == column
    assert message in info.value.message


def test_orderby_directions_in_any_case() -> None:
    items = parse_orderby("phenomenonTime DESC, name asc,id, result Desc")
    assert [(strip(i.expr), i.descending) for i in items] == [
        (("path", "phenomenonTime"), True),
        (("path", "name"), False),
        (("path", "id"), False),
        (("path", "result"), True),
    ]


def test_select_items() -> None:
    assert [s.path for s in parse_select("id,name, Datastreams,@iot.selfLink")] == [
        ("id",),
        ("name",),
        ("Datastreams",),
        ("@iot.selfLink",),
    ]


def test_expand_nested_options_and_slash_paths() -> None:
    items = parse_expand(
        "Datastreams($select=name;$expand=Observations($top=1;$orderby=phenomenonTime desc;$filter=result gt 3)),"
        "Locations/Things($count=true;$skip=2)"
    )
    ds, loc = items
    assert ds.path == ("Datastreams",)
    assert [s.path for s in ds.options.select or ()] == [("name",)]
    obs = ds.options.expand[0]
    assert obs.path == ("Observations",)
    assert obs.options.top == 1
    assert obs.options.orderby[0].descending is True
    assert strip(obs.options.filter) == ("gt", ("path", "result"), ("lit", "int", 3))
    assert obs.options.raw == {"$top": "1", "$orderby": "phenomenonTime desc", "$filter": "result gt 3"}
    assert loc.path == ("Locations", "Things")
    assert loc.options.count is True and loc.options.skip == 2


def test_query_options() -> None:
    options = parse_query_options(
        [("$top", "10"), ("$skip", "5"), ("$count", "true"), ("$filter", "result gt 1"), ("other", "ignored")]
    )
    assert (options.top, options.skip, options.count) == (10, 5, True)
    assert options.raw == {"$top": "10", "$skip": "5", "$count": "true", "$filter": "result gt 1"}


@pytest.mark.parametrize(
    ("params", "parameter", "message"),
    [
        ([("$top", "-1")], "$top", "non-negative integer"),
        ([("$top", "ten")], "$top", "non-negative integer"),
        ([("$skip", "1.5")], "$skip", "non-negative integer"),
        ([("$count", "yes")], "$count", "true or false"),
        ([("$top", "1"), ("$top", "2")], "$top", "more than once"),
        ([("$filtre", "x")], "$filtre", "unknown system query option"),
        ([("$expand", "Datastreams($top=x)")], "$expand", "unexpected"),
        ([("$orderby", "name sideways")], "$orderby", "unexpected"),
    ],
)
def test_query_option_errors(params: list[tuple[str, str]], parameter: str, message: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_query_options(params)
    assert info.value.parameter == parameter
    assert message in info.value.message


def test_wkt_shapes() -> None:
    assert parse_wkt("POINT (1 2)").kind == "Point"
    assert parse_wkt("SRID=4326;POINT(1 2)").coordinates == (1.0, 2.0)
    assert parse_wkt("LINESTRING(0 0, 1 1, 2 1)").kind == "LineString"
    assert parse_wkt("MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))").kind == "MultiPolygon"
    assert parse_wkt("POLYGON((0 0, 1 0, 1 1, 0 0))").wkt() == "POLYGON((0.0 0.0, 1.0 0.0, 1.0 1.0, 0.0 0.0))"
    with pytest.raises(ValueError, match="SRID 4326"):
        parse_wkt("SRID=3857;POINT(1 2)")


def test_option_names_in_any_case_are_the_standards() -> None:
    options = parse_query_options([("$OrderBy", "id desc"), ("$TOP", "3"), ("$selecT", "id"), ("top", "9")])
    assert options.top == 3 and options.select is not None and len(options.orderby) == 1
    assert options.raw == {"$orderby": "id desc", "$top": "3", "$select": "id"}


def test_nested_option_names_in_any_case() -> None:
    [item] = parse_expand("Datastreams($orderBy=id desc;$TOP=1;$Select=name;$Expand=Thing;$Count=true)")
    assert item.options.top == 1 and item.options.count is True and len(item.options.orderby) == 1
    assert set(item.options.raw) == {"$orderby", "$top", "$select", "$expand", "$count"}
