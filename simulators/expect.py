"""The quality flags ingest should set, predicted from the vocabulary's rules.

Per datastream (device, property), in publish order, each *stored* reading is compared with the
stored reading just before it in phenomenon time (its predecessor): ``counter_reset`` if a
cumulative value is below it; ``spike`` if the change exceeds ``delta`` within ``within_s``;
``stuck`` if it equals it and the run of equal values ending with it reaches ``count``;
``out_of_range`` by the vocabulary's range. A reading without payload time is placed at its
``sent_at``. Flags the message itself implies (``low_cost_sensor``, ``time_assumed`` …) come
with the truth. Time flags against the receive time (``future_time``) are predicted relative to
``sent_at``: they hold when the simulated clock runs with the wall clock.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas.vocabulary import PropertyDef, vocabulary
from simulators.model import Truth

_KEEP = timedelta(days=2)  # history kept per datastream; late messages are at most hours late


class SimulationError(RuntimeError):
    """The simulator produced something it promises never to (two readings at one time)."""


@dataclass(slots=True)
class _Stream:
    times: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)


class Expectations:
    def __init__(self) -> None:
        self._props: dict[str, PropertyDef] = {p.key: p for p in vocabulary().properties}
        self._streams: dict[tuple[str, str], _Stream] = {}

    def _tracked(self, prop: PropertyDef) -> bool:
        return prop.cumulative or prop.spike is not None or prop.stuck is not None

    def flags(self, device_id: str, truth: Truth, sent_at: datetime, *, stored: bool) -> tuple[str, ...]:
        prop = self._props[truth.property]
        flags = list(truth.flags)
        value = truth.value
        if prop.result_type == "number" and not isinstance(value, bool):
            low, high = prop.range
            if not low <= float(value) <= high:
                flags.append("out_of_range")
            if stored and self._tracked(prop):
                flags.extend(self._rules(device_id, prop, truth.time or sent_at, float(value)))
        order = ("out_of_range", "spike", "stuck", "future_time", "stale_time", "counter_reset")
        ranked = sorted(set(flags), key=lambda f: (order.index(f) if f in order else len(order), f))
        return tuple(ranked)

    def _rules(self, device_id: str, prop: PropertyDef, t: datetime, value: float) -> list[str]:
        stream = self._streams.setdefault((device_id, prop.key), _Stream())
        i = bisect.bisect_left(stream.times, t)
        if i < len(stream.times) and stream.times[i] == t:
            raise SimulationError(f"{device_id}/{prop.key}: two stored readings at {t.isoformat()}")
        out: list[str] = []
        run = 1
        if i > 0:
            prev_t, prev_v = stream.times[i - 1], stream.values[i - 1]
            if prop.cumulative and value < prev_v:
                out.append("counter_reset")
            spike = prop.spike
            if (
                spike is not None
                and (t - prev_t).total_seconds() <= spike.within_s
                and abs(value - prev_v) > spike.delta
            ):
                out.append("spike")
            if value == prev_v:
                run = stream.runs[i - 1] + 1
            if prop.stuck is not None and run >= prop.stuck.count:
                out.append("stuck")
        stream.times.insert(i, t)
        stream.values.insert(i, value)
        stream.runs.insert(i, run)
        horizon = stream.times[-1] - _KEEP
        if stream.times[0] < horizon:
            cut = bisect.bisect_left(stream.times, horizon)
            del stream.times[:cut], stream.values[:cut], stream.runs[:cut]
        return out
