"""Bosch Parking Lot Sensor TPS110, following TheThingsNetwork/lorawan-devices
``vendor/bosch/tpl110-0292.js`` (examples in ``tps110-0292-codec.yaml``).

fPort 1 parking status, 2 heartbeat (optional int8 temperature, °C), 3 start-up (debug
codes, firmware version, reset cause, occupancy), 4 device information and 5 device
usage (raw bytes), 6 debug. Field names and values are the published codec's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ingest.types import DecodeError, UnsupportedPort

NAME = "bosch_tps110"
KINDS: Mapping[int, str] = {1: "state", 2: "heartbeat", 3: "startup", 4: "info", 5: "usage", 6: "debug"}
_RESET_CAUSES = (None, "watchdog", "power on", "system request", "other")
_MIN_LENGTH = {1: 1, 2: 1, 3: 17, 4: 0, 5: 0, 6: 10}


def check_options(options: Mapping[str, Any]) -> None:
    if options:
        raise ValueError(f"{NAME}: takes no codec options, got {sorted(options)}")


def decode(port: int, payload: bytes, options: Mapping[str, Any]) -> dict[str, Any]:
    if port not in KINDS:
        raise UnsupportedPort(f"{NAME}: fPort {port} is not defined (known: {sorted(KINDS)})")
    if len(payload) < _MIN_LENGTH[port]:
        raise DecodeError(f"{NAME}: fPort {port} needs {_MIN_LENGTH[port]} bytes, got {len(payload)}")
    if port == 1:
        return {"type": "parking status", "occupied": bool(payload[0] & 1)}
    if port == 2:
        out: dict[str, Any] = {"type": "heartbeat", "occupied": bool(payload[0] & 1)}
        if len(payload) >= 2:
            out["temperature"] = payload[1] - 256 if payload[1] & 0x80 else payload[1]
        return out
    if port == 3:
        codes = [(payload[i + 1] & 0x0F) << 8 | payload[i] for i in (0, 4, 8)]
        out = {
            "type": "startup",
            "debugCodes": [c for c in codes if c],
            "firmwareVersion": f"{payload[12]}.{payload[13]}.{payload[14]}",
        }
        cause = _RESET_CAUSES[payload[15]] if payload[15] < len(_RESET_CAUSES) else None
        if cause is not None:
            out["resetCause"] = cause
        out["occupied"] = bool(payload[16] & 1)
        return out
    if port in (4, 5):
        return {"type": "device information" if port == 4 else "device usage", "bytes": list(payload)}
    return {
        "type": "debug",
        "timestamp": int.from_bytes(payload[0:4], "little"),
        "debugCode": (payload[5] & 0x0F) << 8 | payload[4],
        "sequenceNumber": payload[9] << 8 | payload[8],
    }
