"""The dataArray extension's read side (OGC 18-088, 14.3): ``GET …/Observations?$resultFormat=dataArray``.

The request is planned like any other read, with ``$resultFormat`` taken out, ``id`` added to
``$select`` and ``Datastream($select=id)`` expanded so rows can be grouped; the rows are then
regrouped, one entry per Datastream, in the order the page has them.
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
from api.sta.routes import PREFIX, StaContext, _count, _json, _run

RESULT_FORMAT = "$resultFormat"


def plan_items(items: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The query options a dataArray request is planned with (pure)."""
    out: list[tuple[str, str]] = []
    for key, value in items:
        if key == RESULT_FORMAT:
            continue
        if key == "$expand":
            raise ApiError(400, "$expand does not combine with $resultFormat=dataArray", parameter="$expand")
        out.append((key, f"{value},id" if key == "$select" else value))
    out.append(("$expand", "Datastream($select=id)"))
    return tuple(out)


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
    names = [p.name for p in query.plan.properties]
    groups: dict[Any, list[list[Any]]] = {}
    for text in rows:
        row = orjson.loads(text)
        datastream = (row.get("Datastream") or {}).get("@iot.id")
        groups.setdefault(datastream, []).append([row["@iot.id"], *(row.get(n) for n in names)])
    body["value"] = [
        {
            "Datastream@iot.navigationLink": f"{context.base_url}/Datastreams({ds})",
            "components": ["id", *names],
            "dataArray@iot.count": len(values),
            "dataArray": values,
        }
        for ds, values in groups.items()
    ]
    return _json(body)
