"""SenML (RFC 8428) packs: the RFC's own examples, base-field resolution, relative times, faults."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from ingest.envelopes import senml
from ingest.sources import Source, SourceSet
from ingest.types import DecodeError, RawMessage, Reading
from tests.ingest.ingest_testdata import RECEIVED

TOPIC = "senml/gw-1"


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _decode(source: Source, pack: object) -> tuple[str, tuple[Reading, ...]]:
    d = senml.decode(RawMessage(TOPIC, orjson.dumps(pack), RECEIVED), source)
    return d.device_id, d.readings


def test_rfc_5_1_1_single_datapoint(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    d = senml.decode(raw_file(TOPIC, "senml/rfc8428-5.1.1-single.json"), sources["senml"])
    assert d.device_id == "gw-1"  # no base name: the topic names the device
    assert d.readings == (Reading("urn:dev:ow:10e2073a01080063", 23.1, "Cel", None),)


def test_rfc_5_1_2_multiple_datapoints(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    d = senml.decode(raw_file(TOPIC, "senml/rfc8428-5.1.2-multiple-datapoints.json"), sources["senml"])
    assert d.device_id == "urn:dev:ow:10e2073a01080063"
    assert d.readings == (Reading("voltage", 120.1, "V"), Reading("current", 1.2, "A"))


def test_rfc_5_1_3_multiple_measurements(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    d = senml.decode(raw_file(TOPIC, "senml/rfc8428-5.1.3-multiple-measurements.json"), sources["senml"])
    assert d.device_id == "urn:dev:ow:10e2073a0108006"
    bt = 1.276020076001e09
    expected = [Reading("voltage", 120.1, "V", _at(bt))] + [
        Reading("current", v, "A", _at(bt + t))
        for t, v in [(-5, 1.2), (-4, 1.3), (-3, 1.4), (-2, 1.5), (-1, 1.6), (0, 1.7)]
    ]
    assert list(d.readings) == expected  # §5.1.4 shows the same pack resolved


def test_rfc_5_1_6_collection_of_resources(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    d = senml.decode(raw_file(TOPIC, "senml/rfc8428-5.1.6-collection.json"), sources["senml"])
    assert d.readings == (
        Reading("temp", 23.1, "Cel"),
        Reading("label", "Machine Room"),
        Reading("open", False),
        Reading("nfc-reader", "aGkgCg"),
    )


def test_heat_gateway_pack(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    d = senml.decode(raw_file(TOPIC, "senml/heat-gateway.json"), sources["senml"])
    assert d.device_id == "urn:dev:mac:0024befffe804ff1"
    assert d.model_hint == "senml-heat-gateway"
    assert d.readings == (
        Reading("heat_energy", 48213.7, "kWh", _at(1741075200)),  # s: the accumulated sum
        Reading("supply_temp", 61.5, "Cel", _at(1741075200)),
        Reading("co2", 1180.0, "ppm", _at(1741074900)),
    )


def test_times_below_2_28_are_relative_to_receipt(sources: SourceSet) -> None:
    _, readings = _decode(sources["senml"], [{"bn": "gw:", "n": "a", "v": 1, "t": -60}, {"n": "b", "v": 2, "t": 30}])
    assert [r.time for r in readings] == [RECEIVED - timedelta(seconds=60), RECEIVED + timedelta(seconds=30)]
    # the time depends on when the pack arrived: marked, so a redelivery gets its first receive time
    assert [r.time_relative for r in readings] == [True, True]


def test_absolute_times_are_not_marked_relative(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    d = senml.decode(raw_file(TOPIC, "senml/heat-gateway.json"), sources["senml"])  # bt + t, t = -300 included
    assert [r.time_relative for r in d.readings] == [False, False, False]
    _, mixed = _decode(sources["senml"], [{"bn": "gw:", "n": "a", "v": 1, "t": 1741075200}, {"n": "b", "v": 2, "t": 5}])
    assert [r.time_relative for r in mixed] == [False, True]


def test_base_value_and_base_sum_apply_to_later_records(sources: SourceSet) -> None:
    pack = [{"bn": "gw:", "bv": 100, "bs": 1000, "n": "a", "v": 1}, {"n": "b", "v": 2}, {"n": "c", "s": 5}]
    _, readings = _decode(sources["senml"], pack)
    assert [(r.field, r.value) for r in readings] == [("a", 101.0), ("b", 102.0), ("c", 1005.0)]


def test_base_unit_and_override(sources: SourceSet) -> None:
    pack = [{"bn": "gw:", "bu": "W", "n": "p", "v": 1}, {"n": "e", "u": "Wh", "v": 2}, {"bu": "kW", "n": "p", "v": 3}]
    _, readings = _decode(sources["senml"], pack)
    assert [r.unit for r in readings] == ["W", "Wh", "kW"]


def test_record_with_value_and_sum(sources: SourceSet) -> None:
    _, readings = _decode(sources["senml"], [{"bn": "m:", "n": "flow", "u": "m3/h", "v": 1.5, "s": 812.25}])
    assert [(r.field, r.value) for r in readings] == [("flow", 1.5), ("flow[sum]", 812.25)]


def test_base_only_record_is_skipped(sources: SourceSet) -> None:
    device, readings = _decode(sources["senml"], [{"bn": "dev/org/esp32-123456/", "bt": 1.276020076001e09},
                                                  {"n": "sht/temperature", "v": 32.0, "u": "Cel"}])  # fmt: skip
    assert device == "dev/org/esp32-123456"
    assert readings == (Reading("sht/temperature", 32.0, "Cel", _at(1.276020076001e09)),)


@pytest.mark.parametrize(
    ("pack", "detail"),
    [
        ({"n": "a", "v": 1}, "must be a JSON array"),
        ([], "empty"),
        ([1], "is not an object"),
        ([{"n": "a", "v": 1, "foo_": 3}], "must-understand field 'foo_'"),
        ([{"n": "a", "v": "one and a half"}], "v must be a number"),
        ([{"n": "a", "s": "NaN"}], "s is not finite"),
        ([{"n": "a", "v": True}], "v must be a number"),
        ([{"n": "a", "vb": "true"}], "vb must be true or false"),
        ([{"n": "a", "v": 1, "vs": "x"}], "more than one value field"),
        ([{"n": "a"}], "has no value"),
        ([{"bn": "gw:", "n": " a", "v": 1}], "not a valid SenML name"),
        ([{"n": "", "v": 1}], "not a valid SenML name"),
        ([{"n": "a", "v": 1, "t": "now"}], "t must be a number"),
        ([{"n": "a", "v": 1, "t": -(2**29)}], "more than 2**28 s in the past"),
        ([{"n": "a", "v": 1, "t": 1e15}], "not a plausible epoch"),
        ([{"bn": "a:", "n": "x", "v": 1}, {"bn": "b:", "n": "x", "v": 1}], "more than one device"),
        ([{"bver": "10", "n": "a", "v": 1}], "bver must be an integer"),
        ([{"bn": 5, "n": "a", "v": 1}], "bn must be text"),
        ([{"n": "a", "u": 1, "v": 1}], "u must be text"),
    ],
)
def test_faults(sources: SourceSet, pack: object, detail: str) -> None:
    with pytest.raises(DecodeError) as info:
        _decode(sources["senml"], pack)
    assert detail in info.value.detail


def test_truncated_pack(sources: SourceSet) -> None:
    with pytest.raises(DecodeError, match="not valid JSON"):
        senml.decode(RawMessage(TOPIC, b'[{"bn":"gw:","n":"a","v":1},{"n":"b"', RECEIVED), sources["senml"])


def test_no_device_anywhere() -> None:
    source = Source("s", "senml", ("gateway/senml",))
    with pytest.raises(DecodeError, match="no base name"):
        senml.decode(RawMessage("gateway/senml", b'[{"n":"a","v":1}]', RECEIVED), source)


def test_numeric_strings_in_values_are_read_as_numbers(sources: SourceSet) -> None:
    device, readings = _decode(
        sources["senml"],
        [{"bn": "urn:dev:mac:0024befffe804ff1:", "bt": 1.741075200e09, "n": "heat_energy", "u": "kWh", "s": " 48213.7"},
         {"n": "supply_temp", "u": "Cel", "v": "61.5"}],
    )  # fmt: skip
    assert device == "urn:dev:mac:0024befffe804ff1"
    assert [(r.field, r.value) for r in readings] == [("heat_energy", 48213.7), ("supply_temp", 61.5)]
