"""The aggregation extension: time-bucketed figures per Datastream, beside the standard paths.

It lives under its own prefix, ``/ext/aggregates/v1``, not under ``/v1.1``: nothing in the
SensorThings resource-path namespace changes, the service root's entity-set list stays exactly the
standard's, and a strict client that walks ``/v1.1`` never meets a path it cannot parse. The
service root advertises it in ``serverSettings`` (see :data:`CONFORMANCE`).
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

import orjson
import psycopg
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from api.aggregates_request import AggregateRequestError, parse_request
from api.errors import ApiError
from schemas.sta import format_time
from store.aggregates import (
    FUNCTIONS,
    AggregateError,
    AggregateSupport,
    DatastreamNotFound,
    aggregate_json,
    detect_support,
)

PREFIX = "/ext/aggregates/v1"
CONFORMANCE = "https://bydata.no/spec/sensorthings-aggregates/1.0"
DEFAULT_MAX_BUCKETS = 100_000

router = APIRouter(prefix=PREFIX, tags=["aggregation extension"])
_support_lock = threading.Lock()


def server_settings(public_url: str) -> dict[str, Any]:
    """The extension's entry in the service root's ``serverSettings``."""
    return {
        "endpoint": public_url.rstrip("/") + PREFIX + "/Datastreams({id})",
        "functions": list(FUNCTIONS),
        "documentation": public_url.rstrip("/") + "/docs#/aggregation%20extension",
    }


def _support(request: Request) -> AggregateSupport:
    state = request.app.state
    with _support_lock:
        found: AggregateSupport | None = getattr(state, "aggregate_support", None)
        if found is None:
            with state.pool.connection() as conn:
                found = detect_support(conn)
            state.aggregate_support = found
    return found


def _public_url(request: Request) -> str:
    configured: str | None = getattr(request.app.state, "public_url", None)
    return (configured or str(request.base_url)).rstrip("/")


@router.get(
    "/Datastreams({datastream_id})",
    summary="Time-bucketed aggregates of one Datastream's Observations",
    description=(
        "Buckets of `interval` (ISO 8601: `PT15M`, `PT1H`, `P1D`, `P1W`, `P1M`, `P1Y`) between `from` (inclusive)"
        " and `to` (exclusive) on the Observations' phenomenonTime. Sub-day intervals are absolute time aligned to"
        " local midnight in `timeZone`; day, week and month intervals are calendar units in `timeZone` (a"
        " Europe/Oslo day runs local midnight to local midnight, 23 or 25 hours on DST days; weeks start on Monday)."
        " Functions: `count` (all Observations), `avg`, `min`, `max`, `sum`, `first`, `last` (numeric results, by"
        " phenomenonTime), `increase` (cumulative counters: the sum of positive changes between consecutive"
        " readings, the one before `from` included; a fall is a reset and adds nothing, counting restarts from"
        " the value after it). Empty buckets are left out. `source` forces the raw Observations or the hourly"
        " continuous aggregate; `auto` uses the aggregate only where it gives the same figures."
    ),
    responses={400: {"description": "A parameter is wrong; `parameter` names it."}, 404: {"description": "No such"}},
)
def datastream_aggregates(
    request: Request,
    *,
    datastream_id: Annotated[int, Path(ge=1)],
    interval: Annotated[str | None, Query(description="Required: ISO 8601 duration of one bucket")] = None,
    from_: Annotated[str | None, Query(alias="from", description="Required: start (inclusive), RFC 3339")] = None,
    to: Annotated[str | None, Query(description="Required: end (exclusive), RFC 3339 with zone")] = None,
    aggregates: Annotated[
        str | None, Query(description="Comma-separated functions (default count,avg,min,max)")
    ] = None,
    time_zone: Annotated[str | None, Query(alias="timeZone", description="IANA zone (default UTC)")] = None,
    source: Annotated[str | None, Query(description="auto, observations or observations_hourly")] = None,
) -> Response:
    max_buckets = int(getattr(request.app.state, "aggregate_max_buckets", DEFAULT_MAX_BUCKETS))
    support = _support(request)
    with request.app.state.pool.connection() as conn:
        body = answer(
            conn, support, datastream_id, dict(request.query_params), max_buckets=max_buckets,
            public_url=_public_url(request),
        )  # fmt: skip
    return Response(body, media_type="application/json")


def answer(
    conn: psycopg.Connection[Any],
    support: AggregateSupport,
    datastream_id: int,
    params: dict[str, str],
    *,
    max_buckets: int,
    public_url: str,
) -> bytes:
    """The response body for one Datastream and the request's parameters (raises ApiError)."""
    try:
        query = parse_request(datastream_id, params, max_buckets=max_buckets)
        result = aggregate_json(conn, query, support)
    except (AggregateRequestError, AggregateError) as exc:
        raise ApiError(400, exc.message, parameter=exc.parameter) from exc
    except DatastreamNotFound:
        raise ApiError(404, f"no Datastream with id {datastream_id}") from None
    head = {
        "Datastream@iot.id": datastream_id,
        "Datastream@iot.navigationLink": f"{public_url}/v1.1/Datastreams({datastream_id})",
        "interval": query.interval.text,
        "timeZone": query.time_zone,
        "from": format_time(query.start),
        "to": format_time(query.end),
        "aggregates": list(query.functions),
        "unitOfMeasurement": result.unit_of_measurement,
        "source": result.source,
    }
    return orjson.dumps(head)[:-1] + b',"value":' + result.value + b"}"
