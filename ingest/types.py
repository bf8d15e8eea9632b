"""The values that flow through ingest, between the MQTT edge and the store.

Frozen, slotted dataclasses: cheap to build by the ten thousand, safe to hand across
threads. Decoders turn a :class:`RawMessage` into a :class:`Decoded`; the normaliser turns
that, with the device's :class:`DeviceBinding`, into ``NormalisedObservation`` rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.device_models import DeviceModel


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One MQTT message as received: kept whole so quarantine can store it byte for byte."""

    topic: str
    payload: bytes
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Reading:
    """One value a device reported, still in the vendor's field name and unit."""

    field: str
    value: Any
    unit: str | None = None
    time: datetime | None = None
    time_end: datetime | None = None
    zone_assumed: bool = False


@dataclass(frozen=True, slots=True)
class Decoded:
    """What an envelope (and, for LoRaWAN, a codec) made of one message."""

    device_id: str
    readings: tuple[Reading, ...]
    model_hint: str | None = None
    kind: str = "state"
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeviceBinding:
    """A provisioned device: its model and the Datastream id of each observed property."""

    device_id: str
    model: DeviceModel
    datastreams: Mapping[str, int]
    low_cost: bool = False
    verified: bool = True


class IngestError(Exception):
    """A message Bydata cannot use; ``reason`` is a stable code used in quarantine and metrics."""

    reason: str = "error"

    def __init__(self, detail: str, *, reason: str | None = None) -> None:
        super().__init__(detail)
        if reason is not None:
            self.reason = reason
        self.detail = detail


class DecodeError(IngestError):
    """The payload is not what its envelope or codec expects (malformed JSON, bad base64 …)."""

    reason = "decode_error"


class UnknownDevice(IngestError):
    """The device is not provisioned (strict policy) or its model cannot be told (auto)."""

    reason = "unknown_device"


class MappingError(IngestError):
    """Decoded, but a field cannot be mapped or converted (unknown unit, wrong type …)."""

    reason = "mapping_error"
