"""Elsys TLV payloads (ERS, ERS CO2, ERS Lite, ERS Sound, EMS, ELT …), following
TheThingsNetwork/lorawan-devices ``vendor/elsys/elsys.js``.

A payload is a run of (type byte, value) pairs; the type fixes the value's size and
meaning (table below, names as in the published decoder). Where the published decoder
silently stops at an unknown type or reads past the end, Bydata rejects the payload
with a :class:`DecodeError` naming the offset, so nothing is half-read. Type 0x3D
(debug, 4 bytes) is listed in the vendor's table and read here too. The sensor sends
on a configurable LoRaWAN port (Elsys setting ``Port``); ``codec_options.ports`` lists
the accepted ones (default 1, the published examples, and 5).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ingest.types import DecodeError, UnsupportedPort

NAME = "elsys"
KINDS: Mapping[int, str] = {}
DEFAULT_PORTS = (1, 5)


def _u(b: bytes, i: int, n: int) -> int:
    return int.from_bytes(b[i : i + n], "big")


def _s(b: bytes, i: int, n: int) -> int:
    return int.from_bytes(b[i : i + n], "big", signed=True)


def _grideye(b: bytes, i: int) -> list[tuple[str, Any]]:
    ref = b[i]
    return [("grideye", [ref + b[i + 1 + j] / 10.0 for j in range(64)])]


Handler = Callable[[bytes, int], list[tuple[str, Any]]]

# type -> (value size in bytes, reader of (key, value) pairs at offset i)
TYPES: Mapping[int, tuple[int, Handler]] = {
    0x01: (2, lambda b, i: [("temperature", _s(b, i, 2) / 10)]),
    0x02: (1, lambda b, i: [("humidity", b[i])]),
    0x03: (3, lambda b, i: [("x", _s(b, i, 1)), ("y", _s(b, i + 1, 1)), ("z", _s(b, i + 2, 1))]),
    0x04: (2, lambda b, i: [("light", _u(b, i, 2))]),
    0x05: (1, lambda b, i: [("motion", b[i])]),
    0x06: (2, lambda b, i: [("co2", _u(b, i, 2))]),
    0x07: (2, lambda b, i: [("vdd", _u(b, i, 2))]),
    0x08: (2, lambda b, i: [("analog1", _u(b, i, 2))]),
    0x09: (6, lambda b, i: [("lat", _u(b, i, 3)), ("long", _u(b, i + 3, 3))]),
    0x0A: (2, lambda b, i: [("pulse1", _u(b, i, 2))]),
    0x0B: (4, lambda b, i: [("pulseAbs", _u(b, i, 4))]),
    0x0C: (2, lambda b, i: [("externalTemperature", _s(b, i, 2) / 10)]),
    0x0D: (1, lambda b, i: [("digital", b[i])]),
    0x0E: (2, lambda b, i: [("distance", _u(b, i, 2))]),
    0x0F: (1, lambda b, i: [("accMotion", b[i])]),
    0x10: (
        4,
        lambda b, i: [("irInternalTemperature", _s(b, i, 2) / 10), ("irExternalTemperature", _s(b, i + 2, 2) / 10)],
    ),
    0x11: (1, lambda b, i: [("occupancy", b[i])]),
    0x12: (1, lambda b, i: [("waterleak", b[i])]),
    0x13: (65, _grideye),
    0x14: (4, lambda b, i: [("pressure", _u(b, i, 4) / 1000)]),
    0x15: (2, lambda b, i: [("soundPeak", b[i]), ("soundAvg", b[i + 1])]),
    0x16: (2, lambda b, i: [("pulse2", _u(b, i, 2))]),
    0x17: (4, lambda b, i: [("pulseAbs2", _u(b, i, 4))]),
    0x18: (2, lambda b, i: [("analog2", _u(b, i, 2))]),
    0x19: (2, lambda b, i: [("externalTemperature2", _s(b, i, 2) / 10)]),
    0x1A: (1, lambda b, i: [("digital2", b[i])]),
    0x1B: (4, lambda b, i: [("analogUv", _s(b, i, 4))]),
    0x1C: (2, lambda b, i: [("tvoc", _u(b, i, 2))]),
    0x3D: (4, lambda b, i: [("debug", _u(b, i, 4))]),
}


def check_options(options: Mapping[str, Any]) -> None:
    unknown = set(options) - {"ports"}
    if unknown:
        raise ValueError(f"{NAME}: unknown codec options {sorted(unknown)}")
    ports = options.get("ports", DEFAULT_PORTS)
    if not isinstance(ports, list | tuple) or not all(
        isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 255 for p in ports
    ):
        raise ValueError(f"{NAME}: ports must be a list of LoRaWAN ports 1..255, got {ports!r}")


def decode(port: int, payload: bytes, options: Mapping[str, Any]) -> dict[str, Any]:
    ports = options.get("ports", DEFAULT_PORTS)
    if port not in ports:
        raise UnsupportedPort(f"{NAME}: fPort {port} is not a data port of this sensor (expected {list(ports)})")
    if not payload:
        raise DecodeError(f"{NAME}: empty payload")
    out: dict[str, Any] = {}
    i, end = 0, len(payload)
    while i < end:
        kind = payload[i]
        entry = TYPES.get(kind)
        if entry is None:
            raise DecodeError(f"{NAME}: unknown type 0x{kind:02X} at offset {i}")
        size, read = entry
        if i + 1 + size > end:
            raise DecodeError(f"{NAME}: type 0x{kind:02X} at offset {i} needs {size} bytes, {end - i - 1} left")
        for key, value in read(payload, i + 1):
            if key == "externalTemperature2" and key in out:
                # repeated probes: the published decoder turns the value into a list
                previous = out[key]
                out[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
            else:
                out[key] = value
        i += 1 + size
    return out
