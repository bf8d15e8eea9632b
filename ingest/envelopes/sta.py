"""SensorThings API MQTT create (OGC 18-088 §14.2.2): an Observation published to
``v1.1/Datastreams(<id>)/Observations``, ``v1.1/FeaturesOfInterest(<id>)/Observations``, or
``v1.1/Observations`` (with a ``Datastream`` in the body).

Two ways through ingest, told apart here:

- **Readings** (the fast path): a body of only ``phenomenonTime``, ``result``, ``resultTime``,
  ``parameters`` and a ``Datastream`` link, on a Datastream topic or the entity set. The decoded
  message carries the Datastream id in ``Decoded.meta["datastream_id"]`` (an ``int``);
  ``device_id`` is ``"Datastreams(<id>)"``. It has one reading, field ``result``, whose value is
  the Observation's result in the Datastream's unit (the property's canonical unit).
  ``resultTime`` goes to ``meta["result_time"]`` and ``parameters`` to ``meta["parameters"]``.
  Such creates are stored by the batch writer like any sensor reading.
- **Entity creates**: anything else the standard allows: a FeatureOfInterest topic, a body that
  links or carries a FeatureOfInterest, sets ``validTime`` or ``resultQuality``, or carries a
  whole Datastream (deep insert). ``meta["entity_create"]`` holds the resource path the body is
  posted to (``Datastreams(7)/Observations``), there are no readings, and the runtime has the
  SensorThings writer create it, as a POST to that path would.

A body that already has an ``@iot.id`` is an entity a server published (Bydata's own
notifications on the same topics), not a create: ``meta["iot_id"]`` is set, nothing else is
asked of it, and the runtime drops it.
"""

from __future__ import annotations

import re
from typing import Any

from ingest._build import decoded, reading
from ingest.envelopes._common import expect_object, loads, parse_time
from ingest.sources import Source
from ingest.types import Decoded, DecodeError, RawMessage

NAME = "sta"

_TOPIC = re.compile(r"(?:^|/)v1\.[01]/(?:(Datastreams|FeaturesOfInterest)\(([^)]*)\)/)?Observations$")
_READING_KEYS = frozenset({"phenomenonTime", "result", "resultTime", "parameters", "Datastream"})


def _id(value: Any, what: str) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise DecodeError(f"{what}: Bydata ids are positive integers, got {value!r}")
    return value


def decode(raw: RawMessage, source: Source) -> Decoded:
    m = _TOPIC.search(raw.topic)
    if m is None:
        raise DecodeError(f"topic {raw.topic!r} is not a SensorThings Observation create topic")
    parent, parent_key = m.group(1), m.group(2)
    parent_id = _id(parent_key, f"topic {raw.topic!r}") if parent is not None else None
    topic_id = parent_id if parent == "Datastreams" else None
    path = f"{parent}({parent_id})/Observations" if parent is not None else "Observations"

    body = expect_object(loads(raw.payload, "SensorThings Observation"), "SensorThings Observation")
    if "@iot.id" in body:  # a server's notification, not a create request
        return decoded(f"Datastreams({topic_id})" if topic_id else path, (), None, "state", {"iot_id": body["@iot.id"]})
    link = body.get("Datastream")
    body_id: int | None = None
    inline = False
    if link is not None:
        if not isinstance(link, dict) or not link:
            raise DecodeError("SensorThings Observation: Datastream must be a link {'@iot.id': <id>} or an entity")
        if "@iot.id" in link:
            body_id = _id(link["@iot.id"], "Datastream link")
        else:
            inline = True  # a new Datastream (deep insert)
    if topic_id is not None and (inline or body_id is not None) and topic_id != body_id:
        linked = "carries a new Datastream" if inline else f"links {body_id}"
        raise DecodeError(f"SensorThings Observation: topic names Datastream {topic_id}, body {linked}")
    datastream_id = topic_id if topic_id is not None else body_id
    if datastream_id is None and not inline and parent != "FeaturesOfInterest":
        raise DecodeError("SensorThings Observation on v1.1/Observations needs a Datastream link")
    if "result" not in body:
        raise DecodeError("SensorThings Observation has no result")
    if parent == "FeaturesOfInterest" or inline or not body.keys() <= _READING_KEYS:
        device = f"Datastreams({datastream_id})" if datastream_id is not None else path
        return decoded(device, (), None, "state", {"entity_create": path})

    start = end = None
    zone_assumed = False
    when = body.get("phenomenonTime")
    if when is not None:
        if not isinstance(when, str):
            raise DecodeError(f"SensorThings phenomenonTime must be text, got {when!r}")
        first, sep, second = when.partition("/")
        start, zone_assumed = parse_time(first, source.timezone, "SensorThings phenomenonTime")
        if sep:
            end, end_assumed = parse_time(second, source.timezone, "SensorThings phenomenonTime end")
            zone_assumed = zone_assumed or end_assumed
            if end < start:
                raise DecodeError(f"SensorThings phenomenonTime {when!r} ends before it starts")

    meta: dict[str, Any] = {"datastream_id": datastream_id}
    result_time = body.get("resultTime")
    if result_time is not None:
        meta["result_time"], _ = parse_time(result_time, source.timezone, "SensorThings resultTime")
    parameters = body.get("parameters")
    if parameters is not None:
        if not isinstance(parameters, dict):
            raise DecodeError("SensorThings parameters must be an object")
        meta["parameters"] = parameters
    result = reading("result", body["result"], None, start, end, zone_assumed)
    return decoded(f"Datastreams({datastream_id})", (result,), None, "state", meta)


def resource_path(topic: str) -> str:
    """The resource path a create on ``topic`` posts to: ``Datastreams(7)/Observations`` or ``Observations``."""
    m = _TOPIC.search(topic)
    if m is None:
        raise DecodeError(f"topic {topic!r} is not a SensorThings Observation create topic")
    return f"{m.group(1)}({int(m.group(2))})/Observations" if m.group(1) else "Observations"
