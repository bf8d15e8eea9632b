"""Unit handling: wire notations to UCUM, and conversion to a property's canonical unit.

Factors come from pint through ucumvert's UCUM grammar; ``units.yaml`` only maps
notations seen on the wire (``kWh``, ``µg/m³``, ``degF``) to UCUM codes. Converters are
linear (``a*x + b``, offsets for temperatures) and cached per unit pair, so the hot path
is one multiply-add.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from schemas._data import load_yaml

_ANNOTATION = re.compile(r"\{[^{}]*\}")


class UnitError(ValueError):
    """A unit that is not UCUM (nor a known alias), or not convertible to the target."""


@cache
def _registry() -> Any:
    from ucumvert import PintUcumRegistry

    return PintUcumRegistry()


@cache
def _aliases() -> dict[str, str]:
    data = load_yaml("units.yaml")
    return {str(k): str(v) for k, v in data["aliases"].items()}


def to_ucum(notation: str) -> str:
    """Return the UCUM code for a unit as written on the wire (alias or UCUM as is)."""
    text = notation.strip()
    return _aliases().get(text, text)


@cache
def _pint_units(ucum: str) -> Any:
    if not ucum.strip():
        raise UnitError("an empty string is not a unit (UCUM writes unity as '1')")
    # UCUM annotations ({count}, {beats}) carry meaning for people, not for arithmetic: they are 1.
    bare = _ANNOTATION.sub("1", ucum).strip() or "1"
    try:
        parsed = _registry().from_ucum(bare)
    except Exception as exc:  # ucumvert raises its own error types
        raise UnitError(f"{ucum!r} is not a valid UCUM unit") from exc
    return getattr(parsed, "units", parsed)


@dataclass(frozen=True, slots=True)
class Converter:
    """``value * scale + offset`` converts from ``source`` to ``target`` (both UCUM)."""

    source: str
    target: str
    scale: float
    offset: float

    def __call__(self, value: float) -> float:
        if self.scale == 1.0 and self.offset == 0.0:
            return value
        # Rounded so 32 degF reads 0 Cel, not -3.7e-13; nine decimals is below any sensor's resolution.
        return round(value * self.scale + self.offset, 9)

    @property
    def identity(self) -> bool:
        return self.scale == 1.0 and self.offset == 0.0


@cache
def converter(source: str, target: str) -> Converter:
    """Converter from the unit written ``source`` (alias or UCUM) to UCUM ``target``."""
    src, dst = to_ucum(source), to_ucum(target)
    if src == dst:
        return Converter(src, dst, 1.0, 0.0)
    registry = _registry()
    src_units, dst_units = _pint_units(src), _pint_units(dst)
    try:
        zero = float(registry.Quantity(0.0, src_units).to(dst_units).magnitude)
        one = float(registry.Quantity(1.0, src_units).to(dst_units).magnitude)
    except Exception as exc:  # pint.DimensionalityError and friends
        raise UnitError(f"cannot convert {source!r} to {target!r}: {exc}") from exc
    return Converter(src, dst, one - zero, zero)


def convert(value: float, source: str, target: str) -> float:
    """Convert one value; see :func:`converter` for the cached form."""
    return converter(source, target)(value)


def is_valid(notation: str) -> bool:
    """True if the notation names a unit Bydata can convert."""
    try:
        _pint_units(to_ucum(notation))
    except UnitError:
        return False
    return True
