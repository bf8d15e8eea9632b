"""The Things Stack v3 and ChirpStack v4 envelopes, over their documented examples and faults."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import pytest

from ingest.envelopes import Uplink, chirpstack_v4, normalise_eui, tts_v3
from ingest.sources import Source, SourceSet
from ingest.types import MALFORMED, DecodeError, RawMessage
from tests.ingest.ingest_testdata import PAYLOADS, RECEIVED

TTS_TOPIC = "v3/app1/devices/dev1/up"
CS_TOPIC = "application/17c82e96/device/0101010101010101/event/up"


def _raw(topic: str, doc: object) -> RawMessage:
    return RawMessage(topic, orjson.dumps(doc), RECEIVED)


def _doc(name: str) -> dict[str, object]:
    return orjson.loads((PAYLOADS / name).read_bytes())  # type: ignore[no-any-return]


def test_tts_docs_example(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    """TheThingsIndustries/lorawan-stack-docs integrations/data-formats, 'Uplink message example'."""
    up = tts_v3.decode(raw_file(TTS_TOPIC, "tts_v3/docs-uplink-example.json"), sources["tts"])
    assert up == Uplink(
        device_id="0004a30b001c0530",
        f_port=0,  # the example omits f_port: zero values are omitted
        payload=bytes.fromhex("8241de"),
        time=datetime(2020, 2, 12, 15, 15, 45, 789585, tzinfo=UTC),
        zone_assumed=False,
        network_decoded={"temperature": 1.0, "luminosity": 0.64},
        model_hint=None,
        meta={"f_port": 0, "f_cnt": 1, "network_device_id": "dev1"},
    )


def test_tts_nwave_uplink_with_version_ids(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    topic = "v3/kristiansund-parking/devices/eui-70b3d5e75e000341/up"
    up = tts_v3.decode(raw_file(topic, "tts_v3/nwave-parking-status.json"), sources["tts"])
    assert (up.device_id, up.f_port, up.payload, up.model_hint) == ("70b3d5e75e000341", 1, b"\x95", "nwave/nps405")
    assert up.time == datetime(2025, 3, 4, 7, 15, 2, 228611, tzinfo=UTC)  # network server time, ns cut to µs
    assert up.network_decoded is None


def test_tts_formatter_failure_leaves_raw_bytes(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    up = tts_v3.decode(raw_file(TTS_TOPIC, "tts_v3/nwave-heartbeat-formatter-failed.json"), sources["tts"])
    assert up.network_decoded is None
    assert up.payload == bytes.fromhex("00D3D800590B")
    assert up.f_port == 2


def test_tts_zero_omitted_fields() -> None:
    source = Source("t", "tts_v3", ("v3/+/devices/{device_id}/up",))
    up = tts_v3.decode(
        _raw("v3/a/devices/sensor-7/up", {"end_device_ids": {"device_id": "sensor-7"}, "uplink_message": {}}), source
    )
    assert (up.device_id, up.f_port, up.payload, up.time, up.model_hint) == ("sensor-7", 0, b"", None, None)


def test_tts_zone_less_time_is_read_in_the_source_zone() -> None:
    source = Source("t", "tts_v3", ("v3/+/devices/{device_id}/up",), timezone=UTC)
    doc = {"end_device_ids": {"dev_eui": "0004A30B001C0530"}, "uplink_message": {"received_at": "2025-03-04T07:00:00"}}
    up = tts_v3.decode(_raw("v3/a/devices/x/up", doc), source)
    assert up.time == datetime(2025, 3, 4, 7, 0, tzinfo=UTC)
    assert up.zone_assumed is True


def test_device_id_from_topic() -> None:
    source = Source("t", "tts_v3", ("v3/+/devices/{device_id}/up",), device_id_from="topic")
    doc = {"end_device_ids": {"dev_eui": "0004A30B001C0530"}, "uplink_message": {"f_port": 1}}
    assert tts_v3.decode(_raw("v3/a/devices/room-104/up", doc), source).device_id == "room-104"


TTS_FAULTS: list[tuple[str, bytes | object, str]] = [
    ("truncated JSON", (PAYLOADS / "tts_v3/nwave-parking-status.json").read_bytes()[:200], "not valid JSON"),
    ("not an object", [1, 2], "expected a JSON object"),
    ("join-accept, not an uplink", {"end_device_ids": {"dev_eui": "0004A30B001C0530"}, "join_accept": {}},
     "no uplink_message"),
    ("bad base64", {"end_device_ids": {"dev_eui": "0004A30B001C0530"},
                    "uplink_message": {"f_port": 1, "frm_payload": "gk@e"}}, "bad base64"),
    ("base64 without padding", {"end_device_ids": {"dev_eui": "0004A30B001C0530"},
                                "uplink_message": {"f_port": 1, "frm_payload": "lQ"}}, "bad base64"),
    ("port as text", {"end_device_ids": {"dev_eui": "0004A30B001C0530"}, "uplink_message": {"f_port": "1"}},
     "FPort must be an integer"),
    ("port out of range", {"end_device_ids": {"dev_eui": "0004A30B001C0530"}, "uplink_message": {"f_port": 256}},
     "FPort must be an integer"),
    ("DevEUI not 16 hex digits", {"end_device_ids": {"dev_eui": "0004A30B001C05"}, "uplink_message": {}},
     "not 16 hex digits"),
    ("time not ISO 8601", {"end_device_ids": {"dev_eui": "0004A30B001C0530"},
                           "uplink_message": {"received_at": "yesterday"}}, "not an ISO 8601 time"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "doc", "detail"), TTS_FAULTS, ids=[r[0] for r in TTS_FAULTS])
def test_tts_faults(sources: SourceSet, what: str, doc: object, detail: str) -> None:
    raw = RawMessage(TTS_TOPIC, doc if isinstance(doc, bytes) else orjson.dumps(doc), RECEIVED)
    with pytest.raises(DecodeError) as info:
        tts_v3.decode(raw, sources["tts"])
    assert detail in info.value.detail
    assert info.value.reason == MALFORMED


def test_chirpstack_docs_example(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    """chirpstack/chirpstack-docs integrations/events.md, 'up - Uplink event'."""
    up = chirpstack_v4.decode(raw_file(CS_TOPIC, "chirpstack_v4/docs-up-event.json"), sources["chirpstack"])
    assert up == Uplink(
        device_id="0101010101010101",
        f_port=1,
        payload=b"\xaa",
        time=datetime(2022, 7, 18, 9, 34, 15, 775023, tzinfo=UTC),
        zone_assumed=False,
        network_decoded=None,
        model_hint="Test device-profile",
        meta={
            "f_port": 1,
            "network_model_hint": "Test device-profile",
            "deduplication_id": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        },
    )


def test_chirpstack_object_and_profile(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    raw = raw_file("application/x/device/fcd6bdfffe000117/event/up", "chirpstack_v4/bosch-heartbeat-object.json")
    up = chirpstack_v4.decode(raw, sources["chirpstack"])
    assert up.network_decoded == {"type": "heartbeat", "occupied": True, "temperature": -1}
    assert (up.model_hint, up.f_port, up.payload, up.meta["f_cnt"]) == ("bosch-tps110", 2, b"\x01\xff", 88)
    assert up.time == datetime(2025, 3, 4, 6, 0, 0, 500000, tzinfo=UTC)


def test_chirpstack_status_event_is_not_an_uplink(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    with pytest.raises(DecodeError, match="not an 'up' event"):
        chirpstack_v4.decode(raw_file(CS_TOPIC, "chirpstack_v4/docs-status-event.json"), sources["chirpstack"])


def test_chirpstack_device_from_topic_when_payload_lacks_it(sources: SourceSet) -> None:
    doc = {"deviceInfo": {"deviceName": "x"}, "fPort": 5, "data": "AQDi"}
    up = chirpstack_v4.decode(_raw("application/a/device/A81758FFFE04C1D2/event/up", doc), sources["chirpstack"])
    assert up.device_id == "a81758fffe04c1d2"


CS_FAULTS: list[tuple[str, bytes | object, str]] = [
    ("truncated JSON", (PAYLOADS / "chirpstack_v4/docs-up-event.json").read_bytes()[:-30], "not valid JSON"),
    ("no deviceInfo", {"fPort": 1, "data": "qg=="}, "no deviceInfo"),
    ("bad base64", {"deviceInfo": {"devEui": "0101010101010101"}, "fPort": 1, "data": "q*=="}, "bad base64"),
    ("data not text", {"deviceInfo": {"devEui": "0101010101010101"}, "fPort": 1, "data": [170]}, "expected base64"),
    ("negative port", {"deviceInfo": {"devEui": "0101010101010101"}, "fPort": -1}, "FPort"),
    ("zone-less garbage time", {"deviceInfo": {"devEui": "0101010101010101"}, "fPort": 1, "time": 1658136855},
     "expected an ISO 8601 time"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "doc", "detail"), CS_FAULTS, ids=[r[0] for r in CS_FAULTS])
def test_chirpstack_faults(sources: SourceSet, what: str, doc: object, detail: str) -> None:
    raw = RawMessage(CS_TOPIC, doc if isinstance(doc, bytes) else orjson.dumps(doc), RECEIVED)
    with pytest.raises(DecodeError) as info:
        chirpstack_v4.decode(raw, sources["chirpstack"])
    assert detail in info.value.detail


@pytest.mark.parametrize(
    ("text", "eui"),
    [("0004A30B001C0530", "0004a30b001c0530"), ("00-04-a3-0b-00-1c-05-30", "0004a30b001c0530"),
     (" A81758FFFE04C1D2 ", "a81758fffe04c1d2")],
)  # fmt: skip
def test_normalise_eui(text: str, eui: str) -> None:
    assert normalise_eui(text) == eui
