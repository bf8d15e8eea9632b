"""Quality flags as a bit set (``quality.yaml``): cheap to store, easy to filter in SQL."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from schemas._data import load_yaml


@cache
def flag_bits() -> dict[str, int]:
    """Flag name -> bit value (1 << bit)."""
    flags = load_yaml("quality.yaml")["flags"]
    bits = {str(f["name"]): 1 << int(f["bit"]) for f in flags}
    if len(set(bits.values())) != len(bits):
        raise ValueError("quality.yaml: two flags share a bit")
    return bits


@cache
def low_cost_station_kinds() -> frozenset[str]:
    """Station kinds whose readings carry ``low_cost_sensor`` (``station_kinds`` of that flag)."""
    for f in load_yaml("quality.yaml")["flags"]:
        if f["name"] == "low_cost_sensor":
            return frozenset(str(k) for k in f.get("station_kinds") or ())
    raise ValueError("quality.yaml: no low_cost_sensor flag")


def is_low_cost(station_kind: str | None) -> bool:
    """Whether a device of this station kind is a low-cost sensor (its readings are flagged)."""
    return station_kind is not None and station_kind in low_cost_station_kinds()


def flag(name: str) -> int:
    """Bit value of one flag; KeyError names an unknown flag."""
    return flag_bits()[name]


def encode(names: Iterable[str]) -> int:
    bits = flag_bits()
    value = 0
    for name in names:
        value |= bits[name]
    return value


def decode(value: int) -> list[str]:
    """Flag names set in ``value``, in bit order."""
    return [name for name, bit in sorted(flag_bits().items(), key=lambda kv: kv[1]) if value & bit]
