"""What every envelope decoder shares: JSON, base64, times, and the LoRaWAN uplink value."""

from __future__ import annotations

import binascii
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

import orjson

from ingest.types import DecodeError

# Epoch seconds Bydata accepts as absolute times: 1970 .. 2200 (guards datetime overflow).
_MAX_EPOCH = 7258118400.0
# Longest device id: ids are database keys (an index entry has a size limit), labels and log text.
MAX_DEVICE_ID = 200


@dataclass(slots=True)
class Uplink:
    """A LoRaWAN uplink as a network server delivered it, before the device codec runs.

    ``device_id`` is the DevEUI in lower-case hex (see :func:`normalise_eui`) or, when the
    network sent none, its own device id. ``network_decoded`` is the payload object the
    network server's formatter produced, if any; ``model_hint`` is what the network says
    the device is (TTS ``version_ids`` as ``brand_id/model_id``, ChirpStack device-profile name).
    A transient value between envelope and codec, so not frozen (cheaper to build).
    """

    device_id: str
    f_port: int
    payload: bytes
    time: datetime | None
    zone_assumed: bool = False
    network_decoded: Mapping[str, Any] | None = None
    model_hint: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


def loads(payload: bytes, what: str) -> Any:
    """Parse JSON; truncated or invalid text becomes a :class:`DecodeError` naming ``what``."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"{what}: not valid JSON ({exc})") from None


def expect_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DecodeError(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def b64decode(text: Any, what: str) -> bytes:
    """Standard base64 with padding (what TTS and ChirpStack send), strictly checked."""
    if not isinstance(text, str):
        raise DecodeError(f"{what}: expected base64 text, got {type(text).__name__}")
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"{what}: bad base64 {text[:40]!r} ({exc})") from None


_HEX16 = re.compile(r"[0-9a-f]{16}")
_euis: dict[str, str] = {}


def normalise_eui(text: str) -> str:
    """DevEUI as Bydata keys it: 16 lower-case hex digits (TTS writes upper, ChirpStack lower)."""
    eui = _euis.get(text)
    if eui is not None:
        return eui
    eui = text.strip().lower().replace("-", "").replace(":", "")
    if _HEX16.fullmatch(eui) is None:
        raise DecodeError(f"DevEUI {text!r:.40} is not 16 hex digits")
    if len(_euis) >= 200_000:
        _euis.clear()
    _euis[text] = eui
    return eui


def check_device_id(device_id: str, what: str) -> str:
    """``device_id`` if Bydata can key a device on it, else a :class:`DecodeError` saying why.

    A device id taken from a payload (or topic) becomes a database key, a quarantine field and
    log text: control characters (a NUL among them, which PostgreSQL text cannot hold) and
    ids longer than :data:`MAX_DEVICE_ID` characters are refused, so such a message is
    quarantined as ``malformed`` instead of failing where it is stored.
    """
    if len(device_id) > MAX_DEVICE_ID:
        raise DecodeError(
            f"{what}: device id {device_id[:40]!r}… is {len(device_id)} characters long (at most {MAX_DEVICE_ID})"
        )
    if not device_id.isprintable():
        bad = next((c for c in device_id if unicodedata.category(c) in ("Cc", "Cs")), None)
        if bad is not None:
            raise DecodeError(f"{what}: device id {device_id[:60]!r} contains the control character {bad!r}")
    return device_id


def parse_time(value: Any, zone: tzinfo, what: str) -> tuple[datetime, bool]:
    """ISO 8601 text to an aware UTC datetime; a zone-less time is read in ``zone``.

    Returns ``(time, zone_assumed)``. Nanosecond fractions (TTS, ChirpStack) are cut to
    microseconds by :meth:`datetime.fromisoformat`.
    """
    if not isinstance(value, str):
        raise DecodeError(f"{what}: expected an ISO 8601 time, got {value!r:.60}")
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise DecodeError(f"{what}: {value!r:.60} is not an ISO 8601 time") from None
    assumed = t.tzinfo is None
    if assumed:
        t = t.replace(tzinfo=zone)
    try:
        return t.astimezone(UTC), assumed
    except OverflowError:
        raise DecodeError(f"{what}: {value!r} is outside the representable time range") from None


def epoch_time(value: Any, what: str) -> datetime:
    """Epoch seconds (int or float) to an aware UTC datetime."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DecodeError(f"{what}: expected epoch seconds, got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 <= seconds <= _MAX_EPOCH:
        raise DecodeError(f"{what}: {value!r} is not a plausible epoch time")
    return datetime.fromtimestamp(seconds, UTC)


def port(value: Any, what: str) -> int:
    """A LoRaWAN FPort: 0..255 (0 is also what a missing, zero-omitted field means)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        raise DecodeError(f"{what}: FPort must be an integer 0..255, got {value!r}")
    return value
