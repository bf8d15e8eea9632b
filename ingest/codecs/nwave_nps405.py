"""Nwave NPS405 parking sensor, following TheThingsNetwork/lorawan-devices ``vendor/nwave/nps405.js``.

Field names and values are the published codec's. Two published versions disagree on
where the occupied flag sits in the first byte of fPort 1/2/10 messages: the version
whose examples (``nps405-codec.yaml``: ``0x95`` -> occupied, 74 min) are the golden
vectors reads bit 0 and takes the previous-state duration from bits 1-7; an older
version reads bit 7 and the duration from bits 0-6. ``codec_options.occupied_bit``
(0 or 7, default 0) chooses per fleet. Tag registration (fPort 10) exists in a 5-byte
layout (tag id in bytes 1-4) and a 6-byte one (tag battery in byte 1, in 0.1 V, then the
tag id); both are read. Values the codec leaves undefined or null are omitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ingest.types import DecodeError, UnsupportedPort

NAME = "nwave_nps405"
KINDS: Mapping[int, str] = {1: "state", 2: "heartbeat", 3: "startup", 6: "debug", 10: "registration"}
_RESET_CAUSES = ("rejoining_lorawan_network", "watchdog", "power_on", "user_request", None, None, "brownout", "other")
_MIN_LENGTH = {1: 1, 2: 3, 3: 5, 6: 0, 10: 5}


def check_options(options: Mapping[str, Any]) -> None:
    unknown = set(options) - {"occupied_bit"}
    if unknown:
        raise ValueError(f"{NAME}: unknown codec options {sorted(unknown)}")
    if options.get("occupied_bit", 0) not in (0, 7):
        raise ValueError(f"{NAME}: occupied_bit must be 0 or 7, got {options['occupied_bit']!r}")


def _state(byte: int, occupied_bit: int) -> tuple[bool, int]:
    """(occupied, compressed previous-state duration) from the status byte."""
    if occupied_bit == 7:
        return bool(byte >> 7 & 1), byte & 0x7F
    return bool(byte & 1), byte >> 1 & 0x7F


def _duration(compressed: int) -> dict[str, Any]:
    """Previous-state duration in minutes (the codec's compression: exact, 5-min, 60-min steps)."""
    if compressed < 90:
        return {"previous_state_duration": compressed, "previous_state_duration_error": 0,
                "previous_state_duration_overflow": False}  # fmt: skip
    if compressed < 120:
        return {"previous_state_duration": 90 + (compressed - 90) * 5, "previous_state_duration_error": 4,
                "previous_state_duration_overflow": False}  # fmt: skip
    if compressed < 127:
        return {"previous_state_duration": 240 + (compressed - 120) * 60, "previous_state_duration_error": 59,
                "previous_state_duration_overflow": False}  # fmt: skip
    return {"previous_state_duration": 660, "previous_state_duration_overflow": True}


def _battery_health(millivolts: int, temperature: float) -> str:
    critical, low = (2900, 3000) if temperature >= -5 else (2800, 2900)
    if millivolts >= low:
        return "normal"
    return "low" if millivolts >= critical else "critical"


def decode(port: int, payload: bytes, options: Mapping[str, Any]) -> dict[str, Any]:
    if port not in KINDS:
        raise UnsupportedPort(f"{NAME}: fPort {port} is not defined (known: {sorted(KINDS)})")
    if len(payload) < _MIN_LENGTH[port]:
        raise DecodeError(f"{NAME}: fPort {port} needs {_MIN_LENGTH[port]} bytes, got {len(payload)}")
    bit = int(options.get("occupied_bit", 0))
    if port == 1:
        occupied, compressed = _state(payload[0], bit)
        return {"type": "parking_status", "occupied": occupied, **_duration(compressed)}
    if port == 2:
        occupied, _ = _state(payload[0], bit)
        raw_temp = payload[2] - 256 if payload[2] > 127 else payload[2]
        temperature = raw_temp / 2 + 10
        millivolts = 2500 + payload[1] * 4
        return {
            "type": "heartbeat",
            "occupied": occupied,
            "hw_health_status": payload[0] & 0x7F,
            "temperature": temperature,
            "battery_voltage": millivolts / 1000,
            "battery_health": _battery_health(millivolts, temperature),
        }
    if port == 3:
        out: dict[str, Any] = {"type": "startup", "firmware_version": f"{payload[0]}.{payload[1]}.{payload[2]}"}
        cause = _RESET_CAUSES[payload[3]] if payload[3] < len(_RESET_CAUSES) else None
        if cause is not None:
            out["reset_cause"] = cause
        out["occupied"] = bool(payload[4] & 1)
        return out
    if port == 6:
        return {"type": "debug", "bytes": list(payload)}
    # port 10: SDI tag registration
    out = {"type": "user_registration"}
    occupied, compressed = _state(payload[0], bit)
    if occupied:
        out["occupied"] = True
        out.update(_duration(compressed))
    if len(payload) >= 6:
        out["tag_battery_voltage"] = payload[1] / 10
        tag = payload[2:6]
    else:
        tag = payload[1:5]
    out["tag_id"] = format(int.from_bytes(tag, "big"), "X")
    return out
