"""The stateful quality checks resume from the store: a restarted worker still sees a meter reset."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest

from ingest.quality import FUTURE_TIME, SPIKE
from schemas.observation import NormalisedObservation
from schemas.provisioning import Provisioning
from schemas.quality import decode as flag_names
from store import counters
from store.observations import IncomingMessage, ObservationWriter
from store.provisioning import import_provisioning, load_bindings
from store.recent import recent_readings
from tests.conftest import wait_until

from . import streams
from .conftest import assert_identity, running_ingest, totals

T0 = streams.T0
WAIT = 60.0


@pytest.fixture(params=["migrated_db", "plain_db"], ids=["timescaledb", "plain"])
def db(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    url: str = request.getfixturevalue(request.param)
    with psycopg.connect(url) as conn:
        import_provisioning(conn, Provisioning.model_validate(streams.provisioning()))
        ds = load_bindings(conn)[streams.AMS[0]].datastreams["active_power"]
    yield url, ds


def _store(url: str, rows: list[NormalisedObservation]) -> None:
    writer = ObservationWriter.connect(url, "seed-test")
    try:
        writer.write([IncomingMessage("t", b"x", T0, rows)])
    finally:
        writer.close()


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_recent_readings_give_value_repeats_and_reference(db: tuple[str, int]) -> None:
    url, ds = db
    o = NormalisedObservation
    _store(url, [
        o(ds, _at(10), T0, 100.0), o(ds, _at(20), T0, 101.0),
        o(ds, _at(30), T0, 180.0, quality_flags=SPIKE), o(ds, _at(40), T0, 180.0, quality_flags=SPIKE),
        o(ds, _at(50), T0, 180.0, quality_flags=SPIKE),
        o(ds, _at(70 * 365 * 86400), T0, 999.0, quality_flags=FUTURE_TIME),  # a clock that jumped: left out
        o(ds, _at(45), T0, True),  # not a number: left out
    ])  # fmt: skip
    with psycopg.connect(url) as conn:
        found = recent_readings(conn, {ds: 10, 10**9: 10}, skip_flags=FUTURE_TIME, spike_flag=SPIKE)
        assert list(found) == [ds]  # a Datastream without readings has nothing to resume from
        r = found[ds]
        assert (r.time, r.value, r.repeats, r.ref_time, r.ref_value) == (_at(50), 180.0, 3, _at(20), 101.0)
        short = recent_readings(conn, {ds: 2}, skip_flags=FUTURE_TIME, spike_flag=SPIKE)[ds]
        assert (short.repeats, short.ref_time) == (2, _at(50))  # no reference among two spikes: the newest
    _store(url, [o(ds, _at(50), T0, 181.0)])  # a revision of the newest reading: the later one counts
    with psycopg.connect(url) as conn:
        r = recent_readings(conn, {ds: 10}, skip_flags=FUTURE_TIME, spike_flag=SPIKE)[ds]
    assert (r.time, r.value, r.repeats, r.ref_time, r.ref_value) == (_at(50), 181.0, 1, _at(50), 181.0)


# Meter readings of the last hours: within the source's window, so the counter rule is all that flags them.
RECENT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=4)


def _meter(prefix: str, mac: str, seconds: int, energy: float) -> streams.Message:
    body = {"id": mac, "t": int(RECENT.timestamp()) + seconds, "data": {"tPI": energy}}
    return streams.Message(f"{prefix}amsreader/{mac}", orjson.dumps(body), "amsreader", seconds, 1)


def _energy_flags(url: str, mac: str) -> list[tuple[float, list[str]]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT o.result_number, o.quality_flags FROM observations o JOIN datastreams d ON d.id = o.datastream_id"
            " WHERE d.device_id = %s AND d.property_key = 'active_energy_import' ORDER BY o.phenomenon_time",
            (mac,),
        ).fetchall()
    return [(float(v), flag_names(f)) for v, f in rows]


def test_a_counter_reset_across_a_restart_is_flagged(stream_db: str, mqtt_url: str, topic_prefix: str) -> None:
    prefix, mac = topic_prefix + "/", streams.AMS[2]
    worker = f"restart-{topic_prefix}"
    with running_ingest(stream_db, mqtt_url, topic_prefix=prefix, worker=worker):
        streams.publish(mqtt_url, [_meter(prefix, mac, 0, 48213.7), _meter(prefix, mac, 3600, 48214.9)])
        assert wait_until(lambda: totals(stream_db)[(counters.RECEIVED, "")] >= 2, timeout=WAIT)
    # the worker restarts; the meter was replaced meanwhile and counts from zero
    with running_ingest(stream_db, mqtt_url, topic_prefix=prefix, worker=worker) as service:
        assert service.processor.state.streams  # resumed at start, before the first message
        streams.publish(mqtt_url, [_meter(prefix, mac, 7200, 12.0), _meter(prefix, mac, 10800, 12.6)])
        assert wait_until(lambda: totals(stream_db)[(counters.RECEIVED, "")] >= 4, timeout=WAIT)
    assert _energy_flags(stream_db, mac) == [(48213.7, []), (48214.9, []), (12.0, ["counter_reset"]), (12.6, [])]
    t = totals(stream_db)
    assert t[(counters.FLAGGED, "counter_reset")] == 1
    assert_identity(t)


def test_a_device_met_later_resumes_from_its_stored_readings(
    migrated_db: str, mqtt_url: str, topic_prefix: str
) -> None:
    """A device imported while the worker runs, whose readings another worker stored: seeded when first met."""
    prefix, mac = topic_prefix + "/", "A4:CF:12:F3:77:F0"
    with running_ingest(migrated_db, mqtt_url, topic_prefix=prefix, registry_refresh_s=0.2) as service:
        with psycopg.connect(migrated_db) as conn:
            import_provisioning(conn, Provisioning.model_validate(
                {"version": 1, "devices": [{"id": mac, "model": "amsreader-han", "name": "meter"}]}))  # fmt: skip
            ds = load_bindings(conn)[mac].datastreams["active_energy_import"]
        _store(migrated_db, [NormalisedObservation(ds, RECENT, RECENT, 500.0)])  # written by another worker
        streams.publish(mqtt_url, [_meter(prefix, mac, 60, 3.0)])
        assert wait_until(lambda: totals(migrated_db)[(counters.RECEIVED, "")] >= 1, timeout=WAIT)
        assert mac in service.processor.seeded
    assert _energy_flags(migrated_db, mac) == [(500.0, []), (3.0, ["counter_reset"])]
