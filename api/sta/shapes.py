"""Request shapes: a request's text with its entity ids and date-time literals lifted out (pure).

Requests that differ only in those values (``Datastreams(7)/Observations?$filter=phenomenonTime
ge 2024-01-03T00:00:00Z``, the same for another Datastream or day) have one shape, so the
planner can translate a shape once and bind each request's values as parameters
(:class:`api.sta.routes.Planner`). Ids are lifted from resource-path segments, date-times from
``$filter`` outside quoted literals, matched as the grammar's ``DATETIME`` token is
(``odata.lark``); nothing else is. A date-time's UTC offset stays part of the shape.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from api.sta.odata.parser import QueryError, datetime_literal

_SEGMENT = re.compile(r"(?<=[A-Za-z])\((\d{1,18})\)(?=/|$)")
_QUOTED = re.compile(r"'(?:[^']|'')*'")
_DATETIME = re.compile(
    r"(?<![0-9A-Za-z_.:$])\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})(?![0-9A-Za-z_.:])",
    re.IGNORECASE,
)

Value = int | datetime


@dataclass(frozen=True, slots=True)
class Lifted:
    """A request split at its lifted values: ``key`` is the shape, ``values`` the request's own."""

    key: tuple[object, ...]
    values: tuple[Value, ...]
    path_parts: tuple[str, ...]  # the resource path around its ids
    items: tuple[tuple[str, str | tuple[str, ...]], ...]  # $filter as its parts around date-times

    def request(self, values: Sequence[Value]) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The request text with ``values`` in the lifted places (ids first, then date-times)."""
        ids = len(self.path_parts) - 1
        rest = _join(self.path_parts, [f"({v})" for v in values[:ids]])
        times = [_iso(v) for v in values[ids:]]
        items = tuple((k, v if isinstance(v, str) else _join(v, times)) for k, v in self.items)
        return rest, items


def lift(rest: str, items: Sequence[tuple[str, str]]) -> Lifted | None:
    """The request's shape, or None when it has no value to lift (or a date-time that does not parse)."""
    path_parts = tuple(_SEGMENT.split(rest)[::2])
    values: list[Value] = [int(m) for m in _SEGMENT.findall(rest)]
    shaped: list[tuple[str, str | tuple[str, ...]]] = []
    for name, value in items:
        if name != "$filter":
            shaped.append((name, value))
            continue
        parts, found = _split_times(value)
        try:
            values += [datetime_literal(t) for t in found]
        except QueryError:
            return None
        shaped.append((name, parts) if found else (name, value))
    if not values:
        return None
    # A date-time's offset can shape the SQL (time parts and totaloffsetminutes read a literal at
    # its own offset): requests share a shape only when their date-times share their offsets.
    offsets = tuple(v.utcoffset() for v in values if isinstance(v, datetime))
    return Lifted((path_parts, tuple(shaped), offsets), tuple(values), path_parts, tuple(shaped))


def _split_times(text: str) -> tuple[tuple[str, ...], list[str]]:
    """``text`` cut at the date-times outside quotes: (the pieces between, the date-times)."""
    parts: list[str] = []
    found: list[str] = []
    pending = ""
    pos = 0
    for quoted in [*_QUOTED.finditer(text), None]:
        end = quoted.start() if quoted is not None else len(text)
        plain = text[pos:end]
        last = 0
        for m in _DATETIME.finditer(plain):
            parts.append(pending + plain[last : m.start()])
            found.append(m.group())
            pending, last = "", m.end()
        pending += plain[last:]
        if quoted is not None:
            pending += quoted.group()
            pos = quoted.end()
    parts.append(pending)
    return tuple(parts), found


def _join(parts: Sequence[str], fill: Sequence[str]) -> str:
    out = [parts[0]]
    for piece, part in zip(fill, parts[1:], strict=True):
        out += [piece, part]
    return "".join(out)


def _iso(value: Value) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"a date-time goes here, not {value!r}")
