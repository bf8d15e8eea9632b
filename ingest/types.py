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
    time_relative: bool = False
    """The payload gave ``time`` relative to the receive time (SenML): it depends on when it arrived."""


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


# Quarantine reasons: stable codes shared by ingest, quarantine, metrics and simulator manifests.
MALFORMED = "malformed"  # not parseable: truncated JSON, bad base64, wrong structure
UNSUPPORTED_PORT = "unsupported_port"  # LoRaWAN fPort (or message kind) the device's codec does not know
UNKNOWN_DEVICE = "unknown_device"  # not provisioned (strict), or its model cannot be told (auto)
UNMAPPED = "unmapped"  # decoded, but a value cannot be mapped or converted (unit, type)
NO_SOURCE = "no_source"  # the topic matches no configured source
STORE_REJECTED = "store_rejected"  # the database refused the rows (constraint), retrying cannot help
REASONS = (MALFORMED, UNSUPPORTED_PORT, UNKNOWN_DEVICE, UNMAPPED, NO_SOURCE, STORE_REJECTED)


class IngestError(Exception):
    """A message Bydata cannot use; ``reason`` is one of :data:`REASONS`."""

    reason: str = MALFORMED

    def __init__(self, detail: str, *, reason: str | None = None) -> None:
        super().__init__(detail)
        if reason is not None:
            if reason not in REASONS:
                raise ValueError(f"unknown quarantine reason {reason!r}")
            self.reason = reason
        self.detail = detail


class DecodeError(IngestError):
    """The payload is not what its envelope or codec expects (malformed JSON, bad base64 …)."""

    reason = MALFORMED


class UnsupportedPort(IngestError):
    """A LoRaWAN port (message kind) the device's codec does not define."""

    reason = UNSUPPORTED_PORT


class UnknownDevice(IngestError):
    """The device is not provisioned (strict policy) or its model cannot be told (auto)."""

    reason = UNKNOWN_DEVICE


class MappingError(IngestError):
    """Decoded, but a field cannot be mapped or converted (unknown unit, wrong type …)."""

    reason = UNMAPPED


class NoSource(IngestError):
    """The topic matches no configured source (``schemas/sources.yaml``)."""

    reason = NO_SOURCE
