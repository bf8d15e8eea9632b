"""Timestamps as each wire format writes them, and as the manifest writes them (UTC, ``Z``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

NILU_ZONE = timezone(timedelta(hours=1))  # NILU writes a fixed +01:00 the whole year


def iso_z(t: datetime) -> str:
    """Manifest time: UTC, microseconds only where there are any, ``Z``."""
    u = t.astimezone(UTC)
    text = u.strftime("%Y-%m-%dT%H:%M:%S")
    if u.microsecond:
        text += f".{u.microsecond:06d}"
    return text + "Z"


def iso_nano_z(t: datetime) -> str:
    """The Things Stack: nanosecond fraction and ``Z`` (Go's RFC 3339 with nanoseconds)."""
    u = t.astimezone(UTC)
    return u.strftime("%Y-%m-%dT%H:%M:%S") + f".{u.microsecond:06d}000Z"


def iso_nano_offset(t: datetime) -> str:
    """ChirpStack v4: nanosecond fraction and ``+00:00`` (chrono's RFC 3339)."""
    u = t.astimezone(UTC)
    return u.strftime("%Y-%m-%dT%H:%M:%S") + f".{u.microsecond:06d}000+00:00"


def nilu_time(t: datetime, *, zoneless: bool = False) -> str:
    """NILU record time at +01:00; ``zoneless`` drops the offset (a real fault of feeds)."""
    local = t.astimezone(NILU_ZONE).strftime("%Y-%m-%dT%H:%M:%S")
    return local if zoneless else local + "+01:00"


def epoch(t: datetime) -> int:
    return int(t.timestamp())
