"""Batch requests (OGC 18-088, 11.2) in the OData 4.01 JSON batch format: ``POST /v1.1/$batch``.

``{"requests": [{"id": "1", "method": "post", "url": "Things", "body": {...}, "atomicityGroup": "g"}]}``.
Requests run in order. The requests of one ``atomicityGroup`` (a change set; they must be
adjacent) share one transaction: all succeed, or none is applied and each of them answers with
the failure (the failing one with its own error, the others ``424 Failed Dependency``).
Inside a group, ``$<id>`` in a URL or as an ``@iot.id`` value stands for the entity an earlier
request of the group created. A GET answers with the same document as a direct GET.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio.from_thread
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError, error_body
from api.sta.routes import PREFIX, StaContext, serve
from api.write import routes as write
from api.write.writer import Changes

CONFORMANCE = "http://www.opengis.net/spec/iot_sensing/1.1/req/batch-request/batch-request"
METHODS = ("get", "post", "patch", "put", "delete")
_REFERENCE = re.compile(r"\$([A-Za-z0-9_.:,;-]+)")
MAX_REQUESTS = 1000


class BatchError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class SubRequest:
    id: str
    method: str
    url: str
    body: Any
    group: str | None
    content_type: str


def parse_batch(payload: Any) -> list[SubRequest]:
    """Validate the batch document (pure)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("requests"), list):
        raise BatchError('a JSON batch is {"requests": [...]}')
    items = payload["requests"]
    if len(items) > MAX_REQUESTS:
        raise BatchError(f"at most {MAX_REQUESTS} requests per batch")
    out: list[SubRequest] = []
    seen: set[str] = set()
    closed: set[str] = set()
    current: str | None = None
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise BatchError(f"requests[{index}] is not an object")
        ident = str(item.get("id", index))
        if ident in seen:
            raise BatchError(f"requests[{index}]: id {ident!r} is used twice")
        seen.add(ident)
        method = str(item.get("method", "")).lower()
        if method not in METHODS:
            raise BatchError(f"requests[{index}]: method {item.get('method')!r} is not one of {', '.join(METHODS)}")
        url = item.get("url")
        if not isinstance(url, str) or not url:
            raise BatchError(f"requests[{index}]: url is required")
        group = item.get("atomicityGroup")
        if group is not None and not isinstance(group, str):
            raise BatchError(f"requests[{index}]: atomicityGroup must be text")
        if group != current:
            if current is not None:
                closed.add(current)
            if group in closed:
                raise BatchError(f"requests[{index}]: the requests of atomicityGroup {group!r} must be adjacent")
            current = group
        if group is not None and method == "get":
            raise BatchError(f"requests[{index}]: a GET cannot be part of an atomicityGroup")
        headers = item.get("headers") or {}
        content_type = str({k.lower(): v for k, v in headers.items()}.get("content-type", "application/json"))
        out.append(
            SubRequest(ident, method, url, item.get("body"), group, content_type.split(";", maxsplit=1)[0].strip())
        )
    return out


def _relative(url: str, base: str) -> str:
    """The resource path (with query) after ``/v1.1/``, from a relative or absolute URL."""
    if url.startswith(base + "/"):
        return url[len(base) + 1 :]
    parts = urlsplit(url)
    path = parts.path
    if PREFIX + "/" in path:
        path = path.split(PREFIX + "/", 1)[1]
    path = path.lstrip("/")
    return f"{path}?{parts.query}" if parts.query else path


def _substitute(value: Any, created: dict[str, int]) -> Any:
    if isinstance(value, dict):
        out = {k: _substitute(v, created) for k, v in value.items()}
        ident = out.get("@iot.id")
        if isinstance(ident, str) and ident.startswith("$") and ident[1:] in created:
            out["@iot.id"] = created[ident[1:]]
        return out
    if isinstance(value, list):
        return [_substitute(v, created) for v in value]
    return value


def _response(sub: SubRequest, response: Response) -> dict[str, Any]:
    out: dict[str, Any] = {"id": sub.id, "status": response.status_code}
    location = response.headers.get("location")
    if location:
        out["headers"] = {"location": location}
    if isinstance(response, StreamingResponse):
        body = anyio.from_thread.run(_drain, response)
    else:
        body = bytes(response.body) if response.body else b""
    if body:
        out["body"] = orjson.loads(body)
    return out


async def _drain(response: StreamingResponse) -> bytes:
    parts = [chunk if isinstance(chunk, bytes) else str(chunk).encode() async for chunk in response.body_iterator]
    return b"".join(parts)


def _error(sub: SubRequest, code: int, message: str) -> dict[str, Any]:
    return {"id": sub.id, "status": code, "body": error_body(code, message)}


def _notify(request: Request) -> write.Notify | None:
    notify: write.Notify | None = getattr(request.app.state, "notify", None)
    return notify


def _one(request: Request, context: StaContext, sub: SubRequest, created: dict[str, int]) -> Response:
    url = _REFERENCE.sub(lambda m: str(created.get(m.group(1), m.group(0))), sub.url)
    rest = _relative(url, context.base_url)
    path, _, query = rest.partition("?")
    body = _substitute(sub.body, created)
    if sub.method == "get":
        scope = dict(request.scope)
        scope.update(
            method="GET", path=f"{PREFIX}/{path}", raw_path=f"{PREFIX}/{path}".encode(), query_string=query.encode()
        )
        return serve(Request(scope), path)
    notify = _notify(request)
    if sub.method == "delete":
        return write.delete(context, path, notify)
    if sub.method == "post":
        return write.create(context, path, body, notify)
    return write.update(
        context, path, body, replace=sub.method == "put", json_patch=sub.content_type == write.JSON_PATCH,
        notify=notify,
    )  # fmt: skip


def execute(request: Request, context: StaContext, subs: list[SubRequest]) -> list[dict[str, Any]]:
    responses: list[dict[str, Any]] = []
    index = 0
    while index < len(subs):
        group = subs[index].group
        members = [subs[index]]
        if group is not None:
            while index + len(members) < len(subs) and subs[index + len(members)].group == group:
                members.append(subs[index + len(members)])
        index += len(members)
        if group is None:
            try:
                responses.append(_response(members[0], _one(request, context, members[0], {})))
            except ApiError as exc:
                responses.append(_error(members[0], exc.code, exc.message))
            continue
        responses.extend(_change_set(request, context, members))
    return responses


def _change_set(request: Request, context: StaContext, members: list[SubRequest]) -> list[dict[str, Any]]:
    created: dict[str, int] = {}
    done: list[dict[str, Any]] = []
    deferred: list[Changes] = []
    with context.pool.connection() as conn:
        token = write.BATCH_CONNECTION.set(conn)
        deferred_token = write.DEFERRED.set(deferred)
        failed: tuple[int, ApiError] | None = None
        try:
            with conn.transaction():
                for position, sub in enumerate(members):
                    try:
                        response = _one(request, context, sub, created)
                    except ApiError as exc:
                        failed = (position, exc)
                        raise
                    result = _response(sub, response)
                    ident = (result.get("body") or {}).get("@iot.id") if isinstance(result.get("body"), dict) else None
                    if isinstance(ident, int):
                        created[sub.id] = ident
                    done.append(result)
        except ApiError:
            assert failed is not None
            position, error = failed
            return [
                _error(sub, error.code, error.message)
                if i == position
                else _error(sub, 424, f"not applied: request {members[position].id!r} of the change set failed")
                for i, sub in enumerate(members)
            ]
        finally:
            write.BATCH_CONNECTION.reset(token)
            write.DEFERRED.reset(deferred_token)
    notify = _notify(request)
    if notify is not None:  # committed: now the change set's changes can be told
        for changes in deferred:
            notify(changes)
    return done


def build_batch_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["SensorThings"])

    @router.post(
        "/$batch",
        summary="Batch requests (OData JSON batch; atomicityGroup = change set)",
        description=__doc__ or "",
        response_class=Response,
    )
    async def batch(request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise ApiError(415, "Bydata takes batch requests in the JSON format (Content-Type: application/json)")
        try:
            subs = parse_batch(orjson.loads(await request.body()))
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, f"the body is not JSON: {exc}") from None
        except BatchError as exc:
            raise ApiError(400, str(exc)) from None
        context: StaContext = request.app.state.sta
        responses = await run_in_threadpool(execute, request, context, subs)
        return Response(orjson.dumps({"responses": responses}), media_type="application/json")

    return router
