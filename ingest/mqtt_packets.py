"""The few MQTT packets ingest reads and writes on its hot path, as pure byte functions.

paho builds and parses every packet in Python with general machinery: per received
PUBLISH an MQTT v5 ``Properties`` object, an ``MQTTMessage`` and a debug-log call (about
15 µs of the ~30 µs it spends on one); per PUBACK or QoS-0 PUBLISH sent, a queued packet
dict and two system calls (10-20 µs). Ingest needs only the plain cases, so ``ingest.mqtt``
uses these functions for them and leaves everything else to paho:

- :func:`read_publish` and :func:`parse_publish` read a QoS 0/1 PUBLISH without
  properties (what brokers send a client that set no Topic Alias Maximum and no
  subscription identifiers, unless the publisher added properties) and return None for
  anything else;
- :func:`puback` is the PUBACK of a received QoS-1 message (success, the short form both
  protocol versions share);
- :func:`publish_prefix` and :func:`publish` build a QoS-0 PUBLISH from a topic part that
  is computed once per topic.

No I/O here; ``tests/ingest/test_mqtt_packets.py`` checks the bytes against paho's own
encoder and decoder.
"""

from __future__ import annotations

PUBLISH = 0x30
PUBACK = 0x40
_MAX_REMAINING = 268_435_455  # the largest Remaining Length MQTT can express (4 bytes)

Publish = tuple[str, bytes, int, int, bool]
"""(topic, payload, packet id (0 for QoS 0), QoS, DUP flag)."""


def parse_publish(header: int, data: bytes | bytearray, start: int, end: int, v5: bool) -> Publish | None:
    """The fields of a plain PUBLISH packet whose body is ``data[start:end]``, or None.

    ``header`` is the fixed header's first byte; the body is everything after the Remaining
    Length. None for QoS 2, an empty topic (a topic alias, or a protocol error), a topic
    that is not UTF-8, v5 properties of any kind, a packet id of 0 or a truncated packet:
    paho's own path then decodes, logs or rejects it as it always did.
    """
    qos = (header >> 1) & 3
    if qos > 1 or start + 2 > end:
        return None
    topic_end = start + 2 + (data[start] << 8 | data[start + 1])
    if topic_end == start + 2 or topic_end > end:
        return None
    try:
        topic = data[start + 2 : topic_end].decode("utf-8")
    except UnicodeDecodeError:
        return None
    pos = topic_end
    mid = 0
    if qos:
        if pos + 2 > end:
            return None
        mid = data[pos] << 8 | data[pos + 1]
        if mid == 0:
            return None
        pos += 2
    if v5:
        if pos >= end or data[pos] != 0:  # property length 0: no properties
            return None
        pos += 1
    return topic, bytes(data[pos:end]), mid, qos, bool(header & 0x08)


def read_publish(data: bytes, pos: int, v5: bool) -> tuple[Publish, int] | None:
    """A whole plain PUBLISH packet at ``data[pos:]``, and where the packet after it starts.

    None if the bytes there are not a PUBLISH, not a whole packet yet, or not plain
    (:func:`parse_publish`): the caller then reads them the ordinary way.
    """
    size = len(data)
    if pos + 2 > size or data[pos] & 0xF0 != PUBLISH:
        return None
    header = data[pos]
    length = 0
    shift = 0
    i = pos + 1
    while True:
        if i >= size or shift > 21:
            return None
        byte = data[i]
        i += 1
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    end = i + length
    if end > size:
        return None
    fields = parse_publish(header, data, i, end, v5)
    return None if fields is None else (fields, end)


def puback(mid: int) -> bytes:
    """PUBACK for packet id ``mid``, reason Success (MQTT v5 §3.4.2.1 allows the 2-byte form)."""
    return bytes((PUBACK, 2, mid >> 8, mid & 0xFF))


def remaining_length(n: int) -> bytes:
    """MQTT's variable byte integer (§1.5.5) for a Remaining Length of ``n``."""
    if not 0 <= n <= _MAX_REMAINING:
        raise ValueError(f"an MQTT packet cannot be {n} bytes long")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def publish_prefix(topic: str, v5: bool) -> bytes:
    """What follows the fixed header of a QoS-0 PUBLISH on ``topic`` up to the payload.

    The topic's length and bytes and, for MQTT v5, a property length of 0. Computed once
    per topic (``ingest.mqtt`` caches it): the fan-out publishes on a few thousand topics.
    """
    data = topic.encode("utf-8")
    if not data or len(data) > 0xFFFF:
        raise ValueError(f"an MQTT topic must be 1-65535 bytes of UTF-8, not {len(data)}")
    return len(data).to_bytes(2, "big") + data + (b"\x00" if v5 else b"")


def publish(prefix: bytes, payload: bytes) -> bytes:
    """A whole QoS-0 PUBLISH packet (no DUP, no retain) from :func:`publish_prefix` and the payload."""
    n = len(prefix) + len(payload)
    if n < 0x80:
        return b"%c%c%b%b" % (PUBLISH, n, prefix, payload)
    if n < 0x4000:
        return b"%c%c%c%b%b" % (PUBLISH, (n & 0x7F) | 0x80, n >> 7, prefix, payload)
    return b"%c%b%b%b" % (PUBLISH, remaining_length(n), prefix, payload)
