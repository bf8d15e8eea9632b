"""decode_message: envelope, then the codec of the device's model (registry, else the network's hint)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from ingest.decode import decode_message
from ingest.sources import SourceSet
from ingest.types import Decoded, DecodeError, RawMessage, UnknownDevice, UnsupportedPort
from schemas.device_models import DeviceModel

NWAVE_TOPIC = "v3/kristiansund-parking/devices/eui-70b3d5e75e000341/up"


def _none(_: str) -> DeviceModel | None:
    return None


def _decode(
    sources: SourceSet,
    raw: RawMessage,
    model_of: Callable[[str], DeviceModel | None] = _none,
    models: dict[str, DeviceModel] | None = None,
) -> Decoded:
    return decode_message(raw, sources.match(raw.topic), model_of, models)


def test_model_from_tts_version_ids(
    sources: SourceSet, raw_file: Callable[..., RawMessage], models: dict[str, DeviceModel]
) -> None:
    d = _decode(sources, raw_file(NWAVE_TOPIC, "tts_v3/nwave-parking-status.json"), models=models)
    assert (d.device_id, d.model_hint, d.kind) == ("70b3d5e75e000341", "nwave-nps405", "state")
    assert {r.field: r.value for r in d.readings} == {
        "type": "parking_status",
        "occupied": True,
        "previous_state_duration": 74,
        "previous_state_duration_error": 0,
        "previous_state_duration_overflow": False,
    }
    assert d.meta["network_model_hint"] == "nwave/nps405"
    assert d.meta["f_cnt"] == 4711


def test_registered_model_wins_over_the_hint(
    sources: SourceSet, raw_file: Callable[..., RawMessage], models: dict[str, DeviceModel]
) -> None:
    old_fleet = models["nwave-nps405"].model_copy(update={"codec_options": {"occupied_bit": 7}})
    d = _decode(sources, raw_file(NWAVE_TOPIC, "tts_v3/nwave-parking-status.json"),
                lambda dev: old_fleet if dev == "70b3d5e75e000341" else None, models)  # fmt: skip
    fields = {r.field: r.value for r in d.readings}
    assert (fields["occupied"], fields["previous_state_duration"]) == (True, 21)


def test_heartbeat_kind_when_the_formatter_failed(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    d = _decode(sources, raw_file(NWAVE_TOPIC, "tts_v3/nwave-heartbeat-formatter-failed.json"))
    assert d.kind == "heartbeat"
    fields = {r.field: r.value for r in d.readings}
    assert (fields["battery_voltage"], fields["temperature"], fields["occupied"]) == (3.344, -10, False)


def test_chirpstack_elsys_by_profile_name(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    raw = raw_file("application/9a7c/device/a81758fffe04c1d2/event/up", "chirpstack_v4/elsys-ers-co2.json")
    d = _decode(sources, raw)
    assert d.model_hint == "elsys-ers-co2"
    assert {r.field: r.value for r in d.readings} == {
        "temperature": 22.6, "humidity": 41, "light": 39, "motion": 6, "co2": 776, "vdd": 3660,
    }  # fmt: skip
    assert {r.time for r in d.readings} == {datetime(2025, 3, 4, 9, 10, 0, 112233, tzinfo=UTC)}


def test_unknown_device_without_hint(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    with pytest.raises(UnknownDevice) as info:
        _decode(sources, raw_file("v3/app1/devices/dev1/up", "tts_v3/docs-uplink-example.json"))
    assert "0004a30b001c0530" in info.value.detail
    assert info.value.reason == "unknown_device"


def test_unknown_device_with_unknown_hint(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    raw = raw_file("application/17c8/device/0101010101010101/event/up", "chirpstack_v4/docs-up-event.json")
    with pytest.raises(UnknownDevice, match="'Test device-profile'"):
        _decode(sources, raw)


def test_unsupported_port_through_the_registered_codec(
    sources: SourceSet, raw_file: Callable[..., RawMessage], models: dict[str, DeviceModel]
) -> None:
    raw = raw_file("v3/app1/devices/dev1/up", "tts_v3/docs-uplink-example.json")  # f_port omitted -> 0
    with pytest.raises(UnsupportedPort, match="fPort 0"):
        _decode(sources, raw, lambda _: models["nwave-nps405"])


def test_model_without_codec_uses_the_network_servers_object(
    sources: SourceSet, raw_file: Callable[..., RawMessage], models: dict[str, DeviceModel]
) -> None:
    formatter_only = models["bosch-tps110"].model_copy(update={"codec": None})
    raw = raw_file("application/x/device/fcd6bdfffe000117/event/up", "chirpstack_v4/bosch-heartbeat-object.json")
    d = _decode(sources, raw, lambda _: formatter_only)
    assert {r.field: r.value for r in d.readings} == {"type": "heartbeat", "occupied": True, "temperature": -1}
    assert d.kind == "state"


def test_model_without_codec_and_no_network_object(
    sources: SourceSet, raw_file: Callable[..., RawMessage], models: dict[str, DeviceModel]
) -> None:
    formatter_only = models["nwave-nps405"].model_copy(update={"codec": None, "codec_options": {}})
    with pytest.raises(DecodeError, match="no payload codec"):
        _decode(sources, raw_file(NWAVE_TOPIC, "tts_v3/nwave-parking-status.json"), lambda _: formatter_only)


# Every stored payload through the configured sources: (topic, file, device id, readings, model).
ALL_FILES = [
    (NWAVE_TOPIC, "tts_v3/nwave-parking-status.json", "70b3d5e75e000341", 5, "nwave-nps405"),
    ("application/x/device/fcd6bdfffe000117/event/up", "chirpstack_v4/bosch-heartbeat-object.json",
     "fcd6bdfffe000117", 3, "bosch-tps110"),
    ("sensor-community/13597771", "sensor_community/firmware-full-body.json", "13597771", 10, "airrohr-sds011-bme280"),
    ("nilu/olav-v-gate", "nilu/bodo-hour-list.json", "Olav V gate", 3, "nilu-reference-station"),
    ("amsreader/x", "amsreader/list3.json", "A4:CF:12:F3:77:01", 18, "amsreader-han"),
    ("senml/gw", "senml/heat-gateway.json", "urn:dev:mac:0024befffe804ff1", 3, "senml-heat-gateway"),
    ("v1.1/Datastreams(42)/Observations", "sta/datastream-topic.json", "Datastreams(42)", 1, None),
]  # fmt: skip


@pytest.mark.parametrize(("topic", "name", "device", "count", "model"), ALL_FILES, ids=[r[1] for r in ALL_FILES])
def test_every_source(
    sources: SourceSet,
    raw_file: Callable[..., RawMessage],
    topic: str,
    name: str,
    device: str,
    count: int,
    model: str | None,
) -> None:
    d = _decode(sources, raw_file(topic, name))
    assert (d.device_id, len(d.readings), d.model_hint) == (device, count, model)


def _with(raw: RawMessage, change: Callable[[Any], None], topic: str | None = None) -> RawMessage:
    doc = orjson.loads(raw.payload)
    change(doc)
    return RawMessage(topic or raw.topic, orjson.dumps(doc), raw.received_at)


def _set(key: str, value: Any) -> Callable[[Any], None]:
    def change(doc: Any) -> None:
        (doc[0] if isinstance(doc, list) else doc)[key] = value

    return change


# (topic, payload file, change, what the error says): a device id is a key, quarantine field and log text
BAD_IDS = [
    ("sensor-community/x", "sensor_community/firmware-full-body.json", _set("esp8266id", "1\x002"),
     "control character '\\x00'"),
    ("sensor-community/x", "sensor_community/firmware-full-body.json", _set("esp8266id", "9" * 201),
     "201 characters long"),
    ("amsreader/x", "amsreader/list3.json", _set("id", "A4:CF:12:F3:77:01\x00"), "control character '\\x00'"),
    ("amsreader/x", "amsreader/system.json", _set("id", "A4:CF\n12"), "control character '\\n'"),
    ("nilu/x", "nilu/bodo-pm10.json", _set("station", "Olav V\x00 gate"), "control character '\\x00'"),
    ("nilu/x", "nilu/bodo-hour-list.json", lambda doc: [r.update(station="Olav\x1bV") for r in doc],
     "control character '\\x1b'"),
    ("senml/gw", "senml/heat-gateway.json", _set("bn", "urn:dev:mac:0024\x00befffe804ff1:"),
     "is not a valid SenML name"),  # RFC 8428 names are strict: the name check sees it first
    ("v3/app/devices/x\x07y/up", "tts_v3/docs-uplink-example.json",
     lambda doc: doc["end_device_ids"].pop("dev_eui", None) and doc["end_device_ids"].update(device_id="a\x00b"),
     "control character '\\x00'"),
]  # fmt: skip


@pytest.mark.parametrize(("topic", "name", "change", "message"), BAD_IDS)
def test_device_ids_with_control_characters_are_malformed(
    sources: SourceSet,
    raw_file: Callable[..., RawMessage],
    topic: str,
    name: str,
    change: Callable[[Any], None],
    message: str,
) -> None:
    raw = _with(raw_file(topic, name), change)
    with pytest.raises(DecodeError) as info:
        _decode(sources, raw)
    assert info.value.reason == "malformed"
    assert message in info.value.detail
    assert info.value.detail.isprintable()  # the error text itself is safe to store and log


def test_a_device_id_from_the_topic_is_checked_too(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    raw = _with(raw_file("senml/gw", "senml/heat-gateway.json"), lambda doc: doc[0].pop("bn"), topic="senml/gw\x01")
    with pytest.raises(DecodeError, match="control character"):
        _decode(sources, raw)
    fine = _with(raw_file("senml/gw", "senml/heat-gateway.json"), lambda doc: doc[0].pop("bn"), topic="senml/Bodø gw")
    assert _decode(sources, fine).device_id == "Bodø gw"  # letters of any script are fine
