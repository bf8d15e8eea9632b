"""Encoders against the vendors' published examples, byte for byte, and against small reference
decoders (written here from the published codecs, independent of ingest) over random values."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators.encoders import airrohr, amsreader, bosch, elsys, lorawan, nilu, nwave, senml

# TheThingsNetwork/lorawan-devices vendor/nwave/nps405-codec.yaml (examples: input bytes, output data)
NWAVE_EXAMPLES: list[tuple[int, list[int], dict[str, Any]]] = [
    (
        1,
        [0x95],
        {
            "type": "parking_status",
            "occupied": True,
            "previous_state_duration": 74,
            "previous_state_duration_error": 0,
            "previous_state_duration_overflow": False,
        },
    ),
    (
        10,
        [0xD1, 0x1F, 0x34, 0x56, 0x78],
        {
            "type": "user_registration",
            "occupied": True,
            "previous_state_duration": 160,
            "previous_state_duration_error": 4,
            "previous_state_duration_overflow": False,
            "tag_id": "1F345678",
        },
    ),
    (
        2,
        [0x00, 0xD3, 0xD8, 0x00, 0x59, 0x0B],
        {
            "type": "heartbeat",
            "occupied": False,
            "battery_voltage": 3.344,
            "temperature": -10,
            "battery_health": "normal",
            "hw_health_status": 0,
        },
    ),
    (
        3,
        [0x02, 0x04, 0x09, 0x02, 0x00],
        {"type": "startup", "firmware_version": "2.4.9", "reset_cause": "power_on", "occupied": False},
    ),
]

# TheThingsNetwork/lorawan-devices vendor/bosch/tps110-0292-codec.yaml
BOSCH_EXAMPLES: list[tuple[int, list[int], dict[str, Any]]] = [
    (1, [1], {"type": "parking status", "occupied": True}),
    (2, [1, 255], {"type": "heartbeat", "occupied": True, "temperature": -1}),
    (
        3,
        [0x24, 3, 0, 0, 0x75, 3, 0, 0, 0, 0, 0, 0, 0, 29, 2, 3, 1],
        {
            "type": "startup",
            "debugCodes": [804, 885],
            "firmwareVersion": "0.29.2",
            "resetCause": "system request",
            "occupied": True,
        },
    ),
]

# TheThingsNetwork/lorawan-devices vendor/elsys/ers-co2-codec.yaml
ELSYS_EXAMPLES: list[tuple[list[int], dict[str, Any]]] = [
    (
        [0x01, 0x00, 0xE2, 0x02, 0x29, 0x04, 0x00, 0x27, 0x05, 0x06, 0x06, 0x03, 0x08],
        {"temperature": 22.6, "humidity": 41, "light": 39, "motion": 6, "co2": 776},
    ),
]


@pytest.mark.parametrize(("port", "payload", "data"), NWAVE_EXAMPLES)
def test_nwave_published_examples(port: int, payload: list[int], data: dict[str, Any]) -> None:
    assert nwave.encode(port, data, occupied_bit=0) == bytes(payload)


def test_nwave_status_example_base64() -> None:
    # wire-formats reference: 0x95 travels as frm_payload "lQ==".
    assert lorawan.b64(nwave.encode(1, nwave.status(True, 74))) == "lQ=="


@pytest.mark.parametrize(("port", "payload", "data"), BOSCH_EXAMPLES)
def test_bosch_published_examples(port: int, payload: list[int], data: dict[str, Any]) -> None:
    assert bosch.encode(port, data) == bytes(payload)


@pytest.mark.parametrize(("payload", "data"), ELSYS_EXAMPLES)
def test_elsys_published_examples(payload: list[int], data: dict[str, Any]) -> None:
    assert elsys.encode(data) == bytes(payload)


# --- reference decoders (from the published codecs; tests only) ---------------------------------


def ref_nwave(port: int, b: bytes, occupied_bit: int = 0) -> dict[str, Any]:
    def flag(byte: int) -> tuple[bool, int]:
        if occupied_bit == 0:
            return bool(byte & 1), (byte >> 1) & 0x7F
        return bool(byte >> 7 & 1), byte & 0x7F

    if port == 1:
        occ, code = flag(b[0])
        duration, _, overflow = nwave.expand_duration(code)
        return {"occupied": occ, "previous_state_duration": duration, "overflow": overflow}
    if port == 2:
        temp = (b[2] - 256 if b[2] > 127 else b[2]) / 2 + 10
        return {"occupied": flag(b[0])[0], "battery_voltage": (2500 + b[1] * 4) / 1000, "temperature": temp}
    raise AssertionError(port)


def ref_elsys(b: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    i = 0
    while i < len(b):
        t = b[i]
        if t == 0x01:
            out["temperature"] = int.from_bytes(b[i + 1 : i + 3], "big", signed=True) / 10
            i += 3
        elif t in (0x02, 0x05):
            out["humidity" if t == 0x02 else "motion"] = b[i + 1]
            i += 2
        elif t in (0x04, 0x06, 0x07):
            out[{0x04: "light", 0x06: "co2", 0x07: "vdd"}[t]] = int.from_bytes(b[i + 1 : i + 3], "big")
            i += 3
        else:
            raise AssertionError(f"type {t:#x}")
    return out


@given(
    occupied=st.booleans(),
    minutes=st.integers(min_value=0, max_value=2000),
    bit=st.sampled_from([0, 7]),
)
def test_nwave_status_round_trip(occupied: bool, minutes: int, bit: int) -> None:
    fields = nwave.status(occupied, minutes)
    decoded = ref_nwave(1, nwave.encode(1, fields, occupied_bit=bit), bit)
    assert decoded["occupied"] is occupied
    assert decoded["previous_state_duration"] == fields["previous_state_duration"]
    # quantisation never claims a longer stay than the truth, except the overflow code's 660
    assert decoded["previous_state_duration"] <= max(minutes, 660 if decoded["overflow"] else minutes)


@given(
    occupied=st.booleans(),
    battery=st.floats(min_value=2.5, max_value=3.52),
    temperature=st.floats(min_value=-50, max_value=70),
    bit=st.sampled_from([0, 7]),
)
def test_nwave_heartbeat_round_trip(occupied: bool, battery: float, temperature: float, bit: int) -> None:
    fields = nwave.heartbeat(occupied, battery, temperature)
    decoded = ref_nwave(2, nwave.encode(2, fields, occupied_bit=bit), bit)
    assert decoded["occupied"] is occupied
    assert decoded["battery_voltage"] == fields["battery_voltage"]
    assert decoded["temperature"] == fields["temperature"]
    assert abs(decoded["battery_voltage"] - battery) <= 0.002 + 1e-9
    assert abs(decoded["temperature"] - temperature) <= 0.25 + 1e-9


@given(
    temperature=st.floats(min_value=-40, max_value=60),
    humidity=st.floats(min_value=0, max_value=100),
    light=st.floats(min_value=0, max_value=65535),
    motion=st.integers(min_value=0, max_value=255),
    co2=st.floats(min_value=0, max_value=65535),
    vdd=st.floats(min_value=2000, max_value=3700),
)
def test_elsys_round_trip(
    temperature: float, humidity: float, light: float, motion: int, co2: float, vdd: float
) -> None:
    fields = elsys.reading(temperature=temperature, humidity=humidity, light=light, motion=motion, co2=co2, vdd=vdd)
    assert ref_elsys(elsys.encode(fields)) == fields


@given(occupied=st.booleans(), temperature=st.floats(min_value=-40, max_value=60))
def test_bosch_heartbeat_round_trip(occupied: bool, temperature: float) -> None:
    fields = bosch.heartbeat(occupied, temperature)
    b = bosch.encode(2, fields)
    assert bool(b[0] & 1) is occupied
    assert (b[1] - 256 if b[1] & 0x80 else b[1]) == fields["temperature"]


# --- JSON envelopes -----------------------------------------------------------------------------

T0 = datetime(2026, 3, 4, 7, 30, 12, 345678, tzinfo=UTC)
GW = lorawan.GatewayRx("kristiansund-gw-01", "B827EBFFFE000001", -97, 7.5, 123456789, 63.11, 7.73)


def test_tts_uplink_shape() -> None:
    msg = lorawan.tts_uplink(
        device_id="eui-70b3d57ed0000001",
        application_id="kristiansund-parking",
        dev_eui="70b3d57ed0000001",
        join_eui="70b3d57ed0000000",
        dev_addr="260b0001",
        received_at=T0,
        f_port=1,
        f_cnt=0,
        frm_payload=bytes([0x95]),
        gateways=[GW],
        version_ids={"brand_id": "nwave", "model_id": "nps405"},
        correlation_ids=["as:up:01ABC"],
        session_key_id="AYx=",
        decoded_payload=nwave.status(True, 74),
    )
    parsed = json.loads(lorawan.dumps(msg))
    up = parsed["uplink_message"]
    assert parsed["end_device_ids"]["dev_eui"] == "70B3D57ED0000001"
    assert up["frm_payload"] == "lQ==" and base64.b64decode(up["frm_payload"]) == b"\x95"
    assert "f_cnt" not in up  # zero values are omitted by the protobuf JSON mapping
    assert up["received_at"] == "2026-03-04T07:30:12.345678000Z"
    assert up["version_ids"] == {"brand_id": "nwave", "model_id": "nps405"}
    assert up["decoded_payload"]["previous_state_duration"] == 74
    assert up["rx_metadata"][0]["gateway_ids"]["gateway_id"] == "kristiansund-gw-01"


def test_chirpstack_uplink_shape() -> None:
    msg = lorawan.chirpstack_uplink(
        deduplication_id="3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        time=T0,
        tenant_id="t",
        tenant_name="Stavanger kommune",
        application_id="a",
        application_name="rennesoy-energy",
        device_profile_id="p",
        device_profile_name="elsys-ers-co2",
        device_name="A101",
        dev_eui="A81758FFFE000001",
        dev_addr="00189440",
        f_port=5,
        f_cnt=7,
        data=elsys.encode(ELSYS_EXAMPLES[0][1]),
        gateways=[GW],
    )
    parsed = json.loads(lorawan.dumps(msg))
    assert parsed["deviceInfo"]["deviceProfileName"] == "elsys-ers-co2"
    assert parsed["deviceInfo"]["devEui"] == "a81758fffe000001"
    assert parsed["time"] == "2026-03-04T07:30:12.345678000+00:00"
    assert base64.b64decode(parsed["data"]) == bytes(ELSYS_EXAMPLES[0][0])
    assert parsed["fPort"] == 5 and parsed["fCnt"] == 7


def test_airrohr_body_is_the_firmware_layout() -> None:
    values = airrohr.sds_bme280_values(
        12.3, 7.1, 4.2, 100720.0, 91.2, samples=3960911, min_micro=28, max_micro=20045, signal=-70
    )
    text = airrohr.body("13597771", "NRZ-2024-135", values).decode()
    assert text == (
        '{"esp8266id": "13597771", "software_version": "NRZ-2024-135", "sensordatavalues":['
        '{"value_type":"SDS_P1","value":"12.30"},{"value_type":"SDS_P2","value":"7.10"},'
        '{"value_type":"BME280_temperature","value":"4.20"},{"value_type":"BME280_pressure","value":"100720.00"},'
        '{"value_type":"BME280_humidity","value":"91.20"},{"value_type":"samples","value":"3960911"},'
        '{"value_type":"min_micro","value":"28"},{"value_type":"max_micro","value":"20045"},'
        '{"value_type":"interval","value":"145000"},{"value_type":"signal","value":"-70"}]}'
    )
    assert json.loads(text)["sensordatavalues"][0] == {"value_type": "SDS_P1", "value": "12.30"}


def test_nilu_record_matches_published_shape() -> None:
    # The wire-formats reference's example record (api.nilu.no), rebuilt field for field.
    rec = nilu.record(
        station="Olav V gate",
        component="PM10",
        start=datetime(2018, 6, 4, 10, tzinfo=UTC),
        end=datetime(2018, 6, 4, 11, tzinfo=UTC),
        value=10.506,
        unit="µg/m³",
        index=1,
        latitude=67.275501,
        longitude=14.419057,
    )
    assert json.loads(nilu.body([rec])) == [
        {
            "zone": "Midt-Norge og Nordland",
            "municipality": "N/A",
            "area": "Bodø",
            "station": "Olav V gate",
            "eoi": None,
            "component": "PM10",
            "fromTime": "2018-06-04T11:00:00+01:00",
            "toTime": "2018-06-04T12:00:00+01:00",
            "value": 10.506,
            "unit": "µg/m³",
            "index": 1,
            "color": "6ee86e",
            "latitude": 67.275501,
            "longitude": 14.419057,
        }
    ]


def test_amsreader_templates_parse() -> None:
    head = amsreader.Header("A4:CF:12:34:56:78", "vikevag-skule", 3600, 1741075200, 3.301, -61, 31.5)
    rt = amsreader.Realtime(1.25, 30.4, 10, 12.5)
    one = json.loads(amsreader.list1(head, 12345, rt))
    assert one["data"] == {"P": 12345} and one["t"] == 1741075200
    values = amsreader.Instant("AIDON_V0001", "7359992890941742", "6525", 0, 0, 120, (10.1, 9.8, 11.0),
                               (230.1, 229.8, 231.0))  # fmt: skip
    two = json.loads(amsreader.list2(head, 12345, values, rt))
    assert two["data"] == {
        "lv": "AIDON_V0001", "id": "7359992890941742", "type": "6525", "P": 12345, "Q": 0, "PO": 0, "QO": 120,
        "I1": 10.1, "I2": 9.8, "I3": 11.0, "U1": 230.1, "U2": 229.8, "U3": 231.0,
    }  # fmt: skip
    three = json.loads(
        amsreader.list3(
            head, p=12345, values=values, tpi=48213.712, tpo=0.0, tqi=10.0, tqo=200.5, rtc=1741075200, realtime=rt
        )
    )
    assert three["data"] == {**two["data"], "tPI": 48213.712, "tPO": 0.0, "tQI": 10.0, "tQO": 200.5, "rtc": 1741075200}
    assert json.loads(amsreader.list1(head, "12345", rt))["data"]["P"] == "12345"


def test_senml_pack_matches_rfc_shape() -> None:
    recs = senml.pack(
        "urn:dev:mac:0024befffe804ff1:",
        1741075200,
        [
            senml.Record("heat_energy", "kWh", 48213.7, field="s"),
            senml.Record("supply_temp", "Cel", 61.5),
            senml.Record("co2", "ppm", 1180, t=-300),
        ],
    )
    assert json.loads(senml.body(recs)) == [
        {"bn": "urn:dev:mac:0024befffe804ff1:", "bt": 1741075200, "n": "heat_energy", "u": "kWh", "s": 48213.7},
        {"n": "supply_temp", "u": "Cel", "v": 61.5},
        {"n": "co2", "u": "ppm", "v": 1180, "t": -300},
    ]
