"""The SensorThings entity model mapped onto Bydata's tables: the one place routes and the translator read.

For each of the eight entity types: its entity set, table, properties (with the SQL each
maps to) and navigation relations (many-to-one by a foreign key here, one-to-many by a
foreign key there, many-to-many through a link table). Pure data plus small functions
that compose ``psycopg.sql`` fragments for a table alias (join conditions, id sets, and
:func:`render_property`, each property's JSON text as the response shows it); nothing here runs SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from psycopg import sql

from schemas import quality


class PropType(StrEnum):
    """What a property holds, which decides how it is rendered, compared and filtered."""

    STRING = "string"
    JSON = "json"  # an object (properties, parameters, unitOfMeasurement ...): sub-paths allowed
    ANY = "any"  # any JSON value (Sensor.metadata, resultQuality)
    DATETIME = "datetime"  # an instant (HistoricalLocation.time, Observation.resultTime)
    TIME_OBJECT = "time_object"  # an instant or an interval (start column + end column)
    INTERVAL = "interval"  # always an interval (validTime)
    RESULT = "result"  # Observation.result: typed columns number/boolean/text/json
    GEOMETRY = "geometry"  # GeoJSON, with point columns and (PostGIS) a geometry


@dataclass(frozen=True, slots=True)
class Geometry:
    """Where a GeoJSON property's geometry lives besides the JSON: point columns, PostGIS column."""

    lon_column: str | None
    lat_column: str | None
    geom_column: str | None  # a stored PostGIS geometry column (present when PostGIS is)
    geom_function: str | None = None  # else a function of the JSON column (geojson_geometry)


@dataclass(frozen=True, slots=True)
class Property:
    name: str
    type: PropType
    column: str
    end_column: str | None = None  # for TIME_OBJECT/INTERVAL
    required: bool = False  # must be given on create
    computed: bool = False  # derived by the server, never written by clients
    geometry: Geometry | None = None


class Join(StrEnum):
    FK_HERE = "fk_here"  # this table has the foreign key (many-to-one)
    FK_THERE = "fk_there"  # the target table has the foreign key (one-to-many)
    LINK = "link"  # a link table (many-to-many)


@dataclass(frozen=True, slots=True)
class Relation:
    """A navigation property: ``name`` on the source type leads to ``target``."""

    name: str
    target: str  # entity type name
    many: bool
    join: Join
    column: str = ""  # FK_HERE: column on the source; FK_THERE: column on the target
    link_table: str = ""
    link_source: str = ""  # LINK: column referencing the source
    link_target: str = ""  # LINK: column referencing the target
    inverse: str | None = None
    required: bool = False  # a create must link it (Datastream -> Thing/Sensor/ObservedProperty)


@dataclass(frozen=True, slots=True)
class EntityType:
    name: str
    set_name: str
    table: str
    properties: Mapping[str, Property]
    relations: Mapping[str, Relation]
    default_order: tuple[tuple[str, bool], ...] = (("id", False),)  # (column, descending)
    # column sets that identify a row: an order over one of them needs no tie-breaker
    unique_keys: tuple[tuple[str, ...], ...] = (("id",),)
    id_column: str = "id"

    def property(self, name: str) -> Property | None:
        return self.properties.get(name)

    def relation(self, name: str) -> Relation | None:
        return self.relations.get(name)


def _props(*items: Property) -> dict[str, Property]:
    return {p.name: p for p in items}


def _rels(*items: Relation) -> dict[str, Relation]:
    return {r.name: r for r in items}


_NAME = Property("name", PropType.STRING, "name", required=True)
_DESCRIPTION = Property("description", PropType.STRING, "description", required=True)
_PROPERTIES = Property("properties", PropType.JSON, "properties")
_ENCODING = Property("encodingType", PropType.STRING, "encoding_type", required=True)

THING = EntityType(
    "Thing",
    "Things",
    "things",
    _props(_NAME, _DESCRIPTION, _PROPERTIES),
    _rels(
        Relation(
            "Locations", "Location", True, Join.LINK, link_table="thing_locations",
            link_source="thing_id", link_target="location_id", inverse="Things",
        ),
        Relation("HistoricalLocations", "HistoricalLocation", True, Join.FK_THERE, "thing_id", inverse="Thing"),
        Relation("Datastreams", "Datastream", True, Join.FK_THERE, "thing_id", inverse="Thing"),
    ),
)  # fmt: skip

LOCATION = EntityType(
    "Location",
    "Locations",
    "locations",
    _props(
        _NAME,
        _DESCRIPTION,
        _ENCODING,
        Property(
            "location", PropType.GEOMETRY, "location", required=True,
            geometry=Geometry("point_lon", "point_lat", "geom"),
        ),
        _PROPERTIES,
    ),
    _rels(
        Relation(
            "Things", "Thing", True, Join.LINK, link_table="thing_locations",
            link_source="location_id", link_target="thing_id", inverse="Locations",
        ),
        Relation(
            "HistoricalLocations", "HistoricalLocation", True, Join.LINK,
            link_table="historical_location_locations", link_source="location_id",
            link_target="historical_location_id", inverse="Locations",
        ),
    ),
)  # fmt: skip

HISTORICAL_LOCATION = EntityType(
    "HistoricalLocation",
    "HistoricalLocations",
    "historical_locations",
    _props(Property("time", PropType.DATETIME, "time", required=True)),
    _rels(
        Relation("Thing", "Thing", False, Join.FK_HERE, "thing_id", inverse="HistoricalLocations", required=True),
        Relation(
            "Locations", "Location", True, Join.LINK, link_table="historical_location_locations",
            link_source="historical_location_id", link_target="location_id", inverse="HistoricalLocations",
        ),
    ),
)  # fmt: skip

SENSOR = EntityType(
    "Sensor",
    "Sensors",
    "sensors",
    _props(_NAME, _DESCRIPTION, _ENCODING, Property("metadata", PropType.ANY, "metadata", required=True), _PROPERTIES),
    _rels(Relation("Datastreams", "Datastream", True, Join.FK_THERE, "sensor_id", inverse="Sensor")),
)

OBSERVED_PROPERTY = EntityType(
    "ObservedProperty",
    "ObservedProperties",
    "observed_properties",
    _props(_NAME, Property("definition", PropType.STRING, "definition", required=True), _DESCRIPTION, _PROPERTIES),
    _rels(
        Relation("Datastreams", "Datastream", True, Join.FK_THERE, "observed_property_id", inverse="ObservedProperty")
    ),
)

DATASTREAM = EntityType(
    "Datastream",
    "Datastreams",
    "datastreams",
    _props(
        _NAME,
        _DESCRIPTION,
        Property("unitOfMeasurement", PropType.JSON, "unit_of_measurement", required=True),
        Property("observationType", PropType.STRING, "observation_type", required=True),
        Property(
            "observedArea", PropType.GEOMETRY, "observed_area", computed=True,
            geometry=Geometry(None, None, None, "geojson_geometry"),
        ),
        # The span of the Datastream's Observations: two index probes (see translate.py).
        Property("phenomenonTime", PropType.TIME_OBJECT, "phenomenon_time_start", "phenomenon_time_end", computed=True),
        # Maintained by the write path (no index serves a probe on result_time).
        Property("resultTime", PropType.INTERVAL, "result_time_start", "result_time_end", computed=True),
        _PROPERTIES,
    ),
    _rels(
        Relation("Thing", "Thing", False, Join.FK_HERE, "thing_id", inverse="Datastreams", required=True),
        Relation("Sensor", "Sensor", False, Join.FK_HERE, "sensor_id", inverse="Datastreams", required=True),
        Relation(
            "ObservedProperty", "ObservedProperty", False, Join.FK_HERE, "observed_property_id",
            inverse="Datastreams", required=True,
        ),
        Relation("Observations", "Observation", True, Join.FK_THERE, "datastream_id", inverse="Datastream"),
    ),
)  # fmt: skip

OBSERVATION = EntityType(
    "Observation",
    "Observations",
    "observations",
    _props(
        Property("phenomenonTime", PropType.TIME_OBJECT, "phenomenon_time", "phenomenon_time_end"),
        Property("resultTime", PropType.DATETIME, "result_time"),
        Property("result", PropType.RESULT, "result_number", required=True),
        Property("resultQuality", PropType.ANY, "result_quality"),
        Property("validTime", PropType.INTERVAL, "valid_time_start", "valid_time_end"),
        Property("parameters", PropType.JSON, "parameters"),
    ),
    _rels(
        Relation(
            "Datastream", "Datastream", False, Join.FK_HERE, "datastream_id", inverse="Observations", required=True
        ),
        Relation(
            "FeatureOfInterest", "FeatureOfInterest", False, Join.FK_HERE, "feature_of_interest_id",
            inverse="Observations",
        ),
    ),
    # Time order first: it is what the (datastream_id, phenomenon_time, dedup_key) index serves.
    default_order=(("phenomenon_time", False), ("id", False)),
    unique_keys=(("id",),),  # several Observations may share a Datastream and phenomenonTime
)  # fmt: skip

FEATURE_OF_INTEREST = EntityType(
    "FeatureOfInterest",
    "FeaturesOfInterest",
    "features_of_interest",
    _props(
        _NAME,
        _DESCRIPTION,
        _ENCODING,
        Property(
            "feature", PropType.GEOMETRY, "feature", required=True,
            geometry=Geometry("point_lon", "point_lat", "geom"),
        ),
        _PROPERTIES,
    ),
    _rels(
        Relation(
            "Observations", "Observation", True, Join.FK_THERE, "feature_of_interest_id", inverse="FeatureOfInterest"
        )
    ),
)  # fmt: skip

ENTITY_TYPES: dict[str, EntityType] = {
    e.name: e
    for e in (
        THING,
        LOCATION,
        HISTORICAL_LOCATION,
        DATASTREAM,
        SENSOR,
        OBSERVED_PROPERTY,
        OBSERVATION,
        FEATURE_OF_INTEREST,
    )
}
ENTITY_SETS: dict[str, EntityType] = {e.set_name: e for e in ENTITY_TYPES.values()}

RESULT_COLUMNS = ("result_number", "result_boolean", "result_text", "result_json")


def entity(name: str) -> EntityType:
    return ENTITY_TYPES[name]


def target_of(relation: Relation) -> EntityType:
    return ENTITY_TYPES[relation.target]


def col(alias: str, column: str) -> sql.Composed:
    """``alias.column``, both quoted identifiers."""
    return sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(column))


def relation_condition(relation: Relation, source_alias: str, target_alias: str) -> sql.Composable:
    """The condition that the row ``target_alias`` is related to the row ``source_alias``."""
    target = target_of(relation)
    if relation.join is Join.FK_HERE:
        return sql.SQL("{} = {}").format(col(target_alias, target.id_column), col(source_alias, relation.column))
    if relation.join is Join.FK_THERE:
        return sql.SQL("{} = {}").format(col(target_alias, relation.column), col(source_alias, "id"))
    return sql.SQL("EXISTS (SELECT 1 FROM {} l WHERE l.{} = {} AND l.{} = {})").format(
        sql.Identifier(relation.link_table),
        sql.Identifier(relation.link_source),
        col(source_alias, "id"),
        sql.Identifier(relation.link_target),
        col(target_alias, target.id_column),
    )


def related_ids(source: EntityType, relation: Relation, source_ids: sql.Composable) -> tuple[str, sql.Composable]:
    """``(target column, id set)`` such that ``target column IN (id set)`` selects the related rows.

    ``source_ids`` is a subquery (or one placeholder) yielding ids of ``source``; the result
    nests the same way, so a resource path of any depth becomes nested ``IN`` subqueries.
    """
    target = target_of(relation)
    if relation.join is Join.FK_THERE:
        return relation.column, source_ids
    if relation.join is Join.FK_HERE:
        ids = sql.SQL("SELECT {} FROM {} WHERE {} IN ({})").format(
            sql.Identifier(relation.column), sql.Identifier(source.table), sql.Identifier(source.id_column), source_ids
        )
        return target.id_column, ids
    ids = sql.SQL("SELECT {} FROM {} WHERE {} IN ({})").format(
        sql.Identifier(relation.link_target),
        sql.Identifier(relation.link_table),
        sql.Identifier(relation.link_source),
        source_ids,
    )
    return target.id_column, ids


for _et in ENTITY_TYPES.values():
    for _rel in _et.relations.values():
        if _rel.inverse is not None and _rel.inverse not in ENTITY_TYPES[_rel.target].relations:
            raise AssertionError(f"{_et.name}.{_rel.name}: inverse {_rel.inverse} missing")


# --------------------------------------------------------------------------------------
# Property rendering


def json_string_body(text: str) -> str:
    """``text`` escaped as inside a JSON string, exactly as PostgreSQL's ``to_json(text)`` does.

    For constant pieces of the statements' JSON (keys, the base URL of links) written here
    once instead of by the database on every row.
    """
    return "".join(_JSON_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if c < " " else c) for c in text)


_JSON_ESCAPES = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "\\": "\\\\"}


def _iso(expr: sql.Composable) -> sql.Composable:
    """ISO 8601 in UTC without the ``Z`` and without quotes (independent of the session's time zone).

    ``to_json`` of a timestamp is the quoted ISO text, which holds no character JSON escapes.
    """
    return sql.SQL("btrim(to_json(({}) AT TIME ZONE 'UTC')::text, '\"')").format(expr)


def json_time(expr: sql.Composable) -> sql.Composable:
    """An instant as JSON text, ``"…Z"``; NULL for NULL."""
    return sql.SQL("(rtrim(to_json(({}) AT TIME ZONE 'UTC')::text, '\"') || 'Z\"')").format(expr)


def json_interval(start: sql.Composable, end: sql.Composable) -> sql.Composable:
    """``"start/end"`` as JSON text; NULL when either is NULL."""
    return sql.SQL("(rtrim(to_json(({}) AT TIME ZONE 'UTC')::text, '\"') || 'Z/' || {} || 'Z\"')").format(
        start, _iso(end)
    )


def datastream_span(alias: str) -> tuple[sql.Composable, sql.Composable]:
    """First and last phenomenon time of a Datastream's Observations.

    The maintained columns when a writer keeps them, else two probes of the index
    (datastream_id, phenomenon_time, dedup_key): never a scan.
    """
    a = sql.Identifier(alias)
    first = sql.SQL(
        "coalesce({a}.phenomenon_time_start, (SELECT o.phenomenon_time FROM observations o"
        " WHERE o.datastream_id = {a}.id ORDER BY o.phenomenon_time LIMIT 1))"
    ).format(a=a)
    last = sql.SQL(
        "coalesce({a}.phenomenon_time_end, (SELECT coalesce(o.phenomenon_time_end, o.phenomenon_time)"
        " FROM observations o WHERE o.datastream_id = {a}.id ORDER BY o.phenomenon_time DESC LIMIT 1))"
    ).format(a=a)
    return first, last


def is_span(entity: EntityType, prop: Property) -> bool:
    return entity.name == "Datastream" and prop.name == "phenomenonTime"


def render_property(entity: EntityType, prop: Property, alias: str) -> sql.Composable:
    """The JSON text of ``prop`` as it appears in the response (``null`` for NULL, never SQL NULL).

    Each is what ``to_json`` of the property's value writes, built without ``to_json``'s
    type lookup where the type is known: times are ISO 8601 in UTC with ``Z`` and intervals
    ``start/end``; ``jsonb`` columns as they are; strings escaped.
    """
    c = col(alias, prop.column)
    if is_span(entity, prop):  # NULL without Observations
        first, last = datastream_span(alias)
        return sql.SQL("coalesce({}, 'null')").format(json_interval(first, last))
    if prop.type is PropType.DATETIME:
        return sql.SQL("coalesce({}, 'null')").format(json_time(c))
    if prop.type is PropType.TIME_OBJECT:
        end = col(alias, prop.end_column or "")
        return sql.SQL("coalesce(CASE WHEN {e} IS NULL THEN {s} ELSE {se} END, 'null')").format(
            e=end, s=json_time(c), se=json_interval(c, end)
        )
    if prop.type is PropType.INTERVAL:
        end = col(alias, prop.end_column or "")
        return sql.SQL("CASE WHEN {s} IS NULL THEN 'null' ELSE {i} END").format(
            s=c, i=json_interval(c, sql.SQL("coalesce({}, {})").format(end, c))
        )
    if entity.name == "Observation" and prop.name == "resultQuality":
        return _result_quality(alias)
    if prop.type is PropType.RESULT:
        # result_json first: it holds an object or array, or the exact digits of an integer too large for
        # result_number's double (kept there too, rounded, for filters and aggregates: body.result_columns)
        n, b, t, j = (col(alias, x) for x in RESULT_COLUMNS)
        return sql.SQL("coalesce({}::text, to_json({})::text, to_json({})::text, to_json({})::text, 'null')").format(
            j, n, b, t
        )
    if prop.type is PropType.STRING:
        return sql.SQL("coalesce(to_json({})::text, 'null')").format(c)
    # JSON, ANY and GEOMETRY properties are jsonb columns: their text is their JSON
    return sql.SQL("coalesce({}::text, 'null')").format(c)


def _result_quality(alias: str) -> sql.Composable:
    """``resultQuality``: what the client gave, else Bydata's quality flags as ``{"qualityFlags": [names]}``.

    Flags are set by the normaliser (``schemas/quality.yaml``); an Observation without any has
    no resultQuality. Names and bits come from that file, written as literals.
    """
    bits = quality.flag_bits()
    names = sorted(bits, key=bits.__getitem__)
    return sql.SQL(
        "coalesce({given}::text, CASE WHEN {flags} = 0 THEN NULL ELSE json_build_object('qualityFlags',"
        " (SELECT json_agg(q.name ORDER BY q.bit) FROM unnest({names}::text[], {bits}::int[]) AS q(name, bit)"
        " WHERE {flags} & q.bit <> 0))::text END, 'null')"
    ).format(
        given=col(alias, "result_quality"),
        flags=col(alias, "quality_flags"),
        names=sql.Literal(names),
        bits=sql.Literal([bits[n] for n in names]),
    )
