"""The SensorThings API 1.1 read side over HTTP: resource paths -> translator -> store -> JSON.

Every GET goes through :func:`serve`: parse the resource path and the query options (pure),
translate them into one statement (pure), run it (``store.sta``), render the rows. Explicit
routes per entity set, property and navigation property exist so the OpenAPI document lists
every path; deeper navigation paths fall through to the catch-all route.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
import psycopg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from psycopg_pool import ConnectionPool

from api.errors import ApiError
from api.sta import entities as em
from api.sta import render
from api.sta.odata.parser import QueryError, parse_query_options
from api.sta.resource_path import ResourcePath, parse_resource_path
from api.sta.translate import NotImplementedQuery, PathNotFound, Translator
from api.sta.translate import Query as SqlQuery
from store import sta as store

VERSION = "v1.1"
PREFIX = f"/{VERSION}"

CONFORMANCE = (
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
)


@dataclass(frozen=True, slots=True)
class StaContext:
    """What every request needs: the pool, the translator for this server, the public base URL."""

    pool: ConnectionPool
    translator: Translator
    base_url: str  # absolute, ending in /v1.1

    @property
    def root(self) -> str:
        return self.base_url


def _context(request: Request) -> StaContext:
    context: StaContext = request.app.state.sta
    return context


def service_root(base_url: str, extra: Any = None) -> dict[str, Any]:
    """``extra``: a callable giving more serverSettings for ``base_url`` (its ``conformance`` is appended)."""
    settings: dict[str, Any] = {"conformance": list(CONFORMANCE)}
    if extra is not None:
        more = dict(extra(base_url))
        settings["conformance"] += more.pop("conformance", [])
        settings |= more
    return {
        "value": [{"name": e.set_name, "url": f"{base_url}/{e.set_name}"} for e in em.ENTITY_SETS.values()],
        "serverSettings": settings,
    }


def _run(context: StaContext, query: SqlQuery) -> list[Any]:
    try:
        with context.pool.connection() as conn:
            return store.fetch_column(conn, query.statement, query.params)
    except psycopg.errors.QueryCanceled as exc:
        raise ApiError(503, "the query took too long; narrow it with $filter or a smaller $top") from exc
    except psycopg.errors.DataError as exc:
        raise ApiError(400, f"the query cannot be evaluated: {exc.diag.message_primary or exc}") from exc


def _count(context: SqlQuery, sta: StaContext) -> int | None:
    if context.count_statement is None:
        return None
    with sta.pool.connection() as conn:
        return int(store.fetch_scalar(conn, context.count_statement, context.params))


def serve(request: Request, rest: str) -> Response:
    """Answer ``GET /v1.1/<rest>`` (rest: the resource path after the version)."""
    context = _context(request)
    if not rest.strip("/"):
        return _json(service_root(context.base_url, getattr(request.app.state, "server_settings", None)))
    try:
        path = parse_resource_path(rest)
        options = parse_query_options(request.query_params.multi_items())
        if path.property is not None:
            return _property(context, path)
        if path.single:
            return _single(context, path, options)
        return _collection(request, context, path, options)
    except PathNotFound as exc:
        raise ApiError(404, str(exc)) from exc
    except NotImplementedQuery as exc:
        raise ApiError(501, exc.message, parameter=exc.parameter, column=exc.column) from exc
    except QueryError as exc:
        raise ApiError(400, exc.message, parameter=exc.parameter, column=exc.column) from exc


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _property(context: StaContext, path: ResourcePath) -> Response:
    assert path.property is not None
    rows = _run(context, context.translator.property(path.steps, path.property))
    if not rows:
        raise ApiError(404, f"no entity at {'/'.join(_step_text(s) for s in path.steps)}")
    value = rows[0].get(path.property)
    if value is None:
        return Response(status_code=204)
    if path.value:
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        return Response(text, media_type="text/plain; charset=utf-8")
    return _json({path.property: value})


def _step_text(step: Any) -> str:
    return step.name if step.id is None else f"{step.name}({step.id})"


def _single(context: StaContext, path: ResourcePath, options: Any) -> Response:
    rows = _run(context, query := context.translator.entity(path.steps, options))
    if not rows:
        raise ApiError(404, f"no entity at {'/'.join(_step_text(s) for s in path.steps)}")
    if path.ref:
        return _json({"@iot.selfLink": f"{context.base_url}/{query.plan.entity.set_name}({rows[0]['@iot.id']})"})
    return _json(render.entity(rows[0], query.plan, context.base_url))


def _collection(request: Request, context: StaContext, path: ResourcePath, options: Any) -> Response:
    if options.result_format is not None:  # the dataArray extension renders its own shape
        from api.write.data_array import read_data_array

        return read_data_array(request, context, path, request.query_params.multi_items())
    query = context.translator.collection(path.steps, options)
    rows = _run(context, query)
    if not rows and any(step.id is not None for step in path.steps):
        parent = path.steps[:-1]
        if parent and not _run(context, context.translator.exists(parent)):
            raise ApiError(404, f"no entity at {'/'.join(_step_text(s) for s in parent)}")
    count = _count(query, context)
    next_url = None
    if len(rows) > query.top:
        rows = rows[: query.top]
        url = f"{context.base_url}/{request.url.path.split(PREFIX + '/', 1)[1]}"
        next_url = render.next_link(url, options.raw, query.top, query.skip + query.top)
    return StreamingResponse(
        render.collection_chunks(rows, query.plan, context.base_url, count=count, next_url=next_url, refs=path.ref),
        media_type="application/json",
    )


# ---- routes -------------------------------------------------------------------------------


def _options(  # noqa: PLR0917 - one parameter per documented query option
    filter_: Annotated[str | None, Query(alias="$filter", description="Filter expression (OData 4 syntax).")] = None,
    expand: Annotated[
        str | None, Query(alias="$expand", description="Related entities to include, with nested options.")
    ] = None,
    select: Annotated[str | None, Query(alias="$select", description="Properties to return.")] = None,
    orderby: Annotated[str | None, Query(alias="$orderby", description="Sort keys, each asc or desc.")] = None,
    top: Annotated[str | None, Query(alias="$top", description="Page size (capped by the server's maximum).")] = None,
    skip: Annotated[str | None, Query(alias="$skip", description="Entities to skip.")] = None,
    count: Annotated[str | None, Query(alias="$count", description="true: include @iot.count.")] = None,
) -> None:
    """Documents the system query options; :func:`serve` reads them from the raw query string."""


OptionsDep = Annotated[None, Depends(_options)]


def _handler(kind: str) -> Callable[..., Response]:
    def handler(request: Request, _: OptionsDep) -> Response:
        return serve(request, request.url.path.split(PREFIX + "/", 1)[1] if PREFIX + "/" in request.url.path else "")

    handler.__name__ = f"get_{kind}"
    return handler


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["SensorThings"])

    @router.get("", summary="Service root: entity sets and conformance")
    def root(request: Request) -> Response:
        return _json(service_root(_context(request).base_url, getattr(request.app.state, "server_settings", None)))

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
            openapi_extra={"parameters": params} if params else None,
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
    add(
        "/{path:path}",
        "Nested resource paths",
        "Navigation of any depth, e.g. Things(1)/Datastreams(2)/Observations or Datastreams(1)/Thing/Locations, "
        "ending in an entity, a collection, a property, $value or $ref.",
    )
    return router
