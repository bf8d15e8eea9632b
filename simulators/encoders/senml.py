"""SenML packs (RFC 8428) in JSON: base name and base time on the first record, relative times.

Values use ``v`` (number), ``vs`` (string), ``vb`` (boolean) or ``s`` (accumulated sum);
``t`` is relative to ``bt``. Units are SenML registry symbols (``Cel``, ``m/s``, ``kWh`` …).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Record:
    name: str
    unit: str | None
    value: float | str | bool
    field: str = "v"  # v | s | vs | vb
    t: float | None = None


def pack(base_name: str, base_time: float | None, records: Sequence[Record]) -> list[dict[str, Any]]:
    """Records with ``bn``/``bt`` on the first; ``base_time`` None leaves times relative to receipt."""
    out: list[dict[str, Any]] = []
    for i, r in enumerate(records):
        rec: dict[str, Any] = {}
        if i == 0:
            rec["bn"] = base_name
            if base_time is not None:
                rec["bt"] = base_time
        rec["n"] = r.name
        if r.unit is not None:
            rec["u"] = r.unit
        rec[r.field] = r.value
        if r.t is not None:
            rec["t"] = r.t
        out.append(rec)
    return out


def body(records: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(records)
