"""The SensorThings API 1.1 read side over HTTP: resource paths -> translator -> store -> JSON.

Every GET goes through :func:`serve`: parse the resource path and the query options (pure),
translate them into one statement (pure), run it (``store.sta``), render the rows. Explicit
routes per entity set, property and navigation property exist so the OpenAPI document lists
every path; deeper navigation paths fall through to the catch-all route.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from api.errors import ApiError
from api.sta import entities as em
from api.sta import links, render, shapes
from api.sta.odata import ast
from api.sta.odata.parser import QueryError, canonical_option, parse_query_options
from api.sta.resource_path import ResourcePath, parse_resource_path
from api.sta.translate import Limits, NotImplementedQuery, PathNotFound, ServerFeatures, Translator
from api.sta.translate import Query as SqlQuery
from store import sta as store
from store.features import detect

VERSION = "v1.1"
PREFIX = f"/{VERSION}"

CONFORMANCE = (
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
    # api/write: tests/api/test_create_update_delete.py, test_batch.py, test_data_array.py
    "http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/batch-request/batch-request",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/data-array/data-array",
)


@dataclass(frozen=True, slots=True)
class StaContext:
    """What every request needs: the pool, the translator for this server, the public base URL."""

    pool: ConnectionPool
    translator: Translator
    base_url: str  # absolute, ending in /v1.1
    planner: Callable[[str, tuple[tuple[str, str], ...]], Planned]

    @classmethod
    def create(cls, pool: ConnectionPool, translator: Translator, base_url: str, cache_size: int = 256) -> StaContext:
        return cls(pool, translator, base_url, Planner(translator, base_url, cache_size))

    @classmethod
    def for_server(cls, pool: ConnectionPool, base_url: str, limits: Limits) -> StaContext:
        """The context for the server behind ``pool``: its translator knows whether PostGIS is there."""
        with pool.connection(timeout=30) as conn:
            features = detect(conn)
        translator = Translator(ServerFeatures(postgis=features.postgis_installed is not None), limits)
        return cls.create(pool, translator, base_url)


def _context(request: Request) -> StaContext:
    context: StaContext = request.app.state.sta
    return context


def service_root(base_url: str, extra: Callable[[str], Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """``extra``: more serverSettings for ``base_url`` from the other classes (its ``conformance`` is appended)."""
    settings: dict[str, Any] = {"conformance": list(CONFORMANCE)}
    if extra is not None:
        more = dict(extra(base_url))
        settings["conformance"] += more.pop("conformance", [])
        settings |= more
    return {
        "value": [{"name": e.set_name, "url": f"{base_url}/{e.set_name}"} for e in em.ENTITY_SETS.values()],
        "serverSettings": settings,
    }


def _root(request: Request) -> Response:
    return _json(service_root(_context(request).base_url, getattr(request.app.state, "server_settings", None)))


def _run(context: StaContext, planned: Planned) -> list[bytes]:
    """The planned statement's rows: each an entity's JSON text (UTF-8)."""
    with _database_errors(), context.pool.connection() as conn:
        return store.fetch_texts(conn, planned.statement, planned.query.params)


@contextmanager
def _database_errors() -> Iterator[None]:
    """Database trouble as the API's errors: bad values are the client's, the rest is 503."""
    try:
        yield
    except psycopg.errors.QueryCanceled as exc:
        raise ApiError(503, "the query took too long; narrow it with $filter or a smaller $top") from exc
    except psycopg.errors.DataError as exc:
        raise ApiError(400, f"the query cannot be evaluated: {exc.diag.message_primary or exc}") from exc
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise ApiError(503, f"the database is unavailable or busy ({type(exc).__name__}); try again") from exc


def _count(context: StaContext, query: SqlQuery, conn: psycopg.Connection[Any] | None = None) -> int | None:
    """``@iot.count``: the same rows as the page, counted, when ``$count=true`` asked for it."""
    if query.count_statement is None:
        return None
    if conn is not None:
        return int(store.fetch_scalar(conn, query.count_statement, query.params))
    with _database_errors(), context.pool.connection() as own:
        return int(store.fetch_scalar(own, query.count_statement, query.params))


@dataclass(frozen=True, slots=True)
class Planned:
    """A request translated: what to run and how to answer. Pure, so it is cached (:class:`Planner`).

    A request planned by its shape has the shape's ``options`` (literals of the request the
    shape was learnt from) with the request's own ``raw`` texts; ``path`` and the parameters
    are the request's.
    """

    path: ResourcePath
    options: ast.QueryOptions
    query: SqlQuery
    statement: sql.SQL  # the statement rendered once


def plan_request(translator: Translator, base_url: str, rest: str, items: tuple[tuple[str, str], ...]) -> Planned:
    """Resource path + query options -> statement (raises PathNotFound / QueryError)."""
    path = parse_resource_path(rest)
    options = parse_query_options(items)
    if options.result_format is not None and options.result_format.lower() != "default":
        raise NotImplementedQuery(
            f"result format {options.result_format!r} is not served (only the default and dataArray)",
            parameter="$resultFormat",
        )
    if path.property is not None:
        query = translator.property(path.steps, path.property)
    elif path.single:
        if path.ref:
            options = ast.QueryOptions(select=(ast.SelectItem(("@iot.selfLink",)),))
        query = translator.entity(path.steps, options, base_url)
    elif path.ref:
        query = translator.refs(path.steps, options, base_url)
    else:
        query = translator.collection(path.steps, options, base_url)
    return Planned(path, options, query, sql.SQL(query.statement.as_string(None)))


PlanFn = Callable[[str, tuple[tuple[str, str], ...]], "Planned"]


class Planner:
    """:func:`plan_request` behind two caches: by request text, and by request shape.

    Requests that differ only in entity ids and ``$filter`` date-times (:mod:`api.sta.shapes`)
    share one translated statement; each gets its own values bound in the parameters that
    held them. The translator binds ids and date-time literals as parameters, and may look at
    a date-time's offset (a shape keeps it); each shape confirms the rest: it is taken on only
    when translating it with two sets of stand-in values at the request's offsets gives the
    same statement, with each stand-in in parameters of its own, and the request's own
    translation agrees. Other requests are cached by their text.
    """

    def __init__(self, translator: Translator, base_url: str, size: int = 256) -> None:
        self._plan = partial(plan_request, translator, base_url)
        self._by_text: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], Planned] = OrderedDict()
        self._shapes: OrderedDict[object, _Shape | None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def __call__(self, rest: str, items: tuple[tuple[str, str], ...]) -> Planned:
        key = (rest, items)
        with self._lock:
            planned = self._by_text.get(key)
            if planned is not None:
                self._by_text.move_to_end(key)
                return planned
        planned = self._by_shape(rest, items)
        with self._lock:
            _remember(self._by_text, key, planned, self._size)
        return planned

    def _by_shape(self, rest: str, items: tuple[tuple[str, str], ...]) -> Planned:
        lifted = shapes.lift(rest, items)
        if lifted is None:
            return self._plan(rest, items)
        with self._lock:
            known = lifted.key in self._shapes
            shape = self._shapes.get(lifted.key)
        if shape is not None:
            return shape.bind(rest, items, lifted.values)
        planned = self._plan(rest, items)  # errors go to the client as they are
        if not known:  # learnt once; None: a shape whose statement depends on its values
            learnt = _Shape.learn(self._plan, lifted, planned)
            with self._lock:
                _remember(self._shapes, lifted.key, learnt, self._size)
        return planned


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any, size: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)


@dataclass(frozen=True, slots=True)
class _Shape:
    template: Planned
    slots: tuple[tuple[str, int], ...]  # (parameter, index of the lifted value)

    @classmethod
    def learn(cls, plan: PlanFn, lifted: shapes.Lifted, own: Planned) -> _Shape | None:
        """The shape of ``own`` (the request's own plan), or None when it is not one."""
        n = len(lifted.values)
        stand_ins = [[_stand_in(v, s, i) for i, v in enumerate(lifted.values)] for s in (1, 2)]
        try:
            a, b = (plan(*lifted.request(values)) for values in stand_ins)
        except (QueryError, PathNotFound):
            return None
        if any(_texts(p) != _texts(own) for p in (a, b)):
            return None
        pa, pb, po = a.query.params, b.query.params, own.query.params
        if pa.keys() != po.keys() or pb.keys() != po.keys():
            return None
        slots: list[tuple[str, int]] = []
        for name, value in pa.items():
            index = next((i for i in range(n) if _same(value, stand_ins[0][i])), None)
            if index is None:
                if not (_same(pb[name], value) and _same(po[name], value)):
                    return None  # a parameter that follows the values in some other way
                continue
            if not (_same(pb[name], stand_ins[1][index]) and _same(po[name], lifted.values[index])):
                return None
            slots.append((name, index))
        if {i for _, i in slots} != set(range(n)):
            return None
        return cls(a, tuple(slots))

    def bind(self, rest: str, items: tuple[tuple[str, str], ...], values: tuple[shapes.Value, ...]) -> Planned:
        t = self.template
        params = dict(t.query.params)
        for name, index in self.slots:
            params[name] = values[index]
        options = t.options
        if options.raw:  # the request's own texts, for its next links
            options = replace(options, raw={k: v for k, v in items if k.startswith("$")})
        return replace(t, path=parse_resource_path(rest), options=options, query=replace(t.query, params=params))


def _texts(planned: Planned) -> tuple[str, str | None]:
    count = planned.query.count_statement
    return planned.statement.as_string(None), None if count is None else count.as_string(None)


def _stand_in(value: shapes.Value, set_no: int, index: int) -> shapes.Value:
    """A value no request is likely to hold, distinct per set and index, of ``value``'s kind."""
    if isinstance(value, datetime):  # at the value's own offset, which is part of the shape
        return datetime(1900 + set_no, 2, 3, 4, 5, 6, index + 1, tzinfo=value.tzinfo or UTC)
    return set_no * 1_000_000_000_000 + index + 1


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def query_items(request: Request) -> tuple[tuple[str, str], ...]:
    """The query's (name, value) pairs.

    A client that percent-encodes a whole option (java.net.URLEncoder.encode("$filter=result eq 1")
    gives ``%24filter%3Dresult+eq+1``, as the OGC and FROST suites send some filters) sends one
    name without a value: a name that starts with ``$`` and holds ``=`` is read as that option.
    System query option names are matched in any case (``$orderBy`` is ``$orderby``).
    """
    items = []
    for name, value in request.query_params.multi_items():
        if not value and name.startswith("$") and "=" in name:
            option, _, text = name.partition("=")
            items.append((canonical_option(option), text))
        else:
            items.append((canonical_option(name), value))
    return tuple(items)


def serve(request: Request, rest: str) -> Response:
    """Answer ``GET /v1.1/<rest>`` (rest: the resource path after the version)."""
    context = _context(request)
    if not rest.strip("/"):
        return _root(request)
    try:
        items = query_items(request)
        if any(k == "$resultFormat" and v.lower() == "dataarray" for k, v in items):
            from api.sta.data_array import read_data_array  # the dataArray extension's own shape

            return read_data_array(request, context, rest, items)
        planned = context.planner(rest, items)
        if planned.path.property is not None:
            return _property(context, planned)
        if planned.path.single:
            return _single(context, planned)
        return _collection(request, context, planned)
    except PathNotFound as exc:
        raise ApiError(404, str(exc)) from exc
    except NotImplementedQuery as exc:
        raise ApiError(501, exc.message, parameter=exc.parameter, column=exc.column) from exc
    except QueryError as exc:
        raise ApiError(400, exc.message, parameter=exc.parameter, column=exc.column) from exc


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _property(context: StaContext, planned: Planned) -> Response:
    path = planned.path
    assert path.property is not None
    rows = _run(context, planned)
    if not rows:
        raise ApiError(404, f"no entity at {'/'.join(_step_text(s) for s in path.steps)}")
    value = orjson.loads(rows[0]).get(path.property)
    if value is None:  # OData 4.0 Part 1, 11.2.4.1: a null property (and its raw value) is 204 No Content
        return Response(status_code=204)
    if path.value:
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        return Response(text, media_type="text/plain; charset=utf-8")
    return _json({path.property: value})


def _step_text(step: Any) -> str:
    return step.name if step.id is None else f"{step.name}({step.id})"


def _single(context: StaContext, planned: Planned) -> Response:
    rows = _run(context, planned)
    if not rows:
        raise ApiError(404, f"no entity at {'/'.join(_step_text(s) for s in planned.path.steps)}")
    return Response(rows[0], media_type="application/json")


def _collection(request: Request, context: StaContext, planned: Planned) -> Response:
    chunks = collection_body(context, planned, request.url.path.split(PREFIX + "/", 1)[1])
    if len(chunks) == 1:  # up to render.CHUNK_BYTES: a plain response costs less than a stream
        return Response(chunks[0], media_type="application/json")

    async def stream() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return StreamingResponse(stream(), media_type="application/json")


def collection_body(context: StaContext, planned: Planned, rest: str) -> list[bytes]:
    """The body of a collection page as chunks (:func:`render.collection_chunks`).

    ``rest``: the request's path after ``/v1.1/`` (the next link repeats it).
    """
    path, query, options = planned.path, planned.query, planned.options
    with _database_errors(), context.pool.connection() as conn:  # one checkout for page, 404 check and count
        rows = store.fetch_texts(conn, planned.statement, query.params)
        if not rows and any(step.id is not None for step in path.steps):
            parent = path.steps[:-1]
            if parent:
                check = context.translator.exists(parent)
                if store.fetch_scalar(conn, check.statement, check.params) is None:
                    raise ApiError(404, f"no entity at {'/'.join(_step_text(s) for s in parent)}")
        count = _count(context, query, conn)
    next_url = None
    more = len(rows) > query.top  # the statement asks for one row more than the page
    rows = rows[: query.top]
    if more and query.top > 0:  # $top=0 asks for the count only: a link would repeat the page
        next_url = links.next_link(f"{context.base_url}/{rest}", options.raw, query.top, query.skip + query.top)
    return render.collection_chunks(rows, count=count, next_url=next_url)


# ---- routes -------------------------------------------------------------------------------


_OPTION_DOCS = (
    ("$filter", "Filter expression (OData 4 syntax, SensorThings 1.1 functions)."),
    ("$expand", "Related entities to include, with nested options in parentheses."),
    ("$select", "Properties and navigation links to return."),
    ("$orderby", "Sort keys, each optionally asc or desc."),
    ("$top", "Page size (capped by the server's maximum; a next link gives the rest)."),
    ("$skip", "Entities to skip."),
    ("$count", "true: include @iot.count."),
    ("$resultFormat", "dataArray: Observations grouped by Datastream as arrays of values (the dataArray extension)."),
)
QUERY_PARAMETERS = [
    {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": text}
    for name, text in _OPTION_DOCS
]


def _handler(kind: str) -> Callable[..., Response]:
    def handler(request: Request) -> Response:
        return serve(request, request.url.path.split(PREFIX + "/", 1)[1] if PREFIX + "/" in request.url.path else "")

    handler.__name__ = f"get_{kind}"
    return handler


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["SensorThings"])

    @router.get("", summary="Service root: entity sets and conformance")
    def root(request: Request) -> Response:
        return _root(request)

    def add(path: str, summary: str, description: str = "") -> None:
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": kind}}
            for name, kind in (("id", "integer"), ("id2", "integer"), ("path", "string"))
            if "{" + name + "}" in path or "{" + name + ":" in path
        ]
        router.add_api_route(
            path,
            _handler(path),
            methods=["GET"],
            summary=summary,
            description=description,
            response_class=Response,
            operation_id="get" + "".join(c if c.isalnum() else "_" for c in path),
            openapi_extra={"parameters": params + QUERY_PARAMETERS},
        )

    # Every route below calls the same handler, so the catch-all goes first: a request matches
    # after two patterns instead of trying ~170; the explicit routes are there for OpenAPI.
    add(
        "/{path:path}",
        "Nested resource paths",
        "Navigation of any depth, e.g. Things(1)/Datastreams(2)/Observations or Datastreams(1)/Thing/Locations, "
        "ending in an entity, a collection, a property, $value or $ref.",
    )
    for e in em.ENTITY_SETS.values():
        add(f"/{e.set_name}", f"The {e.set_name} collection")
        add(f"/{e.set_name}/$ref", f"Self links of the {e.set_name} collection")
        add(f"/{e.set_name}({{id}})", f"One {e.name}")
        for prop in e.properties.values():
            add(f"/{e.set_name}({{id}})/{prop.name}", f"{e.name} {prop.name}", "The property as {name: value}.")
            add(f"/{e.set_name}({{id}})/{prop.name}/$value", f"{e.name} {prop.name}, raw value")
        for rel in e.relations.values():
            target = em.target_of(rel)
            kind = "collection" if rel.many else "entity"
            add(f"/{e.set_name}({{id}})/{rel.name}", f"The {target.name} {kind} of a {e.name}")
            add(f"/{e.set_name}({{id}})/{rel.name}/$ref", f"Self links of a {e.name}'s {rel.name}")
            if rel.many:
                add(f"/{e.set_name}({{id}})/{rel.name}({{id2}})", f"One {target.name} of a {e.name}")
    return router
