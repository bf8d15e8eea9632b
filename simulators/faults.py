"""Faults of real deployments, each with its own rate, drawn from a random stream of their own.

A rate is the probability that a fault hits one *eligible* message (a format that cannot carry
a fault is not eligible for it). Message faults are mutually exclusive: one uniform draw per
message picks at most one of the eligible faults, so each is hit with exactly its rate. State
faults (``stuck``, ``counter_reset``, ``startup``, ``heartbeat``) are rolled by the cases,
which own the device state they change. Faults draw from their own generator, so turning them
on or off never changes the signals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ingest.types import MALFORMED, UNKNOWN_DEVICE, UNSUPPORTED_PORT

# name -> what it is (the CLI's help and the report list them from here)
FAULTS: dict[str, str] = {
    "malformed": "payload that does not parse: truncated JSON, bad base64",
    "unknown_port": "LoRaWAN fPort the device's codec does not define",
    "unknown_device": "a device that is not provisioned",
    "duplicate": "one uplink through two gateways: same f_cnt and time, other gateway metadata",
    "redelivery": "QoS-1 style redelivery: the same bytes again, seconds later",
    "late": "published 1-6 hours after its time (a late batch)",
    "out_of_order": "published 30 s - 15 min late, after newer messages",
    "missing_time": "the payload's time is missing (amsreader t=0, SenML without bt)",
    "zoneless_time": "timestamps without a zone offset (NILU)",
    "string_number": "numbers sent as JSON strings",
    "implausible": "negative or implausible values (out of the property's range)",
    "unit_variant": "another unit: Wh for kWh, degF, humidity as a fraction, mg/m3",
    "clock_skew": "the device clock runs 1-3 hours ahead",
    "stuck": "a sensor repeats one value for longer than the stuck rule allows",
    "counter_reset": "a cumulative meter register restarts from zero",
    "startup": "a start-up/reset message mixed into the state messages",
    "heartbeat": "an extra heartbeat mixed into the state messages",
}
STATE_FAULTS = frozenset({"stuck", "counter_reset", "startup", "heartbeat"})
MESSAGE_FAULTS = tuple(k for k in FAULTS if k not in STATE_FAULTS)

# What ingest must do with a message carrying the fault (strict provisioning policy).
QUARANTINE_REASON: dict[str, str] = {
    "malformed": MALFORMED,
    "unknown_port": UNSUPPORTED_PORT,
    "unknown_device": UNKNOWN_DEVICE,
}


def parse_rates(specs: Iterable[str], all_rate: float | None = None) -> dict[str, float]:
    """``["duplicate=0.02", "malformed=0.01"]`` (and ``--faults RATE`` for every fault) -> rates."""
    rates = dict.fromkeys(FAULTS, 0.0)
    if all_rate is not None:
        _check_rate("--faults", all_rate)
        rates = dict.fromkeys(FAULTS, all_rate)
    for spec in specs:
        name, sep, text = spec.partition("=")
        name = name.strip()
        if not sep or name not in FAULTS:
            known = ", ".join(FAULTS)
            raise ValueError(f"fault spec {spec!r} must be NAME=RATE with NAME one of: {known}")
        try:
            rate = float(text)
        except ValueError:
            raise ValueError(f"fault {name}: rate {text!r} is not a number") from None
        _check_rate(name, rate)
        rates[name] = rate
    return rates


def _check_rate(name: str, rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"fault {name}: rate must be between 0 and 1, got {rate}")


def check_exclusive(rates: Mapping[str, float], eligible_sets: Iterable[Sequence[str]]) -> None:
    """Message faults share one draw: their rates for any one format must sum to at most 1."""
    for kinds in eligible_sets:
        total = sum(rates.get(k, 0.0) for k in kinds if k not in STATE_FAULTS)
        if total > 1.0 + 1e-12:
            raise ValueError(
                f"the rates of {', '.join(kinds)} sum to {total:.3f} > 1 for one message format; lower them"
            )


class Dice:
    """The fault random stream, with counts of eligible and injected messages per fault."""

    def __init__(self, rates: Mapping[str, float], rng: np.random.Generator) -> None:
        self.rates = {k: float(v) for k, v in rates.items() if k in FAULTS}
        self.rng = rng
        self.eligible: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()

    def choose(self, kinds: Sequence[str]) -> str | None:
        """At most one of the message faults ``kinds`` for one message."""
        kinds = [k for k in kinds if k not in STATE_FAULTS]
        self.eligible.update(kinds)
        active = [(k, self.rates.get(k, 0.0)) for k in kinds if self.rates.get(k, 0.0) > 0.0]
        if not active:
            return None
        u = float(self.rng.random())
        edge = 0.0
        for kind, rate in active:
            edge += rate
            if u < edge:
                self.injected[kind] += 1
                return kind
        return None

    def roll(self, kind: str) -> bool:
        """Whether the state fault ``kind`` starts at this eligible message."""
        self.eligible[kind] += 1
        rate = self.rates.get(kind, 0.0)
        if rate <= 0.0 or float(self.rng.random()) >= rate:
            return False
        self.injected[kind] += 1
        return True

    def uniform(self, low: float, high: float) -> float:
        return float(self.rng.uniform(low, high))

    def integers(self, low: int, high: int) -> int:
        """An integer in [low, high)."""
        return int(self.rng.integers(low, high))

    def pick(self, options: Sequence[str]) -> str:
        return options[int(self.rng.integers(0, len(options)))]

    def counts(self) -> dict[str, dict[str, int]]:
        return {k: {"eligible": self.eligible[k], "injected": self.injected[k]} for k in FAULTS}
