"""Resource paths (OGC 18-088, 9.2, usages 1-8): pure parsing, table tests."""

from __future__ import annotations

import pytest

from api.sta.resource_path import ResourcePath, parse_resource_path
from api.sta.translate import PathNotFound, PathStep

S = PathStep

PATHS = [
    ("Things", ResourcePath((S("Things"),))),
    ("Things(1)", ResourcePath((S("Things", 1),), single=True)),
    ("Things(1)/", ResourcePath((S("Things", 1),), single=True)),
    ("Things(1)/Datastreams", ResourcePath((S("Things", 1), S("Datastreams")))),
    ("Things(1)/Datastreams(2)/Observations",
     ResourcePath((S("Things", 1), S("Datastreams", 2), S("Observations")))),
    ("Datastreams(1)/Thing", ResourcePath((S("Datastreams", 1), S("Thing")), single=True)),
    ("Datastreams(1)/Thing/Locations", ResourcePath((S("Datastreams", 1), S("Thing"), S("Locations")))),
    ("Things(1)/name", ResourcePath((S("Things", 1),), property="name", single=True)),
    ("Things(1)/name/$value", ResourcePath((S("Things", 1),), property="name", value=True, single=True)),
    ("Datastreams(1)/Thing/name", ResourcePath((S("Datastreams", 1), S("Thing")), property="name", single=True)),
    ("Things/$ref", ResourcePath((S("Things"),), ref=True)),
    ("Things(1)/Datastreams/$ref", ResourcePath((S("Things", 1), S("Datastreams")), ref=True)),
    ("Datastreams(1)/Thing/$ref", ResourcePath((S("Datastreams", 1), S("Thing")), ref=True, single=True)),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), PATHS, ids=[p[0] for p in PATHS])
def test_paths(text: str, expected: ResourcePath) -> None:
    assert parse_resource_path(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Gadgets",
        "things",  # names are case-sensitive
        "Things(x)",
        "Things('1')",
        "Things(-1)",
        "Things(1)(2)",
        "Things(1)/Sensor",
        "Things/Datastreams",  # navigate from one entity, not a collection
        "Datastreams(1)/Thing(1)",
        "Things(1)/name/$value/more",
        "Things(1)/name/first",
        "Things(1)/$value",
        "$ref",
        "Things(1)/$ref/Datastreams",
        "Things(99999999999999999999)",
        "Things(1);DROP TABLE things",
        "Things(1)/Datastreams(2)/../Sensors",
    ],
)
def test_unknown_paths(text: str) -> None:
    with pytest.raises(PathNotFound):
        parse_resource_path(text)
