"""The aggregation SQL on TimescaleDB (time_bucket) and plain PostgreSQL (date_bin), against an oracle.

The oracle is plain Python over the same readings, so a wrong bucket boundary (a DST day, the
repeated autumn hour) or a wrong counter rule shows up as a difference, not as agreement of two
SQL paths that share a mistake.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from store.aggregates import (
    FUNCTIONS,
    AggregateError,
    AggregateQuery,
    AggregateResult,
    AggregateSupport,
    BucketSpec,
    aggregate,
    detect_support,
)

OSLO = ZoneInfo("Europe/Oslo")
STEP = timedelta(minutes=10)


def make_datastream(conn: psycopg.Connection[Any]) -> int:
    thing = conn.execute("INSERT INTO things (name) VALUES ('meter') RETURNING id").fetchone()
    sensor = conn.execute(
        "INSERT INTO sensors (name, encoding_type, metadata) VALUES ('s', 'application/pdf', '\"x\"') RETURNING id"
    ).fetchone()
    prop = conn.execute(
        "INSERT INTO observed_properties (name, definition) VALUES ('e', 'urn:e') RETURNING id"
    ).fetchone()
    assert thing and sensor and prop
    row = conn.execute(
        "INSERT INTO datastreams (name, unit_of_measurement, observation_type, thing_id, sensor_id,"
        " observed_property_id) VALUES ('energy', %s, 'OM_Measurement', %s, %s, %s) RETURNING id",
        (psycopg.types.json.Jsonb({"name": "kWh", "symbol": "kWh"}), thing[0], sensor[0], prop[0]),
    ).fetchone()
    assert row
    return int(row[0])


def readings() -> list[tuple[datetime, float]]:
    """A cumulative meter every 10 minutes over both 2024 DST changes, with a reset and a gap."""
    out: list[tuple[datetime, float]] = []
    value = 1000.0
    for first, last in (
        (datetime(2024, 3, 29, 22, tzinfo=UTC), datetime(2024, 4, 1, 2, tzinfo=UTC)),
        (datetime(2024, 10, 25, 21, tzinfo=UTC), datetime(2024, 10, 28, 3, tzinfo=UTC)),
    ):
        t = first
        i = 0
        while t < last:
            i += 1
            if t == datetime(2024, 10, 27, 0, 40, tzinfo=UTC):
                value = 3.0  # meter reset (replaced) in the repeated autumn night
            elif not (datetime(2024, 3, 31, 5, tzinfo=UTC) <= t < datetime(2024, 3, 31, 8, tzinfo=UTC)):
                value += (i % 7) * 0.25
            else:
                t += STEP
                continue  # a three-hour gap: no readings, no buckets
            out.append((t, value))
            t += STEP
    return out


def load(url: str) -> tuple[int, list[tuple[datetime, float]]]:
    data = readings()
    with psycopg.connect(url) as conn:
        ds = make_datastream(conn)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO observations (datastream_id, phenomenon_time, result_number) VALUES (%s, %s, %s)",
                [(ds, t, v) for t, v in data],
            )
            # A text observation counts but takes no part in numeric figures.
            cur.execute(
                "INSERT INTO observations (datastream_id, phenomenon_time, result_text) VALUES (%s, %s, 'n/a')",
                (ds, datetime(2024, 3, 30, 12, 5, tzinfo=UTC)),
            )
    return ds, [*data, (datetime(2024, 3, 30, 12, 5, tzinfo=UTC), math.nan)]


def oracle_key(t: datetime, spec: BucketSpec, zone: ZoneInfo) -> datetime:
    if spec.kind == "fixed":
        origin = datetime(2000, 1, 3, tzinfo=zone).astimezone(UTC)  # absolute time, not wall-clock arithmetic
        n = (t - origin) // spec.width
        return origin + n * spec.width
    local = t.astimezone(zone)
    if spec.kind == "days":
        days = (local.date() - datetime(2000, 1, 3).date()).days
        start = datetime(2000, 1, 3) + timedelta(days=(days // spec.amount) * spec.amount)
        return start.replace(tzinfo=zone).astimezone(UTC)
    month = (local.month - 1) // spec.amount * spec.amount + 1
    return datetime(local.year, month, 1, tzinfo=zone).astimezone(UTC)


def oracle(
    data: list[tuple[datetime, float]], spec: BucketSpec, zone: ZoneInfo, start: datetime, end: datetime
) -> dict[datetime, dict[str, float | int | None]]:
    ordered = sorted(data)
    numeric = [(t, v) for t, v in ordered if not math.isnan(v)]
    groups: dict[datetime, list[tuple[datetime, float]]] = defaultdict(list)
    for t, v in ordered:
        if start <= t < end:
            groups[oracle_key(t, spec, zone)].append((t, v))
    increase: dict[datetime, float] = defaultdict(float)
    has_delta: set[datetime] = set()
    for (_, before), (t, after) in itertools.pairwise(numeric):
        if start <= t < end:
            key = oracle_key(t, spec, zone)
            increase[key] += max(after - before, 0.0)
            has_delta.add(key)
    out: dict[datetime, dict[str, float | int | None]] = {}
    for key, rows in groups.items():
        values = [v for _, v in rows if not math.isnan(v)]
        out[key] = {
            "count": len(rows),
            "avg": sum(values) / len(values) if values else None,
            "min": min(values) if values else None,
            "max": max(values) if values else None,
            "sum": sum(values) if values else None,
            "first": values[0] if values else None,
            "last": values[-1] if values else None,
            "increase": increase[key] if key in has_delta else None,
        }
    return out


def check(result: AggregateResult, expected: dict[datetime, dict[str, float | int | None]]) -> None:
    got = {b.start.astimezone(UTC): b.values for b in result.buckets}
    assert sorted(got) == sorted(expected)
    for key, values in expected.items():
        for name, value in values.items():
            if name not in got[key]:
                continue
            if value is None:
                assert got[key][name] is None, (key, name)
            else:
                assert got[key][name] == pytest.approx(value, rel=1e-9, abs=1e-9), (key, name)


@pytest.fixture(params=["migrated_db", "plain_db"])
def loaded(request: pytest.FixtureRequest) -> Iterator[tuple[str, int, list[tuple[datetime, float]], AggregateSupport]]:
    url: str = request.getfixturevalue(request.param)
    ds, data = load(url)
    with psycopg.connect(url) as conn:
        support = detect_support(conn)
    assert support.backend == ("time_bucket" if request.param == "migrated_db" else "date_bin")
    yield url, ds, data, support


CASES = [
    (BucketSpec("fixed", 3600, "PT1H"), "UTC"),
    (BucketSpec("fixed", 3600, "PT1H"), "Europe/Oslo"),
    (BucketSpec("fixed", 900, "PT15M"), "Europe/Oslo"),
    (BucketSpec("fixed", 6 * 3600, "PT6H"), "Europe/Oslo"),
    (BucketSpec("days", 1, "P1D"), "Europe/Oslo"),
    (BucketSpec("days", 1, "P1D"), "UTC"),
    (BucketSpec("days", 7, "P1W"), "Europe/Oslo"),
    (BucketSpec("months", 1, "P1M"), "Europe/Oslo"),
    (BucketSpec("months", 3, "P3M"), "America/New_York"),
]


def test_every_function_matches_the_oracle_on_both_paths(
    loaded: tuple[str, int, list[tuple[datetime, float]], AggregateSupport],
) -> None:
    url, ds, data, support = loaded
    start = datetime(2024, 3, 30, 1, 30, tzinfo=UTC)  # mid-range: the increase reaches back before it
    end = datetime(2024, 10, 28, 2, tzinfo=UTC)
    with psycopg.connect(url) as conn:
        for spec, zone in CASES:
            query = AggregateQuery(ds, spec, start, end, FUNCTIONS, zone, "auto")
            result = aggregate(conn, query, support)
            assert result.source == "observations"
            assert result.unit_of_measurement == {"name": "kWh", "symbol": "kWh"}
            check(result, oracle(data, spec, ZoneInfo(zone), start, end))


def test_oslo_days_follow_local_midnight_and_dst(
    loaded: tuple[str, int, list[tuple[datetime, float]], AggregateSupport],
) -> None:
    url, ds, _, support = loaded
    query = AggregateQuery(
        ds,
        BucketSpec("days", 1, "P1D"),
        datetime(2024, 10, 26, tzinfo=OSLO),
        datetime(2024, 10, 28, tzinfo=OSLO),
        ("count",),
        "Europe/Oslo",
    )
    with psycopg.connect(url) as conn:
        result = aggregate(conn, query, support)
    spans = [(b.start.astimezone(OSLO).isoformat(), (b.end - b.start).total_seconds() / 3600) for b in result.buckets]
    assert spans == [("2024-10-26T00:00:00+02:00", 24.0), ("2024-10-27T00:00:00+02:00", 25.0)]
    # Every 10 minutes: the 25-hour day has 150 readings.
    assert [b.values["count"] for b in result.buckets] == [144, 150]


def test_repeated_autumn_hour_is_two_buckets(
    loaded: tuple[str, int, list[tuple[datetime, float]], AggregateSupport],
) -> None:
    url, ds, _, support = loaded
    query = AggregateQuery(
        ds,
        BucketSpec("fixed", 3600, "PT1H"),
        datetime(2024, 10, 27, 0, tzinfo=UTC),
        datetime(2024, 10, 27, 2, tzinfo=UTC),
        ("count", "increase"),
        "Europe/Oslo",
    )
    with psycopg.connect(url) as conn:
        result = aggregate(conn, query, support)
    local = [b.start.astimezone(OSLO).isoformat() for b in result.buckets]
    assert local == ["2024-10-27T02:00:00+02:00", "2024-10-27T02:00:00+01:00"]
    assert [b.values["count"] for b in result.buckets] == [6, 6]
    # The reset at 00:40Z restarts the counter: the drop adds nothing, the rise after it counts.
    first_hour = result.buckets[0].values["increase"]
    assert first_hour is not None and 0 < first_hour < 10


def test_hourly_view_gives_the_same_figures(migrated_db: str) -> None:
    """Re-aggregation from hourly rows (the continuous aggregate's shape) equals the raw answer."""
    ds, _ = load(migrated_db)
    with psycopg.connect(migrated_db) as conn:
        # The Apache-2 edition has no continuous aggregates: the same rows in a table serve the test.
        conn.execute(
            "CREATE TABLE observations_hourly AS SELECT datastream_id,"
            " time_bucket(INTERVAL '1 hour', phenomenon_time) AS bucket, count(*) AS n,"
            " count(result_number) AS n_number, avg(result_number) AS avg, min(result_number) AS min,"
            " max(result_number) AS max, sum(result_number) AS sum,"
            " first(result_number, phenomenon_time) AS first, last(result_number, phenomenon_time) AS last"
            " FROM observations GROUP BY datastream_id, bucket"
        )
        conn.commit()
        support = detect_support(conn)
        assert support.hourly_view and not support.hourly_is_continuous_aggregate
        functions = ("count", "avg", "min", "max", "sum", "first", "last")
        start, end = datetime(2024, 3, 30, 1, tzinfo=UTC), datetime(2024, 10, 28, 2, tzinfo=UTC)
        for spec, zone in CASES:
            if spec.kind == "fixed" and spec.amount % 3600:
                continue
            raw = aggregate(conn, AggregateQuery(ds, spec, start, end, functions, zone, "observations"), support)
            hourly = aggregate(
                conn, AggregateQuery(ds, spec, start, end, functions, zone, "observations_hourly"), support
            )
            assert hourly.source == "observations_hourly" and raw.source == "observations"
            assert [b.start for b in hourly.buckets] == [b.start for b in raw.buckets]
            assert [b.end for b in hourly.buckets] == [b.end for b in raw.buckets]
            for h, r in zip(hourly.buckets, raw.buckets, strict=True):
                assert h.values == pytest.approx(r.values, rel=1e-12)
        # Auto never picks a plain table: only a real continuous aggregate is trusted to stay fresh.
        auto = aggregate(conn, AggregateQuery(ds, CASES[0][0], start, end, functions, "UTC", "auto"), support)
        assert auto.source == "observations"
        with pytest.raises(AggregateError, match="increase"):
            aggregate(
                conn, AggregateQuery(ds, CASES[0][0], start, end, ("increase",), "UTC", "observations_hourly"), support
            )
        with pytest.raises(AggregateError, match="whole hours"):
            aggregate(
                conn,
                AggregateQuery(
                    ds, CASES[0][0], start + timedelta(minutes=5), end, ("avg",), "UTC", "observations_hourly"
                ),
                support,
            )


@pytest.mark.parametrize("db", ["migrated_db", "plain_db"])
def test_readings_at_one_time_are_taken_oldest_first(db: str, request: pytest.FixtureRequest) -> None:
    """A revised reading sits beside the original at its time: last is the revision, first the original."""
    url: str = request.getfixturevalue(db)
    t0 = datetime(2024, 5, 1, 10, tzinfo=UTC)
    with psycopg.connect(url) as conn:
        ds = make_datastream(conn)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO observations (datastream_id, phenomenon_time, result_number) VALUES (%s, %s, %s)",
                [(ds, t0, 10.0), (ds, t0, 11.0), (ds, t0 + timedelta(minutes=30), 20.0),
                 (ds, t0 + timedelta(minutes=50), 25.0), (ds, t0 + timedelta(minutes=50), 24.0)],
            )  # fmt: skip
        conn.commit()
        support = detect_support(conn)
        spec = BucketSpec("fixed", 1800, "PT30M")
        query = AggregateQuery(ds, spec, t0, t0 + timedelta(hours=1), ("first", "last", "count", "increase"))
        buckets = aggregate(conn, query, support).buckets
    got = [(b.values["first"], b.values["last"], b.values["count"], b.values["increase"]) for b in buckets]
    # in time-then-id order: 10, 11 | 20, 25, 24 (a fall: a reset, counting restarts from 24)
    assert got == [(10.0, 11.0, 2, 1.0), (20.0, 24.0, 3, 14.0)]
