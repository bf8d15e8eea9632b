"""Property tests: whatever bytes or JSON arrive, decoders and codecs fail only with IngestError.

A decoder that raises IndexError or TypeError on odd input would crash the ingest (or
land in quarantine without a reason); these tests throw arbitrary bytes and arbitrary
JSON shaped like each wire format at every decoder.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest.codecs import CODECS, get_codec
from ingest.decode import decode_message, load_models
from ingest.normalise import normalise
from ingest.quality import QualityState
from ingest.sources import load_sources
from ingest.types import Decoded, IngestError, MappingError, RawMessage, Reading
from tests.ingest.ingest_testdata import RECEIVED, binding_for

SOURCES = load_sources()
MODELS = load_models()
PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

OPTIONS: dict[str, list[dict[str, Any]]] = {
    "nwave_nps405": [{}, {"occupied_bit": 0}, {"occupied_bit": 7}],
    "bosch_tps110": [{}],
    "elsys": [{}, {"ports": list(range(1, 256))}],
}


@pytest.mark.parametrize("codec", sorted(CODECS))
@PROFILE
@given(port=st.integers(0, 255), payload=st.binary(max_size=90), choice=st.integers(0, 2))
def test_codecs_raise_only_ingest_errors(codec: str, port: int, payload: bytes, choice: int) -> None:
    options = OPTIONS[codec][choice % len(OPTIONS[codec])]
    try:
        out = get_codec(codec).decode(port, payload, options)
    except IngestError as exc:
        assert exc.detail
        return
    assert isinstance(out, dict)
    orjson.dumps(out)  # plain JSON values only


@st.composite
def elsys_payloads(draw: st.DrawFn) -> bytes:
    """Well-formed TLV runs: every type in the table with a value of the right size."""
    from ingest.codecs.elsys import TYPES

    out = b""
    for kind in draw(st.lists(st.sampled_from(sorted(TYPES)), min_size=1, max_size=8)):
        out += bytes([kind]) + draw(st.binary(min_size=TYPES[kind][0], max_size=TYPES[kind][0]))
    return out


@PROFILE
@given(payload=elsys_payloads())
def test_well_formed_elsys_payloads_always_decode(payload: bytes) -> None:
    out = get_codec("elsys").decode(5, payload, {})
    assert out  # every TLV run yields at least one field
    orjson.dumps(out)


json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually a well-formed value, sometimes any JSON at all (or the key left out, by the caller)."""
    return st.one_of(valid, valid, valid, json_values)


def _obj(required: dict[str, st.SearchStrategy[Any]] | None = None, **optional: st.SearchStrategy[Any]) -> Any:
    return st.fixed_dictionaries(
        {k: _mostly(v) for k, v in (required or {}).items()}, optional={k: _mostly(v) for k, v in optional.items()}
    )


eui = st.text(alphabet="0123456789abcdefABCDEF", min_size=16, max_size=16)
b64 = st.binary(max_size=20).map(lambda b: base64.b64encode(b).decode()) | st.text(max_size=8)
zones = (
    st.none() | st.timezones() | st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=12))])
)
iso = st.datetimes(timezones=zones).map(datetime.isoformat) | st.sampled_from(
    ["2025-03-04T09:00:00Z", "2025-03-04T09:00:00.123456789+00:00", "2025-03-04 09:00:00", "2025-13-04T09:00:00"]
)
number_text = st.floats(allow_nan=True, allow_infinity=True).map(str) | st.sampled_from(["N/A", "", " 12.5 ", "1e400"])
numbers = st.integers(-(2**40), 2**40) | st.floats(allow_nan=False, allow_infinity=False) | number_text
epoch = st.integers(-10, 2**34) | st.floats(-10, 2**34)
ports = st.sampled_from([0, 1, 2, 3, 5, 6, 10]) | st.integers(-1, 256)

SHAPES: dict[str, st.SearchStrategy[Any]] = {
    "v3/app/devices/dev/up": _obj(
        {"uplink_message": _obj({"f_port": ports, "frm_payload": b64}, received_at=iso,
                                decoded_payload=st.dictionaries(st.sampled_from(["co2", "temperature", "occupied"]),
                                                                numbers | st.booleans()),
                                version_ids=_obj(brand_id=st.sampled_from(["nwave", "elsys", "bosch"]),
                                                 model_id=st.sampled_from(["nps405", "ers-co2", "tps110-0292"])),
                                f_cnt=st.integers(0, 2**32))},
        end_device_ids=_obj(dev_eui=eui, device_id=st.text(max_size=10)), received_at=iso,
    ),
    "application/a/device/0101010101010101/event/up": _obj(
        {"deviceInfo": _obj(devEui=eui, deviceProfileName=st.sampled_from(["elsys-ers-co2", "bosch-tps110", "x"])),
         "fPort": ports, "data": elsys_payloads().map(lambda b: base64.b64encode(b).decode()) | b64},
        time=iso, fCnt=st.integers(0, 2**32),
        object=st.dictionaries(st.sampled_from(["co2", "occupied", "temperature"]), numbers | st.booleans()),
    ),
    "sensor-community/1": _obj(
        {"sensordatavalues": st.lists(_obj({"value_type": st.sampled_from(["SDS_P1", "SDS_P2", "BME280_pressure",
                                                                           "samples"]), "value": numbers}),
                                      max_size=6)},
        esp8266id=st.text(max_size=9) | st.integers(), timestamp=iso,
    ),
    "nilu/x": st.lists(
        _obj({"component": st.sampled_from(["PM10", "PM2.5", "NO2", "O3"]), "value": numbers | st.none()},
             station=st.sampled_from(["Olav V gate", "N/A"]), unit=st.sampled_from(["µg/m³", "mg/m³", "ppb", "N/A"]),
             fromTime=iso, toTime=iso, eoi=st.none() | st.text(max_size=8)),
        min_size=1, max_size=3,
    ).map(lambda records: records[0] if len(records) == 1 else records),
    "amsreader/x": _obj(
        {"data": st.dictionaries(st.sampled_from(["P", "tPI", "id", "U1", "rtc"]), numbers | st.text(max_size=5))},
        id=st.text(max_size=17), t=epoch,
    ),
    "senml/x": st.lists(
        _obj(bn=st.sampled_from(["urn:dev:mac:0024befffe804ff1:", "", "x y"]), bt=epoch,
             bu=st.sampled_from(["W", "Wh"]),
             bv=st.floats(-5, 5), bs=st.floats(0, 5), bver=st.integers(1, 10),
             n=st.sampled_from(["heat_energy", "supply_temp", "co2", "", "-bad"]),
             u=st.sampled_from(["kWh", "Cel", "ppm", "J", "degF", "/", "m"]), v=numbers, vs=st.text(max_size=4),
             vb=st.booleans(), vd=st.text(max_size=4), s=numbers, t=st.floats(-(2**29), 2**29) | epoch, ut=epoch),
        min_size=1, max_size=6,
    ),
    "v1.1/Datastreams(3)/Observations": _obj(
        {"result": numbers | st.booleans()}, phenomenonTime=iso | st.tuples(iso, iso).map("/".join), resultTime=iso,
        parameters=st.dictionaries(st.text(max_size=4), json_scalars), Datastream=_obj({"@iot.id": st.integers(0, 5)}),
    ),
    "v1.1/Observations": _obj(
        {"result": numbers | st.booleans(), "Datastream": _obj({"@iot.id": st.integers(0, 5) | st.just("3")})},
        phenomenonTime=iso,
    ),
}  # fmt: skip

# The model a device on each topic is provisioned as, and the binding the normaliser gets.
TOPIC_MODELS = {
    "v3/app/devices/dev/up": "nwave-nps405",
    "application/a/device/0101010101010101/event/up": "elsys-ers-co2",
    "sensor-community/1": "airrohr-sds011-bme280",
    "nilu/x": "nilu-reference-station",
    "amsreader/x": "amsreader-han",
    "senml/x": "senml-heat-gateway",
    "v1.1/Datastreams(3)/Observations": "elsys-ers-co2",
    "v1.1/Observations": "elsys-ers-co2",
}


def _decode_any(topic: str, payload: bytes) -> Decoded | None:
    """Decode and normalise; only IngestError may stop it."""
    raw = RawMessage(topic, payload, RECEIVED)
    source = SOURCES.match(topic)
    model = MODELS[TOPIC_MODELS[topic]]
    binding = binding_for(model)
    state = QualityState()
    try:
        decoded = decode_message(raw, source, lambda _: model, MODELS)
        out = normalise(decoded, binding, RECEIVED, state, window=source.window)
    except IngestError as exc:
        assert exc.detail
        return None
    for obs in out.observations:
        assert obs.phenomenon_time.tzinfo is UTC
        assert obs.received_at == RECEIVED
    return decoded


@pytest.mark.parametrize("topic", sorted(SHAPES))
@PROFILE
@given(data=st.data())
@example(data=None)
def test_envelopes_raise_only_ingest_errors_on_shaped_json(topic: str, data: st.DataObject | None) -> None:
    doc = {} if data is None else data.draw(SHAPES[topic])
    _decode_any(topic, json.dumps(doc).encode())


@pytest.mark.parametrize("topic", sorted(SHAPES))
@PROFILE
@given(payload=st.binary(max_size=200))
def test_envelopes_raise_only_ingest_errors_on_bytes(topic: str, payload: bytes) -> None:
    _decode_any(topic, payload)


senml_records = st.fixed_dictionaries(
    {"n": st.sampled_from(["t", "rh", "co2", "heat_energy", "supply_temp"])},
    optional={
        "bn": st.sampled_from(["urn:dev:mac:0024befffe804ff1:"]),
        "bt": st.floats(1.5e9, 1.8e9) | st.integers(-(2**27), 2**27),
        "t": st.floats(-1e5, 1e5),
        "u": st.sampled_from(["Cel", "kWh", "Wh", "J", "ppm", "%RH", "/", "K", "W", "lx", "Pa"]),
        "v": st.floats(-1e9, 1e9),
        "s": st.floats(0, 1e9),
        "bv": st.floats(-10, 10),
    },
)


@PROFILE
@given(pack=st.lists(senml_records, min_size=1, max_size=8))
def test_senml_decode_and_normalise_fail_only_with_ingest_errors(pack: list[dict[str, Any]]) -> None:
    raw = RawMessage("senml/gw", orjson.dumps(pack), RECEIVED)
    source = SOURCES.match(raw.topic)
    binding = binding_for(MODELS["senml-heat-gateway"])
    state = QualityState()
    try:
        decoded = decode_message(raw, source, lambda _: None, MODELS)
        out = normalise(decoded, binding, RECEIVED, state, window=source.window)
    except IngestError as exc:
        assert exc.detail
        return
    for obs in out.observations:
        assert obs.phenomenon_time.tzinfo is UTC
        assert isinstance(obs.result, float)


@PROFILE
@given(values=st.lists(json_values, min_size=1, max_size=6), unit=st.none() | st.text(max_size=6))
def test_normalise_fails_only_with_mapping_errors_and_then_leaves_state(values: list[Any], unit: str | None) -> None:
    binding = binding_for(MODELS["elsys-ers-co2"])
    fields = ["temperature", "co2", "humidity", "vdd", "soundPeak", "x"]
    readings = tuple(Reading(fields[i % len(fields)], v, unit, datetime(2025, 3, 4, tzinfo=UTC)) for i, v in
                     enumerate(values))  # fmt: skip
    state = QualityState()
    try:
        out = normalise(Decoded("d", readings), binding, RECEIVED, state)
    except MappingError as exc:
        assert exc.detail
        assert len(state) == 0
        return
    assert all(isinstance(o.result, float) for o in out.observations)
