"""Request bodies of the Create-Update-Delete class (OGC 18-088, 10) into write plans: pure, no I/O.

A body becomes a :class:`NewEntity` (create, deep insert) or an :class:`Update` (PATCH, PUT):
column values ready for the store, and navigation properties as links to existing entities or
nested new entities. The rules are the standard's and no more:

* an object carrying ``@iot.id`` inside a body is a link to that entity, whatever else it
  carries (clients such as frost-sta-client send the whole related entity);
* ``@iot.id`` of the entity being created or updated, self and navigation links, and computed
  properties (a Datastream's phenomenonTime, resultTime, observedArea) are ignored;
* an update may bind navigation properties to existing entities but not create them inline;
* unknown properties, wrong types and missing mandatory properties are errors naming the place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from api.sta import entities as em
from schemas.sta import parse_time_object

IGNORED_SUFFIXES = ("@iot.navigationLink", "@iot.selfLink", "@iot.count", "@iot.nextLink")


class BodyError(ValueError):
    """The body is not a valid entity representation; ``where`` names the place (``Datastreams[0].Sensor``)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message


@dataclass(frozen=True, slots=True)
class Link:
    entity: em.EntityType
    id: int


@dataclass(slots=True)
class NewEntity:
    entity: em.EntityType
    columns: dict[str, Any]
    relations: dict[str, list[Link | NewEntity]] = field(default_factory=dict)
    given: frozenset[str] = frozenset()  # property names the body gave
    where: str = ""


@dataclass(slots=True)
class Update:
    entity: em.EntityType
    columns: dict[str, Any]
    relations: dict[str, list[Link]] = field(default_factory=dict)
    given: frozenset[str] = frozenset()


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _time(where: str, value: Any, *, interval: bool | None) -> tuple[datetime, datetime | None]:
    if not isinstance(value, str):
        raise BodyError(where, f"expected an ISO 8601 time as text, got {type(value).__name__}")
    try:
        start, end = parse_time_object(value)
    except ValueError as exc:
        raise BodyError(where, str(exc)) from None
    if interval is True and end is None:
        raise BodyError(where, f"{value!r} is not an interval (start/end)")
    if interval is False and end is not None:
        raise BodyError(where, f"{value!r} is an interval; an instant is expected")
    return start, end


EXACT_INTEGERS = 2**53  # a double holds every integer up to this one exactly


def result_columns(value: Any) -> dict[str, Any]:
    """An Observation result into the typed result columns (the others set to NULL).

    An integer a double cannot hold exactly (beyond 2**53, such as a 64-bit counter or the OGC
    suite's random ``long`` results) keeps its digits in ``result_json`` and its rounded value in
    ``result_number``, so it reads back as sent and still takes part in numeric filters.
    """
    columns: dict[str, Any] = dict.fromkeys(em.RESULT_COLUMNS)
    if isinstance(value, bool):
        columns["result_boolean"] = value
    elif isinstance(value, int) and not -EXACT_INTEGERS <= value <= EXACT_INTEGERS:
        columns["result_number"] = float(value)
        columns["result_json"] = Jsonb(value)
    elif isinstance(value, int | float):
        columns["result_number"] = float(value)
    elif isinstance(value, str):
        columns["result_text"] = value
    elif value is not None:
        columns["result_json"] = Jsonb(value)
    return columns


MAX_DEPTH = 64  # nesting of a JSON value in a body: deeper is no sensor's data, and costs recursion


def _check_text(value: Any, where: str) -> None:
    """PostgreSQL text and jsonb cannot hold NUL (U+0000): say so, and where, before the store refuses it.

    Walks with a stack of its own (a deeply nested body must be a 400, not a RecursionError) and
    refuses values nested deeper than :data:`MAX_DEPTH`.
    """
    todo: list[tuple[Any, str, int]] = [(value, where, 0)]
    while todo:
        item, at, depth = todo.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise BodyError(at, "text cannot contain NUL (U+0000)")
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= MAX_DEPTH:
            raise BodyError(at, f"is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            for key, inner in item.items():
                todo.append((key, at, depth))
                todo.append((inner, _at(at, str(key)), depth + 1))
        else:
            todo.extend((inner, f"{at}[{index}]", depth + 1) for index, inner in enumerate(item))


GEOMETRY_NESTING = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2, "MultiPolygon": 3}


def is_geojson_encoding(encoding: str) -> bool:
    """application/geo+json and the older application/vnd.geo+json."""
    return encoding.strip().lower().endswith("geo+json")


def geojson_problem(value: Any) -> str | None:
    """Why ``value`` is not a GeoJSON object (RFC 7946) a geometry can be made of; None when it is.

    Checks what PostGIS's ST_GeomFromGeoJSON needs (known types, coordinates nested to the
    type's depth, positions of two or more numbers), no more: rings need not be closed.
    """
    todo: list[tuple[Any, bool]] = [(value, False)]  # (object, whether only a geometry may stand there)
    while todo:  # bounded: _check_text has refused values nested deeper than MAX_DEPTH
        item, geometry = todo.pop()
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            return "expected a GeoJSON object with a type"
        kind = item["type"]
        if geometry and kind in ("Feature", "FeatureCollection"):
            return f"a GeoJSON {kind} cannot stand where a geometry is expected"
        if kind == "Feature":
            if item.get("geometry") is not None:
                todo.append((item.get("geometry"), True))
        elif kind == "FeatureCollection":
            if not isinstance(item.get("features"), list):
                return "a GeoJSON FeatureCollection needs a list of features"
            todo.extend((feature, False) for feature in item["features"])
        elif kind == "GeometryCollection":
            if not isinstance(item.get("geometries"), list):
                return "a GeoJSON GeometryCollection needs a list of geometries"
            todo.extend((member, True) for member in item["geometries"])
        elif kind in GEOMETRY_NESTING:
            if not _coordinates_fit(item.get("coordinates"), GEOMETRY_NESTING[kind]):
                return f"a GeoJSON {kind} needs coordinates: " + "arrays of " * GEOMETRY_NESTING[kind] + "[x, y]"
        else:
            return f"unknown GeoJSON type {kind!r}"
    return None


def _coordinates_fit(coordinates: Any, depth: int) -> bool:
    level = [coordinates]
    for _ in range(depth):
        if not all(isinstance(c, list) for c in level):
            return False
        level = [inner for c in level for inner in c]
    return all(
        isinstance(p, list) and len(p) >= 2 and all(isinstance(n, int | float) and not isinstance(n, bool) for n in p)
        for p in level
    )


def _geojson_expected(props: Mapping[str, Any], value: Any) -> bool:
    """A location or feature is GeoJSON when its encodingType says so; any JSON value otherwise.

    An update that gives no encodingType keeps the stored one: an object is then taken as GeoJSON.
    """
    encoding = props.get("encodingType")
    if isinstance(encoding, str):
        return is_geojson_encoding(encoding)
    return isinstance(value, dict)


def property_columns(prop: em.Property, value: Any, where: str, *, geojson: bool = True) -> dict[str, Any]:
    """One property's value as column values; raises :class:`BodyError` when it does not fit.

    ``geojson``: a geometry property (Location.location, FeatureOfInterest.feature) must be GeoJSON;
    False when the entity's encodingType is another, and the property is then of type Any.
    """
    _check_text(value, where)
    if prop.type is em.PropType.RESULT:
        return result_columns(value)
    if value is None:
        if prop.required:
            raise BodyError(where, "is mandatory and cannot be null")
        columns = {prop.column: None}
        if prop.end_column:
            columns[prop.end_column] = None
        return columns
    kind = prop.type
    if kind is em.PropType.STRING:
        if not isinstance(value, str):
            raise BodyError(where, f"expected text, got {type(value).__name__}")
        return {prop.column: value}
    if kind is em.PropType.JSON:
        if not isinstance(value, dict):
            raise BodyError(where, f"expected a JSON object, got {type(value).__name__}")
        return {prop.column: Jsonb(value)}
    if kind is em.PropType.ANY:
        return {prop.column: Jsonb(value)}
    if kind is em.PropType.GEOMETRY:
        if geojson and (problem := geojson_problem(value)) is not None:
            raise BodyError(where, problem)
        return {prop.column: Jsonb(value)}
    if kind is em.PropType.DATETIME:
        return {prop.column: _time(where, value, interval=False)[0]}
    if kind is em.PropType.TIME_OBJECT:
        start, end = _time(where, value, interval=None)
        return {prop.column: start, str(prop.end_column): end}
    if kind is em.PropType.INTERVAL:
        start, end = _time(where, value, interval=True)
        return {prop.column: start, str(prop.end_column): end}
    raise BodyError(where, f"{prop.name} cannot be written")


def _link_id(value: Any, where: str) -> int:
    ident = value.get("@iot.id")
    if isinstance(ident, str) and ident.isascii() and ident.isdigit() and len(ident) < 19:
        ident = int(ident)
    if isinstance(ident, bool) or not isinstance(ident, int) or ident < 1:
        raise BodyError(_at(where, "@iot.id"), f"Bydata ids are positive integers, got {ident!r}")
    return ident


def _related(relation: em.Relation, value: Any, where: str, *, inline: bool) -> list[Link | NewEntity]:
    target = em.target_of(relation)
    if relation.many:
        if not isinstance(value, list):
            raise BodyError(where, f"expected a list of {target.name} entities or links")
        items = list(value)
    else:
        if not isinstance(value, dict):
            raise BodyError(where, f"expected one {target.name} entity or a link {{'@iot.id': …}}")
        items = [value]
    out: list[Link | NewEntity] = []
    for index, item in enumerate(items):
        here = f"{where}[{index}]" if relation.many else where
        if not isinstance(item, dict):
            raise BodyError(here, f"expected a {target.name} entity or a link {{'@iot.id': …}}")
        if "@iot.id" in item:
            out.append(Link(target, _link_id(item, here)))
        elif not inline:
            raise BodyError(here, "an update may link existing entities by @iot.id, not create them inline")
        else:
            out.append(parse_create(target, item, where=here, via=relation))
    return out


def _split(entity: em.EntityType, body: Any, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(body, dict):
        raise BodyError(where, f"expected a JSON object for a {entity.name}")
    props: dict[str, Any] = {}
    rels: dict[str, Any] = {}
    for key, value in body.items():
        if key == "@iot.id" or key.endswith(IGNORED_SUFFIXES) or key.startswith("@"):
            continue
        if (prop := entity.property(key)) is not None:
            if not prop.computed:
                props[key] = value
        elif entity.relation(key) is not None:
            rels[key] = value
        else:
            known = sorted([*entity.properties, *entity.relations])
            raise BodyError(_at(where, key), f"a {entity.name} has no property {key!r} (it has {', '.join(known)})")
    return props, rels


def parse_create(entity: em.EntityType, body: Any, *, where: str = "", via: em.Relation | None = None) -> NewEntity:
    """A create (or deep-insert) body. ``via`` is the relation it hangs from, which then needs no link."""
    props, rels = _split(entity, body, where)
    columns: dict[str, Any] = {}
    for prop in entity.properties.values():
        if prop.computed:
            continue
        if prop.name in props:
            value = props[prop.name]
            geojson = _geojson_expected(props, value)
            columns |= property_columns(prop, value, _at(where, prop.name), geojson=geojson)
        elif prop.required and not (entity is em.OBSERVATION and prop.name == "result"):
            raise BodyError(_at(where, prop.name), f"is mandatory for a new {entity.name}")
    if entity is em.OBSERVATION and "result" not in props:
        raise BodyError(_at(where, "result"), "is mandatory for a new Observation")
    relations = {
        name: _related(entity.relations[name], value, _at(where, name), inline=True) for name, value in rels.items()
    }
    for name, items in relations.items():
        if not entity.relations[name].many and len(items) != 1:
            raise BodyError(_at(where, name), "takes exactly one entity")
    inverse = via.inverse if via is not None else None
    for relation in entity.relations.values():
        if relation.required and relation.name not in relations and relation.name != inverse:
            raise BodyError(_at(where, relation.name), f"a new {entity.name} must link a {relation.target}")
    return NewEntity(entity, columns, relations, frozenset(props), where)


def parse_update(entity: em.EntityType, body: Any, *, replace: bool) -> Update:
    """A PATCH body (``replace`` False) or a PUT body (True: every omitted property is reset)."""
    props, rels = _split(entity, body, "")
    columns: dict[str, Any] = {}
    for prop in entity.properties.values():
        if prop.computed:
            continue
        if prop.name in props:
            value = props[prop.name]
            columns |= property_columns(prop, value, prop.name, geojson=_geojson_expected(props, value))
        elif replace:
            if prop.required:
                raise BodyError(prop.name, f"is mandatory: PUT replaces the whole {entity.name}")
            columns |= property_columns(prop, None, prop.name)
    relations: dict[str, list[Link]] = {}
    for name, value in rels.items():
        items = _related(entity.relations[name], value, name, inline=False)
        relations[name] = [item for item in items if isinstance(item, Link)]
    return Update(entity, columns, relations, frozenset(props))


def changed_properties(before: Mapping[str, Any], after: Mapping[str, Any], entity: em.EntityType) -> dict[str, Any]:
    """The properties a JSON Patch changed, as a PATCH body (navigation stays out of JSON Patch)."""
    out: dict[str, Any] = {}
    for name in entity.properties:
        if name in after and after.get(name) != before.get(name):
            out[name] = after[name]
        elif name not in after and name in before and before[name] is not None:
            out[name] = None
    unknown = sorted(k for k in after if k not in before and entity.property(k) is None and not k.startswith("@"))
    if unknown:
        raise BodyError(unknown[0], f"a {entity.name} has no property {unknown[0]!r}")
    return out
