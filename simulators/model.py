"""The values that flow through a simulation run: drafts from the cases, messages to the broker.

A case emits :class:`Draft` objects (a device's reading at a simulated time, not yet encoded);
the engine picks a fault for each, the draft's :class:`Spec` renders it into one or more
:class:`Out` (two for a duplicate), and the engine turns those into :class:`Message` rows in
publish order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from simulators.faults import Dice

Outcome = Literal["stored", "duplicate", "quarantined"]
Value = float | int | bool


@dataclass(frozen=True, slots=True)
class Truth:
    """One value a message carries, as ingest must store it: vocabulary key, canonical unit.

    ``time`` is None where the payload carries no time (ingest uses its receive time).
    ``flags`` are the quality flags the message itself implies (e.g. ``low_cost_sensor``).
    """

    property: str
    time: datetime | None
    value: Value
    time_end: datetime | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Out:
    """One MQTT message a spec rendered, with what ingest should make of it."""

    topic: str
    payload: bytes
    device_id: str
    truth: tuple[Truth, ...]
    fault: str | None = None
    outcome: Outcome = "stored"
    reason: str | None = None
    delay_s: float = 0.0


class Spec(Protocol):
    """Format-specific content of a draft; renders itself with or without a fault."""

    eligible: tuple[str, ...]

    def render(self, fault: str | None, dice: Dice) -> list[Out]: ...


@dataclass(slots=True)
class Draft:
    time: datetime
    case: str
    device_id: str
    model: str
    kind: str
    spec: Spec
    fault: str | None = None  # set by a case for faults of the device's state (stuck, counter reset …)


@dataclass(frozen=True, slots=True)
class Message:
    """A published message and its manifest line."""

    seq: int
    sent_at: datetime
    case: str
    model: str
    kind: str
    out: Out
    flags: tuple[tuple[str, ...], ...] = field(default=())  # expected flags per truth value
