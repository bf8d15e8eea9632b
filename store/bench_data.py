"""Synthetic SensorThings data for benchmarks, and the hand-written SQL the API is measured against."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from store import datastream_spans

UOM = {"name": "microgram per cubic metre", "symbol": "µg/m³", "definition": "ug/m3"}
MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"


def load(
    conn: psycopg.Connection[Any],
    *,
    datastreams: int,
    observations: int,
    start: datetime,
    days: int,
    seed: int = 1,
) -> int:
    """Things (one per 10 Datastreams), one Sensor/ObservedProperty, and ``observations`` rows by COPY.

    Each Datastream gets an even share, spaced evenly over ``days``; results are uniform 0..100.
    The Datastreams' maintained time spans are filled in. Returns the number of rows copied.
    """
    rng = random.Random(seed)
    things = max(1, math.ceil(datastreams / 10))
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO things (id, name, description, properties)"
            " SELECT g, 'Station ' || g, 'Benchmark station', jsonb_build_object('capacity', mod(g, 50))"
            " FROM generate_series(1, %s) g",
            (things,),
        )
        cur.execute(
            "INSERT INTO sensors (id, name, description, encoding_type, metadata)"
            " VALUES (1, 'Bench sensor', 'Synthetic', 'application/pdf', '\"https://example.org/s.pdf\"')"
        )
        cur.execute(
            "INSERT INTO observed_properties (id, name, definition, description)"
            " VALUES (1, 'PM10', 'http://vocab.example/pm10', 'Particles under 10 µm')"
        )
        cur.execute(
            "INSERT INTO datastreams (id, name, description, unit_of_measurement, observation_type, thing_id,"
            " sensor_id, observed_property_id)"
            " SELECT g, 'Stream ' || g, 'Synthetic stream', %s, %s, (g - 1) / 10 + 1, 1, 1"
            " FROM generate_series(1, %s) g",
            (Jsonb(UOM), MEASUREMENT, datastreams),
        )
    per_stream = max(1, observations // datastreams)
    step = timedelta(days=days) / per_stream
    copied = 0
    ident = 0
    with conn.cursor() as cur:
        statement = sql.SQL(
            "COPY observations (id, datastream_id, phenomenon_time, result_number) FROM STDIN (FORMAT BINARY)"
        )
        with cur.copy(statement) as copy:
            copy.set_types(["int8", "int8", "timestamptz", "float8"])
            for i in range(per_stream):  # time-major order loads faster into the time-partitioned table
                t = start + step * i
                for ds in range(1, datastreams + 1):
                    ident += 1
                    copy.write_row((ident, ds, t, round(rng.random() * 100.0, 2)))
                    copied += 1
    for table in ("things", "sensors", "observed_properties", "datastreams", "observations"):
        conn.execute(
            sql.SQL("SELECT setval(pg_get_serial_sequence({}, 'id'), (SELECT max(id) FROM {}))").format(
                sql.Literal(table), sql.Identifier(table)
            )
        )
    # The spans every writer keeps (store.datastream_spans), as if the rows had come through one.
    datastream_spans.refresh(conn)
    conn.commit()
    return copied


def settle(url: str) -> None:
    """VACUUM ANALYZE: visibility map and statistics as a running server has them."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


# The questions of bench/query.py, asked directly.
RAW_DAY = sql.SQL(
    "SELECT id, phenomenon_time, result_number FROM observations"
    " WHERE datastream_id = %(ds)s AND phenomenon_time >= %(t0)s AND phenomenon_time < %(t1)s"
    " ORDER BY phenomenon_time"
)
LATEST_PER_DATASTREAM = sql.SQL(
    "SELECT d.id, d.name, o.id, o.phenomenon_time, o.result_number FROM datastreams d"
    " CROSS JOIN LATERAL (SELECT id, phenomenon_time, result_number FROM observations o"
    "  WHERE o.datastream_id = d.id ORDER BY o.phenomenon_time DESC LIMIT 1) o"
    " ORDER BY d.id LIMIT 1000"
)
FILTER_RESULT_TIME = sql.SQL(
    "SELECT id, datastream_id, phenomenon_time, result_number FROM observations"
    " WHERE result_number > %(x)s AND phenomenon_time >= %(t0)s AND phenomenon_time < %(t1)s"
    " ORDER BY phenomenon_time, id LIMIT 100"
)
HOURLY_AVERAGES = sql.SQL(
    "SELECT date_bin('1 hour', phenomenon_time, %(t0)s) AS start, avg(result_number) FROM observations"
    " WHERE datastream_id = %(ds)s AND phenomenon_time >= %(t0)s AND phenomenon_time < %(t1)s"
    " GROUP BY 1 ORDER BY 1"
)
