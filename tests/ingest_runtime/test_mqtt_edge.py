"""The MQTT edge on the real Mosquitto: persistent session, manual ack, Receive Maximum, own notifications."""

from __future__ import annotations

import queue
import uuid

from ingest.mqtt import Delivery, MqttEdge
from ingest.mqtt_address import BrokerAddress
from tests.conftest import wait_until

from . import streams


def _edge(url: str, client_id: str, topic: str, inbox: queue.Queue[Delivery], **kw: object) -> MqttEdge:
    edge = MqttEdge(
        BrokerAddress.parse(url),
        client_id=client_id,
        filters=[topic],
        on_delivery=inbox.put,
        session_expiry_s=120,
        **kw,  # type: ignore[arg-type]
    )
    edge.start()
    assert edge.wait_subscribed(10)
    return edge


def _drain(inbox: queue.Queue[Delivery], n: int, timeout: float = 10.0) -> list[Delivery]:
    out = []
    for _ in range(n):
        out.append(inbox.get(timeout=timeout))
    return out


def test_unacknowledged_messages_come_back_after_restart(mqtt_url: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}/edge"
    client_id = f"edge-{uuid.uuid4().hex[:8]}"
    inbox: queue.Queue[Delivery] = queue.Queue()
    edge = _edge(mqtt_url, client_id, topic, inbox)
    messages = [streams.Message(topic, f"m{i}".encode(), "raw", i, 0) for i in range(6)]
    streams.publish(mqtt_url, messages)
    first = _drain(inbox, 6)
    assert [d.raw.payload for d in first] == [m.payload for m in messages]
    assert not any(d.redelivered for d in first)
    for d in first[:2]:  # "committed": acknowledge two
        edge.ack(d)
    edge.stop()

    # the same worker comes back: the broker resends the four it never acknowledged
    inbox2: queue.Queue[Delivery] = queue.Queue()
    edge2 = _edge(mqtt_url, client_id, topic, inbox2)
    try:
        again = _drain(inbox2, 4)
        assert [d.raw.payload for d in again] == [m.payload for m in messages[2:]]
        assert all(d.redelivered for d in again)
        assert [d.packet_id for d in again] == [d.packet_id for d in first[2:]]
        # an ack for the old connection's copy is not sent: the packet id belongs to the new connection
        edge2.ack(first[2])
        for d in again:
            edge2.ack(d)
        assert wait_until(lambda: edge2.stats["acks_dropped"] == 1, timeout=5)
        assert inbox2.empty()
    finally:
        edge2.stop()
    # all acknowledged: a third start receives nothing
    inbox3: queue.Queue[Delivery] = queue.Queue()
    edge3 = _edge(mqtt_url, client_id, topic, inbox3)
    try:
        try:
            extra = inbox3.get(timeout=1.5)
        except queue.Empty:
            extra = None
        assert extra is None
    finally:
        edge3.stop()


def test_receive_maximum_bounds_what_the_broker_sends(mqtt_url: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}/rm"
    inbox: queue.Queue[Delivery] = queue.Queue()
    edge = _edge(mqtt_url, f"edge-{uuid.uuid4().hex[:8]}", topic, inbox, receive_maximum=5)
    try:
        streams.publish(mqtt_url, [streams.Message(topic, b"x%d" % i, "raw", i, 0) for i in range(20)])
        held = _drain(inbox, 5)
        try:
            more = inbox.get(timeout=1.0)
        except queue.Empty:
            more = None
        assert more is None, "the broker sent more than Receive Maximum unacknowledged messages"
        for d in held:
            edge.ack(d)
        assert len(_drain(inbox, 5)) == 5  # acknowledging makes room for the next ones
    finally:
        edge.stop()


def test_no_local_keeps_a_lone_workers_notifications_away(mqtt_url: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}/v1.1/+/Observations"
    inbox: queue.Queue[Delivery] = queue.Queue()
    edge = _edge(mqtt_url, f"edge-{uuid.uuid4().hex[:8]}", topic, inbox, no_local={topic})
    try:
        assert edge.publish(f"{topic_prefix}/v1.1/Datastreams(7)/Observations", b'{"@iot.id": 3}')
        streams.publish(mqtt_url, [streams.Message(f"{topic_prefix}/v1.1/Datastreams(7)/Observations", b"c", "", 0, 0)])
        first = inbox.get(timeout=10)
        assert first.raw.payload == b"c"
        try:
            extra = inbox.get(timeout=1.0)
        except queue.Empty:
            extra = None
        assert extra is None
    finally:
        edge.stop()
