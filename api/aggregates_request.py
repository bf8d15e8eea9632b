"""The aggregation extension's request: query parameters in, a validated request out (pure).

Bucket semantics, chosen so an hourly or daily figure means what a reader expects:

* sub-day intervals (``PT15M``, ``PT1H``, ``PT6H`` …) are fixed lengths of absolute time, aligned
  to local midnight of 2000-01-03 in the requested zone, so in Europe/Oslo every ``PT1H`` bucket is
  a whole local hour, and the autumn night's repeated 02:00 hour is two buckets, not one;
* day and week intervals (``P1D``, ``P7D``, ``P1W``) are local calendar days in the zone: a
  Europe/Oslo day runs from local midnight to local midnight (23 or 25 hours on DST days);
  weeks start on Monday (ISO 8601), ``PnD`` buckets count from Monday 2000-01-03;
* month intervals (``P1M``, ``P3M``, ``P1Y`` …) are local calendar months aligned to January.

Mixing calendar and clock parts (``P1DT12H``) is refused: its meaning on a DST day is unclear.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from store.aggregates import FUNCTIONS, SOURCES, AggregateQuery, BucketSpec

DEFAULT_FUNCTIONS = ("count", "avg", "min", "max")

_DURATION = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)
_MONTH_STEPS = (1, 2, 3, 4, 6, 12)
_PARAMETERS = ("interval", "from", "to", "aggregates", "timeZone", "source")


class AggregateRequestError(ValueError):
    """A parameter the extension cannot use; ``parameter`` names it for the error message."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


def parse_interval(text: str) -> BucketSpec:
    """An ISO 8601 duration as a bucket width (see the module docstring for the rules)."""
    match = _DURATION.match(text.strip()) if text else None
    if match is None or text.strip() in ("P", "PT") or text.strip().endswith("T"):
        raise AggregateRequestError("interval", f"{text!r} is not an ISO 8601 duration such as PT1H, P1D or P1M")
    parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    if not parts or all(v == 0 for v in parts.values()):
        raise AggregateRequestError("interval", f"{text!r} is zero; a bucket needs a length")
    months = parts.get("years", 0) * 12 + parts.get("months", 0)
    days = parts.get("weeks", 0) * 7 + parts.get("days", 0)
    seconds = parts.get("hours", 0) * 3600 + parts.get("minutes", 0) * 60 + parts.get("seconds", 0)
    kinds = [name for name, value in (("months", months), ("days", days), ("clock", seconds)) if value]
    if len(kinds) > 1:
        raise AggregateRequestError(
            "interval", f"{text!r} mixes {' and '.join(kinds)}; use one unit (PT36H, P1D or P1M, not P1DT12H)"
        )
    if months:
        if months not in _MONTH_STEPS:
            raise AggregateRequestError(
                "interval", f"{text!r}: month buckets must divide a year (P1M, P2M, P3M, P4M, P6M or P1Y)"
            )
        return BucketSpec("months", months, text.strip())
    if days:
        return BucketSpec("days", days, text.strip())
    if seconds > 366 * 86400:
        raise AggregateRequestError("interval", f"{text!r} is longer than a year; use P1Y")
    return BucketSpec("fixed", seconds, text.strip())


def parse_time(parameter: str, text: str) -> datetime:
    """An RFC 3339 instant; a zone-less time is refused rather than guessed."""
    try:
        value = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise AggregateRequestError(parameter, f"{text!r} is not an ISO 8601 time (2024-03-01T00:00:00Z)") from None
    if value.tzinfo is None:
        raise AggregateRequestError(parameter, f"{text!r} has no time zone; add Z or an offset such as +01:00")
    return value


def parse_functions(text: str | None) -> tuple[str, ...]:
    if text is None or not text.strip():
        return DEFAULT_FUNCTIONS
    names = [name.strip() for name in text.split(",")]
    if "" in names:
        raise AggregateRequestError("aggregates", f"{text!r} has an empty name; separate names by single commas")
    unknown = [name for name in names if name not in FUNCTIONS]
    if unknown:
        bad = ", ".join(repr(n) for n in unknown)
        raise AggregateRequestError("aggregates", f"{bad} not known; choose from {', '.join(FUNCTIONS)}")
    seen: dict[str, None] = dict.fromkeys(names)
    return tuple(seen)


def parse_zone(text: str | None) -> str:
    name = (text or "UTC").strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise AggregateRequestError("timeZone", f"{name!r} is not an IANA time zone such as Europe/Oslo") from None
    return name


def parse_request(datastream_id: int, params: Mapping[str, str], *, max_buckets: int) -> AggregateQuery:
    """Validate the query parameters of ``GET …/Datastreams(id)`` on the aggregation extension."""
    unknown = sorted(set(params) - set(_PARAMETERS))
    if unknown:
        raise AggregateRequestError(unknown[0], f"unknown parameter; the extension takes {', '.join(_PARAMETERS)}")
    for required in ("interval", "from", "to"):
        if not params.get(required):
            raise AggregateRequestError(required, "is required")
    interval = parse_interval(params["interval"])
    start = parse_time("from", params["from"])
    end = parse_time("to", params["to"])
    if end <= start:
        raise AggregateRequestError("to", "must be later than from")
    buckets = (end - start).total_seconds() / interval.approx_seconds()
    if buckets > max_buckets:
        raise AggregateRequestError(
            "interval", f"{interval.text} gives about {int(buckets)} buckets here; the limit is {max_buckets}"
        )
    source = (params.get("source") or "auto").strip()
    if source not in SOURCES:
        raise AggregateRequestError("source", f"{source!r} is not one of {', '.join(SOURCES)}")
    return AggregateQuery(
        datastream_id=datastream_id,
        interval=interval,
        start=start,
        end=end,
        functions=parse_functions(params.get("aggregates")),
        time_zone=parse_zone(params.get("timeZone")),
        source=source,
    )
