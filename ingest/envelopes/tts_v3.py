"""The Things Stack v3 uplink (``v3/{application_id}[@{tenant_id}]/devices/{device_id}/up``).

Layout from TheThingsIndustries/lorawan-stack-docs ``integrations/data-formats``. Fields
whose value is ``""``, ``0`` or ``false`` are omitted, so a missing ``f_port`` is port 0
and a missing ``frm_payload`` is an empty payload. When the application's payload
formatter fails, ``decoded_payload`` is absent and only ``frm_payload`` is left.
"""

from __future__ import annotations

from typing import Any

from ingest.envelopes._common import Uplink, b64decode, expect_object, loads, normalise_eui, parse_time, port
from ingest.sources import Source
from ingest.types import DecodeError, RawMessage

NAME = "tts_v3"


def decode(raw: RawMessage, source: Source) -> Uplink:
    doc = expect_object(loads(raw.payload, "TTS uplink"), "TTS uplink")
    up = doc.get("uplink_message")
    if not isinstance(up, dict):
        raise DecodeError("TTS message has no uplink_message object (not an uplink)")
    ids = doc.get("end_device_ids")
    ids = ids if isinstance(ids, dict) else {}

    dev_eui = ids.get("dev_eui")
    tts_device_id = ids.get("device_id")
    if source.device_id_from == "topic":
        device_id = source.topic_device_id(raw.topic)
    elif isinstance(dev_eui, str) and dev_eui:
        device_id = normalise_eui(dev_eui)
    elif isinstance(tts_device_id, str) and tts_device_id:
        device_id = tts_device_id
    else:
        device_id = source.topic_device_id(raw.topic)
    if not device_id:
        raise DecodeError("TTS uplink names no device (no end_device_ids.dev_eui or device_id)")

    f_port = port(up.get("f_port", 0), "TTS uplink_message.f_port")
    payload = b64decode(up.get("frm_payload", ""), "TTS uplink_message.frm_payload")

    decoded = up.get("decoded_payload")
    network_decoded = decoded if isinstance(decoded, dict) else None

    when = up.get("received_at", doc.get("received_at"))
    time, zone_assumed = None, False
    if when is not None:
        time, zone_assumed = parse_time(when, source.timezone, "TTS received_at")

    hint = None
    version = up.get("version_ids")
    if isinstance(version, dict):
        brand, model = version.get("brand_id"), version.get("model_id")
        if isinstance(brand, str) and isinstance(model, str):
            hint = f"{brand}/{model}"

    meta: dict[str, Any] = {"f_port": f_port}
    if hint is not None:
        meta["network_model_hint"] = hint
    f_cnt = up.get("f_cnt")
    if isinstance(f_cnt, int):
        meta["f_cnt"] = f_cnt
    if isinstance(tts_device_id, str):
        meta["network_device_id"] = tts_device_id
    if doc.get("simulated") is True:
        meta["simulated"] = True
    return Uplink(device_id, f_port, payload, time, zone_assumed, network_decoded, hint, meta)
