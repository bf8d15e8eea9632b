"""Query benchmark, case (b): hourly averages of one Datastream over 30 days.

The aggregation extension (``/ext/aggregates/v1/Datastreams(id)?interval=PT1H``, served by
``bydata api`` under uvicorn) against the same question asked in hand-written SQL on the same
database in the same run, plus the SQL with its rows serialised to JSON (the target is the STA
request's p95 within three times that). Prints one JSON document.

    python bench/query_aggregates.py [--database-url URL] [--requests 300]

The data set is the one of ``bench/query.py``: 10 million observations for 1,000 Datastreams over
30 days (one every 259.2 s per Datastream), loaded once into the database ``bydata_bench`` on the
server of ``BYDATA_TEST_DATABASE_URL`` unless ``--database-url`` names one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from store.migrations import upgrade  # noqa: E402

DATASTREAMS = 1000
OBSERVATIONS = 10_000_000
DAYS = 30
END = datetime(2024, 6, 1, tzinfo=UTC)
START = END - timedelta(days=DAYS)


def bench_database(server_url: str, name: str = "bydata_bench") -> str:
    with psycopg.connect(server_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    return make_conninfo("", **params)


def load(url: str) -> list[int]:
    """The data set, loaded once (a second run finds it and reuses it)."""
    with psycopg.connect(url) as conn:
        upgrade(conn)
        have = conn.execute("SELECT count(*) FROM datastreams WHERE name LIKE 'bench %'").fetchone()
        if not have or have[0] < DATASTREAMS:
            thing = conn.execute("INSERT INTO things (name) VALUES ('bench') RETURNING id").fetchone()
            sensor = conn.execute(
                "INSERT INTO sensors (name, encoding_type, metadata) VALUES ('bench', 'text/plain', '1') RETURNING id"
            ).fetchone()
            prop = conn.execute(
                "INSERT INTO observed_properties (name, definition) VALUES ('bench', 'urn:bench') RETURNING id"
            ).fetchone()
            assert thing and sensor and prop
            conn.execute(
                "INSERT INTO datastreams (name, unit_of_measurement, observation_type, thing_id, sensor_id,"
                " observed_property_id) SELECT 'bench ' || i, '{\"name\": \"degree Celsius\"}',"
                " 'http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement', %s, %s, %s"
                " FROM generate_series(1, %s) AS i",
                (thing[0], sensor[0], prop[0], DATASTREAMS),
            )
            conn.commit()
        ids = [r[0] for r in conn.execute("SELECT id FROM datastreams WHERE name LIKE 'bench %' ORDER BY id")]
        loaded = conn.execute("SELECT count(*) FROM observations").fetchone()
        if not loaded or loaded[0] < OBSERVATIONS:
            conn.execute("TRUNCATE observations")
            step = timedelta(seconds=DAYS * 86400 * DATASTREAMS / OBSERVATIONS)
            per = OBSERVATIONS // DATASTREAMS
            for first in range(0, len(ids), 100):
                conn.execute(
                    "INSERT INTO observations (datastream_id, phenomenon_time, result_number)"
                    " SELECT ds, %s + n * %s::interval, 10 + 5 * sin(n / 50.0) + random()"
                    " FROM unnest(%s::bigint[]) AS ds, generate_series(0, %s - 1) AS n",
                    (START, step, ids[first : first + 100], per),
                )
                conn.commit()
                print(f"loaded {first + 100} of {len(ids)} datastreams", file=sys.stderr)
            conn.execute("ANALYZE observations")
            conn.commit()
    return ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(samples) * 1000, 3),
        "p95_ms": round(percentile(samples, 95) * 1000, 3),
    }


HAND_WRITTEN = (
    "SELECT date_bin('1 hour', phenomenon_time, '2000-01-03 00:00+00') AS bucket, avg(result_number)"
    " FROM observations WHERE datastream_id = %s AND phenomenon_time >= %s AND phenomenon_time < %s"
    " GROUP BY 1 ORDER BY 1"
)


def measure(url: str, ids: list[int], requests: int) -> dict[str, Any]:
    port = free_port()
    env = {**os.environ, "BYDATA_DATABASE_URL": url, "BYDATA_API_PORT": str(port), "BYDATA_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, "-c", "from bydata.cli import app; app()", "api"], cwd=ROOT, env=env, start_new_session=True
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    rng = random.Random(7)
    try:
        with httpx.Client(base_url=base, timeout=30) as client, psycopg.connect(url, autocommit=True) as conn:
            for _ in range(300):
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            params = {"interval": "PT1H", "aggregates": "avg", "from": START.isoformat(), "to": END.isoformat()}
            sta: list[float] = []
            raw: list[float] = []
            raw_json: list[float] = []
            rows = 0
            for i in range(requests + 20):  # the first 20 warm caches and are not counted
                ds = rng.choice(ids)
                t0 = time.perf_counter()
                response = client.get(f"/ext/aggregates/v1/Datastreams({ds})", params=params)
                t1 = time.perf_counter()
                assert response.status_code == 200, response.text
                buckets = len(response.json()["value"])
                t2 = time.perf_counter()
                result = conn.execute(HAND_WRITTEN, (ds, START, END)).fetchall()
                t3 = time.perf_counter()
                orjson.dumps([{"start": b.isoformat(), "avg": v} for b, v in result])
                t4 = time.perf_counter()
                assert len(result) == buckets == DAYS * 24
                rows = buckets
                if i >= 20:
                    sta.append(t1 - t0)
                    raw.append(t3 - t2)
                    raw_json.append(t4 - t2)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
    sta_s, sql_s, json_s = summary(sta), summary(raw), summary(raw_json)
    return {
        "case": "b",
        "question": "hourly averages, one Datastream, 30 days",
        "request": "/ext/aggregates/v1/Datastreams(id)?interval=PT1H&aggregates=avg&from=...&to=...",
        "requests": requests,
        "buckets": rows,
        "sta": sta_s,
        "sql": sql_s,
        "sql_and_serialisation": json_s,
        "ratio_p95_to_sql": round(sta_s["p95_ms"] / sql_s["p95_ms"], 2),
        "ratio_p95_to_sql_and_serialisation": round(sta_s["p95_ms"] / json_s["p95_ms"], 2),
        "target": "ratio_p95_to_sql_and_serialisation <= 3",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="database to load and query (default: bydata_bench on the test server)")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    url = args.database_url or bench_database(os.environ["BYDATA_TEST_DATABASE_URL"])
    ids = load(url)
    print(json.dumps(measure(url, ids, args.requests), indent=2))


if __name__ == "__main__":
    main()
