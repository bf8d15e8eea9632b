"""Done when: a fault-injected simulator run of every case is ingested and the store matches its manifest.

``bydata simulate all`` (real processes, real Mosquitto) publishes the three cases with every
fault at 5 %; ``bydata ingest`` (strict policy, the simulators' provisioning imported) takes
them in. Then, from the manifest (``simulators.manifest``): every true value of every stored
message is in the store exactly once, nothing else is; every quarantined message is in the
quarantine with its reason; duplicates add nothing; the accounting identity holds and its
counts are the manifest's.
"""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg

from ingest.sources import load_sources
from ingest.types import NoSource
from schemas import quality
from store import counters
from tests.conftest import ROOT, Spawn, wait_until

from .conftest import assert_identity, totals
from .test_resilience import _start_worker

TIME_ASSUMED = quality.flag("time_assumed")
# Flags that depend on the message alone (not on receive time or processing order).
STATELESS_FLAGS = ("low_cost_sensor", "time_assumed", "zone_assumed", "out_of_range")


# A fixed simulated hour (a Monday morning in term time): the same messages on every run.
# Its payload times are months old, so time-window flags (stale_time, future_time) are not
# compared; they depend on the receive time.
START = "2026-03-02T08:00:00Z"


def _simulate(*args: str, cwd: Path = ROOT) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bydata.cli", "simulate", *args],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def _same(stored: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(stored, bool):
        return stored is expected
    return math.isclose(float(stored), float(expected), rel_tol=1e-9, abs_tol=1e-9)


def test_fault_injected_run_of_every_case_matches_the_manifest(
    migrated_db: str, mqtt_url: str, topic_prefix: str, spawn: Spawn, tmp_path: Path
) -> None:
    prefix = topic_prefix + "/"
    options = [
        "all",
        "--start",
        START,
        "--duration",
        "1h",
        "--speed",
        "1800",
        "--spaces",
        "12",
        "--faults",
        "0.05",
        "--seed",
        "11",
        "--topic-prefix",
        prefix,
        "--broker",
        mqtt_url,
    ]
    # 1. the run's devices (same seed and options: same devices, same messages)
    _simulate(*options, "--no-publish", "--manifest", str(tmp_path / "dry"))
    result = subprocess.run(
        [sys.executable, "-m", "bydata.cli", "devices", "import", str(tmp_path / "dry" / "provisioning.yaml")],
        check=False,
        cwd=ROOT,
        env={**os.environ, "BYDATA_DATABASE_URL": migrated_db},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = [orjson.loads(line) for line in (tmp_path / "dry" / "messages.jsonl").read_bytes().splitlines()]
    kinds = Counter(line["case"] for line in lines)
    assert set(kinds) == {"air", "parking", "energy"}, kinds
    faults = {line["fault"] for line in lines} - {None}
    assert {"malformed", "unknown_device", "duplicate", "redelivery", "late", "out_of_order"} <= faults, faults

    # every message must reach ingest: its topic must match a configured source
    sources = load_sources()
    unsubscribed = []
    for line in lines:
        try:
            sources.match(line["topic"].removeprefix(prefix))
        except NoSource:
            unsubscribed.append(line["topic"])
    assert not unsubscribed, f"simulator topics no source subscribes to: {sorted(set(unsubscribed))}"

    # 2. ingest, then the publishing run
    _start_worker(spawn, tmp_path, migrated_db, mqtt_url, f"sim-{uuid.uuid4().hex[:8]}", prefix)
    _simulate(*options, "--manifest", str(tmp_path / "run"))
    manifest = [orjson.loads(line) for line in (tmp_path / "run" / "messages.jsonl").read_bytes().splitlines()]
    assert [m["sha256"] for m in manifest] == [line["sha256"] for line in lines]  # deterministic
    assert wait_until(lambda: totals(migrated_db)[(counters.RECEIVED, "")] >= len(manifest), timeout=120), totals(
        migrated_db
    )

    # 3. accounting: the identity, with the manifest's counts
    t = totals(migrated_db)
    assert_identity(t)
    outcomes = Counter(m["outcome"] for m in manifest)
    reasons = Counter(m["reason"] for m in manifest if m["outcome"] == "quarantined")
    assert t[(counters.RECEIVED, "")] == len(manifest)
    assert t[(counters.STORED, "")] == outcomes["stored"]
    assert t[(counters.DUPLICATE, "")] == outcomes["duplicate"]
    assert {label: v for (name, label), v in t.items() if name == counters.QUARANTINED and v} == dict(reasons)

    with psycopg.connect(migrated_db) as conn:
        streams = {
            (device, key): ds for ds, device, key in conn.execute("SELECT id, device_id, property_key FROM datastreams")
        }
        rows = conn.execute(
            "SELECT datastream_id, phenomenon_time, phenomenon_time_end, coalesce(result_number::text,"
            " result_boolean::text), result_boolean IS NOT NULL, quality_flags FROM observations"
        ).fetchall()
        quarantined = Counter(
            (topic, hashlib.sha256(bytes(payload)).hexdigest(), reason)
            for topic, payload, reason in conn.execute("SELECT topic, payload, reason FROM quarantine")
        )

    # 4. quarantine: exactly the manifest's quarantined messages, each with its reason
    assert quarantined == Counter(
        (m["topic"], m["sha256"], m["reason"]) for m in manifest if m["outcome"] == "quarantined"
    )

    # 5. every true value of every stored message, exactly once, and nothing else
    timed: dict[tuple[int, datetime], tuple[Any, datetime | None, tuple[str, ...]]] = {}
    untimed: defaultdict[int, list[Any]] = defaultdict(list)
    for m in manifest:
        if m["outcome"] != "stored":
            continue
        for truth in m["truth"]:
            ds = streams[(m["device_id"], truth["property"])]
            when = _time(truth["phenomenon_time"])
            if when is None:
                untimed[ds].append(truth["value"])
                continue
            key = (ds, when)
            assert key not in timed, f"the manifest has two readings for {key}"
            timed[key] = (truth["value"], _time(truth["phenomenon_time_end"]), tuple(truth["flags"]))
    assert len(rows) == len(timed) + sum(len(v) for v in untimed.values())
    seen_untimed: defaultdict[int, list[Any]] = defaultdict(list)
    flag_mismatches = []
    for ds, when, end, text, is_bool, flags in rows:
        value: Any = (text == "true") if is_bool else float(text)
        if flags & TIME_ASSUMED:
            seen_untimed[ds].append(value)
            continue
        expected = timed.pop((ds, when), None)
        assert expected is not None, f"stored but not in the manifest: Datastream {ds} at {when} = {value}"
        assert _same(value, expected[0]), f"Datastream {ds} at {when}: stored {value}, true {expected[0]}"
        assert end == expected[1]
        got = {f for f in quality.decode(flags) if f in STATELESS_FLAGS}
        want = {f for f in expected[2] if f in STATELESS_FLAGS}
        if got != want:
            flag_mismatches.append((ds, when, sorted(got), sorted(want)))
    assert not timed, f"true values missing from the store: {list(timed.items())[:5]}"
    for ds, values in untimed.items():
        got_values = sorted(seen_untimed.pop(ds, []), key=str)
        assert len(got_values) == len(values) and all(
            _same(a, b) for a, b in zip(got_values, sorted(values, key=str), strict=True)
        ), (ds, got_values, values)
    assert not seen_untimed
    assert not flag_mismatches, flag_mismatches[:10]
