"""The dataArray extension's write side (OGC 18-088, 14.4): ``POST /v1.1/CreateObservations``.

The body is a list of ``{"Datastream": {"@iot.id": n}, "components": [...], "dataArray": [[...], ...]}``.
Each row becomes one Observation, created on its own: the response (``201 Created``) lists, in
request order, the self link of each created Observation or the string ``"error"`` where that
row failed, as the standard says. The reason of each failure is logged and also given, row by
row, in the ``Bydata-Errors`` response header (JSON: row index -> message), so a client that
cares can learn what was wrong without the body leaving the standard's shape.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from api.sta import entities as em
from api.sta.routes import PREFIX, StaContext
from api.write.body import BodyError, parse_create
from api.write.routes import Notify
from api.write.writer import WriteError, Writer

log = logging.getLogger(__name__)

COMPONENTS = frozenset(
    {"id", "phenomenonTime", "result", "resultTime", "resultQuality", "validTime", "parameters", "FeatureOfInterest/id"}
)
ERRORS_HEADER = "Bydata-Errors"


@dataclass(frozen=True, slots=True)
class Row:
    """One Observation body of the request, or why it cannot be one."""

    body: dict[str, Any] | None
    error: str | None = None


def parse_create_observations(payload: Any) -> list[Row]:
    """Expand the request into one Observation body per row (pure). Structural errors raise BodyError."""
    if not isinstance(payload, list):
        raise BodyError("", "CreateObservations takes a JSON array of {Datastream, components, dataArray} objects")
    rows: list[Row] = []
    for index, group in enumerate(payload):
        where = f"[{index}]"
        if not isinstance(group, dict):
            raise BodyError(where, "expected an object with Datastream, components and dataArray")
        datastream = group.get("Datastream")
        if not isinstance(datastream, dict) or "@iot.id" not in datastream:
            raise BodyError(f"{where}.Datastream", "a link {'@iot.id': <id>} is required")
        components = group.get("components")
        if not isinstance(components, list) or not all(isinstance(c, str) for c in components):
            raise BodyError(f"{where}.components", "expected a list of property names")
        unknown = [c for c in components if c not in COMPONENTS]
        if unknown or len(set(components)) != len(components):
            bad = unknown[0] if unknown else "a repeated name"
            raise BodyError(f"{where}.components", f"{bad!r} is not allowed; use {', '.join(sorted(COMPONENTS))}")
        data = group.get("dataArray")
        if not isinstance(data, list):
            raise BodyError(f"{where}.dataArray", "expected a list of rows")
        for number, values in enumerate(data):
            if not isinstance(values, list) or len(values) != len(components):
                rows.append(Row(None, f"{where}.dataArray[{number}]: expected {len(components)} values"))
                continue
            body: dict[str, Any] = {"Datastream": {"@iot.id": datastream["@iot.id"]}}
            for name, value in zip(components, values, strict=True):
                if name == "FeatureOfInterest/id":
                    body["FeatureOfInterest"] = {"@iot.id": value}
                elif name != "id":
                    body[name] = value
            rows.append(Row(body))
    return rows


def create_observations(context: StaContext, payload: Any, notify: Notify | None = None) -> Response:
    try:
        rows = parse_create_observations(payload)
    except BodyError as exc:
        raise ApiError(400, exc.message, parameter=exc.where or None) from exc
    links: list[str] = []
    errors: dict[int, str] = {}
    with context.pool.connection() as conn, conn.transaction():
        writer = Writer(conn)
        for index, row in enumerate(rows):
            try:
                if row.body is None:
                    raise BodyError("", row.error or "invalid row")
                new = parse_create(em.OBSERVATION, row.body)
                with writer.savepoint():
                    ident = writer.create(new)
                links.append(f"{context.base_url}/Observations({ident})")
            except (BodyError, WriteError, psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
                message = str(exc) if isinstance(exc, BodyError) else getattr(exc, "message", None) or str(exc)
                errors[index] = message
                links.append("error")
        writer.finish()
    if notify is not None:
        notify(writer.changes)
    if errors:
        log.info("CreateObservations: %d of %d rows failed", len(errors), len(rows))
    # ASCII JSON: header values are Latin-1 on the wire.
    headers = {ERRORS_HEADER: json.dumps({str(k): v for k, v in errors.items()}, ensure_ascii=True)} if errors else None
    return Response(orjson.dumps(links), status_code=201, media_type="application/json", headers=headers)


def build_data_array_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["SensorThings"])

    @router.post(
        "/CreateObservations",
        summary="Create many Observations in the dataArray format",
        description=(
            'Body: `[{"Datastream": {"@iot.id": 1}, "components": ["phenomenonTime", "result",'
            ' "FeatureOfInterest/id"], "dataArray": [["2024-01-01T00:00:00Z", 20.5, 3]]}]`. Response 201: the'
            ' self link of each created Observation, or "error" for a row that failed (reasons in the'
            f" `{ERRORS_HEADER}` header)."
        ),
        status_code=201,
        response_class=Response,
    )
    async def post_create_observations(request: Request) -> Response:
        raw = await request.body()
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, f"the body is not JSON: {exc}") from None
        context: StaContext = request.app.state.sta
        notify: Notify | None = getattr(request.app.state, "notify", None)
        return await run_in_threadpool(create_observations, context, payload, notify)

    return router
