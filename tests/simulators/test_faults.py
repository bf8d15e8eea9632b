"""Faults: observed rates within binomial tolerance, and each fault looks like what it claims."""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingest.types import REASONS
from simulators.engine import RunOptions, Simulation
from simulators.faults import FAULTS, parse_rates
from simulators.manifest import read_messages, read_provisioning

Simulate = Callable[..., Path]
# Busy formats (parking, amsreader, Elsys, airrohr) over hours ...
RATES_A = {
    "malformed": 0.03,
    "unknown_port": 0.02,
    "unknown_device": 0.02,
    "duplicate": 0.04,
    "redelivery": 0.03,
    "late": 0.02,
    "out_of_order": 0.03,
    "missing_time": 0.03,
    "string_number": 0.03,
    "implausible": 0.02,
    "clock_skew": 0.02,
    "startup": 0.02,
    "heartbeat": 0.02,
}
# ... and the hourly and quarter-hourly ones (NILU, SenML, list 3) over days.
RATES_B = {
    "zoneless_time": 0.25,
    "unit_variant": 0.25,
    "counter_reset": 0.1,
    "stuck": 0.002,
    "late": 0.05,
    "missing_time": 0.05,
}
SCENARIOS: dict[str, tuple[RunOptions, dict[str, float], tuple[str, ...]]] = {
    "busy": (
        RunOptions(
            cases=("air", "parking", "energy"),
            start=datetime(2026, 3, 10, 5, tzinfo=UTC),
            duration=timedelta(hours=6),
            spaces=400,
            seed=5,
            faults={**RATES_B, **RATES_A},
        ),
        RATES_A,
        tuple(RATES_A),
    ),
    "slow": (
        RunOptions(
            cases=("air", "energy"),
            start=datetime(2026, 3, 9, tzinfo=UTC),
            duration=timedelta(days=2),
            seed=6,
            faults=RATES_B,
        ),
        RATES_B,
        ("zoneless_time", "unit_variant", "counter_reset", "stuck"),
    ),
}


def test_every_fault_has_a_rate_test() -> None:
    assert {k for _, _, tested in SCENARIOS.values() for k in tested} == set(FAULTS)


_RUNS: dict[str, Path] = {}


def _run(name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from simulators.run import run

    if name not in _RUNS:
        _RUNS[name] = tmp_path_factory.mktemp(name)
        run(SCENARIOS[name][0], _RUNS[name], None, pace=False)
    return _RUNS[name]


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return _run(request.param, tmp_path_factory), request.param


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run("busy", tmp_path_factory)


def test_observed_rates_are_within_binomial_tolerance(scenario: tuple[Path, str]) -> None:
    faulty, name = scenario
    draws = json.loads((faulty / "run.json").read_text())["fault_draws"]
    _, rates, tested = SCENARIOS[name]
    for name in tested:
        rate = rates[name]
        n, k = draws[name]["eligible"], draws[name]["injected"]
        assert n * rate >= 10, f"{name}: too few eligible messages ({n}) for a rate test"
        tolerance = 4 * math.sqrt(n * rate * (1 - rate))
        assert abs(k - n * rate) <= tolerance, f"{name}: {k} of {n}, expected {n * rate:.0f} ± {tolerance:.0f}"


def test_manifest_counts_match_the_draws(scenario: tuple[Path, str]) -> None:
    faulty, which = scenario
    lines = read_messages(faulty)
    draws = json.loads((faulty / "run.json").read_text())["fault_draws"]
    seen = Counter(line["fault"] for line in lines)
    for name in SCENARIOS[which][0].faults:
        if name == "stuck":  # a stuck stretch spans many messages
            assert seen[name] > draws[name]["injected"]
        else:
            assert seen[name] == draws[name]["injected"], name


def test_quarantined_messages_really_cannot_be_used(busy: Path) -> None:
    lines = read_messages(busy)
    payloads = _payloads(SCENARIOS["busy"][0])
    provisioned = {d.id for d in read_provisioning(busy).devices}
    checked = Counter()
    for line in lines:
        if line["outcome"] != "quarantined":
            continue
        assert line["reason"] in REASONS
        payload = payloads[line["seq"]]
        if line["fault"] == "malformed":
            assert line["reason"] == "malformed"
            assert _unparseable(payload), payload[:200]
        elif line["fault"] == "unknown_port":
            assert line["reason"] == "unsupported_port"
            doc = orjson.loads(payload)
            port = doc.get("fPort") or doc["uplink_message"]["f_port"]
            assert port >= 100
        else:
            assert line["fault"] == "unknown_device" and line["reason"] == "unknown_device"
            assert line["device_id"] not in provisioned
        checked[line["fault"]] += 1
    assert set(checked) == {"malformed", "unknown_port", "unknown_device"}


def test_duplicates_repeat_a_stored_reading(scenario: tuple[Path, str]) -> None:
    faulty, which = scenario
    lines = read_messages(faulty)
    stored: dict[tuple[str, str, str | None], Any] = {}
    by_hash: dict[str, int] = {}
    n = Counter()
    for line in lines:
        keys = [(line["device_id"], t["property"], t["phenomenon_time"]) for t in line["truth"]]
        if line["outcome"] == "stored":
            for key, t in zip(keys, line["truth"], strict=True):
                stored[key] = t["value"]
            by_hash.setdefault(line["sha256"], line["seq"])
        elif line["outcome"] == "duplicate":
            assert all(k in stored and k[2] is not None for k in keys), line
            assert [stored[k] for k in keys] == [t["value"] for t in line["truth"]]
            if line["fault"] == "redelivery":
                assert line["sha256"] in by_hash  # byte for byte the same message
            else:
                assert line["fault"] == "duplicate"
                assert line["sha256"] not in by_hash  # other gateway metadata
            n[line["fault"]] += 1
    if SCENARIOS[which][0].faults.get("redelivery", 0) == 0:
        assert n["redelivery"] == 0
    if which == "busy":
        assert n["redelivery"] > 10 and n["duplicate"] > 10


def test_time_and_value_faults_carry_their_flags(scenario: tuple[Path, str]) -> None:
    faulty, which = scenario
    lines = read_messages(faulty)
    expect = {
        "missing_time": "time_assumed",
        "zoneless_time": "zone_assumed",
        "clock_skew": "future_time",
        "implausible": "out_of_range",
    }
    history: dict[str, list[tuple[str, float]]] = defaultdict(list)  # register readings by time
    resets = 0
    for line in lines:
        flag = expect.get(line["fault"] or "")
        if flag is not None and line["outcome"] == "stored":
            assert flag in line["flags"], line
        counters = [t for t in line["truth"] if t["property"] in ("active_energy_import", "heat_energy")]
        if counters and line["outcome"] == "stored":
            when = counters[0]["phenomenon_time"] or line["sent_at"]
            value, readings = counters[0]["value"], history[line["device_id"]]
            i = bisect.bisect_left(readings, (when, -1.0))
            lower = i > 0 and value < readings[i - 1][1]
            # flagged exactly when it is below the reading before it in time (0 after 0 is no visible reset)
            assert ("counter_reset" in line["flags"]) == lower, line
            if line["fault"] == "counter_reset":
                assert value < 1.0  # the register restarted
                resets += lower
            else:
                assert not lower, line
            readings.insert(i, (when, value))
        if line["fault"] == "late":
            sent = datetime.fromisoformat(line["sent_at"])
            times = [datetime.fromisoformat(t["phenomenon_time"]) for t in line["truth"] if t["phenomenon_time"]]
            assert times and all(sent - t >= timedelta(hours=1) for t in times)
    assert resets > 0 or "counter_reset" not in SCENARIOS[which][0].faults
    stuck = [line for line in lines if "stuck" in line["flags"]]
    assert stuck
    # flagged stuck: a stuck fault, or the next reading of that device happening to equal the stuck
    # value (the rule counts equal values in a row; a value to one decimal repeats by chance)
    before: dict[str, Any] = {}
    for line in lines:
        if "stuck" in line["flags"] and line["fault"] != "stuck":
            assert before.get(line["device_id"], {}).get("fault") == "stuck", line
        before[line["device_id"]] = line


def test_rates_are_checked() -> None:
    with pytest.raises(ValueError, match="NAME=RATE"):
        parse_rates(["nonsense=0.1"])
    with pytest.raises(ValueError, match="between 0 and 1"):
        parse_rates(["late=1.5"])
    with pytest.raises(ValueError, match="not a number"):
        parse_rates(["late=often"])
    assert parse_rates([], 0.01) == dict.fromkeys(FAULTS, 0.01)
    assert parse_rates(["late=0.5"], 0.01)["late"] == 0.5
    with pytest.raises(ValueError, match="sum to"):
        Simulation(RunOptions(cases=("parking",), start=datetime(2026, 1, 1, tzinfo=UTC), faults=parse_rates([], 0.2)))


def test_faults_do_not_change_the_signals() -> None:
    """The fault stream is separate: a fault-free run's values appear unchanged in a faulty one."""

    def values(faults: dict[str, float]) -> dict[tuple[str, str, str], Any]:
        opts = RunOptions(
            cases=("energy",),
            start=datetime(2026, 3, 10, 8, tzinfo=UTC),
            duration=timedelta(minutes=30),
            faults=faults,
        )
        out = {}
        for m in Simulation(opts).messages():
            if m.out.outcome == "stored" and m.out.fault is None and m.model == "elsys-ers-co2":
                for t in m.out.truth:
                    out[(m.out.device_id, t.property, str(t.time))] = t.value
        return out

    clean, faulty = values({}), values({"malformed": 0.2, "late": 0.1})
    assert len(faulty) > 50
    assert all(clean[k] == v for k, v in faulty.items())


def _payloads(opts: RunOptions) -> dict[int, bytes]:
    """The run's payloads by sequence number (the generator is deterministic)."""
    return {m.seq: m.out.payload for m in Simulation(opts).messages()}


def _unparseable(payload: bytes) -> bool:
    try:
        doc = json.loads(payload)
    except ValueError:
        return True
    raw = doc.get("data") if isinstance(doc, dict) and "data" in doc else None
    if isinstance(doc, dict) and "uplink_message" in doc:
        raw = doc["uplink_message"]["frm_payload"]
    if not isinstance(raw, str):
        return False
    try:
        base64.b64decode(raw, validate=True)
    except binascii.Error:
        pass
    else:
        return False
    try:
        base64.b64decode(raw)  # a lenient decoder must fail too
    except binascii.Error:
        return True
    return False


def _gateway(doc: dict[str, Any]) -> str:
    rx = doc.get("rxInfo") or doc["uplink_message"]["rx_metadata"]
    first = rx[0]
    return str(first.get("gatewayId") or first["gateway_ids"]["gateway_id"])


def test_duplicate_copies_differ_only_in_gateway_metadata() -> None:
    opts = RunOptions(
        cases=("parking",),
        start=datetime(2026, 3, 10, 7, tzinfo=UTC),
        duration=timedelta(hours=1),
        spaces=200,
        faults={"duplicate": 0.2},
    )
    msgs = list(Simulation(opts).messages())
    previous: dict[str, dict[str, Any]] = {}
    pairs = 0
    for m in msgs:
        doc = orjson.loads(m.out.payload)
        if m.out.fault == "duplicate":
            orig = previous[m.out.device_id]
            assert _gateway(orig) != _gateway(doc)
            for d in (orig, doc):
                body = d.get("uplink_message", d)
                body.pop("rx_metadata", None)
                body.pop("rxInfo", None)
            assert orig == doc
            pairs += 1
        else:
            previous[m.out.device_id] = doc
    assert pairs > 20
