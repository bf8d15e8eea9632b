"""End to end on the real Mosquitto and PostgreSQL: publish -> committed rows, fan-out, accounting."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import psycopg

from store import counters

from . import streams
from .conftest import assert_identity, running_ingest, totals

WAIT = 60.0


def _wait_received(db_url: str, n: int, wait_until: Any) -> counters.Tally:
    assert wait_until(lambda: totals(db_url)[(counters.RECEIVED, "")] >= n, timeout=WAIT), totals(db_url)
    return totals(db_url)


def test_stream_is_stored_exactly_once_and_fanned_out(stream_db: str, mqtt_url: str, topic_prefix: str) -> None:
    from tests.conftest import wait_until

    prefix = topic_prefix + "/"
    messages = streams.mixed(prefix, 300)
    got: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    listener = streams.client(mqtt_url)

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        with lock:
            got.append((msg.topic, msg.payload))

    listener.on_message = on_message
    listener.subscribe(prefix + "v1.1/#", qos=0)
    try:
        with running_ingest(stream_db, mqtt_url, topic_prefix=prefix):
            streams.publish(mqtt_url, messages)
            t = _wait_received(stream_db, len(messages), wait_until)
            expected = sum(m.observations for m in messages)
            assert wait_until(lambda: len(got) >= expected, timeout=WAIT)
    finally:
        listener.disconnect()
        listener.loop_stop()

    streams.check_exactly_once(stream_db, messages)
    assert t[(counters.RECEIVED, "")] == t[(counters.STORED, "")] == len(messages)
    assert t[(counters.OBSERVATIONS_STORED, "")] == sum(m.observations for m in messages)
    # a lone worker subscribes to the create topics with No Local: its notifications never come back
    assert t[(counters.OWN_NOTIFICATION, "")] == 0
    assert_identity(t)

    # each notification is the stored row, as a SensorThings Observation, on its Datastream's topic
    with psycopg.connect(stream_db) as conn:
        rows = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT id, datastream_id, coalesce(to_jsonb(result_number), to_jsonb(result_boolean))"
                " FROM observations"
            )
        }
    assert len(got) == len(rows)
    for topic, payload in got:
        body = orjson.loads(payload)
        datastream_id, result = rows[body["@iot.id"]]
        assert topic == f"{prefix}v1.1/Datastreams({datastream_id})/Observations"
        assert body["result"] == result
        assert body["@iot.selfLink"].endswith(f"/v1.1/Observations({body['@iot.id']})")
        assert body["phenomenonTime"].endswith("Z")


def test_notifications_of_a_share_group_are_dropped_not_stored(
    stream_db: str, mqtt_url: str, topic_prefix: str
) -> None:
    """No Local does not apply to shared subscriptions: the user property keeps echoes out."""
    from tests.conftest import wait_until

    prefix = topic_prefix + "/"
    messages = streams.mixed(prefix, 60)
    observations = sum(m.observations for m in messages)
    with running_ingest(stream_db, mqtt_url, topic_prefix=prefix, share_group=topic_prefix):
        streams.publish(mqtt_url, messages)
        assert wait_until(lambda: totals(stream_db)[(counters.OWN_NOTIFICATION, "")] >= observations, timeout=WAIT)
    t = totals(stream_db)
    assert t[(counters.OWN_NOTIFICATION, "")] == observations
    assert t[(counters.RECEIVED, "")] == len(messages)
    streams.check_exactly_once(stream_db, messages)
    assert_identity(t)


def test_sensorthings_create_over_mqtt(stream_db: str, mqtt_url: str, topic_prefix: str) -> None:
    """A client publishes an Observation on the create topic; it is stored once, its notification ignored."""
    from tests.conftest import wait_until

    prefix = topic_prefix + "/"
    with psycopg.connect(stream_db) as conn:
        row = conn.execute("SELECT id FROM datastreams WHERE property_key = 'pm10' ORDER BY id LIMIT 1").fetchone()
    assert row is not None
    ds = row[0]
    body = {"phenomenonTime": "2025-03-04T08:00:00Z", "result": 17.5}
    creates = [
        streams.Message(f"{prefix}v1.1/Datastreams({ds})/Observations", orjson.dumps(body), "sta", 0, 1),
        streams.Message(
            f"{prefix}v1.1/Observations",
            orjson.dumps({**body, "phenomenonTime": "2025-03-04T08:01:00Z", "Datastream": {"@iot.id": ds}}),
            "sta",
            1,
            1,
        ),
    ]
    with running_ingest(stream_db, mqtt_url, topic_prefix=prefix, share_group=topic_prefix):
        streams.publish(mqtt_url, creates)
        # both creates stored, and both notifications came back to the group and were ignored
        assert wait_until(lambda: totals(stream_db)[(counters.OWN_NOTIFICATION, "")] >= 2, timeout=WAIT)
    with psycopg.connect(stream_db) as conn:
        stored = conn.execute(
            "SELECT phenomenon_time, result_number FROM observations WHERE datastream_id = %s ORDER BY 1", (ds,)
        ).fetchall()
    assert [r[1] for r in stored] == [17.5, 17.5]
    t = totals(stream_db)
    assert t[(counters.RECEIVED, "")] == 2 and t[(counters.STORED, "")] == 2
    assert_identity(t)


def test_crash_between_commit_and_ack_stores_nothing_twice(
    stream_db: str, mqtt_url: str, topic_prefix: str, monkeypatch: Any
) -> None:
    """Every batch commits but no PUBACK reaches the broker: all of it comes back, DUP set, and is absorbed.

    airrohr messages carry no time, so only the delivery log keeps their redelivered copies
    from being stored again under a new receive time.
    """
    from ingest.mqtt import MqttEdge
    from tests.conftest import wait_until

    prefix = topic_prefix + "/"
    worker = f"crash-{topic_prefix}"
    messages = streams.mixed(prefix, 150)
    with monkeypatch.context() as patch:
        patch.setattr(MqttEdge, "ack", lambda self, delivery: True)  # committed, then "crashed" before PUBACK
        with running_ingest(stream_db, mqtt_url, topic_prefix=prefix, worker=worker):
            streams.publish(mqtt_url, messages)
            _wait_received(stream_db, len(messages), wait_until)
    first = totals(stream_db)
    assert first[(counters.STORED, "")] == len(messages)
    streams.check_exactly_once(stream_db, messages)

    with running_ingest(stream_db, mqtt_url, topic_prefix=prefix, worker=worker):
        _wait_received(stream_db, 2 * len(messages), wait_until)
    streams.check_exactly_once(stream_db, messages)
    t = totals(stream_db)
    assert t[(counters.RECEIVED, "")] == 2 * len(messages)
    assert t[(counters.DUPLICATE, "")] == len(messages)
    assert t[(counters.OBSERVATIONS_STORED, "")] == sum(m.observations for m in messages)
    assert_identity(t)
