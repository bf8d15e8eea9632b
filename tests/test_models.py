"""Shared-schema models: SensorThings entities, provisioning files and device models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from schemas.device_models import DeviceModel, device_models, load_device_models
from schemas.provisioning import Provisioning
from schemas.quality import decode, encode, flag_bits
from schemas.sta import Datastream, Observation, Ref, Thing, format_time, parse_time_object


def test_time_objects() -> None:
    start, end = parse_time_object("2018-06-04T11:00:00+01:00/2018-06-04T12:00:00+01:00")
    assert start == datetime(2018, 6, 4, 10, tzinfo=UTC)
    assert end == datetime(2018, 6, 4, 11, tzinfo=UTC)
    assert parse_time_object("2024-01-01T00:00:00Z") == (datetime(2024, 1, 1, tzinfo=UTC), None)
    assert format_time(start, end) == "2018-06-04T10:00:00Z/2018-06-04T11:00:00Z"
    assert format_time(datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == "2024-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2024-01-01T00:00:00", "no zone"),
        ("2024-01-02T00:00:00Z/2024-01-01T00:00:00Z", "ends before it starts"),
        ("yesterday", "Invalid isoformat"),
    ],
)
def test_bad_time_objects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_time_object(text)


def test_deep_insert_and_links() -> None:
    thing = Thing.model_validate(
        {
            "name": "Skole A",
            "description": "Rennesøy skule",
            "Locations": [{"@iot.id": 3}],
            "Datastreams": [
                {
                    "name": "Effekt",
                    "description": "AMS",
                    "unitOfMeasurement": {"name": "W", "symbol": "W", "definition": "ucum:W"},
                    "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                    "Sensor": {"@iot.id": 1},
                    "ObservedProperty": {
                        "name": "Power",
                        "definition": "https://saref.etsi.org/core/Power",
                        "description": "active power",
                    },
                }
            ],
        }
    )
    assert thing.locations == [Ref(iot_id=3)]
    assert thing.datastreams is not None
    stream = thing.datastreams[0]
    assert isinstance(stream, Datastream)
    assert stream.sensor == Ref(iot_id=1)
    assert thing.model_dump(exclude_none=True, by_alias=True)["Locations"] == [{"@iot.id": 3}]


def test_observation_rejects_zone_less_time_and_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="no zone"):
        Observation.model_validate({"phenomenonTime": "2024-01-01T00:00:00", "result": 1})
    with pytest.raises(ValidationError, match="Extra inputs"):
        Observation.model_validate({"result": 1, "reslt": 2})


def test_quality_flags_round_trip() -> None:
    bits = flag_bits()
    assert len(set(bits.values())) == len(bits)
    value = encode(["out_of_range", "low_cost_sensor"])
    assert value == bits["out_of_range"] | bits["low_cost_sensor"]
    assert decode(value) == ["out_of_range", "low_cost_sensor"]
    with pytest.raises(KeyError):
        encode(["nonsense"])


def test_provisioning_consistency() -> None:
    ok = Provisioning.model_validate(
        {
            "sites": [{"id": "skole-a", "kind": "building", "name": "A", "heated_floor_area": 4200}],
            "devices": [{"id": "ams-1", "model": "amsreader-han", "name": "AMS A", "site": "skole-a"}],
        }
    )
    assert ok.site("skole-a").heated_floor_area == 4200
    with pytest.raises(ValidationError, match="unknown site"):
        Provisioning.model_validate({"devices": [{"id": "d", "model": "m", "name": "n", "site": "nowhere"}]})
    with pytest.raises(ValidationError, match="device ids must be unique"):
        Provisioning.model_validate(
            {"devices": [{"id": "d", "model": "m", "name": "n"}, {"id": "d", "model": "m", "name": "o"}]}
        )
    with pytest.raises(ValidationError):
        Provisioning.model_validate({"devices": [{"id": "d", "model": "m", "name": "n", "location": {"lat": 95}}]})


def test_shipped_device_models_load() -> None:
    models = device_models()
    assert {
        "nwave-nps405",
        "bosch-tps110",
        "elsys-ers-co2",
        "airrohr-sds011-bme280",
        "nilu-reference-station",
        "amsreader-han",
        "senml-heat-gateway",
    } <= set(models)
    assert models["airrohr-sds011-bme280"].station_kind == "low-cost"


def test_device_model_errors_name_the_problem(tmp_path: Path) -> None:
    base = device_models()["elsys-ers-co2"].model_dump(mode="json")
    bad_property = {**base, "fields": {"co2": {"property": "indoor_co3"}}}
    with pytest.raises(ValidationError, match="indoor_co3"):
        DeviceModel.model_validate(bad_property)
    bad_unit = {**base, "fields": {"co2": {"property": "indoor_co2", "unit": "Cel"}}}
    with pytest.raises(ValidationError, match="cannot convert"):
        DeviceModel.model_validate(bad_unit)
    (tmp_path / "other-name.yaml").write_text(yaml.safe_dump(base), encoding="utf-8")
    with pytest.raises(ValueError, match="must match the file name"):
        load_device_models(tmp_path)
