"""Elsys TLV payloads (lorawan-devices ``vendor/elsys/elsys.js``), the subset an ERS CO2 sends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PORT = 5  # the port Elsys sensors use; the codec reads every port alike

# (type byte, field, byte width, signed, scale): in type order, as the sensor writes them.
_TYPES = (
    (0x01, "temperature", 2, True, 10),
    (0x02, "humidity", 1, False, 1),
    (0x04, "light", 2, False, 1),
    (0x05, "motion", 1, False, 1),
    (0x06, "co2", 2, False, 1),
    (0x07, "vdd", 2, False, 1),
)


def encode(data: Mapping[str, Any]) -> bytes:
    """TLV bytes for the decoder output ``data``; fields it does not carry are left out."""
    out = bytearray()
    for type_byte, name, width, signed, scale in _TYPES:
        if name not in data:
            continue
        raw = round(float(data[name]) * scale)
        lo, hi = (-(1 << (8 * width - 1)), (1 << (8 * width - 1)) - 1) if signed else (0, (1 << (8 * width)) - 1)
        if not lo <= raw <= hi:
            raise ValueError(f"Elsys {name}={data[name]} does not fit {width} byte(s)")
        out.append(type_byte)
        out += raw.to_bytes(width, "big", signed=signed)
    return bytes(out)


def reading(
    *, temperature: float, humidity: float, light: float, motion: int, co2: float, vdd: float
) -> dict[str, Any]:
    """Decoder output for one ERS CO2 uplink, quantised as the payload carries the values."""
    return {
        "temperature": round(temperature * 10) / 10,
        "humidity": max(0, min(255, round(humidity))),
        "light": max(0, min(65535, round(light))),
        "motion": max(0, min(255, int(motion))),
        "co2": max(0, min(65535, round(co2))),
        "vdd": max(0, min(65535, round(vdd))),
    }
