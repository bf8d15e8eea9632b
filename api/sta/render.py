"""Turn the translator's json rows into SensorThings JSON: ids, self links, navigation and next links.

Rows arrive as dicts built by SQL (``json_build_object``) holding ``@iot.id``, the selected
properties and the expansions; everything URL-shaped is added here, from the public base URL.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import orjson

from api.sta.translate import Plan

_SAFE = "$(),;=/:'*@!"
CHUNK = 200  # entities serialised per streamed chunk


def query_string(items: Sequence[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='$')}={quote(v, safe=_SAFE)}" for k, v in items)


def next_link(url: str, options: Mapping[str, str], top: int, skip: int) -> str:
    """``url`` with the same options, asking for the next page (``$top``/``$skip``)."""
    items = [(k, v) for k, v in options.items() if k not in ("$top", "$skip")]
    items += [("$top", str(top)), ("$skip", str(skip))]
    return f"{url}?{query_string(items)}"


def entity(obj: Mapping[str, Any], plan: Plan, base: str) -> dict[str, Any]:
    """One entity as the standard shows it; ``base`` ends with the version (``.../v1.1``)."""
    ident = obj["@iot.id"]
    self_link = f"{base}/{plan.entity.set_name}({ident})"
    out: dict[str, Any] = {}
    if plan.include_id:
        out["@iot.id"] = ident
    if plan.include_self_link:
        out["@iot.selfLink"] = self_link
    for prop in plan.properties:
        out[prop.name] = obj.get(prop.name)
    for nav in plan.nav_links:
        out[f"{nav}@iot.navigationLink"] = f"{self_link}/{nav}"
    for name, expansion in plan.expands.items():
        value = obj.get(name)
        if not expansion.relation.many:
            out[name] = entity(value, expansion.plan, base) if value is not None else None
            continue
        items = value or []
        if expansion.count:
            out[f"{name}@iot.count"] = obj.get(f"{name}@iot.count")
        out[name] = [entity(item, expansion.plan, base) for item in items[: expansion.top]]
        if len(items) > expansion.top:
            out[f"{name}@iot.nextLink"] = next_link(
                f"{self_link}/{name}", expansion.raw, expansion.top, expansion.skip + expansion.top
            )
    return out


def collection_chunks(
    rows: Sequence[Mapping[str, Any]],
    plan: Plan,
    base: str,
    *,
    count: int | None,
    next_url: str | None,
    refs: bool = False,
) -> Iterator[bytes]:
    """The body of a collection response, serialised a chunk of entities at a time."""
    head: dict[str, Any] = {}
    if count is not None:
        head["@iot.count"] = count
    if next_url is not None:
        head["@iot.nextLink"] = next_url
    prefix = orjson.dumps(head)[:-1]
    yield prefix + (b',"value":[' if head else b'"value":[')
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        if refs:
            parts = [orjson.dumps({"@iot.selfLink": f"{base}/{plan.entity.set_name}({r['@iot.id']})"}) for r in chunk]
        else:
            parts = [orjson.dumps(entity(r, plan, base)) for r in chunk]
        yield (b"," if start else b"") + b",".join(parts)
    yield b"]}"
