"""The dataArray extension's read side (OGC 18-088, 14.3): ``GET …/Observations?$resultFormat=dataArray``.

The ``components`` are those of ``$select``, in its order (the standard's "ordered array of
Observation property names"; what the conformance suite checks): ``id``, the Observation's
properties, and ``FeatureOfInterest/id``, the component the standard names for the link to the
feature (so what is read can be posted back to ``CreateObservations``). Without ``$select`` they
are ``id`` and every property, in the model's order (``id, phenomenonTime, resultTime, result,
…`` as in the standard's example).

The request is planned like any other read, with ``$resultFormat`` taken out, ``$select`` set to
what the components need and ``Datastream($select=id)`` (and ``FeatureOfInterest($select=id)``)
expanded; the rows are then regrouped, one entry per Datastream, in the order the page has them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from api.errors import ApiError
from api.sta import entities as em
from api.sta import links
from api.sta.odata.parser import QueryError, parse_select
from api.sta.routes import PREFIX, StaContext, _count, _json, _run

RESULT_FORMAT = "$resultFormat"
FEATURE_ID = "FeatureOfInterest/id"
DEFAULT_COMPONENTS = ("id", *em.OBSERVATION.properties)


def components_of(items: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """The components a dataArray request asks for: its ``$select``, in order (pure; 400 on others)."""
    text = next((value for key, value in items if key == "$select"), None)
    if text is None:
        return DEFAULT_COMPONENTS
    try:
        selected = parse_select(text)
    except QueryError as exc:
        raise ApiError(400, exc.message, parameter="$select", column=exc.column) from exc
    out: list[str] = []
    for item in selected:
        if item.path == ():
            names: tuple[str, ...] = DEFAULT_COMPONENTS
        else:
            name = "/".join(item.path)
            name = {"@iot.id": "id", "FeatureOfInterest/@iot.id": FEATURE_ID}.get(name, name)
            if name not in DEFAULT_COMPONENTS and name != FEATURE_ID:
                known = ", ".join((*DEFAULT_COMPONENTS, FEATURE_ID))
                raise ApiError(400, f"{name!r} is not a dataArray component (components: {known})", parameter="$select")
            names = (name,)
        out += [n for n in names if n not in out]
    return tuple(out)


def plan_items(items: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The query options a dataArray request is planned with (pure)."""
    components = components_of(items)
    out: list[tuple[str, str]] = []
    for key, value in items:
        if key in (RESULT_FORMAT, "$select"):
            continue
        if key == "$expand":
            raise ApiError(400, "$expand does not combine with $resultFormat=dataArray", parameter="$expand")
        out.append((key, value))
    columns = [c for c in components if c != FEATURE_ID]
    out.append(("$select", ",".join(columns) if columns else "id"))
    expand = "Datastream($select=id)"
    if FEATURE_ID in components:
        expand += ",FeatureOfInterest($select=id)"
    out.append(("$expand", expand))
    return tuple(out)


def _component(row: dict[str, Any], name: str) -> Any:
    if name == "id":
        return row["@iot.id"]
    if name == FEATURE_ID:
        return (row.get("FeatureOfInterest") or {}).get("@iot.id")
    return row.get(name)


def read_data_array(request: Request, context: StaContext, rest: str, items: Sequence[tuple[str, str]]) -> Response:
    """The page of Observations ``rest`` addresses, as dataArray groups."""
    planned = context.planner(rest, plan_items(items))
    if planned.query.plan.entity is not em.OBSERVATION or planned.path.single or planned.path.ref:
        raise ApiError(400, "$resultFormat=dataArray applies to collections of Observations", parameter=RESULT_FORMAT)
    query = planned.query
    rows = _run(context, planned)
    count = _count(context, query)
    body: dict[str, Any] = {}
    if count is not None:
        body["@iot.count"] = count
    if len(rows) > query.top and query.top > 0:
        url = f"{context.base_url}/{request.url.path.split(PREFIX + '/', 1)[1]}"
        body["@iot.nextLink"] = links.next_link(url, dict(items), query.top, query.skip + query.top)
    rows = rows[: query.top]
    components = components_of(items)
    groups: dict[Any, list[list[Any]]] = {}
    for text in rows:
        row = orjson.loads(text)
        datastream = (row.get("Datastream") or {}).get("@iot.id")
        groups.setdefault(datastream, []).append([_component(row, n) for n in components])
    body["value"] = [
        {
            "Datastream@iot.navigationLink": f"{context.base_url}/Datastreams({ds})",
            "components": list(components),
            "dataArray@iot.count": len(values),
            "dataArray": values,
        }
        for ds, values in groups.items()
    ]
    return _json(body)
