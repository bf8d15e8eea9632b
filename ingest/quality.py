"""Quality flags (names and bits from ``schemas/quality.yaml``) and the per-datastream state
that the stateful checks (spike, stuck, counter reset) need.

The state is a plain in-memory object the caller owns: one :class:`QualityState` per
ingest worker, passed to every :func:`ingest.normalise.normalise` call. It holds one small
:class:`StreamState` per Datastream. Only a reading newer than the newest one seen (and
not flagged ``future_time``) updates it, so late, out-of-order, redelivered or
clock-broken readings never corrupt it; they are judged on stateless rules only.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.quality import flag

OUT_OF_RANGE = flag("out_of_range")
SPIKE = flag("spike")
STUCK = flag("stuck")
FUTURE_TIME = flag("future_time")
STALE_TIME = flag("stale_time")
COUNTER_RESET = flag("counter_reset")
LOW_COST_SENSOR = flag("low_cost_sensor")
TIME_ASSUMED = flag("time_assumed")
ZONE_ASSUMED = flag("zone_assumed")
UNVERIFIED_DEVICE = flag("unverified_device")
TIME_RELATIVE = flag("time_relative")


@dataclass(slots=True)
class StreamState:
    """What one Datastream's checks remember (times are epoch seconds).

    ``time``/``value``: the newest reading seen; ``repeats``: how many readings in a row
    had that value (stuck); ``ref_time``/``ref_value``: the newest reading not flagged as
    a spike, which the next reading is compared with (so one outlier does not make the
    reading after it look like a spike too).
    """

    time: float
    value: float
    repeats: int
    ref_time: float
    ref_value: float


@dataclass(frozen=True, slots=True)
class Rules:
    """A property's stateful rules, in its canonical unit (from the vocabulary)."""

    cumulative: bool = False
    spike_delta: float | None = None
    spike_within_s: float = 0.0
    stuck_count: int | None = None

    @property
    def stateful(self) -> bool:
        return self.cumulative or self.spike_delta is not None or self.stuck_count is not None

    @property
    def seed_rows(self) -> int:
        """How many of a Datastream's newest stored readings its state is started from: enough to
        count a stuck run to the rule's count, and at least ten to find the newest reading that was
        no spike."""
        return max(self.stuck_count or 1, 10)


class QualityState:
    """Per-datastream state for spike, stuck and counter-reset checks; owned by the caller.

    Not thread-safe: give each thread that normalises its own, or serialise calls.
    Memory is one :class:`StreamState` per Datastream that has a stateful rule.
    """

    __slots__ = ("streams",)

    def __init__(self) -> None:
        self.streams: dict[int, StreamState] = {}

    def __len__(self) -> int:
        return len(self.streams)

    def seed(
        self,
        datastream_id: int,
        time: float,
        value: float,
        *,
        repeats: int = 1,
        ref_time: float | None = None,
        ref_value: float | None = None,
    ) -> None:
        """Start a Datastream from what is stored (after a restart): its newest reading, how often
        in a row that value came, and its newest reading that was no spike (default: the newest)."""
        self.streams[datastream_id] = StreamState(
            time, value, repeats, time if ref_time is None else ref_time, value if ref_value is None else ref_value
        )

    def check(self, datastream_id: int, rules: Rules, time: float, value: float) -> int:
        """Flags for a reading at ``time`` (epoch s) with ``value``; updates state if it is the newest."""
        st = self.streams.get(datastream_id)
        if st is None:
            self.streams[datastream_id] = StreamState(time, value, 1, time, value)
            return 0
        if time <= st.time:
            return 0  # late, out of order or a redelivery: no history to judge it against
        flags = 0
        if rules.cumulative and value < st.value:
            flags |= COUNTER_RESET
        if value == st.value:
            st.repeats += 1
            if rules.stuck_count is not None and st.repeats >= rules.stuck_count:
                flags |= STUCK
        else:
            st.repeats = 1
        if rules.spike_delta is not None:
            if time - st.ref_time <= rules.spike_within_s and abs(value - st.ref_value) > rules.spike_delta:
                flags |= SPIKE
            else:
                st.ref_time, st.ref_value = time, value
        else:
            st.ref_time, st.ref_value = time, value
        st.time, st.value = time, value
        return flags
