"""SensorThings API MQTT create (OGC 18-088 §14.2.2): an Observation published to
``v1.1/Datastreams(<id>)/Observations``, or to ``v1.1/Observations`` with a
``"Datastream": {"@iot.id": <id>}`` link in the body.

The decoded message carries the Datastream id in ``Decoded.meta["datastream_id"]`` (an
``int``); ``device_id`` is ``"Datastreams(<id>)"``. It has one reading, field ``result``,
whose value is the Observation's result in the Datastream's unit (the property's
canonical unit). ``resultTime`` goes to ``meta["result_time"]`` and ``parameters`` to
``meta["parameters"]``. A body that already has an ``@iot.id`` is an entity the server
published (for example Bydata's own live fan-out on the same topic); it decodes the
same way, so storing it again is absorbed as a duplicate, and ``meta["iot_id"]`` lets
the runtime recognise it.
"""

from __future__ import annotations

import re
from typing import Any

from ingest._build import decoded, reading
from ingest.envelopes._common import expect_object, loads, parse_time
from ingest.sources import Source
from ingest.types import Decoded, DecodeError, RawMessage

NAME = "sta"

_DATASTREAM_TOPIC = re.compile(r"(?:^|/)v1\.[01]/Datastreams\(([^)]*)\)/Observations$")
_OBSERVATIONS_TOPIC = re.compile(r"(?:^|/)v1\.[01]/Observations$")


def _id(value: Any, what: str) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise DecodeError(f"{what}: Bydata ids are positive integers, got {value!r}")
    return value


def decode(raw: RawMessage, source: Source) -> Decoded:
    topic_id: int | None = None
    m = _DATASTREAM_TOPIC.search(raw.topic)
    if m is not None:
        topic_id = _id(m.group(1), f"topic {raw.topic!r}")
    elif _OBSERVATIONS_TOPIC.search(raw.topic) is None:
        raise DecodeError(f"topic {raw.topic!r} is not a SensorThings Observation create topic")

    body = expect_object(loads(raw.payload, "SensorThings Observation"), "SensorThings Observation")
    link = body.get("Datastream")
    body_id: int | None = None
    if link is not None:
        if not isinstance(link, dict) or "@iot.id" not in link:
            raise DecodeError("SensorThings Observation: Datastream must be a link {'@iot.id': <id>}")
        body_id = _id(link["@iot.id"], "Datastream link")
    if topic_id is not None and body_id is not None and topic_id != body_id:
        raise DecodeError(f"SensorThings Observation: topic names Datastream {topic_id}, body links {body_id}")
    datastream_id = topic_id if topic_id is not None else body_id
    if datastream_id is None:
        raise DecodeError("SensorThings Observation on v1.1/Observations needs a Datastream link")
    if "result" not in body:
        raise DecodeError("SensorThings Observation has no result")

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
    if "@iot.id" in body:
        meta["iot_id"] = body["@iot.id"]
    result = reading("result", body["result"], None, start, end, zone_assumed)
    return decoded(f"Datastreams({datastream_id})", (result,), None, "state", meta)
