"""Running a simulation: pace it against the wall clock, publish, write the manifest.

Backfill (simulated time before ``start``) goes out as fast as the broker acknowledges it;
from ``start`` on, a message is published when the wall clock reaches
``launch + (sent_at - start) / speed``. Payload timestamps are always the simulated times, the
truth the manifest records. At speed 1 they agree with the receive time; in a time-lapse they
run ahead of it, which is why the command line starts a bounded time-lapse in the past (see
``bydata simulate --help``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulators.engine import RunOptions, Simulation
from simulators.manifest import ManifestWriter
from simulators.model import Message
from simulators.timefmt import iso_z

PublishFn = Callable[[str, bytes], None]
ProgressFn = Callable[[Simulation, Message], None]


def run(
    options: RunOptions,
    directory: Path,
    publish: PublishFn | None = None,
    *,
    pace: bool = True,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Run to the end (or until ``stop``); returns what ``run.json`` holds."""
    sim = Simulation(options)
    faults: Counter[str] = Counter()
    complete = False
    launch = time.monotonic()
    end = options.end  # messages held past the end (late ones) go out when the run ends, unpaced
    provisioning = sim.provisioning()
    with ManifestWriter(directory, provisioning) as manifest:
        try:
            for msg in sim.messages():
                if stop is not None and stop.is_set():
                    break
                live = msg.sent_at > options.start and (end is None or msg.sent_at < end)
                if pace and live:
                    due = launch + (msg.sent_at - options.start).total_seconds() / options.speed
                    if _sleep_until(due, stop):
                        break
                if publish is not None:
                    publish(msg.out.topic, msg.out.payload)
                manifest.write(msg)
                faults[msg.out.fault or "none"] += 1
                if progress is not None:
                    progress(sim, msg)
            else:
                complete = True
        finally:
            summary = {
                "complete": complete,
                "options": options.as_json(),
                "simulated_until": iso_z(sim.clock),
                "messages": manifest.count,
                "outcomes": {k: sim.counts[k] for k in ("stored", "duplicate", "quarantined")},
                "cases": {c.name: sim.counts[f"case:{c.name}"] for c in sim.cases},
                "faults": dict(sorted(faults.items())),
                "fault_draws": sim.dice.counts(),
                "devices": len(provisioning.devices),
                "files": ["provisioning.yaml", "messages.jsonl", "run.json"],
            }
            manifest.finish(summary)
    return summary


def _sleep_until(due: float, stop: threading.Event | None) -> bool:
    """Sleep until ``due`` (monotonic); True if ``stop`` was set meanwhile."""
    while True:
        left = due - time.monotonic()
        if left <= 0:
            return False
        if stop is not None:
            if stop.wait(min(left, 0.5)):
                return True
        else:
            time.sleep(min(left, 0.5))


def run_to_broker(
    url: str,
    options: RunOptions,
    directory: Path,
    *,
    stop: threading.Event | None = None,
    max_unacked: int = 1000,
) -> dict[str, Any]:
    """Publish a run to the broker at ``url`` (for ``bydata demo`` and tests); returns ``run.json``."""
    from simulators.publisher import Publisher

    with Publisher(url, max_unacked=max_unacked) as publisher:
        return run(options, directory, publisher.publish, stop=stop)
