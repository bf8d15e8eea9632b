"""Hourly records in the shape of NILU's air-quality API (``api.nilu.no/aq/utd``).

The API returns a JSON array of records; the simulator publishes one array per station and
hour, one record per component. Times carry a fixed ``+01:00`` offset all year.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from schemas.air_quality import air_quality_classes
from simulators.timefmt import nilu_time


def record(
    *,
    station: str,
    component: str,
    start: datetime,
    end: datetime,
    value: float | str,
    unit: str,
    index: int,
    latitude: float,
    longitude: float,
    zone: str = "Midt-Norge og Nordland",
    municipality: str = "N/A",
    area: str = "Bodø",
    eoi: str | None = None,
    zoneless: bool = False,
) -> dict[str, Any]:
    return {
        "zone": zone,
        "municipality": municipality,
        "area": area,
        "station": station,
        "eoi": eoi,
        "component": component,
        "fromTime": nilu_time(start, zoneless=zoneless),
        "toTime": nilu_time(end, zoneless=zoneless),
        "value": value,
        "unit": unit,
        "index": index,
        "color": air_quality_classes().classes[max(1, min(4, index)) - 1].colour,
        "latitude": latitude,
        "longitude": longitude,
    }


def body(records: Sequence[dict[str, Any]]) -> bytes:
    return orjson.dumps(list(records))
