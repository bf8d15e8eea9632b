"""SenML packs in JSON (RFC 8428), e.g. from a building gateway.

Resolution (RFC 8428 §4.1-4.6): base fields (``bn``, ``bt``, ``bu``, ``bv``, ``bs``)
apply to their record and every later one until replaced; the name is ``bn + n``, the
time ``bt + t``, the value ``bv + v`` and the sum ``bs + s``. A resolved time below
2**28 is relative to "now", which for Bydata is the receive time: such readings are marked
``time_relative`` (their time depends on when the pack arrived, so a redelivery must be
given its first receive time, as for readings without a time). Fields ending in ``_``
must be understood, so a pack carrying one is rejected.

Bydata's reading of a pack: one pack is one device, named by the base name without
its trailing ``:`` or ``/`` (the topic's ``{device_id}`` when there is no base name);
each record is one reading whose field is ``n`` (the name relative to the base name).
``v``/``vs``/``vb``/``vd`` give the value, ``s`` (a sum) is the value when the record
has no other value; a record with both yields the sum as field ``<n>[sum]``. A record
without ``t`` and ``bt`` has no time of its own (``Reading.time`` is None).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Any

from ingest._build import decoded, reading
from ingest.envelopes._common import epoch_time, loads
from ingest.sources import Source
from ingest.types import Decoded, DecodeError, RawMessage, Reading

NAME = "senml"

_RELATIVE = float(2**28)
# RFC 8428 §4.5.1: names start with a letter or digit; then letters, digits, ":./-_".
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:./_-]*$")
_VALUE_KEYS = ("v", "vs", "vb", "vd")


# Values (not times) sent as numeric strings are read as numbers: gateways that template their
# JSON do this, and a string that reads as a number loses nothing. Other text stays an error.
_LENIENT_KEYS = frozenset({"v", "s"})


def _number(rec: dict[str, Any], key: str, i: int) -> float:
    value = rec[key]
    if isinstance(value, str) and key in _LENIENT_KEYS:
        try:
            value = float(value.strip())
        except ValueError:
            raise DecodeError(f"SenML record {i}: {key} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DecodeError(f"SenML record {i}: {key} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise DecodeError(f"SenML record {i}: {key} is not finite")
    return number


def _text(rec: dict[str, Any], key: str, i: int) -> str:
    value = rec[key]
    if not isinstance(value, str):
        raise DecodeError(f"SenML record {i}: {key} must be text, got {value!r}")
    return value


def _time(resolved: float, received_at: datetime, i: int) -> tuple[datetime, bool]:
    """The record's time, and whether it is relative to the receive time."""
    if resolved >= _RELATIVE:
        return epoch_time(resolved, f"SenML record {i} time"), False
    if resolved <= -_RELATIVE:
        raise DecodeError(f"SenML record {i}: relative time {resolved!r} s is more than 2**28 s in the past")
    return received_at + timedelta(seconds=resolved), True


def decode(raw: RawMessage, source: Source) -> Decoded:
    pack = loads(raw.payload, "SenML pack")
    if not isinstance(pack, list):
        raise DecodeError("SenML pack must be a JSON array of records")
    if not pack:
        raise DecodeError("SenML pack is empty")

    bn, bt, bu, bv, bs = "", 0.0, None, 0.0, 0.0
    device_bn: str | None = None
    readings: list[Reading] = []
    for i, rec in enumerate(pack):
        if not isinstance(rec, dict):
            raise DecodeError(f"SenML record {i} is not an object")
        for key in rec:
            if key.endswith("_"):
                raise DecodeError(f"SenML record {i}: must-understand field {key!r} is not supported")
        if "bver" in rec and (isinstance(rec["bver"], bool) or not isinstance(rec["bver"], int)):
            raise DecodeError(f"SenML record {i}: bver must be an integer")
        if "bn" in rec:
            bn = _text(rec, "bn", i)
            if bn:
                if device_bn is not None and bn != device_bn:
                    raise DecodeError(f"SenML pack names more than one device ({device_bn!r}, {bn!r})")
                device_bn = bn
        if "bt" in rec:
            bt = _number(rec, "bt", i)
        if "bu" in rec:
            bu = _text(rec, "bu", i)
        if "bv" in rec:
            bv = _number(rec, "bv", i)
        if "bs" in rec:
            bs = _number(rec, "bs", i)

        n = _text(rec, "n", i) if "n" in rec else ""
        present = [k for k in _VALUE_KEYS if k in rec]
        if not present and "s" not in rec:
            if n:
                raise DecodeError(f"SenML record {i} ({n}) has no value")
            continue  # a record of base fields only
        if len(present) > 1:
            raise DecodeError(f"SenML record {i}: more than one value field {present}")
        name = bn + n
        if not _NAME.match(name):
            raise DecodeError(f"SenML record {i}: name {name!r} is not a valid SenML name")
        unit = _text(rec, "u", i) if "u" in rec else bu

        time: datetime | None = None
        relative = False
        if "t" in rec or bt:
            t = _number(rec, "t", i) if "t" in rec else 0.0
            time, relative = _time(bt + t, raw.received_at, i)

        if present:
            key = present[0]
            if key == "v":
                value: Any = bv + _number(rec, "v", i)
            elif key == "vb":
                value = rec["vb"]
                if not isinstance(value, bool):
                    raise DecodeError(f"SenML record {i}: vb must be true or false")
                unit = None
            else:
                value = _text(rec, key, i)
                unit = None
            readings.append(reading(n, value, unit, time, None, False, relative))
            if "s" in rec:
                readings.append(reading(f"{n}[sum]", bs + _number(rec, "s", i), unit, time, None, False, relative))
        else:
            readings.append(reading(n, bs + _number(rec, "s", i), unit, time, None, False, relative))

    if source.device_id_from == "topic" or device_bn is None:
        device_id = source.topic_device_id(raw.topic)
    else:
        device_id = device_bn.rstrip(":/") or device_bn
    if not device_id:
        raise DecodeError("SenML pack has no base name and the topic names no device")
    return decoded(device_id, tuple(readings), source.device_model, "state", {})
