"""The simulation loop: cases step the simulated clock, faults are drawn, messages come out in
publish order with their expected outcome, flags and true values. No I/O here: the runner
(``simulators.run``) paces, publishes and writes the manifest.

Time: the simulated clock covers ``[start - backfill, start + duration)`` in steps of one
minute. A message's ``sent_at`` is the simulated time it is published: its reading's time,
plus the delay of a late, out-of-order or redelivered message. Payloads carry simulated times
wherever their format has a time.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.provisioning import Provisioning
from simulators.cases.base import Case, CaseOptions, rng
from simulators.expect import Expectations
from simulators.faults import Dice, check_exclusive
from simulators.formats import ELIGIBLE
from simulators.model import Draft, Message, Out

CASES = ("air", "parking", "energy")
STEP = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class RunOptions:
    cases: tuple[str, ...]
    start: datetime
    seed: int = 1
    backfill: timedelta = timedelta(0)
    duration: timedelta | None = None
    speed: float = 1.0
    spaces: int = 200
    control: str = "before"
    episodes: tuple[datetime, ...] = ()
    faults: dict[str, float] = field(default_factory=dict)
    topic_prefix: str = ""

    def __post_init__(self) -> None:
        unknown = set(self.cases) - set(CASES)
        if unknown or not self.cases:
            raise ValueError(f"cases must be among {', '.join(CASES)}, got {', '.join(self.cases) or 'none'}")
        if self.start.tzinfo is None:
            raise ValueError("start must carry a time zone")
        if self.speed <= 0:
            raise ValueError("speed must be positive")
        if self.spaces < 1:
            raise ValueError("spaces must be at least 1")
        if self.control not in ("before", "after"):
            raise ValueError("control must be 'before' or 'after'")

    @property
    def begin(self) -> datetime:
        return self.start - self.backfill

    @property
    def end(self) -> datetime | None:
        return None if self.duration is None else self.start + self.duration

    def as_json(self) -> dict[str, Any]:
        from simulators.timefmt import iso_z

        return {
            "cases": list(self.cases),
            "seed": self.seed,
            "start": iso_z(self.start),
            "begin": iso_z(self.begin),
            "end": iso_z(self.end) if self.end else None,
            "backfill_s": self.backfill.total_seconds(),
            "duration_s": self.duration.total_seconds() if self.duration is not None else None,
            "speed": self.speed,
            "spaces": self.spaces,
            "control": self.control,
            "episodes": [iso_z(e) for e in self.episodes],
            "faults": {k: v for k, v in sorted(self.faults.items()) if v > 0},
            "topic_prefix": self.topic_prefix,
        }


def build_case(name: str, options: CaseOptions) -> Case:
    if name == "parking":
        from simulators.cases.parking import Parking

        return Parking(options)
    if name == "air":
        from simulators.cases.air import Air

        return Air(options)
    from simulators.cases.energy import Energy

    return Energy(options)


class Simulation:
    """One run's deterministic stream of messages (same options, same stream, byte for byte)."""

    def __init__(self, options: RunOptions) -> None:
        check_exclusive(options.faults, ELIGIBLE)
        self.options = options
        case_opts = CaseOptions(
            seed=options.seed,
            prefix=options.topic_prefix,
            spaces=options.spaces,
            control=options.control,
            episodes=options.episodes,
        )
        self.cases = [build_case(name, case_opts) for name in CASES if name in options.cases]
        self.dice = Dice(options.faults, rng(options.seed, "faults", 0))
        self.expect = Expectations()
        self.counts: Counter[str] = Counter()
        self.clock = options.begin

    def provisioning(self) -> Provisioning:
        names = [str(c.data["municipality"]) for c in self.cases]
        return Provisioning(
            municipality=names[0] if len(names) == 1 else None,
            sites=[s for c in self.cases for s in c.sites()],
            devices=[d for c in self.cases for d in c.devices()],
        )

    def messages(self) -> Iterator[Message]:
        """Messages in publish order; ``self.clock`` is the simulated time reached."""
        pending: list[tuple[datetime, int, Out, Draft]] = []
        counter = itertools.count()
        seq = itertools.count()
        order = {c.name: i for i, c in enumerate(self.cases)}
        t = self.options.begin
        end = self.options.end
        while end is None or t < end:
            t1 = t + STEP if end is None else min(t + STEP, end)
            drafts: list[Draft] = []
            for case in self.cases:
                drafts.extend(case.step(t, t1, self.dice))
            drafts.sort(key=lambda d: (d.time, order[d.case], d.device_id, d.kind))
            for draft in drafts:
                fault = draft.fault if draft.fault is not None else self.dice.choose(draft.spec.eligible)
                for out in draft.spec.render(fault, self.dice):
                    at = draft.time + timedelta(seconds=out.delay_s)
                    heapq.heappush(pending, (at, next(counter), out, draft))
            while pending and pending[0][0] < t1:
                at, _, out, draft = heapq.heappop(pending)
                yield self._message(next(seq), at, out, draft)
            t = t1
            self.clock = t
        while pending:  # late messages still held when the run ends go out now
            at, _, out, draft = heapq.heappop(pending)
            yield self._message(next(seq), at, out, draft)

    def _message(self, seq: int, at: datetime, out: Out, draft: Draft) -> Message:
        stored = out.outcome == "stored"
        flags = tuple(self.expect.flags(out.device_id, tr, at, stored=True) if stored else () for tr in out.truth)
        self.counts[out.outcome] += 1
        self.counts[f"case:{draft.case}"] += 1
        return Message(seq, at.astimezone(UTC), draft.case, draft.model, draft.kind, out, flags)
