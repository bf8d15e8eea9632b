"""Poison messages on the real Mosquitto and PostgreSQL: quarantined, never a crash loop.

A message whose data the database refuses (a NUL in a device id or in an error text quoting
the payload, a value jsonb cannot hold, a topic too long for an index) used to kill the write
thread before its message was acknowledged, so the broker redelivered it to the restarted
worker, which died again. Now such messages are quarantined, the rest of their batch is
stored, and the worker stays up; a database that turns read-only (a failover) is waited out.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import psycopg
from psycopg.conninfo import conninfo_to_dict

from store import counters
from tests.conftest import wait_until

from . import streams
from .conftest import assert_identity, running_ingest, totals

WAIT = 60.0


def _poison(prefix: str, pm10_datastream: int) -> list[streams.Message]:
    """Real wire formats, each with one thing PostgreSQL text or jsonb cannot hold, or an index cannot take."""
    airrohr = orjson.loads(streams.airrohr("", 0).payload)
    ams = orjson.loads(streams.amsreader("", 0).payload)
    nilu = {"station": "Olav V\u0000 gate", "component": "PM10", "fromTime": "2025-03-04T08:00:00+01:00",
            "toTime": "2025-03-04T09:00:00+01:00", "value": 10.5, "unit": "µg/m³"}  # fmt: skip
    senml = [{"bn": "urn:dev:mac:0024\u0000befffe804ff1:", "bt": 1741075200, "n": "supply_temp", "u": "Cel", "v": 61}]
    bodies: list[tuple[str, Any]] = [
        (f"sensor-community/{streams.AIRROHR[0]}", {**airrohr, "esp8266id": "1\u00002"}),
        (f"amsreader/{streams.AMS[0]}", {**ams, "id": "A4:CF:12:F3:77:00\u0000"}),
        ("nilu/bodo", nilu),
        ("senml/gw-1", senml),
        # the error text quotes the sender's field name, NUL and all
        (f"sensor-community/{streams.AIRROHR[1]}",
         {**airrohr, "esp8266id": streams.AIRROHR[1], "sensordatavalues": [{"value_type": "SDS\u0000P1"}]}),
        # decoded and normalised fine; PostgreSQL's jsonb refuses \u0000 when the row is written
        (f"v1.1/Datastreams({pm10_datastream})/Observations",
         {"phenomenonTime": "2025-03-04T07:00:00Z", "result": 3.5, "parameters": {"note": "a\u0000b"}}),
        # a topic longer than a B-tree entry can hold (MQTT allows 65,535 bytes)
        ("senml/" + "g" * 3000, [{"n": "supply_temp", "u": "Cel", "v": 61}]),
    ]  # fmt: skip
    return [streams.Message(prefix + t, orjson.dumps(b), "poison", -1, 0) for t, b in bodies]


def _pm10_datastream(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT id FROM datastreams WHERE property_key = 'pm10' ORDER BY id LIMIT 1").fetchone()
    assert row is not None
    return int(row[0])


def test_poison_messages_are_quarantined_and_the_worker_stays_up(
    stream_db: str, mqtt_url: str, topic_prefix: str
) -> None:
    prefix = topic_prefix + "/"
    worker = f"poison-{topic_prefix}"
    poison = _poison(prefix, _pm10_datastream(stream_db))
    good = streams.mixed(prefix, 90)
    # poison first, then good messages, so they share batches
    messages = [*poison, *good[:30], *poison[:2], *good[30:]]
    with running_ingest(stream_db, mqtt_url, topic_prefix=prefix, worker=worker) as service:
        streams.publish(mqtt_url, messages)
        received = wait_until(lambda: totals(stream_db)[(counters.RECEIVED, "")] >= len(messages), timeout=WAIT)
        assert received, totals(stream_db)
        assert service._failure is None
    streams.check_exactly_once(stream_db, good)
    with psycopg.connect(stream_db) as conn:
        rows = conn.execute("SELECT topic, payload, reason, error, device_id FROM quarantine ORDER BY id").fetchall()
    assert len(rows) == len(poison) + 2
    by_topic = {(r[0], bytes(r[1])): r for r in rows}
    for m in poison:
        assert (m.topic, m.payload) in by_topic, m.topic[:80]  # kept whole: topic and payload bytes
    reasons = sorted(r[2] for r in rows)
    assert reasons.count("store_rejected") == 1  # the jsonb refusal; the rest is caught at decoding
    assert reasons.count("malformed") == len(rows) - 1
    assert all("\x00" not in (r[3] or "") and "\x00" not in (r[4] or "") for r in rows)
    t = totals(stream_db)
    assert t[(counters.STORED, "")] == len(good)
    assert sum(v for (name, _), v in t.items() if name == counters.QUARANTINED) == len(poison) + 2
    assert_identity(t)

    # everything was acknowledged: a restarted worker gets nothing back, and nothing changes
    with running_ingest(stream_db, mqtt_url, topic_prefix=prefix, worker=worker):
        time.sleep(2.0)
    assert totals(stream_db) == t


def test_a_database_that_turns_read_only_is_waited_out(
    stream_db: str, pg_server_url: str, mqtt_url: str, topic_prefix: str
) -> None:
    """A failover's read-only primary and an administrator's shutdown are outages: back off and retry."""
    prefix = topic_prefix + "/"
    name = conninfo_to_dict(stream_db)["dbname"]
    first, second = streams.mixed(prefix, 30), streams.mixed(prefix, 30, start=30)

    def stored() -> int:
        return totals(stream_db)[(counters.RECEIVED, "")]

    with (
        psycopg.connect(pg_server_url, autocommit=True) as admin,
        running_ingest(stream_db, mqtt_url, topic_prefix=prefix, retry_max_s=0.5) as service,
    ):
        streams.publish(mqtt_url, first)
        assert wait_until(lambda: stored() >= len(first), timeout=WAIT)
        admin.execute(psycopg.sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
            psycopg.sql.Identifier(name)))  # fmt: skip
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        try:
            streams.publish(mqtt_url, second)
            assert wait_until(lambda: service.metrics.db_retries._value.get() >= 3, timeout=WAIT)
            assert stored() == len(first)  # nothing written, nothing acknowledged, nobody died
            assert service._failure is None
        finally:
            admin.execute(psycopg.sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only").format(
                psycopg.sql.Identifier(name)))  # fmt: skip
        assert wait_until(lambda: stored() >= len(first) + len(second), timeout=WAIT)
        assert service._failure is None
    streams.check_exactly_once(stream_db, [*first, *second])
    t = totals(stream_db)
    assert t[(counters.STORED, "")] == len(first) + len(second)
    assert_identity(t)
