"""Sensor.Community (airrohr) bodies: string values, no timestamp, bridge variants."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import pytest

from ingest.envelopes import sensor_community
from ingest.sources import Source, SourceSet
from ingest.types import DecodeError, RawMessage, Reading
from tests.ingest.ingest_testdata import RECEIVED

TOPIC = "sensor-community/13597771"


def test_wire_formats_example(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    d = sensor_community.decode(
        raw_file(TOPIC, "sensor_community/wire-formats-example.json"), sources["sensor-community"]
    )
    assert d.device_id == "13597771"
    assert d.model_hint == "airrohr-sds011-bme280"
    assert d.readings == (
        Reading("SDS_P1", "12.30"),
        Reading("SDS_P2", "7.10"),
        Reading("BME280_temperature", "4.20"),
        Reading("BME280_humidity", "91.20"),
        Reading("BME280_pressure", "100720.00"),
    )  # no time: the normaliser uses the receive time and flags time_assumed
    assert d.meta == {"software_version": "NRZ-2024-135"}


def test_firmware_body_with_housekeeping_values(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    """airrohr-firmware.ino appends samples, min_micro, max_micro, interval, signal."""
    d = sensor_community.decode(
        raw_file(TOPIC, "sensor_community/firmware-full-body.json"), sources["sensor-community"]
    )
    assert [r.field for r in d.readings] == [
        "SDS_P1", "SDS_P2", "BME280_temperature", "BME280_pressure", "BME280_humidity",
        "samples", "min_micro", "max_micro", "interval", "signal",
    ]  # fmt: skip


def test_zone_less_archive_timestamp(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    d = sensor_community.decode(raw_file(TOPIC, "sensor_community/archive-timestamp.json"), sources["sensor-community"])
    assert {r.time for r in d.readings} == {datetime(2023, 12, 8, 15, 22, 32, tzinfo=UTC)}
    assert all(r.zone_assumed for r in d.readings)


def test_chip_id_as_number_and_missing() -> None:
    source = Source("sc", "sensor_community", ("sensor-community/{device_id}",))
    body = {"esp8266id": 13597771, "sensordatavalues": [{"value_type": "SDS_P1", "value": "1.0"}]}
    assert sensor_community.decode(RawMessage(TOPIC, orjson.dumps(body), RECEIVED), source).device_id == "13597771"
    del body["esp8266id"]
    assert (
        sensor_community.decode(RawMessage("sensor-community/777", orjson.dumps(body), RECEIVED), source).device_id
        == "777"
    )


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"esp8266id":"13597771","sensordatavalues":[{"value_type":"SDS_P1","val', "not valid JSON"),
        (b'{"esp8266id":"1"}', "no sensordatavalues"),
        (b'{"esp8266id":"1","sensordatavalues":{"SDS_P1":"1"}}', "no sensordatavalues"),
        (b'{"esp8266id":"1","sensordatavalues":["SDS_P1"]}', "is not an object"),
        (b'{"esp8266id":"1","sensordatavalues":[{"value":"1"}]}', "no value_type"),
        (b'{"esp8266id":"1","sensordatavalues":[{"value_type":"SDS_P1"}]}', "has no value"),
        (b'{"esp8266id":"1","timestamp":"8.12.2023","sensordatavalues":[]}', "ISO 8601"),
    ],
)
def test_faults(sources: SourceSet, body: bytes, detail: str) -> None:
    with pytest.raises(DecodeError) as info:
        sensor_community.decode(RawMessage(TOPIC, body, RECEIVED), sources["sensor-community"])
    assert detail in info.value.detail


def test_no_device_anywhere() -> None:
    source = Source("sc", "sensor_community", ("bridge/airrohr",))
    with pytest.raises(DecodeError, match="no esp8266id"):
        sensor_community.decode(RawMessage("bridge/airrohr", b'{"sensordatavalues":[]}', RECEIVED), source)
