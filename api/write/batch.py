"""Batch requests (OGC 18-088, 11.2): ``POST /v1.1/$batch`` in both formats the standard names.

* OData 4.01 JSON (``Content-Type: application/json``): ``{"requests": [{"id": "1", "method":
  "post", "url": "Things", "body": {...}, "atomicityGroup": "g"}]}``; the requests of one
  ``atomicityGroup`` (adjacent) are a change set. The answer is ``{"responses": [...]}``; in a
  change set that failed, the failing request answers with its error and the others with
  ``424 Failed Dependency``.
* OData 4.0 multipart (``Content-Type: multipart/mixed; boundary=…``, see
  :mod:`api.write.batch_multipart`): a nested ``multipart/mixed`` part is a change set; a change
  set that failed answers with one error response.

Requests run in order. A change set runs in one transaction: all its requests succeed, or none
is applied. ``$<id>`` (the ``id`` or ``Content-ID`` of an earlier request that created an
entity) at the start of a URL stands for that entity (``$1/Datastreams``), elsewhere in a URL
and as an ``@iot.id`` value for its id. A GET answers with the same document as a direct GET.
Writes are published on MQTT after their change set (or they alone) committed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
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
from api.write.batch_multipart import MULTIPART, PartResponse, parse_multipart, write_multipart
from api.write.batch_types import BatchError, SubRequest
from api.write.writer import Changes

METHODS = ("get", "post", "patch", "put", "delete")
_REFERENCE = re.compile(r"\$([A-Za-z0-9_.:,;-]+)")
MAX_REQUESTS = 1000


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
            SubRequest(
                ident, method, url, item.get("body"), group, content_type.split(";", maxsplit=1)[0].strip(), ident
            )
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


@dataclass(frozen=True, slots=True)
class Created:
    """An entity a request of the batch created: its path (``Things(5)``) and id."""

    path: str
    id: int


def _resolve(url: str, created: dict[str, Created]) -> str:
    """``$<id>`` references: the entity's path at the start of the URL, its id elsewhere."""
    match = _REFERENCE.match(url)
    if match is not None and match.group(1) in created:
        url = created[match.group(1)].path + url[match.end() :]

    def one(m: re.Match[str]) -> str:
        found = created.get(m.group(1))
        return str(found.id) if found is not None else m.group(0)

    return _REFERENCE.sub(one, url)


def _substitute(value: Any, created: dict[str, Created]) -> Any:
    if isinstance(value, dict):
        out = {k: _substitute(v, created) for k, v in value.items()}
        ident = out.get("@iot.id")
        if isinstance(ident, str) and ident.startswith("$") and ident[1:] in created:
            out["@iot.id"] = created[ident[1:]].id
        return out
    if isinstance(value, list):
        return [_substitute(v, created) for v in value]
    return value


@dataclass(slots=True)
class Answer:
    """The response to one request of the batch."""

    sub: SubRequest
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.sub.id, "status": self.status}
        if self.headers:
            out["headers"] = dict(self.headers)
        if self.body:
            json_body = (self.content_type or "").startswith("application/json")
            out["body"] = orjson.loads(self.body) if json_body else self.body.decode("utf-8", "replace")
        return out

    def part(self) -> PartResponse:
        return PartResponse(self.status, self.body, self.content_type, dict(self.headers), self.sub.content_id)


@dataclass(slots=True)
class ChangeSet:
    """The answers of a change set, or the request that made it fail (then nothing was applied)."""

    answers: list[Answer]
    failed: tuple[int, ApiError] | None = None
    members: list[SubRequest] = field(default_factory=list)


def _answer(sub: SubRequest, response: Response) -> Answer:
    if isinstance(response, StreamingResponse):
        body = anyio.from_thread.run(_drain, response)
    else:
        body = bytes(response.body) if response.body else b""
    headers = {"location": response.headers["location"]} if "location" in response.headers else {}
    media = response.headers.get("content-type") if body else None
    return Answer(sub, response.status_code, body, media, headers)


async def _drain(response: StreamingResponse) -> bytes:
    parts = [chunk if isinstance(chunk, bytes) else str(chunk).encode() async for chunk in response.body_iterator]
    return b"".join(parts)


def _error(sub: SubRequest, exc: ApiError) -> Answer:
    return Answer(
        sub, exc.code, orjson.dumps(error_body(exc.code, exc.message, exc.parameter, exc.column)), "application/json"
    )


def _notify(request: Request) -> write.Notify | None:
    notify: write.Notify | None = getattr(request.app.state, "notify", None)
    return notify


def _body(sub: SubRequest) -> Any:
    if not isinstance(sub.body, bytes):
        return sub.body
    if not sub.body:
        return None
    try:
        return orjson.loads(sub.body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from None


def _one(request: Request, context: StaContext, sub: SubRequest, created: dict[str, Created]) -> Response:
    rest = _relative(_resolve(sub.url, created), context.base_url)
    path, _, query = rest.partition("?")
    if sub.method == "get":
        scope = dict(request.scope)
        scope.update(
            method="GET", path=f"{PREFIX}/{path}", raw_path=f"{PREFIX}/{path}".encode(), query_string=query.encode()
        )
        return serve(Request(scope), path)
    notify = _notify(request)
    if sub.method == "delete":
        return write.delete(context, path, notify)
    body = _substitute(_body(sub), created)
    if sub.method == "post":
        return write.create(context, path, body, notify)
    return write.update(
        context, path, body, replace=sub.method == "put", json_patch=sub.content_type == write.JSON_PATCH,
        notify=notify,
    )  # fmt: skip


def _remember(answer: Answer, created: dict[str, Created], base: str) -> None:
    location = answer.headers.get("location", "")
    if answer.status == 201 and location.startswith(base + "/") and answer.sub.content_id:
        path = location[len(base) + 1 :]
        ident = path.rsplit("(", 1)[-1].rstrip(")")
        if ident.isdigit():
            created[answer.sub.content_id] = Created(path, int(ident))


def execute(request: Request, context: StaContext, subs: list[SubRequest]) -> list[Answer | ChangeSet]:
    """Run the batch in order: single requests on their own, change sets in one transaction each."""
    results: list[Answer | ChangeSet] = []
    created: dict[str, Created] = {}
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
                answer = _answer(members[0], _one(request, context, members[0], created))
            except ApiError as exc:
                answer = _error(members[0], exc)
            _remember(answer, created, context.base_url)
            results.append(answer)
            continue
        results.append(_change_set(request, context, members, created))
    return results


def _change_set(
    request: Request, context: StaContext, members: list[SubRequest], created: dict[str, Created]
) -> ChangeSet:
    mine: dict[str, Created] = {}
    answers: list[Answer] = []
    deferred: list[Changes] = []
    failed: tuple[int, ApiError] | None = None
    with context.pool.connection() as conn:
        token = write.BATCH_CONNECTION.set(conn)
        deferred_token = write.DEFERRED.set(deferred)
        try:
            with conn.transaction():
                for position, sub in enumerate(members):
                    try:
                        answer = _answer(sub, _one(request, context, sub, {**created, **mine}))
                    except ApiError as exc:
                        failed = (position, exc)
                        raise
                    _remember(answer, mine, context.base_url)
                    answers.append(answer)
        except ApiError:
            return ChangeSet([], failed, members)
        finally:
            write.BATCH_CONNECTION.reset(token)
            write.DEFERRED.reset(deferred_token)
    created.update(mine)
    notify = _notify(request)
    if notify is not None:  # committed: now the change set's changes can be told
        for changes in deferred:
            notify(changes)
    return ChangeSet(answers, None, members)


def render_json(results: list[Answer | ChangeSet]) -> bytes:
    responses: list[dict[str, Any]] = []
    for result in results:
        if isinstance(result, Answer):
            responses.append(result.json())
        elif result.failed is None:
            responses += [answer.json() for answer in result.answers]
        else:
            position, error = result.failed
            culprit = result.members[position].id
            skipped = ApiError(424, f"not applied: request {culprit!r} of the change set failed")
            responses += [
                _error(sub, error if i == position else skipped).json() for i, sub in enumerate(result.members)
            ]
    return orjson.dumps({"responses": responses})


def render_multipart(results: list[Answer | ChangeSet]) -> tuple[bytes, str]:
    items: list[PartResponse | list[PartResponse]] = []
    for result in results:
        if isinstance(result, Answer):
            items.append(result.part())
        elif result.failed is None:
            items.append([answer.part() for answer in result.answers])
        else:  # OData 4.0: a change set that failed answers with one response, its error
            position, error = result.failed
            items.append(_error(result.members[position], error).part())
    return write_multipart(items)


def build_batch_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["SensorThings"])

    @router.post(
        "/$batch",
        summary="Batch requests (OData JSON batch, or multipart/mixed with change sets)",
        description=__doc__ or "",
        response_class=Response,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"type": "object", "required": ["requests"]}},
                    MULTIPART: {"schema": {"type": "string", "format": "binary"}},
                },
            }
        },
    )
    async def batch(request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        media = content_type.split(";")[0].strip().lower()
        raw = await request.body()
        try:
            if media == "application/json":
                try:
                    subs = parse_batch(orjson.loads(raw))
                except orjson.JSONDecodeError as exc:
                    raise ApiError(400, f"the body is not JSON: {exc}") from None
            elif media == MULTIPART:
                subs = parse_multipart(raw, content_type, MAX_REQUESTS)
            else:
                raise ApiError(
                    415, "a batch is application/json (OData JSON batch) or multipart/mixed; boundary=… (OData 4.0)"
                )
        except BatchError as exc:
            raise ApiError(400, str(exc)) from None
        context: StaContext = request.app.state.sta
        results = await run_in_threadpool(execute, request, context, subs)
        if media == MULTIPART:
            body, response_type = render_multipart(results)
            return Response(body, media_type=response_type)
        return Response(render_json(results), media_type="application/json")

    return router
