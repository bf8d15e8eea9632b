"""The normaliser: canonical units, UTC, parsed strings, booleans, quality flags, reported fields."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from ingest.decode import decode_message
from ingest.normalise import Normalised, normalise
from ingest.quality import QualityState
from ingest.sources import PlausibilityWindow, SourceSet, default_window
from ingest.types import Decoded, DeviceBinding, MappingError, RawMessage, Reading
from schemas.device_models import DeviceModel
from schemas.quality import decode as flag_names
from schemas.vocabulary import SpikeRule, StuckRule, vocabulary
from tests.ingest.ingest_testdata import RECEIVED, binding_for


def _binding(models: dict[str, DeviceModel], key: str, **kw: Any) -> DeviceBinding:
    return binding_for(models[key], **kw)


def _run(
    sources: SourceSet,
    raw: RawMessage,
    binding: DeviceBinding,
    state: QualityState | None = None,
) -> Normalised:
    source = sources.match(raw.topic)
    decoded = decode_message(raw, source, lambda _: binding.model)
    return normalise(decoded, binding, raw.received_at, state or QualityState(), window=source.window)


def _by_property(binding: DeviceBinding, result: Normalised) -> dict[str, Any]:
    names = {ds: key for key, ds in binding.datastreams.items()}
    return {names[o.datastream_id]: o for o in result.observations}


def _one(models: dict[str, DeviceModel], key: str, reading: Reading, **kw: Any) -> Any:
    binding = _binding(models, key)
    out = normalise(Decoded("d", (reading,)), binding, RECEIVED, QualityState(), **kw)
    (obs,) = out.observations
    return obs


def test_airrohr_strings_units_and_assumed_time(
    sources: SourceSet, raw_file: Callable[..., RawMessage], models: dict[str, DeviceModel]
) -> None:
    binding = _binding(models, "airrohr-sds011-bme280", low_cost=True)
    out = _run(sources, raw_file("sensor-community/13597771", "sensor_community/firmware-full-body.json"), binding)
    obs = _by_property(binding, out)
    assert {k: o.result for k, o in obs.items()} == {
        "pm10": 12.3,
        "pm2_5": 7.1,
        "air_temperature": 4.2,
        "relative_humidity": 91.2,
        "air_pressure": 1007.2,  # Pa -> hPa
    }
    for o in out.observations:
        assert o.phenomenon_time == o.received_at == RECEIVED
        assert flag_names(o.quality_flags) == ["low_cost_sensor", "time_assumed"]
    assert out.ignored == ("samples", "min_micro", "max_micro", "interval", "signal")
    assert out.unmapped == ()
    assert out.flagged == 5


def test_nilu_interval_zone_and_mg(
    sources: SourceSet, raw_file: Callable[..., RawMessage], models: dict[str, DeviceModel]
) -> None:
    binding = _binding(models, "nilu-reference-station")
    received = datetime(2018, 6, 4, 11, 5, tzinfo=UTC)
    out = _run(sources, raw_file("nilu/x", "nilu/zoneless-mg.json", received_at=received), binding)
    (o,) = out.observations
    assert o.result == 21.0  # 0.021 mg/m³ -> µg/m³
    assert (o.phenomenon_time, o.phenomenon_time_end) == (
        datetime(2018, 6, 4, 10, tzinfo=UTC),
        datetime(2018, 6, 4, 11, tzinfo=UTC),
    )
    assert o.phenomenon_time.tzinfo is UTC
    assert flag_names(o.quality_flags) == ["zone_assumed"]


def test_nilu_negative_value_is_flagged_not_dropped(
    sources: SourceSet, raw_file: Callable[..., RawMessage], models: dict[str, DeviceModel]
) -> None:
    binding = _binding(models, "nilu-reference-station")
    received = datetime(2018, 6, 4, 11, 5, tzinfo=UTC)
    (o,) = _run(sources, raw_file("nilu/x", "nilu/negative-value.json", received_at=received), binding).observations
    assert o.result == -1.2
    assert flag_names(o.quality_flags) == ["out_of_range"]


@pytest.mark.parametrize(
    ("value", "detail"), [(None, "'NO2' is null"), ("N/A", "'N/A' is not a number"), ("", "is not a number")]
)
def test_nilu_unusable_values_are_unmapped(models: dict[str, DeviceModel], value: Any, detail: str) -> None:
    binding = _binding(models, "nilu-reference-station")
    with pytest.raises(MappingError) as info:
        normalise(Decoded("x", (Reading("NO2", value, "µg/m³"),)), binding, RECEIVED, QualityState())
    assert detail in info.value.detail
    assert info.value.reason == "unmapped"


def test_amsreader_list3(
    sources: SourceSet, raw_file: Callable[..., RawMessage], models: dict[str, DeviceModel]
) -> None:
    binding = _binding(models, "amsreader-han")
    out = _run(sources, raw_file("amsreader/x", "amsreader/list3.json"), binding)
    obs = _by_property(binding, out)
    assert (obs["active_power"].result, obs["active_energy_import"].result) == (4215.0, 48213.712)
    assert obs["active_power"].phenomenon_time == datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
    assert obs["active_power"].quality_flags == 0
    # list 2's instantaneous values and list 3's registers, each in its canonical unit
    assert {key: o.result for key, o in obs.items()} == {
        "active_power": 4215.0, "reactive_power_import": 0.0, "active_power_export": 0.0,
        "reactive_power_export": 611.0, "phase_current_l1": 6.12, "phase_current_l2": 5.87, "phase_current_l3": 6.40,
        "phase_voltage_l1": 231.40, "phase_voltage_l2": 229.80, "phase_voltage_l3": 230.90,
        "active_energy_import": 48213.712, "active_energy_export": 0.0, "reactive_energy_import": 12.345,
        "reactive_energy_export": 7812.004,
    }  # fmt: skip
    assert out.unmapped == ()
    assert out.ignored == ("lv", "id", "type", "rtc")


def test_amsreader_status_message_gives_nothing(
    sources: SourceSet, raw_file: Callable[..., RawMessage], models: dict[str, DeviceModel]
) -> None:
    out = _run(sources, raw_file("amsreader/x", "amsreader/system.json"), _binding(models, "amsreader-han"))
    assert out == Normalised(())


def test_senml_heat_gateway(
    sources: SourceSet, raw_file: Callable[..., RawMessage], models: dict[str, DeviceModel]
) -> None:
    binding = _binding(models, "senml-heat-gateway")
    obs = _by_property(binding, _run(sources, raw_file("senml/gw", "senml/heat-gateway.json"), binding))
    assert obs["heat_energy"].result == 48213.7
    assert obs["supply_temperature"].result == 61.5
    assert obs["indoor_co2"].result == 1180.0
    assert obs["indoor_co2"].phenomenon_time == datetime.fromtimestamp(1741074900, UTC)
    assert all(o.quality_flags == 0 for o in obs.values())


def test_senml_relative_times_are_flagged(sources: SourceSet, models: dict[str, DeviceModel]) -> None:
    binding = _binding(models, "senml-heat-gateway")
    pack = [{"bn": "urn:dev:mac:0024befffe804ff1:", "n": "supply_temp", "u": "Cel", "v": 61.5, "t": -30},
            {"n": "co2", "u": "ppm", "v": 1180, "bt": 1741075200}]  # fmt: skip
    raw = RawMessage("senml/gw", orjson.dumps(pack), RECEIVED)
    obs = _by_property(binding, _run(sources, raw, binding))
    assert obs["supply_temperature"].phenomenon_time == RECEIVED - timedelta(seconds=30)
    assert flag_names(obs["supply_temperature"].quality_flags) == ["time_relative"]
    assert obs["indoor_co2"].quality_flags == 0


def test_elsys_through_chirpstack(
    sources: SourceSet, raw_file: Callable[..., RawMessage], models: dict[str, DeviceModel]
) -> None:
    binding = _binding(models, "elsys-ers-co2")
    raw = raw_file("application/a/device/a81758fffe04c1d2/event/up", "chirpstack_v4/elsys-ers-co2.json")
    obs = _by_property(binding, _run(sources, raw, binding))
    assert {k: o.result for k, o in obs.items()} == {
        "indoor_temperature": 22.6,
        "relative_humidity": 41.0,
        "illuminance": 39.0,
        "motion_count": 6.0,
        "indoor_co2": 776.0,
        "battery_voltage": 3.66,  # mV -> V
    }


def test_nwave_parking_boolean(
    sources: SourceSet, raw_file: Callable[..., RawMessage], models: dict[str, DeviceModel]
) -> None:
    binding = _binding(models, "nwave-nps405", verified=False)
    topic = "v3/kristiansund-parking/devices/eui-70b3d5e75e000341/up"
    out = _run(sources, raw_file(topic, "tts_v3/nwave-parking-status.json"), binding)
    (o,) = out.observations
    assert o.result is True
    assert flag_names(o.quality_flags) == ["unverified_device"]
    assert o.phenomenon_time == datetime(2025, 3, 4, 7, 15, 2, 228611, tzinfo=UTC)
    assert set(out.ignored) == {"type", "previous_state_duration", "previous_state_duration_error",
                                "previous_state_duration_overflow"}  # fmt: skip


# Unit variants: (model, field, value, unit on the wire, canonical result)
UNITS = [
    ("senml-heat-gateway", "heat_energy", 48213700, "Wh", 48213.7),
    ("senml-heat-gateway", "heat_energy", 3.6e6, "J", 1.0),
    ("senml-heat-gateway", "heat_energy", 48.2137, "MWh", 48213.7),
    ("senml-heat-gateway", "supply_temp", 142.7, "degF", 61.5),
    ("senml-heat-gateway", "supply_temp", 142.7, "°F", 61.5),
    ("senml-heat-gateway", "supply_temp", 334.65, "K", 61.5),
    ("elsys-ers-co2", "humidity", 0.41, "/", 41.0),  # humidity as a fraction (SenML ratio)
    ("elsys-ers-co2", "humidity", 41, "%RH", 41.0),
    ("elsys-ers-co2", "temperature", 72.5, "[degF]", 22.5),
    ("elsys-ers-co2", "vdd", 3660, None, 3.66),  # the model's default unit, mV
    ("elsys-ers-co2", "vdd", 3.66, "V", 3.66),  # a stated unit wins over the model's default
    ("nilu-reference-station", "PM10", 0.0105, "mg/m3", 10.5),
    ("nilu-reference-station", "PM10", 10.5, "μg/m³", 10.5),
    ("airrohr-sds011-bme280", "BME280_pressure", "100720.00", None, 1007.2),
    ("airrohr-sds011-bme280", "BME280_pressure", 100.72, "kPa", 1007.2),
    ("senml-weather-station", "wind_speed", 36, "km/h", 10.0),
]


@pytest.mark.parametrize(("model", "field", "value", "unit", "expected"), UNITS)
def test_unit_variants(
    models: dict[str, DeviceModel], model: str, field: str, value: Any, unit: str | None, expected: float
) -> None:
    assert _one(models, model, Reading(field, value, unit)).result == pytest.approx(expected)


@pytest.mark.parametrize(
    ("field", "value", "unit", "detail"),
    [
        ("temperature", 21.0, "furlong", "unit 'furlong' cannot be converted"),
        ("temperature", 21.0, "kg", "unit 'kg' cannot be converted"),
        ("co2", "776 ppm", None, "'776 ppm' is not a number"),
        ("co2", "nan", None, "is not a finite number"),
        ("co2", True, None, "expected a number, got bool"),
        ("co2", [776], None, "expected a number, got list"),
        ("co2", 10**400, None, "too large"),
    ],
)
def test_unusable_numbers_name_the_field(
    models: dict[str, DeviceModel], field: str, value: Any, unit: str | None, detail: str
) -> None:
    with pytest.raises(MappingError) as info:
        _one(models, "elsys-ers-co2", Reading(field, value, unit))
    assert detail in info.value.detail
    assert repr(field) in info.value.detail


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("true", True),
        ("FALSE", False),
        ("1", True),
        ("off", False),
    ],
)
def test_booleans(models: dict[str, DeviceModel], value: Any, expected: bool) -> None:
    assert _one(models, "nwave-nps405", Reading("occupied", value)).result is expected


@pytest.mark.parametrize(
    ("word", "expected"),
    [(w, True) for w in vocabulary().boolean_text.true] + [(w, False) for w in vocabulary().boolean_text.false],
)
def test_boolean_words_come_from_the_vocabulary(models: dict[str, DeviceModel], word: str, expected: bool) -> None:
    for text in (word, f" {word.upper()} "):
        assert _one(models, "nwave-nps405", Reading("occupied", text)).result is expected


@pytest.mark.parametrize("value", ["maybe", 2, 0.5, None, [True]])
def test_bad_booleans(models: dict[str, DeviceModel], value: Any) -> None:
    with pytest.raises(MappingError, match="'occupied'"):
        _one(models, "nwave-nps405", Reading("occupied", value))


_WINDOW = default_window()  # the shipped sources file's defaults
_SECOND, _DAY = timedelta(seconds=1), timedelta(days=1)


@pytest.mark.parametrize(
    ("offset", "flags"),
    [
        (timedelta(0), []),
        (_WINDOW.max_future - _SECOND, []),
        (_WINDOW.max_future + _SECOND, ["future_time"]),
        (timedelta(days=365 * 70), ["future_time"]),
        (-_WINDOW.max_late + _DAY, []),
        (-_WINDOW.max_late - _DAY, ["stale_time"]),
    ],
)
def test_clock_skew_and_lateness(models: dict[str, DeviceModel], offset: timedelta, flags: list[str]) -> None:
    o = _one(models, "elsys-ers-co2", Reading("co2", 700, None, RECEIVED + offset))
    assert flag_names(o.quality_flags) == flags
    assert o.phenomenon_time == RECEIVED + offset
    assert o.received_at == RECEIVED


def test_window_comes_from_the_source(models: dict[str, DeviceModel]) -> None:
    tight = PlausibilityWindow(max_future_s=10, max_late_s=60)
    late = _one(models, "elsys-ers-co2", Reading("co2", 700, None, RECEIVED - timedelta(minutes=5)), window=tight)
    early = _one(models, "elsys-ers-co2", Reading("co2", 700, None, RECEIVED + timedelta(seconds=11)), window=tight)
    assert (flag_names(late.quality_flags), flag_names(early.quality_flags)) == (["stale_time"], ["future_time"])


def test_times_become_utc(models: dict[str, DeviceModel]) -> None:
    oslo = timezone(timedelta(hours=1))
    o = _one(models, "elsys-ers-co2", Reading("co2", 700, None, datetime(2025, 3, 4, 10, 0, tzinfo=oslo)))
    assert o.phenomenon_time == datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
    assert o.phenomenon_time.tzinfo is UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        normalise(Decoded("d", ()), _binding(models, "elsys-ers-co2"), datetime(2025, 3, 4), QualityState())


def test_unmapped_fields_are_reported_not_errors(models: dict[str, DeviceModel]) -> None:
    readings = (Reading("temperature", 22.6), Reading("soundPeak", 1), Reading("soundAvg", 1), Reading("x", 3))
    out = normalise(Decoded("d", readings), _binding(models, "elsys-ers-co2"), RECEIVED, QualityState())
    assert len(out.observations) == 1
    assert out.unmapped == ("soundPeak", "soundAvg")
    assert out.ignored == ("x",)


def test_missing_datastream_is_unmapped(models: dict[str, DeviceModel]) -> None:
    model = models["elsys-ers-co2"]
    binding = DeviceBinding("d", model, {"indoor_temperature": 1})
    with pytest.raises(MappingError, match="no Datastream for 'indoor_co2'"):
        normalise(Decoded("d", (Reading("temperature", 20), Reading("co2", 700))), binding, RECEIVED, QualityState())


def test_a_bad_value_leaves_state_untouched(models: dict[str, DeviceModel]) -> None:
    binding = _binding(models, "elsys-ers-co2")
    state = QualityState()
    readings = (Reading("temperature", 20.0, None, RECEIVED), Reading("co2", "n/a", None, RECEIVED))
    with pytest.raises(MappingError, match="'co2'"):
        normalise(Decoded("d", readings), binding, RECEIVED, state)
    assert len(state) == 0


def _series(
    models: dict[str, DeviceModel], key: str, field: str, values: list[tuple[int, Any]], state: QualityState
) -> list[list[str]]:
    """Normalise (seconds after RECEIVED, value) one message each; return the flag names of each."""
    binding = _binding(models, key)
    flags = []
    for seconds, value in values:
        t = RECEIVED + timedelta(seconds=seconds)
        out = normalise(Decoded("d", (Reading(field, value, None, t),)), binding, t, state)
        flags.append(flag_names(out.observations[0].quality_flags))
    return flags


def _rule(models: dict[str, DeviceModel], key: str, field: str) -> tuple[SpikeRule | None, StuckRule | None]:
    """The vocabulary's spike and stuck rules of the property a model's field maps to."""
    prop = vocabulary().get(models[key].fields[field].property)
    return prop.spike, prop.stuck


def test_spike_and_recovery(models: dict[str, DeviceModel]) -> None:
    spike, _ = _rule(models, "elsys-ers-co2", "temperature")
    assert spike is not None
    d, step = spike.delta, int(spike.within_s / 10)
    later = int(spike.within_s * 1.5)  # the reference reading (at 2 steps) is out of the window by then
    series = [(0, 21.0), (step, 21.0 + 1.75 * d), (2 * step, 21.0 + d / 16), (3 * step, 21.0 + d / 16 + 1.125 * d),
              (later, 21.0 + d / 16 + 1.2 * d), (later + step, 21.0 + d / 16 + 1.25 * d)]  # fmt: skip
    flags = _series(models, "elsys-ers-co2", "temperature", series, QualityState())
    assert flags == [[], ["spike"], [], ["spike"], [], []]


def test_level_shift_is_accepted_after_the_window(models: dict[str, DeviceModel]) -> None:
    spike, _ = _rule(models, "elsys-ers-co2", "temperature")
    assert spike is not None
    high, step, w = 21.0 + 1.75 * spike.delta, int(spike.within_s / 10), int(spike.within_s)
    series = [(0, 21.0), (step, high), (2 * step, high), (w + step, high), (w + 2 * step, high)]
    flags = _series(models, "elsys-ers-co2", "temperature", series, QualityState())
    assert flags == [[], ["spike"], ["spike"], [], []]


def test_stuck_value(models: dict[str, DeviceModel]) -> None:
    _, stuck_rule = _rule(models, "airrohr-sds011-bme280", "SDS_P1")
    assert stuck_rule is not None
    n = stuck_rule.count
    series = [(i * 60, "12.30") for i in range(n + 1)] + [((n + 1) * 60, "12.40"), ((n + 2) * 60, "12.40")]
    flags = _series(models, "airrohr-sds011-bme280", "SDS_P1", series, QualityState())
    stuck = [i for i, f in enumerate(flags) if "stuck" in f]
    assert stuck == [n - 1, n]


def test_counter_reset(models: dict[str, DeviceModel]) -> None:
    series = [(0, 48213.7), (3600, 48214.9), (7200, 12.0), (10800, 12.6), (14400, 12.6)]
    flags = _series(models, "amsreader-han", "tPI", series, QualityState())
    assert flags == [[], [], ["counter_reset"], [], []]


def test_late_readings_do_not_corrupt_state(models: dict[str, DeviceModel]) -> None:
    state = QualityState()
    # a late reading of the counter (older and lower) must not look like a reset, now or later
    flags = _series(models, "amsreader-han", "tPI", [(3600, 100.0), (0, 50.0), (7200, 99.0)], state)
    # the late 50 is not a reset; the state still holds 100, so 99 afterwards is one
    assert flags == [[], [], ["counter_reset"]]
    (stream,) = state.streams.values()
    assert (stream.value, stream.time) == (99.0, (RECEIVED + timedelta(seconds=7200)).timestamp())


def test_redelivery_does_not_count_as_a_repeat(models: dict[str, DeviceModel]) -> None:
    _, stuck_rule = _rule(models, "airrohr-sds011-bme280", "SDS_P1")
    assert stuck_rule is not None
    below = stuck_rule.count - 1  # one repeat short of stuck
    state = QualityState()
    series = [(i * 60, "12.30") for i in range(below)]
    _series(models, "airrohr-sds011-bme280", "SDS_P1", series, state)
    # the same last reading delivered five more times (QoS 1 redelivery, replayed batch)
    again = _series(models, "airrohr-sds011-bme280", "SDS_P1", [((below - 1) * 60, "12.30")] * 5, state)
    assert again == [[]] * 5
    (stream,) = [s for s in state.streams.values() if s.value == 12.3]
    assert stream.repeats == below


def test_future_reading_does_not_poison_state(models: dict[str, DeviceModel]) -> None:
    binding = _binding(models, "amsreader-han")
    state = QualityState()
    flags = []
    # (phenomenon time, value, receive time): a meter clock jumps to 2095 once
    for at, value, received in [(0, 100.0, 0), (70 * 365 * 86400, 200.0, 60), (3600, 50.0, 3600)]:
        t, rec = RECEIVED + timedelta(seconds=at), RECEIVED + timedelta(seconds=received)
        out = normalise(Decoded("d", (Reading("tPI", value, None, t),)), binding, rec, state)
        flags.append(flag_names(out.observations[0].quality_flags))
    # the 2095 reading is flagged and kept out of the state; the next real reading is still judged
    assert flags == [[], ["future_time"], ["counter_reset"]]


def test_sta_observation(
    sources: SourceSet, raw_file: Callable[..., RawMessage], models: dict[str, DeviceModel]
) -> None:
    binding = DeviceBinding("room-104", models["elsys-ers-co2"], {"indoor_temperature": 42, "indoor_co2": 43})
    out = _run(sources, raw_file("v1.1/Datastreams(42)/Observations", "sta/datastream-topic.json"), binding)
    (o,) = out.observations
    assert (o.datastream_id, o.result) == (42, 21.5)
    assert o.result_time == datetime(2025, 3, 4, 8, 0, 5, tzinfo=UTC)
    assert o.parameters == {"method": "manual"}
    assert o.phenomenon_time == datetime(2025, 3, 4, 8, tzinfo=UTC)
    assert o.quality_flags == 0


def test_sta_datastream_of_another_device(
    sources: SourceSet, raw_file: Callable[..., RawMessage], models: dict[str, DeviceModel]
) -> None:
    binding = DeviceBinding("room-104", models["elsys-ers-co2"], {"indoor_temperature": 41})
    with pytest.raises(MappingError, match="Datastream 42"):
        _run(sources, raw_file("v1.1/Datastreams(42)/Observations", "sta/datastream-topic.json"), binding)


def test_sta_result_type_is_checked(sources: SourceSet, models: dict[str, DeviceModel]) -> None:
    binding = DeviceBinding("p-1", models["nwave-nps405"], {"parking_occupancy": 9})
    raw = RawMessage("v1.1/Datastreams(9)/Observations", b'{"result": "occupied"}', RECEIVED)
    with pytest.raises(MappingError, match="not a boolean"):
        _run(sources, raw, binding)
    ok = _run(sources, RawMessage("v1.1/Datastreams(9)/Observations", b'{"result": false}', RECEIVED), binding)
    assert ok.observations[0].result is False
    assert flag_names(ok.observations[0].quality_flags) == ["time_assumed"]


@pytest.mark.parametrize(
    ("model", "field", "value", "flagged"),
    [
        ("elsys-ers-co2", "co2", 65535, True),  # the sensor's error value
        ("elsys-ers-co2", "temperature", -3276.8, True),  # int16 0x8000 / 10
        ("elsys-ers-co2", "co2", 420, False),
        ("airrohr-sds011-bme280", "SDS_P1", "2500.00", True),
        ("airrohr-sds011-bme280", "BME280_pressure", "0.00", True),
        ("nilu-reference-station", "NO2", -0.4, True),
        ("nwave-nps405", "battery_voltage", 3.344, False),
        ("amsreader-han", "P", -5, True),
    ],
)
def test_implausible_values_are_flagged_out_of_range(
    models: dict[str, DeviceModel], model: str, field: str, value: Any, flagged: bool
) -> None:
    o = _one(models, model, Reading(field, value, None, RECEIVED))
    assert ("out_of_range" in flag_names(o.quality_flags)) is flagged


def test_unmapped_field_counts_are_bounded_and_safe_to_store() -> None:
    from ingest.process import OTHER, UnmappedFields

    seen = UnmappedFields(limit=3)
    seen.add("elsys-ers-co2", ("soundPeak", "soundAvg"))
    seen.add("elsys-ers-co2", ("soundPeak", "x\x00y", "f4", "f5", "z" * 500))
    assert len(seen) == 3  # sender-chosen names: no more labels than the limit
    taken = seen.take()
    assert taken == {
        "elsys-ers-co2/soundPeak": 2,
        "elsys-ers-co2/soundAvg": 1,
        "elsys-ers-co2/x\\x00y": 1,  # a label is text the database takes: control characters escaped
        f"elsys-ers-co2/{OTHER}": 3,
    }
    assert seen.take() == {}
    long = UnmappedFields()
    long.add("m", ("z" * 500,))
    (label,) = long.take()
    assert len(label) < 80
