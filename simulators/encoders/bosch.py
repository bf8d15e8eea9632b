"""Bosch Parking Lot Sensor TPS110 payloads (lorawan-devices ``vendor/bosch/tpl110-0292.js``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

STATUS_PORT = 1
HEARTBEAT_PORT = 2
STARTUP_PORT = 3

RESET_CAUSES = (None, "watchdog", "power on", "system request", "other")


def encode(f_port: int, data: Mapping[str, Any]) -> bytes:
    """Bytes for the decoder output ``data`` on ``f_port`` (1 status, 2 heartbeat, 3 start-up)."""
    flag = int(bool(data["occupied"]))
    if f_port == STATUS_PORT:
        return bytes([flag])
    if f_port == HEARTBEAT_PORT:
        if "temperature" not in data:
            return bytes([flag])
        temp = max(-128, min(127, round(float(data["temperature"]))))
        return bytes([flag, temp & 0xFF])
    if f_port == STARTUP_PORT:
        codes: Sequence[int] = data.get("debugCodes") or ()
        if len(codes) > 3:
            raise ValueError("a TPS110 start-up carries at most three debug codes")
        out = bytearray(17)
        for slot, code in enumerate(codes):
            out[slot * 4] = code & 0xFF
            out[slot * 4 + 1] = (code >> 8) & 0x0F
        major, minor, patch = (int(p) for p in str(data["firmwareVersion"]).split("."))
        out[12:15] = bytes([major, minor, patch])
        out[15] = RESET_CAUSES.index(data["resetCause"])
        out[16] = flag
        return bytes(out)
    raise ValueError(f"TPS110 has no uplink on fPort {f_port}")


def status(occupied: bool) -> dict[str, Any]:
    return {"type": "parking status", "occupied": occupied}


def heartbeat(occupied: bool, temperature: float) -> dict[str, Any]:
    """Decoder output of a heartbeat: whole degrees Celsius, int8."""
    return {"type": "heartbeat", "occupied": occupied, "temperature": max(-128, min(127, round(temperature)))}


def startup(firmware_version: str, reset_cause: str, occupied: bool, debug_codes: Sequence[int] = ()) -> dict[str, Any]:
    return {
        "type": "startup",
        "debugCodes": list(debug_codes),
        "firmwareVersion": firmware_version,
        "resetCause": reset_cause,
        "occupied": occupied,
    }
