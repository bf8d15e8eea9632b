"""LoRaWAN payload codecs against the vendors' published examples (TheThingsNetwork/lorawan-devices).

Each row names the file (and commit, where versions differ) its vector comes from.
"""

from __future__ import annotations

from typing import Any

import pytest

from ingest.codecs import CODECS, check_models, get_codec
from ingest.types import MALFORMED, UNSUPPORTED_PORT, DecodeError, UnsupportedPort
from schemas.device_models import DeviceModel

LD = "TheThingsNetwork/lorawan-devices"

# (source, codec, options, fPort, bytes, expected fields)
PUBLISHED: list[tuple[str, str, dict[str, Any], int, list[int], dict[str, Any]]] = [
    (f"{LD} vendor/nwave/nps405-codec.yaml 'Parking Status'", "nwave_nps405", {"occupied_bit": 0}, 1, [0x95],
     {"type": "parking_status", "occupied": True, "previous_state_duration": 74,
      "previous_state_duration_error": 0, "previous_state_duration_overflow": False}),
    (f"{LD} vendor/nwave/nps405-codec.yaml @62c8acd 'User Registration' (5 bytes)", "nwave_nps405", {}, 10,
     [0xD1, 0x1F, 0x34, 0x56, 0x78],
     {"type": "user_registration", "occupied": True, "previous_state_duration": 160,
      "previous_state_duration_error": 4, "previous_state_duration_overflow": False, "tag_id": "1F345678"}),
    (f"{LD} vendor/nwave/nps405-codec.yaml @2ed97bc 'User Registration' (6 bytes)", "nwave_nps405", {}, 10,
     [0xD1, 0x20, 0x1F, 0x34, 0x56, 0x78],
     {"type": "user_registration", "occupied": True, "previous_state_duration": 160,
      "previous_state_duration_error": 4, "previous_state_duration_overflow": False,
      "tag_battery_voltage": 3.2, "tag_id": "1F345678"}),
    (f"{LD} vendor/nwave/nps405-codec.yaml 'Heartbeat'", "nwave_nps405", {}, 2,
     [0x00, 0xD3, 0xD8, 0x00, 0x59, 0x0B],
     {"type": "heartbeat", "occupied": False, "battery_voltage": 3.344, "temperature": -10,
      "battery_health": "normal", "hw_health_status": 0}),
    (f"{LD} vendor/nwave/nps405-codec.yaml 'Startup'", "nwave_nps405", {}, 3, [0x02, 0x04, 0x09, 0x02, 0x00],
     {"type": "startup", "firmware_version": "2.4.9", "reset_cause": "power_on", "occupied": False}),
    (f"{LD} vendor/bosch/tps110-0292-codec.yaml 'Parking Status'", "bosch_tps110", {}, 1, [1],
     {"type": "parking status", "occupied": True}),
    (f"{LD} vendor/bosch/tps110-0292-codec.yaml 'Heartbeat'", "bosch_tps110", {}, 2, [1, 255],
     {"type": "heartbeat", "occupied": True, "temperature": -1}),
    (f"{LD} vendor/bosch/tps110-0292-codec.yaml 'Startup with codes 804 and 885'", "bosch_tps110", {}, 3,
     [0x24, 3, 0, 0, 0x75, 3, 0, 0, 0, 0, 0, 0, 0, 29, 2, 3, 1],
     {"type": "startup", "debugCodes": [804, 885], "firmwareVersion": "0.29.2", "resetCause": "system request",
      "occupied": True}),
    (f"{LD} vendor/elsys/ers-co2-codec.yaml", "elsys", {}, 1,
     [0x01, 0x00, 0xE2, 0x02, 0x29, 0x04, 0x00, 0x27, 0x05, 0x06, 0x06, 0x03, 0x08],
     {"temperature": 22.6, "humidity": 41, "light": 39, "motion": 6, "co2": 776}),
    (f"{LD} vendor/elsys/ers-lite-codec.yaml", "elsys", {}, 1, [0x01, 0x00, 0xE2, 0x02, 0x29],
     {"temperature": 22.6, "humidity": 41}),
    (f"{LD} vendor/elsys/ers-sound-codec.yaml", "elsys", {}, 1,
     [0x01, 0x00, 0xE2, 0x02, 0x29, 0x04, 0x00, 0x27, 0x05, 0x06, 0x15, 0x01, 0x01],
     {"temperature": 22.6, "humidity": 41, "light": 39, "motion": 6, "soundPeak": 1, "soundAvg": 1}),
    (f"{LD} vendor/elsys/ers-eye-codec.yaml", "elsys", {}, 1,
     [0x01, 0x00, 0xE2, 0x02, 0x29, 0x04, 0x00, 0x27, 0x05, 0x06, 0x11, 0x01],
     {"temperature": 22.6, "humidity": 41, "light": 39, "motion": 6, "occupancy": 1}),
    (f"{LD} vendor/elsys/ers-voc-codec.yaml", "elsys", {}, 1,
     [0x01, 0x00, 0xE2, 0x02, 0x29, 0x04, 0x00, 0x27, 0x05, 0x06],
     {"temperature": 22.6, "humidity": 41, "light": 39, "motion": 6}),
    (f"{LD} vendor/elsys/ems-codec.yaml (pulse1 appears twice; the last wins)", "elsys", {}, 1,
     [0x01, 0x00, 0xE2, 0x02, 0x29, 0x03, 0x01, 0x27, 0x05, 0x0A, 0x11, 0x01, 0x12, 0x11, 0x0A, 0x21, 0x11],
     {"temperature": 22.6, "humidity": 41, "x": 1, "y": 39, "z": 5, "pulse1": 8465, "waterleak": 17}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("source", "codec", "options", "port", "payload", "expected"), PUBLISHED, ids=[row[0] for row in PUBLISHED]
)
def test_published_examples(
    source: str, codec: str, options: dict[str, Any], port: int, payload: list[int], expected: dict[str, Any]
) -> None:
    assert get_codec(codec).decode(port, bytes(payload), options) == expected


# Further Elsys vectors, worked by hand from the type table in vendor/elsys/elsys.js.
ELSYS_TABLE: list[tuple[str, str, dict[str, Any]]] = [
    ("negative temperature (int16 / 10)", "01FF9C", {"temperature": -10.0}),
    ("battery 3660 mV", "070E4C", {"vdd": 3660}),
    ("acceleration int8 x, y, z", "03FF0180", {"x": -1, "y": 1, "z": -128}),
    ("GPS 3+3 bytes", "09010203040506", {"lat": 0x010203, "long": 0x040506}),
    ("pulse absolute uint32 beyond int32", "0BFFFFFFFE", {"pulseAbs": 4294967294}),
    ("IR internal and external temperature", "1000FA FF38", {"irInternalTemperature": 25.0,
                                                            "irExternalTemperature": -20.0}),
    ("pressure uint32 / 1000 hPa", "14000F5E8D", {"pressure": 1007.245}),
    ("external temperature 2 twice becomes a list", "190064 19FF9C", {"externalTemperature2": [10.0, -10.0]}),
    ("external temperature 2 three times", "190001 190002 190003", {"externalTemperature2": [0.1, 0.2, 0.3]}),
    ("load cell int32 µV", "1BFFFFFF85", {"analogUv": -123}),
    ("TVOC ppb", "1C01F4", {"tvoc": 500}),
    ("digital, distance, accMotion, waterleak", "0D01 0E0BB8 0F07 1200", {"digital": 1, "distance": 3000,
                                                                         "accMotion": 7, "waterleak": 0}),
    ("pulse2, pulseAbs2, analog2, digital2, analog1, ext temp 1", "160010 1700000100 180FA0 1A00 080BB8 0C00C8",
     {"pulse2": 16, "pulseAbs2": 256, "analog2": 4000, "digital2": 0, "analog1": 3000, "externalTemperature": 20.0}),
    ("debug (listed in the table, not read by elsys.js)", "3DDEADBEEF", {"debug": 0xDEADBEEF}),
]  # fmt: skip


@pytest.mark.parametrize(("what", "hex_payload", "expected"), ELSYS_TABLE, ids=[r[0] for r in ELSYS_TABLE])
def test_elsys_type_table(what: str, hex_payload: str, expected: dict[str, Any]) -> None:
    assert get_codec("elsys").decode(5, bytes.fromhex(hex_payload.replace(" ", "")), {}) == expected


def test_elsys_grideye() -> None:
    payload = bytes([0x13, 20, *range(64)])
    out = get_codec("elsys").decode(1, payload, {})
    assert len(out["grideye"]) == 64
    assert out["grideye"][0] == 20.0
    assert out["grideye"][63] == pytest.approx(26.3)


@pytest.mark.parametrize(
    ("occupied_bit", "byte", "occupied", "duration"),
    [
        (0, 0x95, True, 74),  # the published example
        (7, 0x95, True, 21),  # the older codec version reads the same byte differently
        (0, 0x2A, False, 21),
        (7, 0x2A, False, 42),
        (7, 0x80, True, 0),
        (0, 0x80, False, 64),
        (0, 0xB4, False, 90),  # 90 -> 90 min ±4 is the first 5-minute step
        (0, 0xFF, True, 660),  # 127: overflow
    ],
)
def test_nwave_occupied_bit_drift(occupied_bit: int, byte: int, occupied: bool, duration: int) -> None:
    out = get_codec("nwave_nps405").decode(1, bytes([byte]), {"occupied_bit": occupied_bit})
    assert out["occupied"] is occupied
    assert out["previous_state_duration"] == duration
    assert out["previous_state_duration_overflow"] is (duration == 660)


@pytest.mark.parametrize(
    ("compressed", "minutes", "error"), [(0, 0, 0), (89, 89, 0), (90, 90, 4), (119, 235, 4), (120, 240, 59),
                                         (126, 600, 59)]
)  # fmt: skip
def test_nwave_duration_steps(compressed: int, minutes: int, error: int) -> None:
    out = get_codec("nwave_nps405").decode(1, bytes([compressed << 1]), {})
    assert (out["previous_state_duration"], out["previous_state_duration_error"]) == (minutes, error)


@pytest.mark.parametrize(
    ("battery_byte", "temp_byte", "health"),
    [(0x7D, 0x00, "normal"), (0x7C, 0x00, "low"), (0x64, 0x00, "low"), (0x63, 0x00, "critical"),
     (0x64, 0xD8, "normal"), (0x60, 0xD8, "low"), (0x4A, 0xD8, "critical")],
)  # fmt: skip
def test_nwave_battery_health(battery_byte: int, temp_byte: int, health: str) -> None:
    # 0x7D -> 3000 mV, 0x7C -> 2996, 0x64 -> 2900, 0x63 -> 2896, 0x60 -> 2884, 0x4A -> 2796;
    # 0xD8 -> -10 °C, where the codec's thresholds are 100 mV lower
    out = get_codec("nwave_nps405").decode(2, bytes([0, battery_byte, temp_byte]), {})
    assert out["battery_health"] == health


def test_nwave_registration_without_occupancy_omits_nulls() -> None:
    out = get_codec("nwave_nps405").decode(10, bytes([0x00, 0x00, 0x00, 0x00, 0x2A]), {})
    assert out == {"type": "user_registration", "tag_id": "2A"}


def test_bosch_debug_and_info() -> None:
    debug = get_codec("bosch_tps110").decode(6, bytes([0x10, 0x27, 0, 0, 0x24, 0x13, 0, 0, 0x05, 0x01]), {})
    assert debug == {"type": "debug", "timestamp": 10000, "debugCode": 0x324, "sequenceNumber": 0x0105}
    info = get_codec("bosch_tps110").decode(4, bytes([1, 2]), {})
    assert info == {"type": "device information", "bytes": [1, 2]}


@pytest.mark.parametrize(
    ("codec", "port", "kind"),
    [("nwave_nps405", 1, "state"), ("nwave_nps405", 2, "heartbeat"), ("nwave_nps405", 3, "startup"),
     ("nwave_nps405", 10, "registration"), ("bosch_tps110", 1, "state"), ("bosch_tps110", 2, "heartbeat"),
     ("bosch_tps110", 3, "startup"), ("elsys", 5, "state")],
)  # fmt: skip
def test_message_kinds(codec: str, port: int, kind: str) -> None:
    assert get_codec(codec).kind(port) == kind


# Faults: every one is an IngestError with the right reason and a detail that says what went wrong.
FAULTS: list[tuple[str, str, dict[str, Any], int, str, type[Exception], str]] = [
    ("nwave unknown port", "nwave_nps405", {}, 4, "01", UnsupportedPort, "fPort 4"),
    ("nwave port 0", "nwave_nps405", {}, 0, "", UnsupportedPort, "fPort 0"),
    ("nwave empty status", "nwave_nps405", {}, 1, "", DecodeError, "needs 1 bytes"),
    ("nwave short heartbeat", "nwave_nps405", {}, 2, "00D3", DecodeError, "needs 3 bytes"),
    ("nwave short startup", "nwave_nps405", {}, 3, "02040902", DecodeError, "needs 5 bytes"),
    ("nwave short registration", "nwave_nps405", {}, 10, "D11F3456", DecodeError, "needs 5 bytes"),
    ("bosch unknown port", "bosch_tps110", {}, 7, "01", UnsupportedPort, "fPort 7"),
    ("bosch short startup", "bosch_tps110", {}, 3, "2403000075", DecodeError, "needs 17 bytes"),
    ("bosch short debug", "bosch_tps110", {}, 6, "1027", DecodeError, "needs 10 bytes"),
    ("elsys port not configured", "elsys", {}, 2, "0100E2", UnsupportedPort, "fPort 2"),
    ("elsys port outside configured list", "elsys", {"ports": [7]}, 5, "0100E2", UnsupportedPort, "expected [7]"),
    ("elsys empty", "elsys", {}, 5, "", DecodeError, "empty payload"),
    ("elsys truncated value", "elsys", {}, 5, "0100E20603", DecodeError, "type 0x06 at offset 3 needs 2 bytes, 1 left"),
    ("elsys unknown type", "elsys", {}, 5, "0100E2FF00", DecodeError, "unknown type 0xFF at offset 3"),
    ("elsys truncated grideye", "elsys", {}, 5, "1314" + "00" * 10, DecodeError, "needs 65 bytes"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "codec", "options", "port", "hex_payload", "error", "detail"), FAULTS, ids=[r[0] for r in FAULTS]
)
def test_faults(
    what: str,
    codec: str,
    options: dict[str, Any],
    port: int,
    hex_payload: str,
    error: type[Exception],
    detail: str,
) -> None:
    with pytest.raises(error) as info:
        get_codec(codec).decode(port, bytes.fromhex(hex_payload), options)
    assert detail in str(info.value)
    assert getattr(info.value, "reason", None) == (UNSUPPORTED_PORT if error is UnsupportedPort else MALFORMED)


def test_elsys_configured_ports() -> None:
    assert get_codec("elsys").decode(7, bytes.fromhex("0100E2"), {"ports": [7]}) == {"temperature": 22.6}


@pytest.mark.parametrize(
    ("codec", "options", "message"),
    [
        ("nwave_nps405", {"occupied_bit": 3}, "occupied_bit must be 0 or 7"),
        ("nwave_nps405", {"occupid_bit": 0}, "unknown codec options"),
        ("bosch_tps110", {"x": 1}, "takes no codec options"),
        ("elsys", {"ports": [0]}, "ports"),
        ("elsys", {"ports": "5"}, "ports"),
    ],
)
def test_bad_options_are_refused(codec: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_codec(codec).check_options(options)


def test_shipped_models_name_known_codecs(models: dict[str, DeviceModel]) -> None:
    check_models(models)
    used = {m.codec for m in models.values() if m.codec}
    assert used == set(CODECS)


def test_unknown_codec_in_a_model_fails(models: dict[str, DeviceModel]) -> None:
    broken = models["elsys-ers-co2"].model_copy(update={"codec": "elsys2"})
    with pytest.raises(ValueError, match="unknown payload codec 'elsys2'"):
        check_models({"x": broken})
