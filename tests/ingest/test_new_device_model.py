"""Adding a device model of a known envelope and codec is a data change: only YAML files are written.

These tests write a new device model (and a source) into a temporary directory, load them
the way the ingest does (``load_models(extra_dir)``, ``load_sources(path)``), and show a
payload of the new model decoded and normalised. No Python is added for the new model.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from ingest.decode import decode_message, load_models
from ingest.normalise import normalise
from ingest.quality import QualityState
from ingest.sources import load_sources
from ingest.types import RawMessage, UnknownDevice
from schemas.quality import decode as flag_names
from tests.ingest.ingest_testdata import binding_for

ERS_LITE = """\
# Elsys ERS Lite room sensor (temperature and humidity), same TLV codec as the ERS CO2.
key: elsys-ers-lite
vendor: Elsys
name: ERS Lite room sensor
case: energy
envelopes: [chirpstack_v4, tts_v3]
codec: elsys
match:
  chirpstack_profile: elsys-ers-lite
  tts_version_ids: {brand_id: elsys, model_id: ers-lite}
sensor:
  description: Indoor temperature and humidity sensor, LoRaWAN.
  encoding_type: application/pdf
  metadata: https://www.elsys.se/en/ers-lite/
fields:
  temperature: {property: indoor_temperature, unit: Cel}
  humidity: {property: relative_humidity, unit: "%"}
  vdd: {property: battery_voltage, unit: mV}
ignore: [x, y, z]
"""

SENML_ROOM = """\
# A classroom gateway publishing SenML; values carry their own units.
key: senml-classroom
vendor: Generic
name: SenML classroom gateway
case: energy
envelopes: [senml]
sensor:
  description: Classroom climate gateway publishing SenML over MQTT.
  encoding_type: text/html
  metadata: https://www.rfc-editor.org/rfc/rfc8428
fields:
  t: {property: indoor_temperature}
  rh: {property: relative_humidity}
  co2: {property: indoor_co2}
"""

SOURCES = """\
version: 1
sources:
  - name: school-chirpstack
    envelope: chirpstack_v4
    topics: ["school/application/+/device/{device_id}/event/up"]
    timezone: UTC
  - name: classrooms
    envelope: senml
    topics: ["school/classroom/{device_id}"]
    device_model: senml-classroom
"""

RECEIVED = datetime(2025, 3, 4, 9, 0, 30, tzinfo=UTC)
# The ERS Lite example of TheThingsNetwork/lorawan-devices vendor/elsys/ers-lite-codec.yaml
ERS_LITE_PAYLOAD = bytes([0x01, 0x00, 0xE2, 0x02, 0x29])


@pytest.fixture
def config(tmp_path: Path) -> Path:
    devices = tmp_path / "devices"
    devices.mkdir()
    (devices / "elsys-ers-lite.yaml").write_text(ERS_LITE, encoding="utf-8")
    (devices / "senml-classroom.yaml").write_text(SENML_ROOM, encoding="utf-8")
    (tmp_path / "sources.yaml").write_text(SOURCES, encoding="utf-8")
    return tmp_path


def _chirpstack_uplink(profile: str) -> bytes:
    return orjson.dumps(
        {
            "deduplicationId": "0b5f5e47-8f0a-4b59-a1d5-7ad9f2c3e001",
            "time": "2025-03-04T09:00:12.5+00:00",
            "deviceInfo": {"deviceProfileName": profile, "devEui": "a81758fffe05aa01", "deviceName": "rom-211"},
            "fCnt": 7,
            "fPort": 5,
            "data": base64.b64encode(ERS_LITE_PAYLOAD).decode(),
        }
    )


def test_new_lorawan_model_from_yaml_only(config: Path) -> None:
    models = load_models(config / "devices")
    sources = load_sources(config / "sources.yaml")
    sources.check_models(models)
    raw = RawMessage(
        "school/application/1/device/a81758fffe05aa01/event/up", _chirpstack_uplink("elsys-ers-lite"), RECEIVED
    )
    source = sources.match(raw.topic)

    # unknown to the registry: the network's device-profile name finds the new model
    decoded = decode_message(raw, source, lambda _: None, models)
    assert decoded.model_hint == "elsys-ers-lite"
    assert {r.field: r.value for r in decoded.readings} == {"temperature": 22.6, "humidity": 41}

    binding = binding_for(models["elsys-ers-lite"], verified=False)  # as auto provisioning would create it
    out = normalise(decoded, binding, raw.received_at, QualityState(), window=source.window)
    results = {o.datastream_id: o.result for o in out.observations}
    assert results == {
        binding.datastreams["indoor_temperature"]: 22.6,
        binding.datastreams["relative_humidity"]: 41.0,
    }
    for o in out.observations:
        assert o.phenomenon_time == datetime(2025, 3, 4, 9, 0, 12, 500000, tzinfo=UTC)
        assert flag_names(o.quality_flags) == ["unverified_device"]


def test_without_the_yaml_the_device_is_unknown(config: Path) -> None:
    sources = load_sources(config / "sources.yaml")
    raw = RawMessage(
        "school/application/1/device/a81758fffe05aa01/event/up", _chirpstack_uplink("elsys-ers-lite"), RECEIVED
    )
    with pytest.raises(UnknownDevice):
        decode_message(raw, sources.match(raw.topic), lambda _: None, load_models())


def test_tts_version_ids_find_the_new_model(config: Path) -> None:
    models = load_models(config / "devices")
    doc = {
        "end_device_ids": {"device_id": "rom-211", "dev_eui": "A81758FFFE05AA01"},
        "uplink_message": {
            "f_port": 5,
            "frm_payload": base64.b64encode(ERS_LITE_PAYLOAD).decode(),
            "received_at": "2025-03-04T09:00:12Z",
            "version_ids": {"brand_id": "elsys", "model_id": "ers-lite"},
        },
    }
    raw = RawMessage("v3/school/devices/rom-211/up", orjson.dumps(doc), RECEIVED)
    decoded = decode_message(raw, load_sources().match(raw.topic), lambda _: None, models)
    assert decoded.model_hint == "elsys-ers-lite"


def test_new_senml_model_and_source_from_yaml_only(config: Path) -> None:
    models = load_models(config / "devices")
    sources = load_sources(config / "sources.yaml")
    pack = [
        {"bn": "urn:dev:mac:0024befffe80aa07:", "bt": 1741078800, "n": "t", "u": "Cel", "v": 21.4},
        {"n": "rh", "u": "/", "v": 0.38},
        {"n": "co2", "u": "ppm", "v": 1240},
    ]
    raw = RawMessage("school/classroom/211", orjson.dumps(pack), RECEIVED)
    source = sources.match(raw.topic)
    decoded = decode_message(raw, source, lambda _: None, models)
    assert (decoded.device_id, decoded.model_hint) == ("urn:dev:mac:0024befffe80aa07", "senml-classroom")
    binding = binding_for(models["senml-classroom"])
    out = normalise(decoded, binding, raw.received_at, QualityState(), window=source.window)
    by_property = {k: next(o.result for o in out.observations if o.datastream_id == ds)
                   for k, ds in binding.datastreams.items()}  # fmt: skip
    assert by_property == {"indoor_temperature": 21.4, "relative_humidity": 38.0, "indoor_co2": 1240.0}


def test_a_broken_model_file_fails_at_load(tmp_path: Path) -> None:
    (tmp_path / "elsys-ers-lite.yaml").write_text(ERS_LITE.replace("codec: elsys", "codec: elsis"), encoding="utf-8")
    with pytest.raises(ValueError, match="unknown payload codec 'elsis'"):
        load_models(tmp_path)
