"""Sensor.Community (airrohr firmware) JSON, bridged from its HTTP "custom API" to MQTT.

Body built by opendata-stuttgart/sensors-software ``airrohr-firmware.ino``:
``{"esp8266id": "13597771", "software_version": …, "sensordatavalues": [{"value_type":
"SDS_P1", "value": "12.30"}, …]}``. Values are strings (the normaliser parses them).
The firmware sends no time: readings get the receive time and the ``time_assumed`` flag.
A bridge may add a zone-less ``timestamp`` (the archive's ``"2023-12-08 15:22:32"``),
read in the source's zone.
"""

from __future__ import annotations

from ingest._build import decoded, reading
from ingest.envelopes._common import expect_object, loads, parse_time
from ingest.sources import Source
from ingest.types import Decoded, DecodeError, RawMessage, Reading

NAME = "sensor_community"


def decode(raw: RawMessage, source: Source) -> Decoded:
    doc = expect_object(loads(raw.payload, "airrohr body"), "airrohr body")
    values = doc.get("sensordatavalues")
    if not isinstance(values, list):
        raise DecodeError("airrohr body has no sensordatavalues list")

    chip = doc.get("esp8266id")
    if source.device_id_from == "topic":
        device_id = source.topic_device_id(raw.topic)
    elif isinstance(chip, str | int) and not isinstance(chip, bool) and str(chip):
        device_id = str(chip)
    else:
        device_id = source.topic_device_id(raw.topic)
    if not device_id:
        raise DecodeError("airrohr body has no esp8266id and the topic names no device")

    time, zone_assumed = None, False
    stamp = doc.get("timestamp")
    if stamp is not None:
        time, zone_assumed = parse_time(stamp, source.timezone, "airrohr timestamp")

    readings: list[Reading] = []
    for i, item in enumerate(values):
        if not isinstance(item, dict):
            raise DecodeError(f"airrohr sensordatavalues[{i}] is not an object")
        name = item.get("value_type")
        if not isinstance(name, str) or not name:
            raise DecodeError(f"airrohr sensordatavalues[{i}] has no value_type")
        if "value" not in item:
            raise DecodeError(f"airrohr sensordatavalues[{i}] ({name}) has no value")
        readings.append(reading(name, item["value"], None, time, None, zone_assumed))
    meta = {}
    software = doc.get("software_version")
    if isinstance(software, str):
        meta["software_version"] = software
    return decoded(device_id, tuple(readings), source.device_model, "state", meta)
