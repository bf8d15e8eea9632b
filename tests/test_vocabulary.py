"""The published vocabulary: complete for the three cases, well-formed, and from public vocabularies."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from schemas import units
from schemas.vocabulary import BooleanText, PropertyDef, Vocabulary, vocabulary

REQUIRED = {
    "pm10": "ug/m3",
    "pm2_5": "ug/m3",
    "no2": "ug/m3",
    "air_temperature": "Cel",
    "relative_humidity": "%",
    "air_pressure": "hPa",
    "wind_speed": "m/s",
    "wind_direction": "deg",
    "parking_occupancy": "1",
    "battery_voltage": "V",
    "active_power": "W",
    "active_energy_import": "kW.h",
    "active_power_export": "W",
    "active_energy_export": "kW.h",
    "reactive_power_import": "V.A{reactive}",
    "reactive_power_export": "V.A{reactive}",
    "reactive_energy_import": "kV.A{reactive}.h",
    "reactive_energy_export": "kV.A{reactive}.h",
    "phase_voltage_l1": "V",
    "phase_current_l3": "A",
    "heat_energy": "kW.h",
    "supply_temperature": "Cel",
    "indoor_co2": "[ppm]",
    "indoor_temperature": "Cel",
    "illuminance": "lx",
    "motion_count": "{count}",
}
PUBLIC_VOCABULARIES = {"dd.eionet.europa.eu", "qudt.org", "saref.etsi.org", "smartdatamodels.org"}


@pytest.mark.parametrize(("key", "unit"), sorted(REQUIRED.items()))
def test_required_properties_have_canonical_ucum_units(key: str, unit: str) -> None:
    prop = vocabulary().get(key)
    assert prop.unit == unit
    assert units.is_valid(prop.unit)


def test_definitions_come_from_public_vocabularies() -> None:
    for prop in vocabulary().properties:
        host = urlsplit(prop.definition).hostname or ""
        assert host.removeprefix("www.") in PUBLIC_VOCABULARIES, (prop.key, prop.definition)


def test_cumulative_counters_are_marked() -> None:
    cumulative = {p.key for p in vocabulary().properties if p.cumulative}
    assert cumulative == {
        "active_energy_import", "active_energy_export", "reactive_energy_import", "reactive_energy_export",
        "heat_energy",
    }  # fmt: skip


def test_unknown_key_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="unknown observed property 'pm1'"):
        vocabulary().get("pm1")


def test_bad_entries_are_refused() -> None:
    good = vocabulary().get("pm10").model_dump()
    with pytest.raises(ValueError, match="not UCUM"):
        PropertyDef.model_validate({**good, "unit": "micrograms per cubic metre"})
    with pytest.raises(ValueError, match="range"):
        PropertyDef.model_validate({**good, "range": (10, 0)})
    words = vocabulary().boolean_text.model_dump()
    with pytest.raises(ValueError, match="duplicate property keys"):
        Vocabulary.model_validate({"version": 1, "base_uri": "x", "boolean_text": words, "properties": [good, good]})
    with pytest.raises(ValueError, match="both true and false"):
        BooleanText.model_validate({"true": ["on", "yes"], "false": ["off", " YES"]})


def test_unit_of_measurement_for_sensorthings() -> None:
    uom = vocabulary().get("pm2_5").unit_of_measurement()
    assert uom == {
        "name": "ug/m3",
        "symbol": "µg/m³",
        "definition": "http://unitsofmeasure.org/ucum.html#ug/m3",
    }
