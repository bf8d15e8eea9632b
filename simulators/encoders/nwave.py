"""Nwave NPS405 parking sensor payloads (TheThingsNetwork/lorawan-devices ``vendor/nwave/nps405.js``).

``encode(f_port, data)`` is the inverse of the published decoder: given the decoder's output
fields it returns the bytes. The ``occupied_bit`` option follows the device model's
``codec_options`` (the published examples put the flag in bit 0, an older codec in bit 7).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STATUS_PORT = 1
HEARTBEAT_PORT = 2
STARTUP_PORT = 3
REGISTRATION_PORT = 10

RESET_CAUSES = ("rejoining_lorawan_network", "watchdog", "power_on", "user_request", None, None, "brownout", "other")

# Bytes 3-5 of a heartbeat are not decoded by the published codec; the published example
# carries these, and so does every simulated heartbeat.
HEARTBEAT_TAIL = bytes([0x00, 0x59, 0x0B])


def compress_duration(minutes: float) -> int:
    """The codec's 7-bit duration: exact below 90, then 5-minute and 60-minute steps, 127 = overflow."""
    m = max(0, int(minutes))
    if m < 90:
        return m
    if m < 240:
        return 90 + (m - 90) // 5
    if m < 660:
        return min(126, 120 + (m - 240) // 60)
    return 127


def expand_duration(code: int) -> tuple[int, int | None, bool]:
    """(duration, error, overflow) as the codec reports them for a 7-bit code."""
    if code < 90:
        return code, 0, False
    if code < 120:
        return 90 + (code - 90) * 5, 4, False
    if code < 127:
        return 240 + (code - 120) * 60, 59, False
    return 660, None, True


def _flag_byte(occupied: bool, low7: int, occupied_bit: int) -> int:
    if occupied_bit == 0:
        return (low7 & 0x7F) << 1 | int(occupied)
    if occupied_bit == 7:
        return int(occupied) << 7 | (low7 & 0x7F)
    raise ValueError(f"occupied_bit must be 0 or 7, got {occupied_bit}")


def _duration_code(data: Mapping[str, Any]) -> int:
    if data.get("previous_state_duration_overflow"):
        return 127
    return compress_duration(float(data.get("previous_state_duration") or 0))


def encode(f_port: int, data: Mapping[str, Any], *, occupied_bit: int = 0) -> bytes:
    """Bytes for the decoder output ``data`` on ``f_port`` (1 status, 2 heartbeat, 3 start-up, 10 tag)."""
    if f_port == STATUS_PORT:
        return bytes([_flag_byte(bool(data["occupied"]), _duration_code(data), occupied_bit)])
    if f_port == HEARTBEAT_PORT:
        mv = round(float(data["battery_voltage"]) * 1000)
        battery = max(0, min(255, round((mv - 2500) / 4)))
        temp = max(-128, min(127, round((float(data["temperature"]) - 10) * 2)))
        health = int(data.get("hw_health_status") or 0)
        if occupied_bit == 0:
            first = (health & 0x7E) | int(bool(data["occupied"]))
        else:
            first = _flag_byte(bool(data["occupied"]), health, occupied_bit)
        return bytes([first, battery, temp & 0xFF]) + HEARTBEAT_TAIL
    if f_port == STARTUP_PORT:
        major, minor, patch = (int(p) for p in str(data["firmware_version"]).split("."))
        cause = RESET_CAUSES.index(data["reset_cause"])
        return bytes([major, minor, patch, cause, int(bool(data["occupied"]))])
    if f_port == REGISTRATION_PORT:
        first = _flag_byte(bool(data.get("occupied")), _duration_code(data), occupied_bit)
        return bytes([first]) + int(str(data["tag_id"]), 16).to_bytes(4, "big")
    raise ValueError(f"NPS405 has no uplink on fPort {f_port}")


def _battery_health(mv: int, temperature: float) -> str:
    critical, low = (2900, 3000) if temperature >= -5 else (2800, 2900)
    if mv >= low:
        return "normal"
    return "low" if mv >= critical else "critical"


def status(occupied: bool, duration_min: float) -> dict[str, Any]:
    """Decoder output of a status uplink (values quantised as the payload carries them)."""
    duration, error, overflow = expand_duration(compress_duration(duration_min))
    return {
        "type": "parking_status",
        "occupied": occupied,
        "previous_state_duration": duration,
        "previous_state_duration_error": error,
        "previous_state_duration_overflow": overflow,
    }


def heartbeat(occupied: bool, battery_voltage: float, temperature: float) -> dict[str, Any]:
    """Decoder output of a heartbeat: battery in 4 mV steps from 2.5 V, temperature in 0.5 degC steps."""
    battery = max(0, min(255, round((battery_voltage * 1000 - 2500) / 4)))
    mv = 2500 + battery * 4
    raw = max(-128, min(127, round((temperature - 10) * 2)))
    temp = raw / 2 + 10
    return {
        "type": "heartbeat",
        "occupied": occupied,
        "hw_health_status": int(occupied),  # the codec reads bits 0-6 of byte 0, the flag included
        "temperature": int(temp) if temp == int(temp) else temp,
        "battery_voltage": mv / 1000,
        "battery_health": _battery_health(mv, temp),
    }


def startup(firmware_version: str, reset_cause: str, occupied: bool) -> dict[str, Any]:
    return {"type": "startup", "firmware_version": firmware_version, "reset_cause": reset_cause, "occupied": occupied}
