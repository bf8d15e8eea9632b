"""NILU air-quality records (api.nilu.no, luftkvalitet.info).

A record: ``{"station": "Olav V gate", "eoi": null, "component": "PM10", "fromTime":
"2018-06-04T11:00:00+01:00", "toTime": "2018-06-04T12:00:00+01:00", "value": 10.506,
"unit": "µg/m³", …}``. A message may hold one record or a list of records of one
station. The component names the field and the record's unit travels with the value;
``null`` and ``"N/A"`` occur and are left for the normaliser to reject where they matter.
The device id is the station name (``eoi``, often null, is kept in ``meta``).
"""

from __future__ import annotations

from typing import Any

from ingest._build import decoded, reading
from ingest.envelopes._common import loads, parse_time
from ingest.sources import Source
from ingest.types import Decoded, DecodeError, RawMessage, Reading

NAME = "nilu"


def _reading(record: Any, i: int, source: Source) -> tuple[str | None, Reading, Any]:
    if not isinstance(record, dict):
        raise DecodeError(f"NILU record {i} is not an object")
    component = record.get("component")
    if not isinstance(component, str) or not component:
        raise DecodeError(f"NILU record {i} has no component")
    if "value" not in record:
        raise DecodeError(f"NILU record {i} ({component}) has no value")
    unit = record.get("unit")
    if unit is not None and not isinstance(unit, str):
        raise DecodeError(f"NILU record {i} ({component}): unit {unit!r} is not text")
    start = end = None
    zone_assumed = False
    if record.get("fromTime") is not None:
        start, zone_assumed = parse_time(record["fromTime"], source.timezone, f"NILU record {i} fromTime")
    if record.get("toTime") is not None:
        end, end_assumed = parse_time(record["toTime"], source.timezone, f"NILU record {i} toTime")
        zone_assumed = zone_assumed or end_assumed
        if start is not None and end < start:
            raise DecodeError(f"NILU record {i} ({component}): toTime is before fromTime")
    station = record.get("station")
    station_id = station if isinstance(station, str) and station and station != "N/A" else None
    unit_text = unit if unit and unit != "N/A" else None
    return station_id, reading(component, record["value"], unit_text, start, end, zone_assumed), record.get("eoi")


def decode(raw: RawMessage, source: Source) -> Decoded:
    doc = loads(raw.payload, "NILU record")
    records = doc if isinstance(doc, list) else [doc]
    if not records:
        raise DecodeError("NILU message holds an empty list of records")
    stations: set[str] = set()
    readings: list[Reading] = []
    eoi = None
    for i, record in enumerate(records):
        station, item, record_eoi = _reading(record, i, source)
        if station is not None:
            stations.add(station)
        if isinstance(record_eoi, str) and record_eoi != "N/A":
            eoi = record_eoi
        readings.append(item)
    if len(stations) > 1:
        raise DecodeError(f"NILU message mixes stations {sorted(stations)}; publish one station per message")
    if source.device_id_from == "topic" or not stations:
        device_id = source.topic_device_id(raw.topic)
    else:
        device_id = stations.pop()
    if not device_id:
        raise DecodeError("NILU record names no station and the topic names no device")
    meta = {"eoi": eoi} if eoi else {}
    return decoded(device_id, tuple(readings), source.device_model, "state", meta)
