"""A small, fully known SensorThings data set, loaded with plain SQL (the create path comes later)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

THINGS = [
    (
        1,
        "Bodø air station",
        "Reference station, Olav V gate",
        {"stationKind": "reference", "capacity": 5, "case": "air"},
    ),
    (2, "Parking zone A", "Kristiansund centre", {"stationKind": "low-cost", "capacity": 20, "case": "parking"}),
    (3, "Rennesøy school", "Energy metering", {"capacity": 8, "tags": ["a", "b"], "case": "energy"}),
]
SCHOOL_AREA = {
    "type": "Polygon",
    "coordinates": [[[5.7, 59.0], [5.9, 59.0], [5.9, 59.2], [5.7, 59.2], [5.7, 59.0]]],
}
LOCATIONS = [
    (1, "Olav V gate", "Bodø", {"type": "Point", "coordinates": [14.4, 67.28]}),
    (
        2,
        "Kristiansund centre",
        "Parking zone A",
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [7.73, 63.11]}},
    ),
    (3, "School grounds", "Rennesøy", SCHOOL_AREA),
]
THING_LOCATIONS = [(1, 1), (2, 2), (3, 3)]
HISTORICAL = [(1, 1, "2024-01-01T00:00:00Z", 1), (2, 2, "2024-01-02T00:00:00Z", 2), (3, 1, "2023-06-01T00:00:00Z", 2)]
SENSORS = [
    (1, "NILU reference", "Reference instrument", "application/pdf", "https://example.org/nilu.pdf"),
    (2, "Nwave NPS405", "Parking sensor", "http://www.opengis.net/doc/IS/SensorML/2.0", {"model": "NPS405"}),
]
OBSERVED_PROPERTIES = [
    (1, "PM10", "http://vocab.example/pm10", "Particles under 10 µm"),
    (2, "PM2.5", "http://vocab.example/pm25", "Particles under 2.5 µm"),
    (3, "occupancy", "http://vocab.example/occupancy", "Parking space occupied"),
]
MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
OBSERVATION = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Observation"
UOM = {"name": "microgram per cubic metre", "symbol": "µg/m³", "definition": "ug/m3"}
DATASTREAMS = [
    (1, "PM10 Bodø", "Hourly PM10", UOM, MEASUREMENT, 1, 1, 1),
    (2, "PM2.5 Bodø", "Hourly PM2.5", UOM, MEASUREMENT, 1, 1, 2),
    (3, "Occupancy A", "Space occupancy", {"name": "boolean", "symbol": "", "definition": "1"}, OBSERVATION, 2, 2, 3),
    (4, "Empty stream", "No observations yet", UOM, MEASUREMENT, 3, 1, 1),
]
FEATURES = [
    (1, "Bodø station", "Air at the station", {"type": "Point", "coordinates": [14.4, 67.28]}, 1),
    (2, "Zone A", "Parking zone A", {"type": "Point", "coordinates": [7.73, 63.11]}, 2),
]


def observations() -> list[dict[str, Any]]:
    """Datastream 1: 24 hourly PM10 values 10..33 on 2024-01-01; 2 and 3: special cases."""
    rows: list[dict[str, Any]] = []
    for hour in range(24):
        rows.append(
            {"id": 1 + hour, "ds": 1, "t": f"2024-01-01T{hour:02d}:00:00Z", "n": 10.0 + hour, "foi": 1,
             "rt": f"2024-01-01T{hour:02d}:05:00Z"}
        )  # fmt: skip
    rows += [
        {"id": 101, "ds": 2, "t": "2024-01-01T00:00:00Z", "end": "2024-01-01T01:00:00Z", "n": 4.5, "foi": 1,
         "params": {"method": "gravimetric", "level": 2}, "quality": {"flag": "ok"},
         "valid": ("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z")},
        {"id": 102, "ds": 2, "t": "2024-01-01T01:00:00Z", "end": "2024-01-01T02:00:00Z", "n": 7.25, "foi": 1},
        {"id": 103, "ds": 2, "t": "2024-01-02T00:00:00Z", "n": None, "foi": 1},
        {"id": 201, "ds": 3, "t": "2024-01-01T08:00:00Z", "b": True, "foi": 2},
        {"id": 202, "ds": 3, "t": "2024-01-01T09:00:00Z", "b": False, "foi": 2},
        {"id": 203, "ds": 3, "t": "2024-01-01T10:00:00Z", "s": "sensor fault", "foi": 2},
        {"id": 204, "ds": 3, "t": "2024-01-01T11:00:00Z", "j": {"state": "occupied", "minutes": 74}, "foi": 2},
    ]  # fmt: skip
    return rows


def load(url: str) -> None:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO things (id, name, description, properties) VALUES (%s, %s, %s, %s)",
            [(i, n, d, Jsonb(p)) for i, n, d, p in THINGS],
        )
        cur.executemany(
            "INSERT INTO locations (id, name, description, encoding_type, location) VALUES (%s, %s, %s, %s, %s)",
            [(i, n, d, "application/geo+json", Jsonb(g)) for i, n, d, g in LOCATIONS],
        )
        cur.executemany("INSERT INTO thing_locations (thing_id, location_id) VALUES (%s, %s)", THING_LOCATIONS)
        for hid, thing, time, location in HISTORICAL:
            cur.execute("INSERT INTO historical_locations (id, thing_id, time) VALUES (%s, %s, %s)", (hid, thing, time))
            cur.execute(
                "INSERT INTO historical_location_locations (historical_location_id, location_id) VALUES (%s, %s)",
                (hid, location),
            )
        cur.executemany(
            "INSERT INTO sensors (id, name, description, encoding_type, metadata) VALUES (%s, %s, %s, %s, %s)",
            [(i, n, d, e, Jsonb(m)) for i, n, d, e, m in SENSORS],
        )
        cur.executemany(
            "INSERT INTO observed_properties (id, name, definition, description) VALUES (%s, %s, %s, %s)",
            OBSERVED_PROPERTIES,
        )
        cur.executemany(
            "INSERT INTO datastreams (id, name, description, unit_of_measurement, observation_type, thing_id,"
            " sensor_id, observed_property_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(i, n, d, Jsonb(u), o, t, s, op) for i, n, d, u, o, t, s, op in DATASTREAMS],
        )
        cur.executemany(
            "INSERT INTO features_of_interest (id, name, description, encoding_type, feature, location_id)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            [(i, n, d, "application/geo+json", Jsonb(f), loc) for i, n, d, f, loc in FEATURES],
        )
        for o in observations():
            valid = o.get("valid", (None, None))
            cur.execute(
                "INSERT INTO observations (id, datastream_id, phenomenon_time, phenomenon_time_end, result_time,"
                " result_number, result_boolean, result_text, result_json, result_quality, valid_time_start,"
                " valid_time_end, parameters, feature_of_interest_id)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    o["id"], o["ds"], o["t"], o.get("end"), o.get("rt"), o.get("n"), o.get("b"), o.get("s"),
                    Jsonb(o["j"]) if "j" in o else None, Jsonb(o["quality"]) if "quality" in o else None,
                    valid[0], valid[1], Jsonb(o["params"]) if "params" in o else None, o["foi"],
                ),
            )  # fmt: skip
        # identity sequences past the explicit ids
        for table in ("things", "locations", "historical_locations", "sensors", "observed_properties",
                      "datastreams", "features_of_interest", "observations"):  # fmt: skip
            cur.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), (SELECT max(id) FROM " + table + "))",
                (table,),
            )
