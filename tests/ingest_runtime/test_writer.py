"""The batch writer on the real database: stored once, duplicates counted, redelivery exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest

from schemas import quality
from schemas.observation import NormalisedObservation
from schemas.provisioning import Provisioning
from store import counters
from store.observations import CreateRefused, IncomingMessage, ObservationWriter, Outcome, Rejection
from store.provisioning import import_provisioning, load_bindings

T0 = datetime(2025, 3, 4, 8, 0, tzinfo=UTC)
TIME_ASSUMED = quality.flag("time_assumed")
LOW_COST = quality.flag("low_cost_sensor")


@pytest.fixture(params=["migrated_db", "plain_db"], ids=["timescaledb", "plain"])
def db(request: pytest.FixtureRequest, provisioning: Provisioning) -> Iterator[tuple[str, dict[str, dict[str, int]]]]:
    """A provisioned database: TimescaleDB hypertable, and plain PostgreSQL."""
    url: str = request.getfixturevalue(request.param)
    with psycopg.connect(url) as conn:
        import_provisioning(conn, provisioning)
        streams = {d: dict(b.datastreams) for d, b in load_bindings(conn).items()}
    yield url, streams


@pytest.fixture
def writer(db: tuple[str, Any]) -> Iterator[ObservationWriter]:
    w = ObservationWriter.connect(db[0], "worker-1")
    yield w
    w.close()


def _obs(
    ds: int, t: datetime, value: Any, *, flags: int = 0, received: datetime | None = None
) -> NormalisedObservation:
    return NormalisedObservation(
        datastream_id=ds, phenomenon_time=t, received_at=received or t, result=value, quality_flags=flags
    )


def _rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT datastream_id, phenomenon_time, result_number, result_boolean, result_text, result_json,"
            " quality_flags FROM observations ORDER BY datastream_id, phenomenon_time"
        ).fetchall()


def _totals(url: str) -> counters.Tally:
    with psycopg.connect(url) as conn:
        return counters.totals(conn)


def _identity(t: counters.Tally) -> None:
    quarantined = sum(v for (name, _), v in t.items() if name == counters.QUARANTINED)
    assert t[(counters.RECEIVED, "")] == t[(counters.STORED, "")] + t[(counters.DUPLICATE, "")] + quarantined


def test_batch_is_stored_once_and_duplicates_are_counted(db: tuple[str, Any], writer: ObservationWriter) -> None:
    url, streams = db
    pm10 = streams["13597771"]["pm10"]
    occupancy = streams["70b3d5e75e00a001"]["parking_occupancy"]
    first = [
        IncomingMessage("a/1", b"1", T0, [_obs(pm10, T0, 12.3), _obs(occupancy, T0, True)]),
        IncomingMessage("a/2", b"2", T0, [_obs(pm10, T0 + timedelta(minutes=1), 13.0, flags=LOW_COST)]),
        # the same reading through a second gateway, in the same batch: the first is kept
        IncomingMessage("a/3", b"3", T0, [_obs(pm10, T0 + timedelta(minutes=1), 13.0)]),
    ]
    result = writer.write(first)
    assert result.outcomes == [Outcome.STORED, Outcome.STORED, Outcome.DUPLICATE]
    assert len(result.new) == 3 and len({n.id for n in result.new}) == 3
    # later, again, plus one late reading that lands in its place in history
    second = [
        IncomingMessage("a/1", b"1", T0, [_obs(pm10, T0, 12.3), _obs(occupancy, T0, True)]),
        IncomingMessage("a/4", b"4", T0, [_obs(pm10, T0 - timedelta(hours=5), 8.5)]),
    ]
    result = writer.write(second)
    assert result.outcomes == [Outcome.DUPLICATE, Outcome.STORED]
    assert [n.observation.result for n in result.new] == [8.5]

    rows = _rows(url)
    assert [(r[0], r[1], r[2] if r[2] is not None else r[3]) for r in rows] == sorted(
        [
            (pm10, T0 - timedelta(hours=5), 8.5),
            (pm10, T0, 12.3),
            (pm10, T0 + timedelta(minutes=1), 13.0),
            (occupancy, T0, True),
        ]
    )
    t = _totals(url)
    assert t[(counters.RECEIVED, "")] == 5
    assert t[(counters.STORED, "")] == 3 and t[(counters.DUPLICATE, "")] == 2
    assert t[(counters.OBSERVATIONS_STORED, "")] == 4
    assert t[(counters.OBSERVATIONS_DUPLICATE, "")] == 3
    assert t[(counters.FLAGGED, "low_cost_sensor")] == 1
    _identity(t)


def test_result_types_land_in_their_columns(db: tuple[str, Any], writer: ObservationWriter) -> None:
    url, streams = db
    ds = streams["a81758fffe000001"]["indoor_co2"]
    values: list[Any] = [776, 21.5, True, "high", {"a": [1, 2]}, None]
    msgs = [IncomingMessage("t", b"x", T0, [_obs(ds, T0 + timedelta(seconds=i), v)]) for i, v in enumerate(values)]
    writer.write(msgs)
    got = [(r[2], r[3], r[4], r[5]) for r in _rows(url)]
    assert got == [
        (776.0, None, None, None),
        (21.5, None, None, None),
        (None, True, None, None),
        (None, None, "high", None),
        (None, None, None, {"a": [1, 2]}),
        (None, None, None, None),
    ]


def test_quarantine_keeps_the_message_whole(db: tuple[str, Any], writer: ObservationWriter) -> None:
    url, streams = db
    payload = b'{"truncated": '
    result = writer.write(
        [
            IncomingMessage(
                "v3/app/devices/x/up",
                payload,
                T0,
                rejection=Rejection("malformed", "Expecting value: line 1 column 15"),
                source="tts",
                device_id="x",
                packet_id=3,
            ),
            IncomingMessage("a/1", b"1", T0, [_obs(streams["13597771"]["pm10"], T0, 1.0)]),
        ]
    )
    assert result.outcomes == [Outcome.QUARANTINED, Outcome.STORED]
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT topic, payload, received_at, reason, error, source, device_id FROM quarantine"
        ).fetchall()
    assert row == [("v3/app/devices/x/up", payload, T0, "malformed", "Expecting value: line 1 column 15", "tts", "x")]
    t = _totals(url)
    assert t[(counters.QUARANTINED, "malformed")] == 1 and t[(counters.DECODED, "")] == 1
    _identity(t)


def test_a_row_the_database_refuses_quarantines_only_its_message(
    db: tuple[str, Any], writer: ObservationWriter
) -> None:
    url, streams = db
    pm10 = streams["13597771"]["pm10"]
    bad = NormalisedObservation(
        datastream_id=pm10,
        phenomenon_time=T0,
        received_at=T0,
        result=1.0,
        phenomenon_time_end=T0 - timedelta(hours=1),  # violates observations_interval
    )
    result = writer.write(
        [
            IncomingMessage("a/1", b"good-1", T0, [_obs(pm10, T0 + timedelta(minutes=1), 2.0)]),
            IncomingMessage("a/2", b"bad", T0, [bad]),
            IncomingMessage("a/3", b"good-2", T0, [_obs(pm10, T0 + timedelta(minutes=2), 3.0)]),
            IncomingMessage("a/4", b"unknown", T0, [_obs(10**9, T0, 3.0)]),  # no such Datastream
        ]
    )
    assert result.outcomes == [Outcome.STORED, Outcome.QUARANTINED, Outcome.STORED, Outcome.QUARANTINED]
    assert [r[2] for r in _rows(url)] == [2.0, 3.0]
    with psycopg.connect(url) as conn:
        reasons = conn.execute("SELECT payload, reason FROM quarantine ORDER BY id").fetchall()
    assert reasons == [(b"bad", "store_rejected"), (b"unknown", "store_rejected")]
    t = _totals(url)
    assert t[(counters.QUARANTINED, "store_rejected")] == 2
    _identity(t)


def test_redelivery_without_payload_time_is_stored_once(db: tuple[str, Any], writer: ObservationWriter) -> None:
    """airrohr carries no time: a redelivery (DUP, same packet id, same bytes) takes its first receive time."""
    url, streams = db
    pm10 = streams["13597771"]["pm10"]
    payload = b'{"esp8266id":"13597771","sensordatavalues":[{"value_type":"SDS_P1","value":"12.30"}]}'
    topic = "sensor-community/13597771"

    def delivery(received: datetime, packet_id: int, dup: bool) -> IncomingMessage:
        return IncomingMessage(
            topic,
            payload,
            received,
            [_obs(pm10, received, 12.3, flags=TIME_ASSUMED, received=received)],
            packet_id=packet_id,
            redelivered=dup,
        )

    t1, t2, t3, t4 = (T0 + timedelta(seconds=s) for s in (0, 40, 300, 310))
    assert writer.write([delivery(t1, 17, False)]).outcomes == [Outcome.STORED]
    # committed, crash before PUBACK: the broker resends packet 17 with DUP set
    assert writer.write([delivery(t2, 17, True)]).outcomes == [Outcome.DUPLICATE]
    # the sensor sends the very same bytes again later: a new reading (new packet id, no DUP)
    assert writer.write([delivery(t3, 18, False)]).outcomes == [Outcome.STORED]
    # packet id 17 reused by the broker for a different message later, which arrives with DUP
    other = IncomingMessage(
        topic, payload + b" ", t4, [_obs(pm10, t4, 1.0, flags=TIME_ASSUMED)], packet_id=17, redelivered=True
    )
    assert writer.write([other]).outcomes == [Outcome.STORED]
    assert [r[1] for r in _rows(url)] == [t1, t3, t4]


def test_redelivery_in_the_same_batch_as_its_original(db: tuple[str, Any], writer: ObservationWriter) -> None:
    url, streams = db
    pm10 = streams["13597771"]["pm10"]
    t1, t2 = T0, T0 + timedelta(seconds=5)
    msgs = [
        IncomingMessage("s/1", b"same", t, [_obs(pm10, t, 5.0, flags=TIME_ASSUMED)], packet_id=9, redelivered=dup)
        for t, dup in ((t1, False), (t2, True))
    ]
    assert writer.write(msgs).outcomes == [Outcome.STORED, Outcome.DUPLICATE]
    assert [r[1] for r in _rows(url)] == [t1]


def test_redelivered_quarantined_message_is_quarantined_once(db: tuple[str, Any], writer: ObservationWriter) -> None:
    url, _ = db

    def delivery(received: datetime, packet_id: int, dup: bool) -> IncomingMessage:
        return IncomingMessage(
            "nilu/x",
            b"not json",
            received,
            rejection=Rejection("malformed", "bad"),
            packet_id=packet_id,
            redelivered=dup,
        )

    outcomes = [
        writer.write([delivery(T0, 4, False)]).outcomes[0],
        writer.write([delivery(T0 + timedelta(seconds=30), 4, True)]).outcomes[0],
        # a device that keeps sending the same broken bytes: each message is quarantined
        writer.write([delivery(T0 + timedelta(seconds=60), 5, False)]).outcomes[0],
    ]
    assert outcomes == [Outcome.QUARANTINED, Outcome.DUPLICATE, Outcome.QUARANTINED]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM quarantine").fetchone() == (2,)
    _identity(_totals(url))


def test_counters_are_per_worker_and_sum(db: tuple[str, Any]) -> None:
    url, streams = db
    pm10 = streams["13597771"]["pm10"]
    w1, w2 = ObservationWriter.connect(url, "w1"), ObservationWriter.connect(url, "w2")
    try:
        w1.write([IncomingMessage("a", b"1", T0, [_obs(pm10, T0, 1.0)])], batch_seq=1)
        w2.write([IncomingMessage("a", b"1", T0, [_obs(pm10, T0, 1.0)])], extra={(counters.OWN_NOTIFICATION, ""): 2})
        assert w1.last_batch_seq() == 1 and w2.last_batch_seq() == 0
    finally:
        w1.close()
        w2.close()
    with psycopg.connect(url) as conn:
        per_worker = {w["worker"]: w for w in counters.workers(conn)}
        assert per_worker["w1"]["stored"] == 1 and per_worker["w2"]["duplicate"] == 1
        t = counters.totals(conn)
    assert t[(counters.RECEIVED, "")] == 2 and t[(counters.OWN_NOTIFICATION, "")] == 2
    _identity(t)


def test_quarantine_keeps_texts_with_nul_and_the_payload_whole(db: tuple[str, Any], writer: ObservationWriter) -> None:
    """A NUL quoted from a payload into an error text or id must not make the quarantine refuse the message."""
    url, streams = db
    payload = b'{"esp8266id": "1\\u00002", "raw": "\x00\xff"}'
    result = writer.write(
        [
            IncomingMessage(
                "sensor-community/x",
                payload,
                T0,
                rejection=Rejection("malformed", "airrohr sensordatavalues[0] (SDS\x00P1) has no value"),
                source="sensor-community",
                device_id="1\x002",
                packet_id=5,
            ),
            IncomingMessage("a/1", b"1", T0, [_obs(streams["13597771"]["pm10"], T0, 1.0)]),
        ]
    )
    assert result.outcomes == [Outcome.QUARANTINED, Outcome.STORED]
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT payload, error, device_id, reason FROM quarantine").fetchone()
    assert row == (payload, "airrohr sensordatavalues[0] (SDS\\x00P1) has no value", "1\\x002", "malformed")
    _identity(_totals(url))


def test_data_refused_outside_the_rows_sets_aside_only_its_message(
    db: tuple[str, Any], writer: ObservationWriter
) -> None:
    """A refusal anywhere in the batch (here a rule on the quarantine) costs only the message that caused it."""
    url, streams = db
    pm10 = streams["13597771"]["pm10"]
    with psycopg.connect(url) as conn:
        conn.execute("ALTER TABLE quarantine ADD CONSTRAINT no_forbidden CHECK (error NOT LIKE '%%forbidden%%')")
    msgs = [
        IncomingMessage("a/1", b"good-1", T0, [_obs(pm10, T0, 1.0)], packet_id=1),
        IncomingMessage("a/2", b"refused", T0, rejection=Rejection("malformed", "a forbidden text"), packet_id=2),
        IncomingMessage("a/3", b"bad-json", T0, rejection=Rejection("malformed", "not JSON"), packet_id=3),
        IncomingMessage(
            "a/4", b"good-2", T0, [_obs(pm10, T0 + timedelta(minutes=1), 2.0, flags=TIME_ASSUMED)], packet_id=4
        ),
    ]
    result = writer.write(msgs, batch_seq=7)
    assert result.outcomes == [Outcome.STORED, Outcome.QUARANTINED, Outcome.QUARANTINED, Outcome.STORED]
    assert [r[2] for r in _rows(url)] == [1.0, 2.0]
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT payload, reason, error FROM quarantine ORDER BY id").fetchall()
        logged = conn.execute("SELECT packet_id FROM ingest_deliveries ORDER BY 1").fetchall()
    assert [(r[0], r[1]) for r in rows] == [(b"refused", "store_rejected"), (b"bad-json", "malformed")]
    assert "CheckViolation" in rows[0][2]
    assert logged == [(2,), (3,), (4,)]  # the delivery log still covers every message that needs it
    assert writer.last_batch_seq() == 7
    t = _totals(url)
    assert t[(counters.QUARANTINED, "store_rejected")] == 1 and t[(counters.QUARANTINED, "malformed")] == 1
    _identity(t)


# (SQL that fails, is it the data's fault, does it clear with time): errors raised by the real server
ERRORS = [
    ("SELECT 1 / 0", True, False),
    ("SELECT 'x'::int", True, False),
    ("INSERT INTO quarantine (received_at, topic, payload, payload_hash, reason) VALUES (now(), 't', '', '', NULL)",
     True, False),
    ("CREATE TEMP TABLE big (t text); CREATE INDEX ON big (t); INSERT INTO big SELECT string_agg(md5(i::text), '')"
     " FROM generate_series(1, 200) i", True, False),
    ("SET TRANSACTION READ ONLY; INSERT INTO sites (id, kind, name) VALUES ('s', 'area', 'S')", False, True),
    ("SELECT pg_terminate_backend(pg_backend_pid())", False, True),
    ("SET LOCAL statement_timeout = 1; SELECT pg_sleep(1)", False, True),
    ("SELECT * FROM no_such_table", False, False),
]  # fmt: skip


@pytest.mark.parametrize(("statement", "data", "transient"), ERRORS)
def test_database_errors_are_told_apart(migrated_db: str, statement: str, data: bool, transient: bool) -> None:
    from store.db import is_data_error, is_transient

    with psycopg.connect(migrated_db) as conn:
        with pytest.raises(psycopg.Error) as info:
            for part in statement.split("; "):
                conn.execute(part.encode())
        assert (is_data_error(info.value), is_transient(info.value)) == (data, transient), repr(info.value)
    assert is_data_error(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))


def test_redelivery_of_a_senml_pack_with_relative_times_is_stored_once(db: tuple[str, Any]) -> None:
    """SenML times below 2**28 are relative to receipt: a redelivered pack must not land at new times."""
    from ingest.decode import decode_message, load_models
    from ingest.normalise import normalise
    from ingest.quality import QualityState
    from ingest.sources import load_sources
    from ingest.types import DeviceBinding, RawMessage

    url, _ = db
    with psycopg.connect(url) as conn:
        import_provisioning(conn, Provisioning.model_validate(
            {"version": 1, "devices": [{"id": "urn:dev:mac:0024befffe804ff1", "model": "senml-heat-gateway",
                                         "name": "School heat gateway"}]}))  # fmt: skip
        streams = dict(load_bindings(conn)["urn:dev:mac:0024befffe804ff1"].datastreams)
    models = load_models()
    binding = DeviceBinding("urn:dev:mac:0024befffe804ff1", models["senml-heat-gateway"], streams)
    source = load_sources()["senml"]
    topic = "senml/gw-1"
    payload = orjson.dumps([{"bn": "urn:dev:mac:0024befffe804ff1:", "n": "supply_temp", "u": "Cel", "v": 61.5,
                             "t": -60}, {"n": "co2", "u": "ppm", "v": 1180, "t": -30}])  # fmt: skip

    def delivery(received: datetime, packet_id: int, dup: bool) -> IncomingMessage:
        raw = RawMessage(topic, payload, received)
        decoded = decode_message(raw, source, lambda _: binding.model)
        normalised = normalise(decoded, binding, received, QualityState(), window=source.window)
        return IncomingMessage(topic, payload, received, normalised.observations, packet_id=packet_id, redelivered=dup)

    t1, t2 = T0, T0 + timedelta(seconds=45)
    w = ObservationWriter.connect(url, "worker-senml")
    try:
        assert w.write([delivery(t1, 21, False)]).outcomes == [Outcome.STORED]
        # committed, crash before PUBACK: the broker resends packet 21 with DUP set, received later
        assert w.write([delivery(t2, 21, True)]).outcomes == [Outcome.DUPLICATE]
    finally:
        w.close()
    with psycopg.connect(url) as conn:
        times = conn.execute("SELECT phenomenon_time FROM observations ORDER BY 1").fetchall()
    assert times == [(t1 - timedelta(seconds=60),), (t1 - timedelta(seconds=30),)]
    t = _totals(url)
    assert t[(counters.DUPLICATE, "")] == 1 and t[(counters.OBSERVATIONS_DUPLICATE, "")] == 2
    _identity(t)


def test_a_different_result_at_a_stored_time_is_an_observation_of_its_own(
    db: tuple[str, Any], writer: ObservationWriter
) -> None:
    """Only the same reading (Datastream, time, result, end) is a duplicate; a revision is stored beside it."""
    url, streams = db
    pm10 = streams["13597771"]["pm10"]
    occupancy = streams["70b3d5e75e00a001"]["parking_occupancy"]
    hour = T0 + timedelta(hours=1)

    def nilu(value: float, end: datetime = hour) -> NormalisedObservation:
        return NormalisedObservation(pm10, T0, T0, value, phenomenon_time_end=end)

    assert writer.write([IncomingMessage("n/1", b"1", T0, [nilu(10.5), _obs(occupancy, T0, True)])]).outcomes == [
        Outcome.STORED
    ]
    second = writer.write(
        [
            IncomingMessage("n/1", b"1", T0, [nilu(10.5), _obs(occupancy, T0, True)]),  # delivered again
            IncomingMessage("n/2", b"2", T0, [nilu(11.25)]),  # NILU revised the hour
            IncomingMessage("n/3", b"3", T0, [nilu(11.25)]),  # ... and that revision came twice
            IncomingMessage("n/4", b"4", T0, [nilu(10.5, T0 + timedelta(hours=2))]),  # another interval
            IncomingMessage("n/5", b"5", T0, [_obs(occupancy, T0, False)]),  # a different state at that time
        ]
    )
    assert second.outcomes == [Outcome.STORED if o else Outcome.DUPLICATE for o in (0, 1, 0, 1, 1)]
    # the new rows are the observations that were new, each with its own id (they are fanned out)
    assert sorted((n.observation.result, n.observation.phenomenon_time_end) for n in second.new) == sorted(
        [(11.25, hour), (10.5, T0 + timedelta(hours=2)), (False, None)]
    )
    assert len({n.id for n in second.new}) == 3
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT coalesce(result_number::text, result_boolean::text), phenomenon_time_end FROM observations"
            " ORDER BY id"
        ).fetchall()
    assert rows == [("10.5", hour), ("true", None), ("11.25", hour), ("10.5", T0 + timedelta(hours=2)), ("false", None)]
    t = _totals(url)
    assert t[(counters.STORED, "")] == 4 and t[(counters.DUPLICATE, "")] == 2
    assert t[(counters.OBSERVATIONS_STORED, "")] == 5 and t[(counters.OBSERVATIONS_DUPLICATE, "")] == 3
    _identity(t)


def test_equal_results_of_every_type_are_duplicates(db: tuple[str, Any], writer: ObservationWriter) -> None:
    url, streams = db
    ds = streams["a81758fffe000001"]["indoor_co2"]
    values: list[Any] = [776.0, True, "high", {"b": [1, 2], "a": None}, None]
    batch = [IncomingMessage("t", b"x", T0, [_obs(ds, T0, v) for v in values])]
    assert writer.write(batch).outcomes == [Outcome.STORED]
    again = [IncomingMessage("t", b"x", T0, [_obs(ds, T0, v) for v in [776.0, True, "high", {"a": None, "b": [1, 2]},
                                                                        None]])]  # fmt: skip
    assert writer.write(again).outcomes == [Outcome.DUPLICATE]
    other = [IncomingMessage("t", b"y", T0, [_obs(ds, T0, v) for v in [776.5, False, "low", {"a": 1}, "None"]])]
    result = writer.write(other)
    assert result.outcomes == [Outcome.STORED] and len(result.new) == 5
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM observations").fetchone() == (10,)


def test_the_dedup_key_is_the_documented_hash(migrated_db: str) -> None:
    """observation_dedup_key is a stable, session-independent function: its value is pinned here."""
    import hashlib
    import struct

    def expected(tagged: str, end: datetime | None) -> int:
        micros = None if end is None else (end - datetime(2000, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        text = tagged + "|" + ("-" if micros is None else struct.pack(">q", micros).hex())
        return int.from_bytes(bytes.fromhex(hashlib.md5(text.encode()).hexdigest()[:16]), "big", signed=True)

    cases = [
        ((12.3, None, None, None, None), expected("n" + struct.pack(">d", 12.3).hex(), None)),
        ((None, True, None, None, T0), expected("btrue", T0)),
        ((None, None, "høy", None, None), expected("thøy", None)),
        ((None, None, None, '{"b": 1, "a": [1, 2]}', None), expected('j{"a": [1, 2], "b": 1}', None)),
        ((None, None, None, None, None), expected("-", None)),
    ]
    with psycopg.connect(migrated_db) as conn:
        for settings in ("SET TIME ZONE 'Europe/Oslo'", "SET extra_float_digits = -3"):
            conn.execute(settings)
            for args, key in cases:
                row = conn.execute(
                    "SELECT observation_dedup_key(%s::float8, %s::bool, %s::text, %s::jsonb, %s::timestamptz)", args
                ).fetchone()
                assert row == (key,), args


class _Creates:
    """An EntityCreates that makes one Observation per message with SQL of its own, or fails as told."""

    def __init__(self, ds: int) -> None:
        self.ds = ds

    def create(self, conn: psycopg.Connection[Any], message: IncomingMessage) -> tuple[int, object]:
        body = orjson.loads(message.payload)
        if body.get("fail") == "refused":
            raise CreateRefused(Rejection("malformed", "no FeatureOfInterest with @iot.id 9"))
        if body.get("fail") == "bug":
            raise KeyError("a bug")
        if body.get("fail") == "sql":  # refused by the database, neither data nor an outage (PostGIS: XX000)
            conn.execute("SELECT * FROM no_such_table")
        conn.execute(
            "INSERT INTO observations (datastream_id, phenomenon_time, received_at, result_number, quality_flags)"
            " VALUES (%s, %s, %s, %s, 0)",
            (self.ds, T0 + timedelta(minutes=body["minute"]), message.received_at, body["result"]),
        )
        return 1, ("announce", body["minute"])


def test_entity_creates_are_written_in_the_batch_and_their_failures_quarantined(db: tuple[str, Any]) -> None:
    url, streams = db
    pm10 = streams["13597771"]["pm10"]
    writer = ObservationWriter.connect(url, "worker-c", _Creates(pm10))
    path = f"Datastreams({pm10})/Observations"

    def create(pid: int, body: dict[str, Any], *, redelivered: bool = False) -> IncomingMessage:
        return IncomingMessage(f"v1.1/{path}", orjson.dumps(body), T0, packet_id=pid, redelivered=redelivered,
                               create=path)  # fmt: skip

    reading = IncomingMessage("v1.1/x", b"{}", T0, observations=[_obs(pm10, T0, 1.0)], packet_id=5)
    batch = [create(1, {"minute": 1, "result": 11}), create(2, {"fail": "refused"}), create(3, {"fail": "bug"}),
             reading, create(4, {"minute": 4, "result": 14}), create(6, {"fail": "sql"})]  # fmt: skip
    try:
        first = writer.write(batch)
        # the broker resends the first create (DUP): the delivery log knows it was committed
        again = writer.write([create(1, {"minute": 1, "result": 11}, redelivered=True)])
        # a new message that reuses the packet id after the first was acknowledged is created
        fresh = writer.write([create(1, {"minute": 7, "result": 17})])
    finally:
        writer.close()
    assert first.outcomes == [Outcome.STORED, Outcome.QUARANTINED, Outcome.QUARANTINED, Outcome.STORED,
                              Outcome.STORED, Outcome.QUARANTINED]  # fmt: skip
    assert first.announce == [("announce", 1), ("announce", 4)]
    assert first.rejections[1].detail == "no FeatureOfInterest with @iot.id 9"
    assert first.rejections[2].detail == "internal error KeyError: 'a bug'"
    assert first.rejections[5].reason == "store_rejected" and "no_such_table" in first.rejections[5].detail
    assert again.outcomes == [Outcome.DUPLICATE] and again.announce == []
    assert fresh.outcomes == [Outcome.STORED]
    assert sorted(r[2] for r in _rows(url)) == [1.0, 11.0, 14.0, 17.0]
    with psycopg.connect(url) as conn:
        reasons = [r[0] for r in conn.execute("SELECT reason FROM quarantine ORDER BY id")]
        assert reasons == ["malformed", "malformed", "store_rejected"]
    t = _totals(url)
    assert t[(counters.RECEIVED, "")] == 8 and t[(counters.STORED, "")] == 4 and t[(counters.DUPLICATE, "")] == 1
    assert t[(counters.OBSERVATIONS_STORED, "")] == 4 and t[(counters.OBSERVATIONS_DUPLICATE, "")] == 0
    _identity(t)


def test_without_entity_creates_a_create_is_quarantined(db: tuple[str, Any], writer: ObservationWriter) -> None:
    url, streams = db
    path = f"Datastreams({streams['13597771']['pm10']})/Observations"
    result = writer.write([IncomingMessage(f"v1.1/{path}", b'{"result": 1}', T0, packet_id=1, create=path)])
    assert result.outcomes == [Outcome.QUARANTINED]
    assert result.rejections[0].detail == "this writer takes readings only (no entity creates)"
    assert _rows(url) == []


def test_each_batch_widens_its_datastreams_spans(db: tuple[str, Any], writer: ObservationWriter) -> None:
    """A Datastream's phenomenonTime, resultTime and observedArea follow the readings ingest stores,
    whether or not an API write set them before (the read side takes the kept columns when set)."""
    url, streams = db
    pm10 = streams["13597771"]["pm10"]

    def spans() -> tuple[Any, ...]:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT phenomenon_time_start, phenomenon_time_end, result_time_start, result_time_end,"
                " observed_area->>'type' FROM datastreams WHERE id = %s",
                (pm10,),
            ).fetchone()
        assert row is not None
        return tuple(row)

    first = _obs(pm10, T0 + timedelta(minutes=5), 10.0)
    late = NormalisedObservation(
        datastream_id=pm10, phenomenon_time=T0, phenomenon_time_end=T0 + timedelta(hours=1), received_at=T0,
        result=11.0, quality_flags=0, result_time=T0 + timedelta(hours=2),
    )  # fmt: skip
    writer.write([IncomingMessage("t", b"1", T0, observations=[first])])
    assert spans()[:4] == (first.phenomenon_time, first.phenomenon_time, None, None)
    assert spans()[4] == "Point"  # the Thing's Location, as ingest's readings have no feature of their own
    writer.write([IncomingMessage("t", b"2", T0, observations=[late, _obs(pm10, T0 + timedelta(hours=5), 12.0)])])
    assert spans()[:4] == (T0, T0 + timedelta(hours=5), T0 + timedelta(hours=2), T0 + timedelta(hours=2))
    again = writer.write([IncomingMessage("t", b"3", T0, observations=[first])])  # a duplicate: nothing new
    assert again.outcomes == [Outcome.DUPLICATE] and spans()[:2] == (T0, T0 + timedelta(hours=5))
