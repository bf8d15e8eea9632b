"""ChirpStack v4 uplink event (``application/{application_id}/device/{dev_eui}/event/up``).

Protobuf JSON mapping of ``integration.UplinkEvent`` (chirpstack ``api/proto/integration/
integration.proto``; example in chirpstack-docs ``integrations/events.md``): zero values
are omitted, ``data`` is base64, ``object`` is present only when the device profile has a
codec, ``deviceInfo.deviceProfileName`` is the model hint.
"""

from __future__ import annotations

from typing import Any

from ingest.envelopes._common import Uplink, b64decode, expect_object, loads, normalise_eui, parse_time, port
from ingest.sources import Source
from ingest.types import DecodeError, RawMessage

NAME = "chirpstack_v4"


def decode(raw: RawMessage, source: Source) -> Uplink:
    doc = expect_object(loads(raw.payload, "ChirpStack uplink"), "ChirpStack uplink")
    info = doc.get("deviceInfo")
    if not isinstance(info, dict):
        raise DecodeError("ChirpStack event has no deviceInfo object")
    if "fPort" not in doc and "data" not in doc and "fCnt" not in doc and "object" not in doc:
        # status/join/ack/log events share deviceInfo but carry no frame.
        raise DecodeError("ChirpStack event carries no uplink frame (not an 'up' event)")

    dev_eui = info.get("devEui")
    if source.device_id_from == "topic":
        device_id = source.topic_device_id(raw.topic)
    elif isinstance(dev_eui, str) and dev_eui:
        device_id = normalise_eui(dev_eui)
    else:
        topic_id = source.topic_device_id(raw.topic)
        device_id = normalise_eui(topic_id) if topic_id else None
    if not device_id:
        raise DecodeError("ChirpStack uplink names no device (no deviceInfo.devEui)")

    f_port = port(doc.get("fPort", 0), "ChirpStack fPort")
    payload = b64decode(doc.get("data", ""), "ChirpStack data")
    obj = doc.get("object")
    network_decoded = obj if isinstance(obj, dict) else None

    time, zone_assumed = None, False
    when = doc.get("time")
    if when is not None:
        time, zone_assumed = parse_time(when, source.timezone, "ChirpStack time")

    profile = info.get("deviceProfileName")
    hint = profile if isinstance(profile, str) and profile else None

    meta: dict[str, Any] = {"f_port": f_port}
    if hint is not None:
        meta["network_model_hint"] = hint
    f_cnt = doc.get("fCnt")
    if isinstance(f_cnt, int):
        meta["f_cnt"] = f_cnt
    dedup = doc.get("deduplicationId")
    if isinstance(dedup, str):
        meta["deduplication_id"] = dedup
    return Uplink(device_id, f_port, payload, time, zone_assumed, network_decoded, hint, meta)
