"""The write side of the SensorThings API in SQL: rows, links, cascades and derived entities.

Table and column names come from the API's entity metadata (fixed identifiers, quoted with
``sql.Identifier``); every value is a bound parameter. Callers hold the transaction: one
request, one transaction, all or nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def insert_row(conn: psycopg.Connection[Any], table: str, values: Mapping[str, Any]) -> int:
    columns = list(values)
    if columns:
        statement = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING id").format(
            _ident(table),
            sql.SQL(", ").join(map(_ident, columns)),
            sql.SQL(", ").join(sql.Placeholder() for _ in columns),
        )
    else:
        statement = sql.SQL("INSERT INTO {} DEFAULT VALUES RETURNING id").format(_ident(table))
    row = conn.execute(statement, [values[c] for c in columns]).fetchone()
    assert row is not None
    return int(row[0])


def update_row(conn: psycopg.Connection[Any], table: str, ident: int, values: Mapping[str, Any]) -> int:
    """Rows changed (0 when the entity does not exist)."""
    if not values:
        return 1 if exists(conn, table, ident) else 0
    statement = sql.SQL("UPDATE {} SET {} WHERE id = %s").format(
        _ident(table), sql.SQL(", ").join(sql.SQL("{} = %s").format(_ident(c)) for c in values)
    )
    return conn.execute(statement, [*values.values(), ident]).rowcount


def update_observation(conn: psycopg.Connection[Any], ident: int, values: Mapping[str, Any]) -> int:
    """:func:`update_row` for an Observation, whose phenomenon_time may move to any other time.

    On a TimescaleDB hypertable an UPDATE cannot move a row into another chunk (it fails the
    chunk's check constraint), so a new phenomenon_time deletes the row and inserts it again in
    one statement, under the same id, with every other column as it was.
    """
    if "phenomenon_time" not in values:
        return update_row(conn, "observations", ident, values)
    columns = [c.name for c in conn.execute("SELECT * FROM observations LIMIT 0").description or ()]
    unknown = set(values) - set(columns)
    if unknown:
        raise ValueError(f"observations has no column {sorted(unknown)}")
    kept = (sql.Placeholder() if c in values else sql.SQL("moved.{}").format(_ident(c)) for c in columns)
    statement = sql.SQL(
        "WITH moved AS (DELETE FROM observations WHERE id = %s RETURNING *)"
        " INSERT INTO observations ({}) SELECT {} FROM moved"
    ).format(sql.SQL(", ").join(map(_ident, columns)), sql.SQL(", ").join(kept))
    return conn.execute(statement, [ident, *(values[c] for c in columns if c in values)]).rowcount


def exists(conn: psycopg.Connection[Any], table: str, ident: int) -> bool:
    statement = sql.SQL("SELECT 1 FROM {} WHERE id = %s").format(_ident(table))
    return conn.execute(statement, (ident,)).fetchone() is not None


def delete_row(conn: psycopg.Connection[Any], table: str, ident: int) -> int:
    return conn.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(_ident(table)), (ident,)).rowcount


def add_link(conn: psycopg.Connection[Any], table: str, columns: tuple[str, str], ids: tuple[int, int]) -> None:
    conn.execute(
        sql.SQL("INSERT INTO {} ({}, {}) VALUES (%s, %s) ON CONFLICT DO NOTHING").format(
            _ident(table), _ident(columns[0]), _ident(columns[1])
        ),
        ids,
    )


def delete_historical_locations_of_location(conn: psycopg.Connection[Any], location_id: int) -> None:
    """OGC 18-088 table 25: deleting a Location deletes the HistoricalLocations linked to it."""
    conn.execute(
        "DELETE FROM historical_locations WHERE id IN"
        " (SELECT historical_location_id FROM historical_location_locations WHERE location_id = %s)",
        (location_id,),
    )


def follow_latest_historical_location(conn: psycopg.Connection[Any], historical_location_id: int) -> int | None:
    """A HistoricalLocation created with its Thing's latest time puts the Thing at its Locations.

    OGC 18-088 req/create-update-delete/historical-location-manual-creation. The Thing's
    Locations become those of the HistoricalLocation (no further HistoricalLocation is
    recorded: this one is it). Returns the Thing that moved, None when the HistoricalLocation
    has no Locations or another of the Thing's is later.
    """
    row = conn.execute(
        "SELECT h.thing_id FROM historical_locations h WHERE h.id = %s"
        " AND EXISTS (SELECT 1 FROM historical_location_locations WHERE historical_location_id = h.id)"
        " AND NOT EXISTS (SELECT 1 FROM historical_locations o"
        "                 WHERE o.thing_id = h.thing_id AND o.id <> h.id AND o.time > h.time)",
        (historical_location_id,),
    ).fetchone()
    if row is None:
        return None
    thing_id = int(row[0])
    conn.execute(
        "DELETE FROM thing_locations WHERE thing_id = %s AND location_id NOT IN"
        " (SELECT location_id FROM historical_location_locations WHERE historical_location_id = %s)",
        (thing_id, historical_location_id),
    )
    conn.execute(
        "INSERT INTO thing_locations (thing_id, location_id) SELECT %s, location_id"
        " FROM historical_location_locations WHERE historical_location_id = %s ON CONFLICT DO NOTHING",
        (thing_id, historical_location_id),
    )
    return thing_id


def set_thing_locations(conn: psycopg.Connection[Any], thing_id: int, location_ids: list[int], now: datetime) -> int:
    """The Thing is now at ``location_ids`` (replacing where it was); returns the new HistoricalLocation."""
    conn.execute(
        "DELETE FROM thing_locations WHERE thing_id = %s AND NOT (location_id = ANY(%s))", (thing_id, location_ids)
    )
    conn.execute(
        "INSERT INTO thing_locations (thing_id, location_id) SELECT %s, unnest(%s::bigint[]) ON CONFLICT DO NOTHING",
        (thing_id, location_ids),
    )
    historical = insert_row(conn, "historical_locations", {"thing_id": thing_id, "time": now})
    conn.execute(
        "INSERT INTO historical_location_locations (historical_location_id, location_id)"
        " SELECT %s, unnest(%s::bigint[]) ON CONFLICT DO NOTHING",
        (historical, location_ids),
    )
    return historical


def feature_from_thing_location(conn: psycopg.Connection[Any], datastream_id: int) -> tuple[int, bool] | None:
    """The FeatureOfInterest made from the Location of the Datastream's Thing (created once, then reused).

    Of several Locations (encodings of one place), the GeoJSON one with the lowest id is used.
    Returns its id and whether this call created it (a new entity is announced like any other);
    None when the Thing has no Location.
    """
    row = conn.execute(
        "SELECT l.id, l.name, l.description, l.encoding_type, l.location FROM datastreams d"
        " JOIN thing_locations tl ON tl.thing_id = d.thing_id JOIN locations l ON l.id = tl.location_id"
        " WHERE d.id = %s ORDER BY (l.encoding_type LIKE '%%geo+json') DESC, l.id LIMIT 1",
        (datastream_id,),
    ).fetchone()
    if row is None:
        return None
    location_id, name, description, encoding, location = row
    found = conn.execute("SELECT id FROM features_of_interest WHERE location_id = %s", (location_id,)).fetchone()
    if found is not None:
        return int(found[0]), False
    created = conn.execute(
        "INSERT INTO features_of_interest (name, description, encoding_type, feature, location_id)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (location_id) DO UPDATE SET location_id = EXCLUDED.location_id"
        " RETURNING id, xmax = 0",
        (name, description, encoding, Jsonb(location), location_id),
    ).fetchone()
    assert created is not None
    return int(created[0]), bool(created[1])


OBSERVATION_COLUMNS = (
    "datastream_id", "phenomenon_time", "phenomenon_time_end", "result_time", "result_number", "result_boolean",
    "result_text", "result_json", "parameters", "feature_of_interest_id", "quality_flags",
)  # fmt: skip


def observation_columns(conn: psycopg.Connection[Any], observation_id: int) -> dict[str, Any] | None:
    """The stored values of an Observation that writes recompute from (None if it does not exist)."""
    statement = sql.SQL("SELECT {} FROM observations WHERE id = %s").format(
        sql.SQL(", ").join(map(_ident, OBSERVATION_COLUMNS))
    )
    row = conn.execute(statement, (observation_id,)).fetchone()
    return None if row is None else dict(zip(OBSERVATION_COLUMNS, row, strict=True))


def row_values(conn: psycopg.Connection[Any], table: str, ident: int, columns: list[str]) -> dict[str, Any]:
    """Some columns of one row (empty when the row does not exist)."""
    statement = sql.SQL("SELECT {} FROM {} WHERE id = %s").format(
        sql.SQL(", ").join(map(_ident, columns)), _ident(table)
    )
    row = conn.execute(statement, (ident,)).fetchone()
    return {} if row is None else dict(zip(columns, row, strict=True))


def linked_ids(conn: psycopg.Connection[Any], table: str, source: str, target: str, ident: int) -> list[int]:
    """The ids a link table relates to ``ident``."""
    statement = sql.SQL("SELECT {} FROM {} WHERE {} = %s ORDER BY 1").format(
        _ident(target), _ident(table), _ident(source)
    )
    return [int(row[0]) for row in conn.execute(statement, (ident,))]
