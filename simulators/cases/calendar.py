"""Norwegian school days: weekdays that are neither public holidays nor school breaks."""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

from dateutil.easter import easter

from simulators.cases.base import load_data, public_holiday


def _md(year: int, text: str) -> date:
    month, day = (int(p) for p in text.split("-"))
    return date(year, month, day)


def _week(year: int, iso_week: int) -> tuple[date, date]:
    monday = date.fromisocalendar(year, iso_week, 1)
    return monday, monday + timedelta(days=4)


@cache
def breaks(year: int) -> tuple[tuple[date, date], ...]:
    """The school breaks that touch ``year``, as inclusive date ranges."""
    rules = load_data("school_holidays.yaml")
    out = [
        _week(year, rules["autumn_break"]["iso_week"]),
        _week(year, rules["winter_break"]["iso_week"]),
        (_md(year, rules["summer"]["from"]), _md(year, rules["summer"]["to"])),
    ]
    xmas = rules["christmas"]
    out.append((_md(year - 1, xmas["from"]), _md(year, xmas["to"])))
    out.append((_md(year, xmas["from"]), _md(year + 1, xmas["to"])))
    e = easter(year)
    out.append((e - timedelta(days=rules["easter"]["days_before"]), e + timedelta(days=rules["easter"]["days_after"])))
    out += [(_md(year, d), _md(year, d)) for d in rules["planning_days"]]
    return tuple(out)


def school_day(day: date) -> bool:
    if day.weekday() >= 5 or public_holiday(day):
        return False
    return not any(a <= day <= b for a, b in breaks(day.year))
