"""Benchmark: SensorThings API requests against the same questions asked in hand-written SQL.

    python -m bench.query [--observations 10000000] [--datastreams 1000] [--days 30] [--iterations 100]

Creates a scratch database on the configured server (``BYDATA_DATABASE_URL`` via settings,
or ``--server-url``), migrates it (TimescaleDB/PostGIS where present), loads synthetic
Observations by COPY, serves the API with uvicorn on a loopback port and measures each
question both ways in one run. Prints JSON: p50/p95 in ms, and the ratio of the API's p95
to the SQL's p95 alone and to SQL plus JSON serialisation of the same rows.

Questions: (a) one Datastream, one day, raw; (b) hourly averages of one Datastream over the
whole span, through the aggregation extension (``/ext/aggregates/v1``); (c) the latest
Observation of every Datastream; (d) a filter on result and time across all Datastreams, top 100.

``--database-url`` measures an already loaded database instead (one kept with ``--keep``),
so a change can be measured before and after on the same data.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import orjson
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from api import aggregates
from api.sta import routes
from api.sta.translate import Limits, ServerFeatures, Translator
from bydata.settings import get_settings
from store import bench_data, datastream_spans
from store import sta as store_sta
from store.aggregates import detect_support
from store.db import create_pool
from store.features import detect
from store.migrations import upgrade

START = datetime(2024, 1, 1, tzinfo=UTC)

# Extra baselines, reported beside (never instead of) the questions' own SQL: the same rows
# with every field the API returns (no links), serialised the same way.
OBSERVATION_COLUMNS = [
    "id", "phenomenonTime", "phenomenonTimeEnd", "resultTime", "resultNumber", "resultBoolean", "resultText",
    "resultJson", "resultQuality", "qualityFlags", "validTimeStart", "validTimeEnd", "parameters",
]  # fmt: skip
LATEST_PER_DATASTREAM_ALL_FIELDS = sql.SQL(
    "SELECT d.id, d.name, d.description, d.unit_of_measurement, d.observation_type, d.observed_area,"
    " d.phenomenon_time_start, d.phenomenon_time_end, d.result_time_start, d.result_time_end, d.properties,"
    " o.id, o.phenomenon_time, o.phenomenon_time_end, o.result_time, o.result_number, o.result_boolean,"
    " o.result_text, o.result_json, o.result_quality, o.quality_flags, o.valid_time_start, o.valid_time_end,"
    " o.parameters"
    " FROM datastreams d CROSS JOIN LATERAL (SELECT * FROM observations o WHERE o.datastream_id = d.id"
    " ORDER BY o.phenomenon_time DESC LIMIT 1) o ORDER BY d.id LIMIT 1000"
)
DATASTREAM_COLUMNS = [
    "id", "name", "description", "unitOfMeasurement", "observationType", "observedArea", "phenomenonTimeStart",
    "phenomenonTimeEnd", "resultTimeStart", "resultTimeEnd", "properties",
]  # fmt: skip
FILTER_RESULT_TIME_ALL_FIELDS = sql.SQL(
    "SELECT o.id, o.phenomenon_time, o.phenomenon_time_end, o.result_time, o.result_number, o.result_boolean,"
    " o.result_text, o.result_json, o.result_quality, o.quality_flags, o.valid_time_start, o.valid_time_end,"
    " o.parameters FROM observations o"
    " WHERE o.result_number > %(x)s AND o.phenomenon_time >= %(t0)s AND o.phenomenon_time < %(t1)s"
    " ORDER BY o.phenomenon_time, o.id LIMIT 100"
)


def _latest_all_fields(row: tuple[Any, ...]) -> dict[str, Any]:
    n = len(DATASTREAM_COLUMNS)
    out = dict(zip(DATASTREAM_COLUMNS, row[:n], strict=True))
    out["Observations"] = [dict(zip(OBSERVATION_COLUMNS, row[n:], strict=True))]
    return out


def _observation_all_fields(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(OBSERVATION_COLUMNS, row, strict=True))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def scratch_database(server_url: str, keep: bool) -> Iterator[str]:
    name = f"bydata_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    try:
        yield make_conninfo("", **params)
    finally:
        if not keep:
            with psycopg.connect(server_url, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def api_server(db_url: str) -> Iterator[str]:
    """``bydata api`` in its own process (as in production), on a free loopback port; ended by PID."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "BYDATA_DATABASE_URL": db_url,
        "BYDATA_API_HOST": "127.0.0.1",
        "BYDATA_API_PORT": str(port),
        "BYDATA_PUBLIC_URL": base,
        "BYDATA_LOG_LEVEL": "WARNING",
        "BYDATA_STA_MAX_TOP": "10000",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bydata.cli", "api"], env=env, stdout=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"bydata api exited with {proc.returncode}")
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("bydata api did not become healthy in 60 s")
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 3), "p95_ms": round(p95 * 1000, 3)}


class InProcess:
    """The API's own work without HTTP, through the code the routes run: the planner cache,
    the pool, the statement, the body (parse and translate only when the request text is new).
    """

    def __init__(self, db_url: str, base: str) -> None:
        self.pool = create_pool(db_url, min_size=1, max_size=2, name="bench", configure=store_sta.configure_connection)
        with self.pool.connection() as conn:
            features = detect(conn)
            self.aggregate_support = detect_support(conn)
        translator = Translator(ServerFeatures(postgis=features.postgis_installed is not None), Limits(100, 10_000))
        self.context = routes.StaContext.create(self.pool, translator, base + routes.PREFIX)
        self.public_url = base

    def __call__(self, url: str) -> int:
        parts = urlsplit(url)
        items = tuple(parse_qsl(parts.query, keep_blank_values=True))
        if parts.path.startswith(aggregates.PREFIX + "/Datastreams("):
            ident = int(parts.path.rsplit("(", 1)[1].rstrip(")"))
            with self.pool.connection() as conn:
                body = aggregates.answer(
                    conn, self.aggregate_support, ident, dict(items), max_buckets=100_000, public_url=self.public_url
                )
            return len(body)
        rest = parts.path.split(routes.PREFIX + "/", 1)[1]
        planned = self.context.planner(rest, items)
        return len(b"".join(routes.collection_body(self.context, planned, rest)))

    def close(self) -> None:
        self.pool.close()


class LeanClient:
    """One keep-alive connection with the standard library's client: a request's body bytes and
    nothing else, so the client side adds little to the server's time (httpx adds about 0.5 ms
    of Python per request on this machine, as much as some questions' SQL).
    """

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=60)

    def get(self, url: str) -> bytes:
        self.conn.request("GET", quote(url, safe="/?&=$(),;:'@*+!%"))  # as httpx sends it: spaces as %20
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {url}: {response.status} {body[:200]!r}")
        return body

    def close(self) -> None:
        self.conn.close()


def measure(  # noqa: PLR0917 - one benchmark question
    name: str,
    client: httpx.Client,
    conn: psycopg.Connection[Any],
    iterations: int,
    make: Callable[[random.Random], tuple[str, dict[str, Any]]],
    statement: sql.SQL | sql.Composed,
    columns: list[str],
    inproc: InProcess,
    lean: LeanClient,
    all_fields: tuple[sql.SQL, Callable[[tuple[Any, ...]], dict[str, Any]]] | None = None,
    warmup: int = 5,
) -> dict[str, Any]:
    """Each way asks the same seeded sequence of questions, interleaved: every iteration runs
    one request of each way in a shuffled order, so load from other work on the machine falls
    on all of them alike. ``http_floor`` is ``GET /v1.1`` (the service root, no database): what
    any request over HTTP costs before its own work. ``all_fields``: an extra baseline, the same
    rows with every field the API returns (its SQL, and a row's JSON object), reported beside.
    """
    expected_rows: list[int] = []
    rngs = {
        way: random.Random(7) for way in ("sta", "sta_lean_client", "sta_without_http", "sql", "sql_serialised",
                                          "all_fields")
    }  # fmt: skip
    size = 0

    def in_process() -> None:
        url, _ = make(rngs["sta_without_http"])
        inproc(url)

    def api() -> None:
        nonlocal size
        url, _ = make(rngs["sta"])
        response = client.get(url)
        response.raise_for_status()
        size = len(response.content)

    def api_lean() -> None:
        url, _ = make(rngs["sta_lean_client"])
        lean.get(url)

    def floor() -> None:
        client.get("/v1.1").raise_for_status()

    def floor_lean() -> None:
        lean.get("/v1.1")

    def raw() -> None:
        _, params = make(rngs["sql"])
        rows = conn.execute(statement, params).fetchall()
        expected_rows.append(len(rows))

    def raw_serialised() -> None:
        _, params = make(rngs["sql_serialised"])
        rows = conn.execute(statement, params).fetchall()
        orjson.dumps({"value": [dict(zip(columns, r, strict=True)) for r in rows]})

    ways: dict[str, Callable[[], None]] = {
        "sta": api, "sta_lean_client": api_lean, "sta_without_http": in_process, "sql": raw,
        "sql_serialised": raw_serialised, "http_floor": floor, "http_floor_lean_client": floor_lean,
    }  # fmt: skip
    if all_fields is not None:
        wide, shape = all_fields

        def wide_serialised() -> None:
            _, params = make(rngs["all_fields"])
            rows = conn.execute(wide, params).fetchall()
            orjson.dumps({"value": [shape(r) for r in rows]})

        ways["sql_all_fields_serialised"] = wide_serialised
    samples: dict[str, list[float]] = {way: [] for way in ways}
    order = list(ways)
    shuffle = random.Random(11)
    for i in range(warmup + iterations):
        shuffle.shuffle(order)
        for way in order:
            t0 = time.perf_counter()
            ways[way]()
            if i >= warmup:
                samples[way].append(time.perf_counter() - t0)
    p = {way: _percentiles(values) for way, values in samples.items()}

    def ratio(a: str, b: str, at: str = "p95_ms") -> float | None:
        return round(p[a][at] / p[b][at], 2) if p[b][at] else None

    return {
        "question": name,
        **p,
        "rows_per_sql_answer": round(statistics.mean(expected_rows), 1) if expected_rows else 0,
        "sta_response_bytes": size,
        "p95_ratio_to_sql": ratio("sta", "sql"),
        "p95_ratio_to_sql_serialised": ratio("sta", "sql_serialised"),
        "p95_ratio_lean_client_to_sql_serialised": ratio("sta_lean_client", "sql_serialised"),
        "p95_ratio_without_http_to_sql_serialised": ratio("sta_without_http", "sql_serialised"),
        "p50_ratio_to_sql_serialised": ratio("sta", "sql_serialised", "p50_ms"),
        **(
            {"p95_ratio_to_sql_all_fields_serialised": ratio("sta", "sql_all_fields_serialised")}
            if all_fields is not None
            else {}
        ),
    }


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextmanager
def loaded_database(args: argparse.Namespace, report: dict[str, Any]) -> Iterator[str]:
    """The database to measure: ``--database-url`` as it is, else a scratch one loaded here."""
    if args.database_url:
        with psycopg.connect(args.database_url) as conn:
            row = conn.execute("SELECT count(*), min(phenomenon_time) FROM observations").fetchone()
            streams = conn.execute("SELECT count(*) FROM datastreams").fetchone()
        assert row is not None and streams is not None
        if row[1] != START:
            raise SystemExit("--database-url: not a database loaded by this benchmark")
        args.observations, args.datastreams = int(row[0]), int(streams[0])
        if args.refresh_spans:
            with psycopg.connect(args.database_url) as conn:
                datastream_spans.refresh(conn)
            bench_data.settle(args.database_url)
        report.update(observations=args.observations, datastreams=args.datastreams, load="reused")
        yield args.database_url
        return
    server_url = args.server_url
    if server_url is None:
        configured = get_settings().database_url
        if configured is None:
            raise SystemExit(
                "give --server-url or set BYDATA_DATABASE_URL (a PostgreSQL server to create a scratch db on)"
            )
        server_url = configured.get_secret_value()
    with scratch_database(server_url, args.keep) as db_url:
        with psycopg.connect(db_url) as conn:
            upgrade_report = upgrade(conn)
            report["features"] = upgrade_report.features_enabled
            t0 = time.perf_counter()
            copied = bench_data.load(
                conn, datastreams=args.datastreams, observations=args.observations, start=START, days=args.days
            )
            report["load"] = {"rows": copied, "seconds": round(time.perf_counter() - t0, 1)}
        bench_data.settle(db_url)
        if args.keep:
            report["kept_database_url"] = db_url
        yield db_url


def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "observations": args.observations,
        "datastreams": args.datastreams,
        "days": args.days,
        "iterations": args.iterations,
    }
    with loaded_database(args, report) as db_url:
        with psycopg.connect(db_url) as conn:
            kept = conn.execute("SELECT count(phenomenon_time_end), count(*) FROM datastreams").fetchone()
        assert kept is not None
        report["datastream_spans_maintained"] = f"{kept[0]} of {kept[1]}"
        n_ds = args.datastreams
        per_stream = max(1, args.observations // n_ds)
        span = timedelta(days=args.days)

        def day_window(rng: random.Random) -> tuple[datetime, datetime]:
            day = rng.randrange(max(1, args.days))
            return START + timedelta(days=day), START + timedelta(days=day + 1)

        def q_a(rng: random.Random) -> tuple[str, dict[str, Any]]:
            ds = rng.randint(1, n_ds)
            t0, t1 = day_window(rng)
            top = max(1000, per_stream)
            url = (
                f"/v1.1/Datastreams({ds})/Observations?$filter=phenomenonTime ge {_iso(t0)}"
                f" and phenomenonTime lt {_iso(t1)}&$top={top}&$select=@iot.id,phenomenonTime,result"
            )
            return url, {"ds": ds, "t0": t0, "t1": t1}

        def q_b(rng: random.Random) -> tuple[str, dict[str, Any]]:
            ds = rng.randint(1, n_ds)
            t0, t1 = START, START + span
            url = f"{aggregates.PREFIX}/Datastreams({ds})?interval=PT1H&aggregates=avg&from={_iso(t0)}&to={_iso(t1)}"
            return url, {"ds": ds, "t0": t0, "t1": t1}

        def q_c(rng: random.Random) -> tuple[str, dict[str, Any]]:
            return "/v1.1/Datastreams?$top=1000&$expand=Observations($top=1;$orderby=phenomenonTime desc)", {}

        def q_d(rng: random.Random) -> tuple[str, dict[str, Any]]:
            t0, t1 = day_window(rng)
            x = 90
            url = (
                f"/v1.1/Observations?$filter=result gt {x} and phenomenonTime ge {_iso(t0)}"
                f" and phenomenonTime lt {_iso(t1)}&$top=100"
            )
            return url, {"x": x, "t0": t0, "t1": t1}

        questions: dict[str, tuple[str, Any, sql.SQL, list[str], Any]] = {
            "a": ("a: one Datastream, one day, raw", q_a, bench_data.RAW_DAY, ["id", "phenomenonTime", "result"], None),
            "b": (
                f"b: hourly averages, one Datastream, {args.days} days (aggregation extension)",
                q_b, bench_data.HOURLY_AVERAGES, ["start", "avg"], None,
            ),
            "c": (
                "c: latest Observation of every Datastream ($expand ... $top=1)",
                q_c, bench_data.LATEST_PER_DATASTREAM, ["id", "name", "obs_id", "phenomenonTime", "result"],
                (LATEST_PER_DATASTREAM_ALL_FIELDS, _latest_all_fields),
            ),
            "d": (
                "d: $filter on result and time across all Datastreams, $top=100",
                q_d, bench_data.FILTER_RESULT_TIME, ["id", "datastream", "phenomenonTime", "result"],
                (FILTER_RESULT_TIME_ALL_FIELDS, _observation_all_fields),
            ),
        }  # fmt: skip
        results = []
        with (
            api_server(db_url) as base,
            httpx.Client(base_url=base, timeout=60) as client,
            psycopg.connect(db_url, autocommit=True) as conn,
        ):
            inproc, lean = InProcess(db_url, base), LeanClient(base)
            for key in args.questions:
                name, make, statement, columns, wide = questions[key]
                results.append(
                    measure(name, client, conn, args.iterations, make, statement, columns, inproc, lean, wide)
                )
            inproc.close()
            lean.close()
        report["span_days"] = span.days
        report["results"] = results
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--observations", type=int, default=10_000_000)
    parser.add_argument("--datastreams", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument(
        "--questions", default="abcd", type=lambda v: [q for q in v if q in "abcd"], help="which of a-d to ask"
    )
    parser.add_argument("--server-url", default=None, help="PostgreSQL server URL (a scratch database is made on it)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (its URL is reported)")
    parser.add_argument("--database-url", default=None, help="measure this database, loaded by an earlier --keep run")
    parser.add_argument(
        "--refresh-spans", action="store_true", help="with --database-url: fill the Datastreams' maintained spans first"
    )
    args = parser.parse_args(argv)
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
