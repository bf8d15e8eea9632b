"""The paho internals ``ingest.mqtt`` relies on (pinned to paho-mqtt 2.2 in pyproject.toml).

The client's short paths override and call private parts of paho: ``_packet_read``,
``_handle_publish``, ``_in_packet``, ``_out_packet``, ``_last_bytes_received`` and
``loop_write``, and rely on ``reconnect`` discarding packets not yet written. These tests
drive a real client over a socketpair, so a paho release that changes any of it fails
here rather than quietly falling back to the slow path or, worse, sending an
acknowledgement on the wrong connection.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, _ConnectionState
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.mqtt import _BufferedSocket, _Client
from ingest.mqtt_packets import puback, publish, publish_prefix
from tests.conftest import free_port
from tests.ingest.test_mqtt_packets import paho_publish

Pair = tuple[_Client, socket.socket, list[tuple[Any, ...]], list[paho.MQTTMessage]]


@pytest.fixture(params=[paho.MQTTv5, paho.MQTTv311], ids=["v5", "v311"])
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    """A connected-looking client on one end of a socketpair; the test is the broker on the other."""
    ours, broker = socket.socketpair()
    client = _Client(CallbackAPIVersion.VERSION2, protocol=request.param, manual_ack=True)
    short: list[tuple[Any, ...]] = []
    slow: list[paho.MQTTMessage] = []
    client.deliver = lambda *fields: short.append(fields)
    client.on_message = lambda c, u, message: slow.append(message)
    ours.setblocking(False)
    client._sock = _BufferedSocket(ours)
    client._state = _ConnectionState.MQTT_CS_CONNECTED
    try:
        yield client, broker, short, slow
    finally:
        client._sock = None
        ours.close()
        broker.close()


def _read(client: _Client, until: Any) -> None:
    for _ in range(200):
        client.loop_read()
        if until():
            return
        time.sleep(0.005)
    raise AssertionError("nothing arrived")


def test_plain_publishes_take_the_short_path_with_their_fields(pair: Pair) -> None:
    client, broker, short, slow = pair
    v = client._protocol
    broker.sendall(
        paho_publish(v, "a/1", b"one", 1, mid=11)
        + paho_publish(v, "a/2", b"two", 1, mid=12, dup=True)
        + paho_publish(v, "a/3", b"three", 0)
    )
    _read(client, lambda: len(short) == 1)  # this read filled the buffer; paho read the first packet
    assert isinstance(client._sock, _BufferedSocket) and client._sock.pending() > 0

    def not_here() -> Any:
        raise AssertionError("a whole buffered packet went through paho's packet reading")

    client._handle_publish = not_here  # type: ignore[method-assign]
    client._last_bytes_received = 0.0
    _read(client, lambda: len(short) == 3)
    assert short == [("a/1", b"one", 11, 1, False), ("a/2", b"two", 12, 1, True), ("a/3", b"three", 0, 0, False)]
    assert slow == []
    assert client._last_bytes_received > 0  # paho's keepalive clock saw the bytes


def test_a_packet_split_across_reads_still_takes_the_short_path(pair: Pair) -> None:
    """The first read buffers part of it; paho reads the rest and hands it to ``_handle_publish``."""
    client, broker, short, slow = pair
    packet = paho_publish(client._protocol, "a/split", b"x" * 3000, 1, mid=5)
    broker.sendall(packet[:1000])
    for _ in range(5):
        client.loop_read()
    assert short == []
    broker.sendall(packet[1000:])
    _read(client, lambda: len(short) == 1)
    assert short == [("a/split", b"x" * 3000, 5, 1, False)] and slow == []


def test_unusual_publishes_go_through_paho_to_on_message(pair: Pair) -> None:
    client, broker, short, slow = pair
    if client._protocol == paho.MQTTv5:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ContentType = "application/json"
        unusual = paho_publish(paho.MQTTv5, "a/props", b"p", 1, mid=7, properties=props)
    else:
        unusual = b"\x32\x07\x00\x02\xff\xfe\x00\x07p"  # topic not UTF-8
    broker.sendall(unusual + paho_publish(client._protocol, "a/plain", b"q", 1, mid=8))
    _read(client, lambda: len(slow) == 1 and len(short) == 1)
    assert slow[0].mid == 7 and slow[0].payload == b"p" and slow[0].qos == 1
    assert short == [("a/plain", b"q", 8, 1, False)]


def test_queued_bytes_are_written_by_paho_in_order(pair: Pair) -> None:
    client, broker, _, _ = pair
    notification = publish(publish_prefix("v1.1/Datastreams(3)/Observations", client._protocol == paho.MQTTv5), b"{}")
    client._send_pingreq()  # paho's own packet first: the queue stays one ordered stream
    assert client.queue_bytes(puback(1) + notification + puback(2)) == paho.MQTT_ERR_SUCCESS
    assert not client._out_packet  # written at once, as paho writes its own packets
    broker.settimeout(5)
    wanted = b"\xc0\x00" + puback(1) + notification + puback(2)
    received = b""
    while len(received) < len(wanted):
        received += broker.recv(65536)
    assert received == wanted


def test_reconnect_discards_what_was_not_written(pair: Pair) -> None:
    """Acknowledgements queued for a lost connection never reach the next one."""
    client, _, _, _ = pair
    client._sock = None  # the connection is gone: nothing can be written
    client.queue_bytes(puback(1))
    assert len(client._out_packet) == 1
    client.connect_async("127.0.0.1", free_port())
    with pytest.raises(ConnectionRefusedError):
        client.reconnect()
    assert not client._out_packet
