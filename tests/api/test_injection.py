"""Injection, systematically: a sentinel in every literal and identifier position the API accepts.

Each position is a request with the sentinel (and its variants: quotes, backslashes, dollar
quoting, comment markers, NUL, placeholder and format look-alikes) put where a client can put
text. Either the request is refused (400 with a message; 404 for a resource path that names
nothing; 501 for a result format that is not served) and no SQL exists for it, or the sentinel
travels only as a bound parameter: it is in the parameters and in no statement text (the page
statement with its expansions, the count statement, the existence check of a parent path).

Two levels: the planner itself (pure, every position on both translator flavours), and the
API over HTTP on a real database, where every statement the API sends is recorded from its
connections (direct GETs, dataArray reads, JSON and multipart batches, writes), so positions
that reach SQL by other paths than the planner are covered too. MQTT ``$select`` topics go
through the same parser; their subscriptions are checked too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

import api.app
from api.errors import ApiError
from api.mqtt.topics import parse_subscription
from api.sta.data_array import plan_items
from api.sta.odata.parser import QueryError
from api.sta.routes import plan_request
from api.sta.translate import PathNotFound, PathStep, ServerFeatures, Translator
from store.sta import configure_connection
from tests.api.conftest import BASE, ROOT, sample_database

SENTINELS = [
    "x'); DROP TABLE things; --",
    "x' OR '1'='1'; DROP TABLE things; --",
    "x\\'); DROP TABLE things; --",
    'x"); DROP TABLE things; --',
    "$$; DROP TABLE things; $$",
    "$q$ || pg_sleep(10) || $q$",
    "x'/* DROP TABLE things */--",
    "x';\nDROP TABLE things;\n--",
    "x\x00'); DROP TABLE things; --",
    "%(p0)s'); DROP TABLE things; --",
    "{}'); DROP TABLE things; --{0}",
    "x') UNION SELECT pg_sleep(10) --",
]
MARKERS = ("DROP TABLE", "pg_sleep", "UNION SELECT")


def q(text: str) -> str:
    """An OData string literal."""
    return "'" + text.replace("'", "''") + "'"


Outcome = Literal["bound", "rejected"]


@dataclass(frozen=True)
class Position:
    """Where a client puts text: ``path`` and query options as functions of the sentinel."""

    name: str
    path: Callable[[str], str]
    options: Callable[[str], list[tuple[str, str]]]
    outcome: Outcome


def filter_at(path: str, expr: Callable[[str], str], outcome: Outcome, name: str = "") -> Position:
    return Position(name or f"{path} $filter={expr('S')}", lambda s: path, lambda s: [("$filter", expr(s))], outcome)


def option(path: str, key: str, value: Callable[[str], str], outcome: Outcome) -> Position:
    return Position(f"{path} {key}={value('S')}", lambda s: path, lambda s: [(key, value(s))], outcome)


def at_path(path: Callable[[str], str]) -> Position:
    return Position(f"path {path('S')}", path, lambda s: [], "rejected")


POSITIONS: list[Position] = [
    # $filter string literals, both sides, and every string function's arguments
    filter_at("Things", lambda s: f"name eq {q(s)}", "bound"),
    filter_at("Things", lambda s: f"{q(s)} eq name", "bound"),
    filter_at("Things", lambda s: f"name ne {q(s)} or description gt {q(s)}", "bound"),
    filter_at("Things", lambda s: f"substringof({q(s)}, name)", "bound"),
    filter_at("Things", lambda s: f"contains(name, {q(s)})", "bound"),
    filter_at("Things", lambda s: f"endswith(name, {q(s)})", "bound"),
    filter_at("Things", lambda s: f"startswith({q(s)}, name)", "bound"),
    filter_at("Things", lambda s: f"length({q(s)}) gt 0", "bound"),
    filter_at("Things", lambda s: f"indexof(name, {q(s)}) eq 1", "bound"),
    filter_at("Things", lambda s: f"substring({q(s)}, 1) eq name", "bound"),
    filter_at("Things", lambda s: f"substring({q(s)}, 1, 2) eq name", "bound"),
    filter_at("Things", lambda s: f"tolower({q(s)}) eq name", "bound"),
    filter_at("Things", lambda s: f"toupper(name) eq {q(s)}", "bound"),
    filter_at("Things", lambda s: f"trim({q(s)}) eq name", "bound"),
    filter_at("Things", lambda s: f"concat(name, {q(s)}) eq concat({q(s)}, name)", "bound"),
    filter_at("Things", lambda s: f"not (name eq {q(s)}) and length(name) gt 1", "bound"),
    # JSON values, typed results, values behind navigation properties
    filter_at("Things", lambda s: f"properties/stationKind eq {q(s)}", "bound"),
    filter_at("Things", lambda s: f"properties/tags[0] eq {q(s)}", "bound"),
    filter_at("Things", lambda s: f"Datastreams/name eq {q(s)}", "bound"),
    filter_at("Things", lambda s: f"Locations/Things/Datastreams/Observations/result eq {q(s)}", "bound"),
    filter_at("Observations", lambda s: f"result eq {q(s)}", "bound"),
    filter_at("Observations", lambda s: f"result/state eq {q(s)}", "bound"),
    filter_at("Observations", lambda s: f"parameters/method eq {q(s)}", "bound"),
    filter_at("Observations", lambda s: f"Datastream/ObservedProperty/name eq {q(s)}", "bound"),
    filter_at("Datastreams", lambda s: f"unitOfMeasurement/symbol eq {q(s)}", "bound"),
    # where only a typed literal fits, a string is refused
    filter_at("Things", lambda s: f"id eq {q(s)}", "rejected"),
    filter_at("Observations", lambda s: f"phenomenonTime gt {q(s)}", "rejected"),
    filter_at("HistoricalLocations", lambda s: f"time lt {q('2024-01-01T00:00:00Z' + s)}", "rejected"),
    filter_at("Locations", lambda s: f"st_relate(location, geography'POINT(1 2)', {q(s)})", "rejected"),
    filter_at("Locations", lambda s: f"st_relate(location, geography'POINT(1 2)', {q('T********' + s)})", "rejected"),
    filter_at("Locations", lambda s: f"geo.distance(location, {q(s)}) lt 1", "rejected"),
    filter_at("Locations", lambda s: f"geo.intersects({q(s)}, location)", "rejected"),
    filter_at("Locations", lambda s: f"st_within(location, {q(s)})", "rejected"),
    # date/time, duration and geography literals are parsed: the sentinel never fits their syntax
    filter_at("Observations", lambda s: f"phenomenonTime gt 2024-01-01T00:00:00Z{s}", "rejected"),
    filter_at("Observations", lambda s: f"phenomenonTime gt 2024-01-01{s}", "rejected"),
    filter_at("Observations", lambda s: f"time(phenomenonTime) eq 12:00:00{s}", "rejected"),
    filter_at("Observations", lambda s: f"phenomenonTime lt now() sub duration{q(s)}", "rejected"),
    filter_at("Observations", lambda s: f"phenomenonTime lt now() sub duration{q('P1D' + s)}", "rejected"),
    filter_at("Locations", lambda s: f"geo.intersects(location, geography{q(s)})", "rejected"),
    filter_at("Locations", lambda s: f"geo.intersects(location, geography{q('POINT(1 2)' + s)})", "rejected"),
    filter_at("Locations", lambda s: f"st_equals(location, geography{q('SRID=4326;' + s + 'POINT(1 2)')})", "rejected"),
    # names: properties, JSON members, navigation segments, functions
    filter_at("Things", lambda s: f"{s} eq 1", "rejected"),
    filter_at("Things", lambda s: f"name eq {s}", "rejected"),
    filter_at("Things", lambda s: f"properties/{s} eq 1", "rejected"),
    filter_at("Things", lambda s: f"properties/tags[{s}] eq 1", "rejected"),
    filter_at("Observations", lambda s: f"Datastream/{s} eq 1", "rejected"),
    filter_at("Observations", lambda s: "Datastream/pg_sleep eq 1", "rejected", "Datastream/pg_sleep"),
    filter_at("Things", lambda s: f"{s}(name) eq 1", "rejected"),
    filter_at("Things", lambda s: "pg_sleep(10) eq 1", "rejected", "pg_sleep()"),
    # $orderby expressions
    option("Things", "$orderby", lambda s: f"concat(name, {q(s)}) desc", "bound"),
    option("Things", "$orderby", lambda s: f"indexof(name, {q(s)}), name eq {q(s)}", "bound"),
    option("Observations", "$orderby", lambda s: f"result eq {q(s)}", "bound"),
    option("Things", "$orderby", lambda s: s, "rejected"),
    option("Things", "$orderby", lambda s: f"name {s}", "rejected"),
    option("Things", "$orderby", lambda s: f"properties/{s}", "rejected"),
    # $select and $expand names
    option("Things", "$select", lambda s: s, "rejected"),
    option("Things", "$select", lambda s: f"name,{s}", "rejected"),
    option("Things", "$select", lambda s: f"properties/{s}", "rejected"),
    option("Things", "$expand", lambda s: s, "rejected"),
    option("Things", "$expand", lambda s: f"Datastreams/{s}", "rejected"),
    option("Things", "$expand", lambda s: f"Datastreams({s})", "rejected"),
    option("Things", "$expand", lambda s: f"Datastreams($select={s})", "rejected"),
    option("Things", "$expand", lambda s: f"Datastreams($top={s})", "rejected"),
    # literals inside $expand(...)
    option("Things", "$expand", lambda s: f"Datastreams($filter=name eq {q(s)})", "bound"),
    option("Things", "$expand", lambda s: f"Datastreams($orderby=concat(name, {q(s)}))", "bound"),
    option("Things", "$expand", lambda s: f"Datastreams($count=true;$filter=startswith(name, {q(s)}))", "bound"),
    option(
        "Things",
        "$expand",
        lambda s: f"Datastreams($expand=Observations($filter=result eq {q(s)};$orderby=concat(result, {q(s)})))",
        "bound",
    ),
    option("Things", "$expand", lambda s: f"Locations/Things($filter=properties/stationKind eq {q(s)})", "bound"),
    # the other options
    option("Things", "$top", lambda s: f"1{s}", "rejected"),
    option("Things", "$skip", lambda s: s, "rejected"),
    option("Things", "$count", lambda s: s, "rejected"),
    option("Things", "$resultFormat", lambda s: s, "rejected"),
    Position("unknown option $<S>", lambda s: "Things", lambda s: [("$" + s, "1")], "rejected"),
    # entity ids and segments of resource paths
    at_path(lambda s: f"Things({s})"),
    at_path(lambda s: f"Things(1{s})"),
    at_path(lambda s: f"Things(1)/{s}"),
    at_path(lambda s: f"Things(1)/Datastreams({s})"),
    at_path(lambda s: f"Things(1)/name/{s}"),
    at_path(lambda s: f"Datastreams(1)/{s}/Observations"),
    at_path(lambda s: s),
    at_path(lambda s: "Datastreams(1)/pg_sleep"),
]
BOUND = [p for p in POSITIONS if p.outcome == "bound"]


def _texts(translator: Translator, planned: Any) -> list[str]:
    """Every statement text a request can run: page (with expansions), count, parent check."""
    texts = [planned.statement.as_string(None)]
    if planned.query.count_statement is not None:
        texts.append(planned.query.count_statement.as_string(None))
    parent = planned.path.steps[:-1]
    if parent:
        texts.append(translator.exists(parent).statement.as_string(None))
    return texts


def plan_outcome(translator: Translator, rest: str, items: list[tuple[str, str]], sentinel: str) -> str:
    try:
        planned = plan_request(translator, ROOT, rest, tuple(items))
    except (QueryError, PathNotFound) as exc:
        assert str(exc).strip(), "a refusal says why"
        return "rejected"
    for text in _texts(translator, planned):
        assert sentinel not in text
        assert not any(marker in text for marker in MARKERS), text
    if any(isinstance(v, str) and sentinel in v for v in planned.query.params.values()):
        return "bound"
    return "composed without the sentinel"


TRANSLATORS = {"postgis": Translator(ServerFeatures(postgis=True)), "plain": Translator(ServerFeatures())}


@pytest.mark.parametrize("position", POSITIONS, ids=[p.name for p in POSITIONS])
def test_every_position_is_bound_or_refused(position: Position) -> None:
    for flavour, translator in TRANSLATORS.items():
        for sentinel in SENTINELS:
            items = [*position.options(sentinel), ("$count", "true")]
            found = plan_outcome(translator, position.path(sentinel), items, sentinel)
            assert found == position.outcome, (flavour, sentinel)


OBSERVATION_FILTERS = [p for p in BOUND if p.path("S") == "Observations" and p.options("S")[0][0] == "$filter"]


@pytest.mark.parametrize("position", OBSERVATION_FILTERS, ids=[p.name for p in OBSERVATION_FILTERS])
def test_data_array_reads_bind_the_same_literals(position: Position) -> None:
    """``$resultFormat=dataArray`` plans its own options (``$select`` and ``$expand`` added)."""
    for sentinel in SENTINELS:
        items = plan_items([("$resultFormat", "dataArray"), *position.options(sentinel)])
        assert plan_outcome(TRANSLATORS["postgis"], "Observations", list(items), sentinel) == "bound"


def test_data_array_select_names_are_refused() -> None:
    """Its ``$select`` names the components: checked before any planning."""
    for sentinel in SENTINELS:
        for select in (f"result,{sentinel}", f"FeatureOfInterest/{sentinel}", sentinel):
            with pytest.raises(ApiError) as info:
                plan_items([("$resultFormat", "dataArray"), ("$select", select)])
            assert info.value.code == 400 and info.value.parameter == "$select" and info.value.message


def test_mqtt_subscriptions_with_the_sentinel_are_not_served() -> None:
    """A topic that is not a resource path with model names is never read (no SQL at all)."""
    for sentinel in SENTINELS:
        for topic in (
            f"v1.1/Things?$select={sentinel}",
            f"v1.1/Things?$select=name,{sentinel}",
            f"v1.1/Things({sentinel})",
            f"v1.1/Things(1)/{sentinel}",
            f"v1.1/Datastreams(1)/{sentinel}/Observations",
            f"v1.1/Things?$filter=name eq {q(sentinel)}",
            f"v1.1/{sentinel}",
        ):
            assert parse_subscription(topic) is None, topic
    # what is served is translated from model names only
    subscription = parse_subscription("v1.1/Things(1)/Datastreams?$select=name,description")
    assert subscription is not None
    assert subscription.select == ("name", "description")
    # the notifier reads each changed entity with the subscription's options
    query = TRANSLATORS["plain"].entity((PathStep("Datastreams", 7),), subscription.options, ROOT)
    assert query.params == {"p0": 7, "p1": 2, "p2": 0}  # id, limit, offset (no link selected: no base URL)


# ---- over HTTP, every statement recorded ---------------------------------------------------------


class Recorder:
    """The text of every statement the API's connections send (the real database runs them)."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def cursor_factory(self) -> type[psycopg.Cursor[Any]]:
        texts = self.texts

        def text(query: Any, conn: psycopg.Connection[Any]) -> str:
            if isinstance(query, sql.Composable):
                return query.as_string(conn)
            return query.decode() if isinstance(query, bytes) else str(query)

        class Recording(psycopg.Cursor[Any]):
            def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
                texts.append(text(query, self.connection))
                return super().execute(query, params, **kwargs)

            def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
                texts.append(text(query, self.connection))
                super().executemany(query, params_seq, **kwargs)

            def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
                texts.append(text(statement, self.connection))
                return super().copy(statement, params, **kwargs)

        return Recording

    def check(self, sentinel: str) -> None:
        assert self.texts, "the request ran no statement at all"
        for t in self.texts:
            assert sentinel not in t and not any(marker in t for marker in MARKERS), t
        self.texts.clear()


@pytest.fixture(scope="module")
def recorded(pg_server_url: str) -> Iterator[tuple[TestClient, Recorder, str]]:
    """The API on its own copy of the sample data (this module writes), every statement recorded."""
    recorder = Recorder()

    def configure(conn: psycopg.Connection[Any]) -> None:
        configure_connection(conn)
        conn.cursor_factory = recorder.cursor_factory()

    with sample_database(pg_server_url, "bydata_inj") as url, pytest.MonkeyPatch.context() as patch:
        patch.setattr(api.app, "configure_connection", configure)
        app = api.app.create_app(url, pool_min=1, pool_max=2, public_url=BASE)
        with TestClient(app, base_url=BASE) as client:
            recorder.texts.clear()
            yield client, recorder, url


def _status_ok(outcome: Outcome, status: int, sentinel: str) -> bool:
    if outcome == "bound":  # PostgreSQL text cannot hold NUL: psycopg refuses it before sending (400)
        return status == 200 or ("\x00" in sentinel and status == 400)
    return status in (400, 404, 501)


def _url(position: Position, sentinel: str) -> str:
    items = "&".join(f"{quote(k, safe='$')}={quote(v, safe='')}" for k, v in position.options(sentinel))
    path = quote(position.path(sentinel), safe="/()$")
    return f"{path}?{items}" if items else path


def test_http_requests_send_the_sentinel_only_as_parameters(recorded: tuple[TestClient, Recorder, str]) -> None:
    client, recorder, _ = recorded
    for position in POSITIONS:
        for sentinel in SENTINELS:
            response = client.get(f"{ROOT}/{_url(position, sentinel)}")
            assert _status_ok(position.outcome, response.status_code, sentinel), (position.name, response.text)
            error = response.json() if response.status_code != 200 else None
            if error is not None:
                assert error["message"] and error["code"] == response.status_code
            if recorder.texts:
                recorder.check(sentinel)
            elif position.outcome == "bound" and response.status_code == 200:
                pytest.fail(f"{position.name}: answered without running a statement")
    _unchanged(client)


def test_data_array_requests_send_the_sentinel_only_as_parameters(
    recorded: tuple[TestClient, Recorder, str],
) -> None:
    client, recorder, _ = recorded
    for sentinel in SENTINELS:
        params = {"$resultFormat": "dataArray", "$filter": f"result eq {q(sentinel)} or result gt 30"}
        response = client.get(f"{ROOT}/Observations", params=params)
        assert response.status_code == (400 if "\x00" in sentinel else 200), response.text
        recorder.check(sentinel)
    _unchanged(client)


def test_batch_urls_send_the_sentinel_only_as_parameters(recorded: tuple[TestClient, Recorder, str]) -> None:
    client, recorder, _ = recorded
    for sentinel in SENTINELS:
        requests = [
            {"id": str(i), "method": "get", "url": _url(position, sentinel)} for i, position in enumerate(POSITIONS)
        ]
        requests += [
            {"id": "del", "method": "delete", "url": quote(f"Things({sentinel})", safe="()$")},
            {"id": "patch", "method": "patch", "url": quote(f"Things(1)/{sentinel}", safe="()/$"), "body": {}},
            {"id": "ref", "method": "get", "url": quote(f"${sentinel}/Datastreams", safe="/$")},
        ]
        response = client.post(
            f"{ROOT}/$batch", content=orjson.dumps({"requests": requests}), headers={"content-type": "application/json"}
        )
        assert response.status_code == 200, response.text
        answers = {a["id"]: a["status"] for a in response.json()["responses"]}
        for i, position in enumerate(POSITIONS):
            assert _status_ok(position.outcome, answers[str(i)], sentinel), (position.name, answers[str(i)])
        assert answers["del"] == 404 and answers["patch"] in (400, 404) and answers["ref"] == 404
        recorder.check(sentinel)
        # the same in a multipart batch
        body = (
            "--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            f"GET {_url(POSITIONS[0], sentinel)} HTTP/1.1\r\n\r\n\r\n--b--\r\n"
        )
        response = client.post(
            f"{ROOT}/$batch", content=body.encode(), headers={"content-type": "multipart/mixed; boundary=b"}
        )
        assert response.status_code == 200 and ("HTTP/1.1 200" in response.text or "\x00" in sentinel)
        recorder.check(sentinel)
    _unchanged(client)


def test_written_values_and_keys_are_parameters(recorded: tuple[TestClient, Recorder, str]) -> None:
    """Entity bodies are text a client controls too: names, descriptions, JSON keys and values."""
    client, recorder, url = recorded
    for sentinel in SENTINELS:
        if "\x00" in sentinel:
            continue  # below
        thing = {"name": sentinel, "description": sentinel, "properties": {sentinel: sentinel, "k": [sentinel]}}
        response = client.post(f"{ROOT}/Things", json=thing)
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["name"] == sentinel and created["properties"] == thing["properties"]
        response = client.patch(created["@iot.selfLink"], json={"description": sentinel + "!", "properties": {}})
        assert response.status_code == 200 and response.json()["description"] == sentinel + "!"
        response = client.post(
            f"{ROOT}/Datastreams(3)/Observations", json={"phenomenonTime": "2030-01-01T00:00:00Z", "result": sentinel}
        )
        assert response.status_code == 201, response.text
        assert response.json()["result"] == sentinel
        assert client.delete(response.json()["@iot.selfLink"]).status_code == 200
        response = client.post(f"{ROOT}/Things", json={"name": "n", "description": "d", sentinel: 1})
        assert response.status_code == 400 and "has no property" in response.json()["message"]
        recorder.check(sentinel)
        assert client.delete(created["@iot.selfLink"]).status_code == 200
        recorder.texts.clear()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM things").fetchone() == (3,)


def test_nul_in_written_text_is_a_400(recorded: tuple[TestClient, Recorder, str]) -> None:
    """PostgreSQL text cannot hold NUL: a clear 400 that names the reason, and nothing is stored."""
    client, recorder, url = recorded
    for body in (
        {"name": "a\x00b", "description": "d"},
        {"name": "n", "description": "d", "properties": {"k": "a\x00b"}},
        {"name": "n", "description": "d", "properties": {"a\x00b": 1}},
    ):
        response = client.post(f"{ROOT}/Things", json=body)
        assert response.status_code == 400, response.text
        assert "NUL" in response.json()["message"]
    response = client.patch(f"{ROOT}/Things(1)", json={"name": "a\x00b"})
    assert response.status_code == 400 and "NUL" in response.json()["message"]
    recorder.texts.clear()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM things").fetchone() == (3,)
        assert conn.execute("SELECT name FROM things WHERE id = 1").fetchone() == ("Bodø air station",)


def _unchanged(client: TestClient) -> None:
    response = client.get(f"{ROOT}/Things", params={"$select": "id"})
    assert [e["@iot.id"] for e in response.json()["value"]][:3] == [1, 2, 3]
    assert client.get(f"{ROOT}/Observations", params={"$count": "true", "$top": "0"}).json()["@iot.count"] == 31
