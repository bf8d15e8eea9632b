"""The manifest is consistent: provisioning, message lines and truth agree with the schema."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from ingest.types import REASONS
from schemas.device_models import device_models
from schemas.provisioning import Provisioning
from schemas.quality import flag_bits
from schemas.vocabulary import vocabulary
from simulators.faults import parse_rates
from simulators.manifest import read_messages, read_provisioning

Simulate = Callable[..., Path]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from datetime import UTC

    from simulators.engine import RunOptions
    from simulators.run import run

    directory = tmp_path_factory.mktemp("manifest")
    opts = RunOptions(
        cases=("air", "parking", "energy"),
        start=datetime(2026, 3, 10, 6, tzinfo=UTC),
        duration=timedelta(hours=4),
        backfill=timedelta(hours=2),
        spaces=150,
        seed=9,
        faults=parse_rates([], 0.01),
    )
    run(opts, directory, None, pace=False)
    return directory


def test_provisioning_is_the_ingest_format(manifest: Path) -> None:
    data = yaml.safe_load((manifest / "provisioning.yaml").read_text(encoding="utf-8"))
    prov = Provisioning.model_validate(data)  # exactly the schema ingest imports
    models = device_models()
    kinds = Counter(s.kind for s in prov.sites)
    assert kinds == {"area": 1, "parking_zone": 8, "building": 3}
    assert sum(s.capacity or 0 for s in prov.sites if s.kind == "parking_zone") == 150
    assert all(s.heated_floor_area for s in prov.sites if s.kind == "building")
    for device in prov.devices:
        assert device.model in models
        assert device.location is not None and device.site is not None
    by_model = Counter(d.model for d in prov.devices)
    assert set(by_model) == set(models)  # every device model of the project is exercised
    kinds_of = {d.id: d.station_kind for d in prov.devices}
    assert {kinds_of[d.id] for d in prov.devices if d.model == "airrohr-sds011-bme280"} == {"low-cost"}


def test_every_line_names_a_provisioned_device(manifest: Path) -> None:
    devices = {d.id: d for d in read_provisioning(manifest).devices}
    lines = read_messages(manifest)
    assert len(lines) == json.loads((manifest / "run.json").read_text())["messages"]
    assert [line["seq"] for line in lines] == list(range(len(lines)))
    unknown = 0
    for line in lines:
        if line["fault"] == "unknown_device":
            assert line["device_id"] not in devices
            assert line["outcome"] == "quarantined" and line["reason"] == "unknown_device"
            unknown += 1
        else:
            assert devices[line["device_id"]].model == line["model"], line
    assert unknown > 0


def test_truth_is_in_canonical_units_and_known_terms(manifest: Path) -> None:
    vocab = {p.key: p for p in vocabulary().properties}
    flags = set(flag_bits())
    seen: Counter[str] = Counter()
    for line in read_messages(manifest):
        assert line["outcome"] in ("stored", "duplicate", "quarantined")
        assert (line["reason"] is None) == (line["outcome"] != "quarantined")
        assert line["reason"] is None or line["reason"] in REASONS
        assert set(line["flags"]) <= flags
        assert line["flags"] == sorted({f for t in line["truth"] for f in t["flags"]})
        fields = device_models()[line["model"]].fields
        assert {t["property"] for t in line["truth"]} <= {f.property for f in fields.values()}
        for t in line["truth"]:
            prop = vocab[t["property"]]
            seen[prop.key] += 1
            if prop.result_type == "boolean":
                assert isinstance(t["value"], bool)
                continue
            assert isinstance(t["value"], float | int) and not isinstance(t["value"], bool)
            low, high = prop.range
            # canonical units keep values in range (hPa, not Pa; kWh, not Wh; % not fraction)
            assert (low <= t["value"] <= high) != ("out_of_range" in t["flags"]) or line["outcome"] != "stored", line
            if t["phenomenon_time"] is not None:
                assert t["phenomenon_time"].endswith("Z")
                datetime.fromisoformat(t["phenomenon_time"])
            else:
                assert "time_assumed" in t["flags"] or line["outcome"] != "stored"
    assert set(seen) == set(vocab)  # the three cases cover the whole vocabulary


def test_stored_readings_never_share_a_time(manifest: Path) -> None:
    keys: Counter[tuple[str, str, str]] = Counter()
    for line in read_messages(manifest):
        if line["outcome"] == "stored":
            for t in line["truth"]:
                if t["phenomenon_time"] is not None:
                    keys[(line["device_id"], t["property"], t["phenomenon_time"])] += 1
    assert keys and max(keys.values()) == 1


def test_backfill_and_live_times(manifest: Path) -> None:
    run = json.loads((manifest / "run.json").read_text())
    assert run["complete"] is True
    begin = datetime.fromisoformat(run["options"]["begin"])
    sent = [datetime.fromisoformat(line["sent_at"]) for line in read_messages(manifest)]
    assert min(sent) >= begin
    assert min(sent) < datetime.fromisoformat(run["options"]["start"])  # backfilled part
    assert sent == sorted(sent)  # published in simulated time order, late ones at their late time
