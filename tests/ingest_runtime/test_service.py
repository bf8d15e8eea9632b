"""End to end on the real Mosquitto and PostgreSQL: publish -> committed rows, fan-out, accounting."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import psycopg

from schemas.provisioning import Provisioning
from store import counters
from store.provisioning import import_provisioning

from . import streams
from .conftest import PROVISIONING, assert_identity, running_ingest, totals

PLACED = {**PROVISIONING, "devices": PROVISIONING["devices"][:1]}  # the airrohr, with its position

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
    """No Local does not apply to shared subscriptions: echoes arrive and are recognised by their @iot.id."""
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


def test_embedded_broker_mqtt_311(stream_db: str, embedded_broker_url: str, topic_prefix: str) -> None:
    """MQTT 3.1.1 (the embedded amqtt broker): no No Local, no user properties.

    The worker receives its own notifications back; they are SensorThings entities (they
    carry an ``@iot.id``), which a create request never does, so they are ignored.
    """
    from tests.conftest import wait_until

    prefix = topic_prefix + "/"
    messages = streams.mixed(prefix, 45)
    observations = sum(m.observations for m in messages)
    with running_ingest(stream_db, embedded_broker_url, topic_prefix=prefix):
        streams.publish(embedded_broker_url, messages, inflight=20)
        assert wait_until(lambda: totals(stream_db)[(counters.OWN_NOTIFICATION, "")] >= observations, timeout=WAIT), (
            totals(stream_db)
        )
    streams.check_exactly_once(stream_db, messages)
    t = totals(stream_db)
    assert t[(counters.RECEIVED, "")] == len(messages) and t[(counters.OWN_NOTIFICATION, "")] == observations
    assert_identity(t)


def test_share_group_needs_mqtt_5(stream_db: str, embedded_broker_url: str) -> None:
    import pytest

    from ingest.service import IngestOptions, IngestService

    with pytest.raises(ValueError, match="shared subscriptions need MQTT v5"):
        IngestService(stream_db, embedded_broker_url, IngestOptions(worker="w-1", share_group="g"))


def test_a_share_group_needs_a_client_id_of_its_own(stream_db: str, mqtt_url: str) -> None:
    """Workers sharing the default client id would take over each other's session and delivery log."""
    import pytest

    from ingest import DEFAULT_CLIENT_ID
    from ingest.service import IngestOptions, IngestService

    with pytest.raises(ValueError, match="BYDATA_INGEST_CLIENT_ID") as info:
        IngestService(stream_db, mqtt_url, IngestOptions(share_group="city"))
    assert DEFAULT_CLIENT_ID in str(info.value) and "'city'" in str(info.value)
    # named, it starts; and the default id stays fine for a lone worker
    IngestService(stream_db, mqtt_url, IngestOptions(worker="ingest-2", share_group="city"))
    IngestService(stream_db, mqtt_url, IngestOptions())


def test_metrics_endpoint_agrees_with_the_database(stream_db: str, mqtt_url: str, topic_prefix: str) -> None:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    from tests.conftest import free_port, wait_until

    prefix = topic_prefix + "/"
    messages = [*streams.mixed(prefix, 30), streams.Message(f"{prefix}nilu/x", b"{", "nilu", -1, 0)]
    port = free_port()
    with running_ingest(stream_db, mqtt_url, topic_prefix=prefix) as service:
        server = service.metrics.serve("127.0.0.1", port)
        try:
            streams.publish(mqtt_url, messages)
            _wait_received(stream_db, len(messages), wait_until)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
                text = response.read().decode()
        finally:
            server.shutdown()
    scraped: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                label = next(iter(sample.labels.values()), "")
                scraped[(sample.name.removeprefix("bydata_ingest_").removesuffix("_total"), label)] = sample.value
    db = totals(stream_db)
    for key in [
        (counters.RECEIVED, ""),
        (counters.DECODED, ""),
        (counters.STORED, ""),
        (counters.DUPLICATE, ""),
        (counters.OBSERVATIONS_STORED, ""),
        (counters.QUARANTINED, "malformed"),
        (counters.FLAGGED, "time_assumed"),
    ]:
        assert scraped[key] == db[key], key
    assert db[(counters.QUARANTINED, "malformed")] == 1
    assert scraped[("fanout", "published")] == db[(counters.OBSERVATIONS_STORED, "")]


def test_unmapped_fields_are_counted_bounded_and_shown_in_stats(
    stream_db: str, mqtt_url: str, topic_prefix: str, monkeypatch: Any
) -> None:
    """Fields a device sends that its model neither maps nor ignores: counted per model and field, bounded."""
    import json

    from typer.testing import CliRunner

    from bydata.cli import app
    from bydata.settings import get_settings
    from tests.conftest import wait_until

    prefix = topic_prefix + "/"
    mac = streams.AMS[0]
    messages = [
        streams.Message(
            f"{prefix}amsreader/{mac}",
            orjson.dumps({"id": mac, "t": 1741075200 + i, "data": {"P": i, f"vendor_{i}": 1, "x\u0000y": 2}}),
            "amsreader",
            i,
            1,
        )
        for i in range(12)
    ]
    with running_ingest(stream_db, mqtt_url, topic_prefix=prefix) as service:
        service.processor.unmapped.limit = 4
        streams.publish(mqtt_url, messages)
        _wait_received(stream_db, len(messages), wait_until)
        metrics = {
            (s.labels["model"], s.labels["field"]): s.value
            for family in service.metrics.registry.collect()
            if family.name == "bydata_ingest_unmapped_fields"
            for s in family.samples
            if s.name.endswith("_total")
        }
    t = totals(stream_db)
    unmapped = {label: n for (name, label), n in t.items() if name == counters.UNMAPPED_FIELD}
    assert unmapped["amsreader-han/x\\x00y"] == len(messages)
    assert len(unmapped) <= 4 + 1  # four fields of their own, the rest as (other)
    assert sum(unmapped.values()) == 2 * len(messages)
    assert metrics == {tuple(label.split("/", 1)): float(n) for label, n in unmapped.items()}
    assert t[(counters.STORED, "")] == len(messages)
    assert_identity(t)

    monkeypatch.setenv("BYDATA_DATABASE_URL", stream_db)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["ingest", "stats", "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counters"]["unmapped_field"] == unmapped


def test_crash_between_commit_and_ack_with_senml_relative_times(
    stream_db: str, mqtt_url: str, topic_prefix: str, monkeypatch: Any
) -> None:
    """SenML times below 2**28 are relative to receipt; redelivered packs keep their first receive time."""
    from ingest.mqtt import MqttEdge
    from schemas.provisioning import Provisioning
    from store.provisioning import import_provisioning
    from tests.conftest import wait_until

    gateways = [f"urn:dev:mac:0024befffe80{n:04x}" for n in range(3)]
    with psycopg.connect(stream_db) as conn:
        import_provisioning(conn, Provisioning.model_validate({"version": 1, "devices": [
            {"id": g, "model": "senml-heat-gateway", "name": f"gateway {g}"} for g in gateways]}))  # fmt: skip
    prefix = topic_prefix + "/"
    worker = f"crash-senml-{topic_prefix}"

    def pack(i: int) -> bytes:
        first = {"bn": f"{gateways[i % 3]}:", "n": "supply_temp", "u": "Cel", "v": 60 + i / 10, "t": -60}
        return orjson.dumps([first, {"n": "co2", "u": "ppm", "v": 900 + i, "t": -30}])

    packs = [streams.Message(f"{prefix}senml/{gateways[i % 3]}", pack(i), "senml", i, 2) for i in range(30)]
    with monkeypatch.context() as patch:
        patch.setattr(MqttEdge, "ack", lambda self, delivery: True)  # committed, then "crashed" before PUBACK
        with running_ingest(stream_db, mqtt_url, topic_prefix=prefix, worker=worker):
            streams.publish(mqtt_url, packs)
            _wait_received(stream_db, len(packs), wait_until)
    with running_ingest(stream_db, mqtt_url, topic_prefix=prefix, worker=worker):
        _wait_received(stream_db, 2 * len(packs), wait_until)
    t = totals(stream_db)
    assert t[(counters.STORED, "")] == t[(counters.DUPLICATE, "")] == len(packs)
    assert t[(counters.OBSERVATIONS_STORED, "")] == 2 * len(packs)
    with psycopg.connect(stream_db) as conn:
        assert conn.execute("SELECT count(*) FROM observations").fetchone() == (2 * len(packs),)
    assert_identity(t)


def test_a_revised_reading_is_stored_and_a_repeated_one_is_not(
    stream_db: str, mqtt_url: str, topic_prefix: str
) -> None:
    """The same reading twice is one Observation; a different value at that time is one more, never dropped."""
    from tests.conftest import wait_until

    prefix = topic_prefix + "/"
    mac = streams.AMS[1]
    at = int(streams.T0.timestamp())

    def meter(power: int, energy: float) -> streams.Message:
        body = {"id": mac, "t": at, "data": {"P": power, "tPI": energy}}
        return streams.Message(f"{prefix}amsreader/{mac}", orjson.dumps(body), "amsreader", 0, 2)

    messages = [meter(1500, 1000.0), meter(1500, 1000.0), meter(1520, 1000.0)]  # once, again, P revised
    with running_ingest(stream_db, mqtt_url, topic_prefix=prefix):
        streams.publish(mqtt_url, messages[:2])
        _wait_received(stream_db, 2, wait_until)
        streams.publish(mqtt_url, messages[2:])
        _wait_received(stream_db, 3, wait_until)
    with psycopg.connect(stream_db) as conn:
        rows = conn.execute(
            "SELECT d.property_key, o.result_number FROM observations o JOIN datastreams d ON d.id = o.datastream_id"
            " ORDER BY o.id"
        ).fetchall()
    assert rows == [("active_power", 1500.0), ("active_energy_import", 1000.0), ("active_power", 1520.0)]
    t = totals(stream_db)
    assert (t[(counters.STORED, "")], t[(counters.DUPLICATE, "")]) == (2, 1)
    assert (t[(counters.OBSERVATIONS_STORED, "")], t[(counters.OBSERVATIONS_DUPLICATE, "")]) == (3, 3)
    assert_identity(t)


def test_entity_creates_redelivered_after_a_crash_are_created_once(
    stream_db: str, mqtt_url: str, topic_prefix: str, monkeypatch: Any
) -> None:
    """SensorThings creates that are more than readings (here: with validTime) go to the entity writer,
    which makes a new Observation each time it runs: only the delivery log keeps a redelivery (DUP set)
    of one that was committed from being created again."""
    from api.mqtt.creates import MqttCreates
    from ingest.mqtt import MqttEdge
    from tests.conftest import wait_until

    prefix = topic_prefix + "/"
    worker = f"crash-{topic_prefix}"
    with psycopg.connect(stream_db) as conn:  # a device placed on the map, so a FeatureOfInterest can be made
        import_provisioning(conn, Provisioning.model_validate(PLACED))
        row = conn.execute(
            "SELECT d.id FROM datastreams d JOIN devices v ON v.thing_id = d.thing_id"
            " WHERE v.id = '13597771' AND d.property_key = 'pm10'"
        ).fetchone()
    assert row is not None
    ds = row[0]
    creates = [
        streams.Message(
            f"{prefix}v1.1/Datastreams({ds})/Observations",
            orjson.dumps(
                {"phenomenonTime": f"2025-03-04T08:{i:02}:00Z", "result": 10 + i,
                 "validTime": "2025-03-04T08:00:00Z/2025-03-04T09:00:00Z"}
            ),
            "sta",
            i,
            1,
        )
        for i in range(20)
    ]  # fmt: skip
    with monkeypatch.context() as patch:
        patch.setattr(MqttEdge, "ack", lambda self, delivery: True)  # committed, then "crashed" before PUBACK
        with running_ingest(stream_db, mqtt_url, topic_prefix=prefix, worker=worker, creates=MqttCreates()):
            streams.publish(mqtt_url, creates)
            _wait_received(stream_db, len(creates), wait_until)
    with running_ingest(stream_db, mqtt_url, topic_prefix=prefix, worker=worker, creates=MqttCreates()):
        _wait_received(stream_db, 2 * len(creates), wait_until)
    with psycopg.connect(stream_db) as conn:
        stored = conn.execute(
            "SELECT result_number, valid_time_start, quality_flags FROM observations WHERE datastream_id = %s"
            " ORDER BY phenomenon_time",
            (ds,),
        ).fetchall()
    assert [r[0] for r in stored] == [10.0 + i for i in range(20)]
    assert all(r[1] is not None for r in stored)  # validTime kept: the entity writer stored them
    assert all(r[2] for r in stored)  # normalised as a vocabulary Datastream (stale_time, low-cost sensor …)
    t = totals(stream_db)
    assert t[(counters.RECEIVED, "")] == 2 * len(creates)
    assert t[(counters.STORED, "")] == t[(counters.DUPLICATE, "")] == len(creates)
    assert t[(counters.OBSERVATIONS_STORED, "")] == len(creates)
    assert_identity(t)
