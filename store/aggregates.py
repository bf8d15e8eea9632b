"""Time-bucketed aggregates of one Datastream's observations (the aggregation extension's SQL).

Three sources give the same figures (tests hold them to it):

* ``time_bucket`` over the observations hypertable when TimescaleDB is installed;
* PostgreSQL's own ``date_bin`` (and ``date_trunc`` for months) on plain PostgreSQL;
* the continuous aggregate ``observations_hourly`` (Timescale license only), re-aggregated into
  the requested buckets, when every requested figure can be rebuilt from hourly ones: whole-hour
  range and buckets, a zone whose offset is whole hours, and no counter ``increase`` (a reset
  inside an hour cannot be seen from that hour's first and last values).

All values are bound parameters; identifiers are fixed here, never taken from a request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson
import psycopg
from psycopg import sql

from store.features import detect

FUNCTIONS = ("count", "avg", "min", "max", "sum", "first", "last", "increase")
HOURLY_FUNCTIONS = frozenset({"count", "avg", "min", "max", "sum", "first", "last"})
Source = Literal["auto", "observations", "observations_hourly"]
SOURCES: tuple[Source, ...] = ("auto", "observations", "observations_hourly")
Backend = Literal["time_bucket", "date_bin"]
BucketKind = Literal["fixed", "days", "months"]
HOURLY_VIEW = "observations_hourly"

# Buckets are aligned to local midnight of Monday 2000-01-03 in the requested zone.
ORIGIN_LOCAL = datetime(2000, 1, 3)


class AggregateError(ValueError):
    """The request cannot be served as asked (``parameter`` names the culprit)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


class DatastreamNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """One bucket width: ``amount`` seconds (fixed), calendar days, or calendar months."""

    kind: BucketKind
    amount: int
    text: str

    @property
    def width(self) -> timedelta:
        if self.kind == "fixed":
            return timedelta(seconds=self.amount)
        if self.kind == "days":
            return timedelta(days=self.amount)
        raise ValueError("month buckets have no fixed width")

    def approx_seconds(self) -> float:
        """A lower bound of one bucket's length (bounds how many buckets a request asks for)."""
        if self.kind == "fixed":
            return float(self.amount)
        if self.kind == "days":
            return self.amount * 23 * 3600.0
        return self.amount * 28 * 86400.0


@dataclass(frozen=True, slots=True)
class AggregateQuery:
    datastream_id: int
    interval: BucketSpec
    start: datetime
    end: datetime
    functions: tuple[str, ...]
    time_zone: str = "UTC"
    source: Source = "auto"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    end: datetime
    values: dict[str, float | int | None]


@dataclass(frozen=True, slots=True)
class AggregateResult:
    source: str
    unit_of_measurement: dict[str, Any] | None
    buckets: list[Bucket]


@dataclass(frozen=True, slots=True)
class AggregateSupport:
    """What the database offers for aggregation; detected once per process."""

    backend: Backend
    hourly_view: bool
    hourly_is_continuous_aggregate: bool


def detect_support(conn: psycopg.Connection[Any]) -> AggregateSupport:
    features = detect(conn)
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (HOURLY_VIEW,)).fetchone()
    hourly = bool(row and row[0])
    return AggregateSupport(
        backend="time_bucket" if features.hypertable else "date_bin",
        hourly_view=hourly,
        hourly_is_continuous_aggregate=hourly and features.continuous_aggregates,
    )


def _whole_hours(zone: ZoneInfo, moments: list[datetime]) -> bool:
    for moment in moments:
        offset = moment.astimezone(zone).utcoffset()
        if offset is None or offset.total_seconds() % 3600:
            return False
    return True


def hourly_servable(query: AggregateQuery) -> str | None:
    """Why the hourly aggregate cannot answer ``query`` exactly, or None when it can."""
    missing = [f for f in query.functions if f not in HOURLY_FUNCTIONS]
    if missing:
        return f"{', '.join(missing)} needs the raw observations"
    if query.start.timestamp() % 3600 or query.end.timestamp() % 3600:
        return "from and to must be whole hours"
    if query.interval.kind == "fixed" and query.interval.amount % 3600:
        return "the interval must be whole hours"
    zone = ZoneInfo(query.time_zone)
    probes = [query.start, query.end, ORIGIN_LOCAL.replace(tzinfo=zone)]
    for year in range(query.start.year, query.end.year + 1):
        probes += [datetime(year, 1, 15, tzinfo=UTC), datetime(year, 7, 15, tzinfo=UTC)]
    if not _whole_hours(zone, probes):
        return f"{query.time_zone} has offsets that are not whole hours"
    return None


def choose_source(query: AggregateQuery, support: AggregateSupport) -> str:
    if query.source == "observations":
        return "observations"
    reason = hourly_servable(query)
    if query.source == HOURLY_VIEW:
        if not support.hourly_view:
            raise AggregateError("source", f"{HOURLY_VIEW} does not exist in this database")
        if reason:
            raise AggregateError("source", f"{HOURLY_VIEW} cannot answer this request: {reason}")
        return HOURLY_VIEW
    if support.hourly_is_continuous_aggregate and reason is None:
        return HOURLY_VIEW
    return "observations"


def _bucket_expr(backend: Backend, spec: BucketSpec, column: sql.Composable) -> sql.Composable:
    if spec.kind == "fixed":
        template = (
            "time_bucket(%(width)s::interval, {col}, origin => %(origin)s::timestamptz)"
            if backend == "time_bucket"
            else "date_bin(%(width)s::interval, {col}, %(origin)s::timestamptz)"
        )
    elif spec.kind == "days":
        template = (
            "time_bucket(%(width)s::interval, {col}, timezone => %(tz)s::text, origin => %(origin)s::timestamptz)"
            if backend == "time_bucket"
            else "(date_bin(%(width)s::interval, {col} AT TIME ZONE %(tz)s::text, %(origin_local)s::timestamp)"
            " AT TIME ZONE %(tz)s::text)"
        )
    else:
        template = (
            "time_bucket(make_interval(months => %(months)s::int), {col}, timezone => %(tz)s::text)"
            if backend == "time_bucket"
            else "((date_trunc('year', {col} AT TIME ZONE %(tz)s::text) + make_interval(months =>"
            " ((extract(month FROM {col} AT TIME ZONE %(tz)s::text)::int - 1) / %(months)s::int) * %(months)s::int))"
            " AT TIME ZONE %(tz)s::text)"
        )
    return sql.SQL(template).format(col=column)


def _end_expr(spec: BucketSpec) -> sql.Composable:
    if spec.kind == "fixed":
        return sql.SQL("bucket + %(width)s::interval")
    if spec.kind == "days":
        return sql.SQL("((bucket AT TIME ZONE %(tz)s::text) + %(width)s::interval) AT TIME ZONE %(tz)s::text")
    return sql.SQL(
        "((bucket AT TIME ZONE %(tz)s::text) + make_interval(months => %(months)s::int)) AT TIME ZONE %(tz)s::text"
    )


def _raw_aggregate(name: str) -> sql.Composable:
    if name == "count":
        return sql.SQL("count(*)")
    if name in ("avg", "min", "max", "sum"):
        return sql.SQL("{}(result_number)").format(sql.SQL(name))
    if name == "increase":
        return sql.SQL("sum(greatest(delta, 0)) FILTER (WHERE delta IS NOT NULL)")
    # By time, then id (TimescaleDB's first()/last() leave a tie open): of two readings at one
    # time, last is the newer (a revised value), first the older.
    order = sql.SQL("phenomenon_time, id" if name == "first" else "phenomenon_time DESC, id DESC")
    return sql.SQL("(array_agg(result_number ORDER BY {}) FILTER (WHERE result_number IS NOT NULL))[1]").format(order)


def _hourly_aggregate(name: str) -> sql.Composable:
    if name == "count":
        return sql.SQL("sum(n)::bigint")
    if name == "avg":
        return sql.SQL("sum({s}) / nullif(sum(n_number), 0)").format(s=sql.Identifier("sum"))
    if name in ("min", "max", "sum"):
        return sql.SQL("{}({})").format(sql.SQL(name), sql.Identifier(name))
    return sql.SQL("{f}({c}, bucket) FILTER (WHERE n_number > 0)").format(f=sql.SQL(name), c=sql.Identifier(name))


_RAW_RANGE = sql.SQL("datastream_id = %(ds)s AND phenomenon_time >= %(start)s AND phenomenon_time < %(end)s")

# Each numeric reading's change from the reading before it (the one before ``from`` included),
# so a bucket's increase counts the rise since the previous bucket's last reading.
_WITH_DELTAS = sql.SQL(
    "(SELECT id, phenomenon_time, result_number,"
    " result_number - lag(result_number) OVER (PARTITION BY result_number IS NULL ORDER BY phenomenon_time, id)"
    " AS delta"
    " FROM observations WHERE datastream_id = %(ds)s AND phenomenon_time < %(end)s"
    " AND phenomenon_time >= coalesce((SELECT max(phenomenon_time) FROM observations"
    " WHERE datastream_id = %(ds)s AND phenomenon_time < %(start)s AND result_number IS NOT NULL), %(start)s)"
    ") AS s WHERE phenomenon_time >= %(start)s"
)


def build_query(query: AggregateQuery, backend: Backend, source: str) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement and its parameters (pure: no connection needed)."""
    spec = query.interval
    zone = ZoneInfo(query.time_zone)
    params: dict[str, Any] = {
        "ds": query.datastream_id,
        "start": query.start,
        "end": query.end,
        "tz": query.time_zone,
        "origin": ORIGIN_LOCAL.replace(tzinfo=zone),
        "origin_local": ORIGIN_LOCAL,
        "months": spec.amount if spec.kind == "months" else 0,
        "width": spec.width if spec.kind != "months" else timedelta(0),
    }
    names = [sql.Identifier(f) for f in query.functions]
    if source == HOURLY_VIEW:
        aggs = [_hourly_aggregate(f) for f in query.functions]
        inner = sql.SQL(
            "SELECT {bucket} AS bucket, {aggs} FROM {view}"
            " WHERE datastream_id = %(ds)s AND bucket >= %(start)s AND bucket < %(end)s GROUP BY 1"
        ).format(
            bucket=_bucket_expr(backend, spec, sql.Identifier("bucket")),
            aggs=sql.SQL(", ").join(sql.SQL("{} AS {}").format(a, n) for a, n in zip(aggs, names, strict=True)),
            view=sql.Identifier(HOURLY_VIEW),
        )
    else:
        aggs = [_raw_aggregate(f) for f in query.functions]
        source_rows = (
            sql.SQL("{}").format(_WITH_DELTAS)
            if "increase" in query.functions
            else sql.SQL("observations WHERE {}").format(_RAW_RANGE)
        )
        inner = sql.SQL("SELECT {bucket} AS bucket, {aggs} FROM {rows} GROUP BY 1").format(
            bucket=_bucket_expr(backend, spec, sql.Identifier("phenomenon_time")),
            aggs=sql.SQL(", ").join(sql.SQL("{} AS {}").format(a, n) for a, n in zip(aggs, names, strict=True)),
            rows=source_rows,
        )
    statement = sql.SQL("SELECT bucket, {end} AS bucket_end, {names} FROM ({inner}) AS b ORDER BY bucket").format(
        end=_end_expr(spec), names=sql.SQL(", ").join(names), inner=inner
    )
    return statement, params


def datastream_unit(conn: psycopg.Connection[Any], datastream_id: int) -> dict[str, Any] | None:
    row = conn.execute("SELECT unit_of_measurement FROM datastreams WHERE id = %s", (datastream_id,)).fetchone()
    if row is None:
        raise DatastreamNotFound(datastream_id)
    return row[0]  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class AggregateJson:
    """:func:`aggregate_json`'s answer: the buckets as one JSON array, built by the database."""

    source: str
    unit_of_measurement: dict[str, Any] | None
    value: bytes  # [{"start": ..., "end": ..., "<function>": ...}, ...]


def aggregate_json(conn: psycopg.Connection[Any], query: AggregateQuery, support: AggregateSupport) -> AggregateJson:
    """The same buckets as :func:`aggregate`, as JSON text with times in the query's zone.

    The database writes the array (``to_json`` of a timestamptz gives ISO 8601 with the
    session zone's offset, so the zone is set for this transaction only): no per-bucket
    Python objects, which is most of the cost of a long hourly series.
    """
    source = choose_source(query, support)
    statement, params = build_query(query, support.backend, source)
    fields: list[sql.Composable] = [sql.SQL("'start', b.bucket, 'end', b.bucket_end")]
    fields += [sql.SQL("{}, b.{}").format(sql.Literal(f), sql.Identifier(f)) for f in query.functions]
    wrapped = sql.SQL(
        "SELECT coalesce(json_agg(json_build_object({}) ORDER BY b.bucket), '[]'::json)::text FROM ({}) AS b"
    ).format(sql.SQL(", ").join(fields), statement)
    with conn.transaction():
        unit = datastream_unit(conn, query.datastream_id)
        conn.execute("SELECT set_config('TimeZone', %s, true)", (query.time_zone,))
        row = conn.execute(wrapped, params).fetchone()
    assert row is not None
    return AggregateJson(source, unit, row[0].encode())


def aggregate(conn: psycopg.Connection[Any], query: AggregateQuery, support: AggregateSupport) -> AggregateResult:
    """Buckets with at least one observation, in time order (empty buckets are left out).

    The answer of :func:`aggregate_json` as Python values, so there is one path to test.
    """
    answer = aggregate_json(conn, query, support)
    buckets = []
    for item in orjson.loads(answer.value):
        values = {f: item[f] if item[f] is None or f == "count" else float(item[f]) for f in query.functions}
        buckets.append(
            Bucket(start=datetime.fromisoformat(item["start"]), end=datetime.fromisoformat(item["end"]), values=values)
        )
    return AggregateResult(source=answer.source, unit_of_measurement=answer.unit_of_measurement, buckets=buckets)
