"""ingest.mqtt_packets against paho's own encoder and decoder, byte for byte."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt import _packet
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.mqtt_packets import parse_publish, puback, publish, publish_prefix, read_publish, remaining_length

V5, V311 = paho.MQTTv5, paho.MQTTv311


def paho_bytes(protocol: MQTTProtocolVersion, send: Callable[[paho.Client], Any]) -> bytes:
    """What paho puts on the wire for ``send(client)`` (queued, not written)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
    placeholder = socket.socket()
    try:
        client._sock = placeholder  # _send_* refuse without a socket
        client.loop_write = lambda: MQTTErrorCode.MQTT_ERR_SUCCESS  # type: ignore[method-assign]
        send(client)
        return b"".join(bytes(p["packet"]) for p in client._out_packet)
    finally:
        client._sock = None
        placeholder.close()


def paho_publish(protocol: MQTTProtocolVersion, topic: str, payload: bytes, qos: int = 0, **kw: Any) -> bytes:
    mid = kw.pop("mid", 1 if qos else 0)
    return paho_bytes(protocol, lambda c: c._send_publish(mid, topic.encode(), payload, qos=qos, **kw))


def split(packet: bytes) -> tuple[int, bytes]:
    """(first header byte, body) of one encoded packet."""
    i = 1
    while packet[i] & 0x80:
        i += 1
    return packet[0], packet[i + 1 :]


@pytest.mark.parametrize("protocol", [V5, V311])
@pytest.mark.parametrize("mid", [1, 2, 255, 256, 4660, 65535])
def test_puback_is_pahos(protocol: MQTTProtocolVersion, mid: int) -> None:
    assert puback(mid) == paho_bytes(protocol, lambda c: c._send_puback(mid))


TOPICS = ["v1.1/Datastreams(7)/Observations", "bench-1a2b/v1.1/Datastreams(123456)/Observations", "a", "æøå/Ø"]
PAYLOADS = [b"", b"{}", b"x" * 90, b"x" * 200, b"y" * 16_300, b"z" * 20_000, b"w" * 2_100_000]


@pytest.mark.parametrize("protocol", [V5, V311])
@pytest.mark.parametrize("topic", TOPICS)
@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: f"{len(p)}B")
def test_qos0_publish_is_pahos(protocol: MQTTProtocolVersion, topic: str, payload: bytes) -> None:
    ours = publish(publish_prefix(topic, protocol == V5), payload)
    assert ours == paho_publish(protocol, topic, payload)
    header, body = split(ours)
    decoded = _packet.decode_publish(header, body, protocol)
    assert (decoded.topic.decode(), bytes(decoded.payload), decoded.qos) == (topic, payload, 0)


@pytest.mark.parametrize(
    ("n", "encoded"),
    [(0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16_383, b"\xff\x7f"), (16_384, b"\x80\x80\x01"),
     (2_097_151, b"\xff\xff\x7f"), (2_097_152, b"\x80\x80\x80\x01"), (268_435_455, b"\xff\xff\xff\x7f")],
)  # fmt: skip
def test_remaining_length(n: int, encoded: bytes) -> None:
    assert remaining_length(n) == encoded


def test_what_cannot_be_encoded() -> None:
    with pytest.raises(ValueError):
        remaining_length(268_435_456)
    with pytest.raises(ValueError):
        publish_prefix("", True)
    with pytest.raises(ValueError):
        publish_prefix("x" * 65536, True)


@pytest.mark.parametrize("protocol", [V5, V311])
@pytest.mark.parametrize(
    ("topic", "payload", "qos", "mid", "dup"),
    [
        ("air/sensor.community/esp8266-1", b'{"sensordatavalues": []}', 1, 1, False),
        ("energy/amsreader/AMS-0001/json", b"x" * 484, 1, 65535, True),
        ("parking/nwave/zone-1", b"", 1, 300, False),
        ("a", b"\x00\x01\x02", 0, 0, False),
        ("æøå/Ø", b"y" * 20_000, 1, 7, False),
    ],
)
def test_plain_publish_is_read_as_paho_reads_it(
    protocol: MQTTProtocolVersion, topic: str, payload: bytes, qos: int, mid: int, dup: bool
) -> None:
    packet = paho_publish(protocol, topic, payload, qos, mid=mid, dup=dup)
    header, body = split(packet)
    theirs = _packet.decode_publish(header, body, protocol)
    expected = (theirs.topic.decode(), bytes(theirs.payload), theirs.mid, theirs.qos, theirs.dup)
    assert expected == (topic, payload, mid, qos, dup)
    assert parse_publish(header, body, 0, len(body), protocol == V5) == expected
    assert parse_publish(header, bytearray(b"..." + body), 3, 3 + len(body), protocol == V5) == expected
    # whole packets, back to back, read from one buffer
    stream = b"\x40\x02\x00\x01" + packet + packet
    assert read_publish(stream, 0, protocol == V5) is None  # a PUBACK is not for the short path
    first = read_publish(stream, 4, protocol == V5)
    assert first is not None and first[0] == expected
    second = read_publish(stream, first[1], protocol == V5)
    assert second == (expected, len(stream))


@pytest.mark.parametrize("protocol", [V5, V311])
def test_partial_packets_are_left_for_later(protocol: MQTTProtocolVersion) -> None:
    packet = paho_publish(protocol, "energy/amsreader/AMS-0001/json", b"x" * 300, 1, mid=9)
    for cut in range(len(packet)):
        assert read_publish(packet[:cut], 0, protocol == V5) is None
    assert read_publish(packet, 0, protocol == V5) is not None


def _with_properties() -> bytes:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.MessageExpiryInterval = 60
    return paho_publish(V5, "a/b", b"p", 1, properties=props)


def _topic_alias_only() -> bytes:
    # QoS 1, topic length 0, packet id 1, properties: Topic Alias (0x23) = 1, payload "p"
    return b"\x32\x09\x00\x00\x00\x01\x03\x23\x00\x01p"


@pytest.mark.parametrize(
    ("packet", "v5"),
    [
        pytest.param(paho_publish(V5, "a/b", b"p", 2, mid=3), True, id="qos2"),
        pytest.param(paho_publish(V311, "a/b", b"p", 2, mid=3), False, id="qos2-v311"),
        pytest.param(_with_properties(), True, id="v5-properties"),
        pytest.param(_topic_alias_only(), True, id="topic-alias"),
        pytest.param(b"\x32\x07\x00\x02\xff\xfe\x00\x01\x00", True, id="topic-not-utf8"),
        pytest.param(b"\x32\x06\x00\x01a\x00\x00\x00", True, id="packet-id-0"),
        pytest.param(b"\x32\x04\x00\x01a\x00", True, id="packet-id-truncated"),
        pytest.param(b"\x32\x05\x00\x01a\x00\x01", True, id="property-length-missing"),
        pytest.param(b"\x30\x03\x00\x05a", False, id="topic-longer-than-packet"),
        pytest.param(b"\x36\x05\x00\x01a\x00\x01", False, id="qos3"),
    ],
)
def test_unusual_publishes_are_left_to_paho(packet: bytes, v5: bool) -> None:
    header, body = split(packet)
    assert parse_publish(header, body, 0, len(body), v5) is None
    assert read_publish(packet, 0, v5) is None
