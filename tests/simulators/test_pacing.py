"""Time: backfill goes out unpaced, live messages never before their wall-clock moment."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from simulators.engine import RunOptions
from simulators.manifest import read_messages
from simulators.run import run

START = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)  # a Wednesday: parking spaces change state
SPEED = 600.0  # ten simulated minutes per wall-clock second


def test_backfill_is_unpaced_and_live_follows_the_speed_factor(tmp_path: Path) -> None:
    options = RunOptions(
        cases=("parking",), start=START, backfill=timedelta(hours=6), duration=timedelta(minutes=10), speed=SPEED,
        spaces=50,
    )  # fmt: skip
    published: list[float] = []
    before = time.monotonic()
    summary = run(options, tmp_path, lambda topic, payload: published.append(time.monotonic()))
    assert summary["complete"] and summary["messages"] == len(published)

    records = read_messages(tmp_path)
    sent = [datetime.fromisoformat(r["sent_at"]) for r in records]
    offsets = [(t - START).total_seconds() / SPEED for t in sent]  # wall-clock seconds after the launch
    live = [i for i, t in enumerate(sent) if START < t < START + timedelta(minutes=10)]
    backfill = [i for i, t in enumerate(sent) if t <= START]
    assert len(backfill) > 50 and len(live) > 5, (len(backfill), len(live))
    # Six simulated hours of backfill at speed 600 would take 36 s if paced; they go out first.
    assert max(backfill) < min(live)
    # No live message leaves before launch + (sent_at - start) / speed.
    early = [(i, published[i] - before, offsets[i]) for i in live if published[i] - before < offsets[i]]
    assert not early, early[:5]
    # The last live message is due about one second after the launch, so the run lasted at least that.
    assert published[live[-1]] - before >= offsets[live[-1]] > 0.5


def test_without_pacing_a_run_does_not_wait(tmp_path: Path) -> None:
    """``--no-publish`` writes the manifest as fast as it can: a simulated day must not take a day."""
    options = RunOptions(cases=("parking",), start=START, duration=timedelta(days=1), speed=1.0, spaces=20)
    summary = run(options, tmp_path, pace=False)
    assert summary["complete"]
    assert datetime.fromisoformat(read_messages(tmp_path)[-1]["sent_at"]) > START + timedelta(hours=12)
