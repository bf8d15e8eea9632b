"""Request shapes and the planner that translates a shape once (pure: no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from psycopg import sql

from api.sta import routes, shapes
from api.sta.odata.parser import QueryError
from api.sta.translate import PathNotFound, ServerFeatures, Translator

T = datetime(2024, 1, 3, tzinfo=UTC)
LIFTED = [
    ("Datastreams(7)/Observations", [("$top", "5")], [7]),
    ("Things(1)/Datastreams(22)/Observations", [], [1, 22]),
    ("Observations", [("$filter", "phenomenonTime ge 2024-01-03T00:00:00Z")], [T]),
    ("Observations", [("$filter", "phenomenonTime lt 2024-01-03T02:00:00+02:00")], [T]),
    ("Observations", [("$filter", "resultTime gt 2024-01-03t00:00z or resultTime eq 2024-01-03T00:00:00.0Z")], [T, T]),
    # quoted text, geography and durations keep their date-times
    ("Things", [("$filter", "name eq '2024-01-03T00:00:00Z'")], None),
    ("Things", [("$filter", "name eq 'it''s 2024-01-03T00:00:00Z' and id eq 1")], None),
    ("Observations", [("$filter", "phenomenonTime ge 2024-01-03 and phenomenonTime lt 2024-01-04")], None),
    # only $filter is lifted
    ("Datastreams", [("$expand", "Observations($filter=phenomenonTime ge 2024-01-03T00:00:00Z)")], None),
    # not a date-time: left to the parser to reject
    ("Observations", [("$filter", "phenomenonTime ge 2024-13-03T00:00:00Z")], None),
]  # fmt: skip


@pytest.mark.parametrize(("rest", "items", "values"), LIFTED, ids=[f"{r[0]}?{r[1]}" for r in LIFTED])
def test_lift(rest: str, items: list[tuple[str, str]], values: list[Any] | None) -> None:
    lifted = shapes.lift(rest, items)
    if values is None:
        assert lifted is None
        return
    assert lifted is not None and list(lifted.values) == values
    # the request rebuilt with its own values has the same shape and values
    again = shapes.lift(*lifted.request(lifted.values))
    assert again is not None and again.key == lifted.key and again.values == lifted.values


def test_requests_differing_in_lifted_values_share_a_shape() -> None:
    a = shapes.lift("Datastreams(7)/Observations", [("$filter", "phenomenonTime ge 2024-01-03T00:00:00+01:00")])
    b = shapes.lift("Datastreams(8)/Observations", [("$filter", "phenomenonTime ge 2025-02-01T10:00:00.5+01:00")])
    c = shapes.lift("Datastreams(8)/Observations", [("$filter", "phenomenonTime gt 2025-02-01T10:00:00.5+01:00")])
    # a literal's offset can change the SQL (hour(), totaloffsetminutes()): it stays in the shape
    d = shapes.lift("Datastreams(8)/Observations", [("$filter", "phenomenonTime ge 2025-02-01T10:00:00.5Z")])
    assert a is not None and b is not None and c is not None and d is not None
    assert a.key == b.key != c.key
    assert d.key != b.key


TRANSLATOR = Translator(ServerFeatures(postgis=False))
BASE = "http://x/v1.1"


def _requests(day: int, ds: int) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    t0 = (T + timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%SZ")
    t1 = (T + timedelta(days=day + 1)).astimezone(timezone(timedelta(hours=2))).isoformat()
    tz0 = (T + timedelta(days=day, hours=10)).isoformat()
    tz2 = (T + timedelta(days=day, hours=10)).astimezone(timezone(timedelta(hours=2))).isoformat()
    return [
        (f"Datastreams({ds})/Observations",
         (("$filter", f"phenomenonTime ge {t0} and phenomenonTime lt {t1}"), ("$top", "1000"),
          ("$select", "@iot.id,phenomenonTime,result"))),
        ("Observations", (("$filter", f"result gt 90 and phenomenonTime ge {t0}"), ("$top", "9"), ("$count", "true"))),
        (f"Things({ds})/Datastreams({ds + 1})/Observations", (("$filter", f"resultTime le {t1}"), ("$orderby", "id"))),
        (f"Datastreams({ds})", (("$expand", "Observations($top=2;$filter=phenomenonTime ge 2024-01-01T00:00:00Z)"),)),
        (f"Datastreams({ds})/Observations/$ref", (("$filter", f"phenomenonTime ge {t0}"),)),
        (f"Observations({ds})/result", ()),
        (f"Datastreams({ds})/Thing/Locations", ()),
        (f"Observations({ds})", (("$expand", "Datastream,FeatureOfInterest"),)),
        ("Things", (("$filter", f"Datastreams/Observations/phenomenonTime ge {t0}"),)),
        # time parts and the offset of a literal are read at its own offset: one instant, two offsets
        ("Observations", (("$filter", f"hour({tz0}) eq 10 and totaloffsetminutes({tz0}) eq 120"),)),
        ("Observations", (("$filter", f"hour({tz2}) eq 10 and totaloffsetminutes({tz2}) eq 120"),)),
    ]  # fmt: skip


def _view(p: routes.Planned) -> tuple[object, ...]:
    q = p.query
    count = None if q.count_statement is None else q.count_statement.as_string(None)
    return (p.statement.as_string(None), q.params, count, q.top, q.skip, p.path, p.options.raw)


def test_planner_gives_what_translating_each_request_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = routes.plan_request

    def counting(*args: Any) -> routes.Planned:
        nonlocal calls
        calls += 1
        return real(*args)

    monkeypatch.setattr(routes, "plan_request", counting)
    planner = routes.Planner(TRANSLATOR, BASE)
    shapes_seen = len(_requests(0, 1))
    for n, (day, ds) in enumerate([(0, 1), (3, 17), (29, 999), (1, 2), (3, 17)]):
        for rest, items in _requests(day, ds):
            assert _view(planner(rest, items)) == _view(real(TRANSLATOR, BASE, rest, items)), (rest, items)
        if n == 0:
            first = calls
            assert first > shapes_seen  # each new shape is translated with stand-ins as well
    # later requests of known shapes (and the repeated request text) are not translated again
    assert calls == first


def test_errors_are_the_translations_errors() -> None:
    planner = routes.Planner(TRANSLATOR, BASE)
    for rest, items, error in [
        ("Datastreams(1)/Nope", (("$filter", "phenomenonTime ge 2024-01-03T00:00:00Z"),), PathNotFound),
        ("Observations", (("$filter", "phenomenonTime ge 2024-01-03T00:00:00Z and nope eq 1"),), QueryError),
        ("Observations", (("$filter", "name ge 2024-01-03T00:00:00Z"),), QueryError),
        ("Observations", (("$filter", "phenomenonTime ge 2024-02-30T00:00:00Z"),), QueryError),
    ]:
        for _ in range(2):
            with pytest.raises(error) as got:
                planner(rest, items)
            with pytest.raises(error) as expected:
                routes.plan_request(TRANSLATOR, BASE, rest, items)
            assert str(got.value) == str(expected.value)


def test_a_statement_that_follows_its_values_is_cached_by_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """If translating a shape's stand-ins gives another statement, each request is planned as it is."""
    real = routes.plan_request

    def value_in_text(translator: Translator, base: str, rest: str, items: Any) -> routes.Planned:
        planned = real(translator, base, rest, items)
        marked = sql.SQL(planned.statement.as_string(None) + " -- " + rest.replace("%", ""))
        return routes.Planned(planned.path, planned.options, planned.query, marked)

    monkeypatch.setattr(routes, "plan_request", value_in_text)
    planner = routes.Planner(TRANSLATOR, BASE)
    for ds in (1, 2, 1):
        got = planner(f"Datastreams({ds})/Observations", ())
        assert got.statement.as_string(None).endswith(f"-- Datastreams({ds})/Observations")
