"""Unit conversion to canonical UCUM units: table tests over the notations seen on the wire."""

from __future__ import annotations

import math

import pytest

from schemas import units

CASES = [
    # (value, from, to, expected)
    (12.3, "µg/m³", "ug/m3", 12.3),
    (12.3, "μg/m³", "ug/m3", 12.3),
    (0.0123, "mg/m³", "ug/m3", 12.3),
    (1500.0, "Wh", "kW.h", 1.5),
    (1500.0, "Wh", "kWh", 1.5),
    (2.5, "MWh", "kW.h", 2500.0),
    (3.6, "GJ", "kW.h", 1000.0),
    (0.45, "/", "%", 45.0),
    (0.45, "1", "%", 45.0),
    (45.0, "%", "1", 0.45),
    (45.0, "%RH", "%", 45.0),
    (32.0, "degF", "Cel", 0.0),
    (212.0, "°F", "Cel", 100.0),
    (-40.0, "[degF]", "Cel", -40.0),
    (293.15, "K", "Cel", 20.0),
    (21.5, "°C", "Cel", 21.5),
    (3344.0, "mV", "V", 3.344),
    (100720.0, "Pa", "hPa", 1007.2),
    (36.0, "km/h", "m/s", 10.0),
    (10.0, "knots", "m/s", 5.144444444),
    (776.0, "ppm", "[ppm]", 776.0),
    (1000.0, "ppb", "[ppm]", 1.0),
    (2000.0, "W", "kW", 2.0),
    (6.0, "count", "{count}", 6.0),
    (39.0, "lux", "lx", 39.0),
]


@pytest.mark.parametrize(("value", "source", "target", "expected"), CASES)
def test_convert(value: float, source: str, target: str, expected: float) -> None:
    assert math.isclose(units.convert(value, source, target), expected, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize(
    ("source", "target"),
    [("Wh", "Cel"), ("ug/m3", "%"), ("m/s", "hPa"), ("V", "W")],
)
def test_incompatible_units_are_refused(source: str, target: str) -> None:
    with pytest.raises(units.UnitError, match="cannot convert"):
        units.converter(source, target)


@pytest.mark.parametrize("notation", ["furlongs/fortnight!", "µg/parsec³", "", "kWhh"])
def test_unknown_units_are_refused(notation: str) -> None:
    assert not units.is_valid(notation)
    with pytest.raises(units.UnitError):
        units.converter(notation, "Cel")


def test_aliases_resolve_to_ucum() -> None:
    assert units.to_ucum("kWh") == "kW.h"
    assert units.to_ucum("µg/m³") == "ug/m3"
    assert units.to_ucum("hPa") == "hPa"  # UCUM as written


def test_converter_is_linear_and_cached() -> None:
    conv = units.converter("degF", "Cel")
    assert conv is units.converter("degF", "Cel")
    assert (conv.scale, round(conv.offset, 6)) == (pytest.approx(5 / 9), round(-32 * 5 / 9, 6))
    assert units.converter("Cel", "Cel").identity
