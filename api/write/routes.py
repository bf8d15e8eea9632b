"""Create-Update-Delete over HTTP (OGC 18-088, 10): POST, PATCH (JSON or JSON Patch), PUT, DELETE.

Each request runs in one transaction: every entity of a deep insert is created, or none is.
A created entity answers ``201 Created`` with a ``Location`` header (its self link) and its
representation; an update answers ``200 OK`` with the new representation; a delete ``200 OK``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import jsonpatch
import orjson
import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from api.sta import entities as em
from api.sta.odata.parser import parse_query_options
from api.sta.resource_path import ResourcePath, parse_resource_path
from api.sta.routes import PREFIX, StaContext
from api.sta.translate import PathNotFound, PathStep
from api.write.body import BodyError, NewEntity, changed_properties, parse_create, parse_update
from api.write.writer import Changes, WriteError, Writer
from store import sta as read_store
from store import sta_write as write_store

JSON_PATCH = "application/json-patch+json"
_NO_OPTIONS = parse_query_options([])
_ID_ONLY = parse_query_options([("$select", "id")])

# Told each committed write's changes (MQTT notifications); None when no broker is configured.
Notify = Callable[[Changes], None]


# Inside a batch change set every request shares one connection and transaction.
BATCH_CONNECTION: ContextVar[psycopg.Connection[Any] | None] = ContextVar("batch_connection", default=None)
# ... and their changes are told after the change set commits, not one by one.
DEFERRED: ContextVar[list[Changes] | None] = ContextVar("deferred_changes", default=None)


@contextmanager
def connection(context: StaContext) -> Iterator[psycopg.Connection[Any]]:
    shared = BATCH_CONNECTION.get()
    if shared is not None:
        yield shared
        return
    with context.pool.connection() as conn:
        yield conn


def _context(request: Request) -> StaContext:
    context: StaContext = request.app.state.sta
    return context


def _rest(request: Request) -> str:
    path = request.url.path
    return path.split(PREFIX + "/", 1)[1] if PREFIX + "/" in path else ""


def _entity_response(body: bytes | None, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if body is None:  # deleted by a concurrent request between the write and the read
        raise ApiError(404, "the entity no longer exists")
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _step_text(step: PathStep) -> str:
    return step.name if step.id is None else f"{step.name}({step.id})"


def _entity_of(path: ResourcePath) -> em.EntityType:
    entity = em.ENTITY_SETS[path.steps[0].name]
    for step in path.steps[1:]:
        entity = em.target_of(entity.relations[step.name])
    return entity


def read_entity(context: StaContext, entity: em.EntityType, ident: int) -> bytes | None:
    """The entity as a GET shows it, JSON (the read side renders it, so both sides agree)."""
    query = context.translator.entity((PathStep(entity.set_name, ident),), _NO_OPTIONS, context.base_url)
    with connection(context) as conn:
        rows = read_store.fetch_column(conn, query.statement, query.params)
    return rows[0].encode() if rows else None


def _resolve_id(context: StaContext, steps: tuple[PathStep, ...], *, check: em.EntityType | None = None) -> int:
    """The id of the one entity ``steps`` address (404 when there is none).

    One step with an id is taken from the path without a read unless ``check`` (its entity
    type) asks for one: a new entity linked to a parent that is not there is a 404, not a
    foreign-key failure.
    """
    last = steps[-1]
    if len(steps) == 1 and last.id is not None:
        if check is not None:
            with connection(context) as conn:
                if not write_store.exists(conn, check.table, last.id):
                    raise ApiError(404, f"no entity at {_step_text(last)}")
        return last.id
    query = context.translator.entity(steps, _ID_ONLY, context.base_url)
    with connection(context) as conn:
        rows = read_store.fetch_column(conn, query.statement, query.params)
    if not rows:
        raise ApiError(404, f"no entity at {'/'.join(_step_text(s) for s in steps)}")
    return int(orjson.loads(rows[0])["@iot.id"])


def _body(raw: bytes) -> Any:
    if not raw.strip():
        raise ApiError(400, "the request has no body; send the entity as JSON")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from None


def _parse(rest: str) -> ResourcePath:
    try:
        return parse_resource_path(rest)
    except PathNotFound as exc:
        raise ApiError(404, str(exc)) from exc


def _run(context: StaContext, work: Callable[[Writer], Any], notify: Notify | None) -> tuple[Any, Changes]:
    with connection(context) as conn:
        try:
            with conn.transaction():
                writer = Writer(conn)
                result = work(writer)
                writer.finish()
        except WriteError as exc:
            raise ApiError(exc.code, exc.message) from exc
        except BodyError as exc:
            raise ApiError(400, exc.message, parameter=exc.where or None) from exc
        except psycopg.DataError as exc:  # a value the database cannot hold: the client's, nothing stored
            raise ApiError(400, f"a value cannot be stored: {exc.diag.message_primary or exc}") from exc
    if notify is not None:
        deferred = DEFERRED.get()
        if deferred is not None:
            deferred.append(writer.changes)
        else:
            notify(writer.changes)
    return result, writer.changes


def _check_target(method: str, path: ResourcePath) -> None:
    """POST goes to a collection, PATCH/PUT/DELETE to one entity; anything else is 405."""
    if method == "POST" and (path.property is not None or path.ref or path.single):
        raise ApiError(405, "POST creates an entity in a collection: address an entity set or navigation collection")
    if method != "POST" and (path.property is not None or path.ref or not path.single):
        raise ApiError(405, "PATCH, PUT and DELETE address one entity, such as Things(1)")


@dataclass(frozen=True, slots=True)
class CreatePlan:
    """A POST to a collection, its body parsed: :meth:`run` it with a :class:`Writer`.

    HTTP and the MQTT creates that are more than readings (``api.mqtt.creates``) share it, so an
    entity is created the same way whichever road it came by.
    """

    entity: em.EntityType
    new: NewEntity
    relation: em.Relation | None = None
    parent: em.EntityType | None = None
    parent_id: int | None = None

    def run(self, writer: Writer) -> int:
        """Create the entity (and what it carries) in the writer's transaction; its id."""
        relation, parent, parent_id = self.relation, self.parent, self.parent_id
        preset: dict[str, Any] = {}
        if relation is not None and relation.join is em.Join.FK_THERE:
            preset[relation.column] = parent_id
        ident = writer.create(self.new, preset, via=relation)
        if relation is not None and parent is not None and parent_id is not None and relation.join is em.Join.LINK:
            writer.link(parent, parent_id, relation, [ident])
        return ident


def plan_create(path: ResourcePath, body: Any, parent_id: int | None) -> CreatePlan:
    """A create at ``path`` (a collection; ``parent_id``: the entity before its last step). Raises BodyError."""
    entity = _entity_of(path)
    if len(path.steps) == 1:
        return CreatePlan(entity, parse_create(entity, body))
    parent = _entity_of(ResourcePath(path.steps[:-1]))
    relation = parent.relations[path.steps[-1].name]
    return CreatePlan(entity, parse_create(entity, body, via=relation), relation, parent, parent_id)


def create(context: StaContext, rest: str, body: Any, notify: Notify | None = None) -> Response:
    path = _parse(rest)
    _check_target("POST", path)
    parent_id: int | None = None
    if len(path.steps) > 1:
        parent_id = _resolve_id(context, path.steps[:-1], check=_entity_of(ResourcePath(path.steps[:-1])))
    try:
        plan = plan_create(path, body, parent_id)
    except BodyError as exc:
        raise ApiError(400, exc.message, parameter=exc.where or None) from exc
    ident, _ = _run(context, plan.run, notify)
    location = f"{context.base_url}/{plan.entity.set_name}({ident})"
    return _entity_response(read_entity(context, plan.entity, ident), 201, {"Location": location})


def _single_target(context: StaContext, rest: str) -> tuple[em.EntityType, int]:
    path = _parse(rest)
    _check_target("PATCH", path)
    return _entity_of(path), _resolve_id(context, path.steps)


def update(
    context: StaContext, rest: str, body: Any, *, replace: bool, json_patch: bool, notify: Notify | None = None
) -> Response:
    entity, ident = _single_target(context, rest)
    if json_patch:
        text = read_entity(context, entity, ident)
        if text is None:
            raise ApiError(404, f"no {entity.name} with id {ident}")
        before = orjson.loads(text)
        try:
            after = jsonpatch.JsonPatch(body).apply(before)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as exc:
            raise ApiError(400, f"the JSON Patch cannot be applied: {exc}") from None
        try:
            body = changed_properties(before, after, entity)
        except BodyError as exc:
            raise ApiError(400, exc.message, parameter=exc.where) from exc
    try:
        plan = parse_update(entity, body, replace=replace)
    except BodyError as exc:
        raise ApiError(400, exc.message, parameter=exc.where or None) from exc
    _run(context, lambda writer: writer.update(plan, ident), notify)
    return _entity_response(read_entity(context, entity, ident))


def delete(context: StaContext, rest: str, notify: Notify | None = None) -> Response:
    entity, ident = _single_target(context, rest)
    _run(context, lambda writer: writer.delete(entity, ident), notify)
    return Response(status_code=200)


def _handler(method: str) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        context = _context(request)
        rest = _rest(request)
        notify: Notify | None = getattr(request.app.state, "notify", None)
        _check_target(method, _parse(rest))  # a wrong target is answered before the body is read
        if method == "DELETE":
            return await run_in_threadpool(delete, context, rest, notify)
        raw = await request.body()
        content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        body = _body(raw)
        if method == "POST":
            return await run_in_threadpool(create, context, rest, body, notify)
        json_patch = content_type == JSON_PATCH
        if json_patch and method != "PATCH":
            raise ApiError(415, "JSON Patch goes with PATCH")
        return await run_in_threadpool(
            lambda: update(context, rest, body, replace=method == "PUT", json_patch=json_patch, notify=notify)
        )

    handler.__name__ = method.lower()
    return handler


def build_write_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["SensorThings"])

    def add(path: str, methods: list[str], summary: str) -> None:
        for method in methods:
            params = [
                {"name": name, "in": "path", "required": True, "schema": {"type": kind}}
                for name, kind in (("id", "integer"), ("path", "string"))
                if "{" + name + "}" in path or "{" + name + ":" in path
            ]
            extra: dict[str, Any] = {"parameters": params} if params else {}
            if method != "DELETE":
                media: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}}
                if method == "PATCH":
                    media[JSON_PATCH] = {"schema": {"type": "array", "items": {"type": "object"}}}
                extra["requestBody"] = {"required": True, "content": media}
            router.add_api_route(
                path,
                _handler(method),
                methods=[method],
                summary=f"{summary} ({method})",
                response_class=Response,
                operation_id=method.lower() + "".join(c if c.isalnum() else "_" for c in path),
                openapi_extra=extra,
            )

    for e in em.ENTITY_SETS.values():
        add(f"/{e.set_name}", ["POST"], f"Create a {e.name} (deep insert allowed)")
        add(f"/{e.set_name}({{id}})", ["PATCH", "PUT", "DELETE"], f"Update or delete a {e.name}")
        for rel in e.relations.values():
            if rel.many:
                add(f"/{e.set_name}({{id}})/{rel.name}", ["POST"], f"Create a {rel.target} linked to a {e.name}")
    add("/{path:path}", ["POST", "PATCH", "PUT", "DELETE"], "Writes on nested resource paths")
    return router
