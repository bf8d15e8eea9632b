"""What the three cases share: the case interface, seeded random streams, local time, climate."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import holidays
import numpy as np
import yaml

from schemas.provisioning import Device, Site
from simulators.faults import Dice
from simulators.model import Draft

OSLO = ZoneInfo("Europe/Oslo")


@dataclass(frozen=True, slots=True)
class CaseOptions:
    """What a case needs from the run's options."""

    seed: int
    prefix: str = ""
    spaces: int = 200
    control: str = "before"
    episodes: tuple[datetime, ...] = ()


class Case(Protocol):
    name: str
    data: Any  # the case's data file (simulators/data/*.yaml)

    def sites(self) -> list[Site]: ...

    def devices(self) -> list[Device]: ...

    def step(self, t0: datetime, t1: datetime, dice: Dice) -> list[Draft]:
        """Drafts with times in [t0, t1), any order (the engine sorts them)."""
        ...


# Stable stream numbers: a stream's draws never depend on another stream's.
STREAMS = {"air": 1, "parking": 2, "energy": 3, "faults": 99}


def rng(seed: int, case: str, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, STREAMS[case], stream]))


@cache
def load_data(name: str) -> Any:
    text = resources.files("simulators.data").joinpath(name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


@cache
def _norway_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("NO", years=year)


def public_holiday(day: date) -> bool:
    return day in _norway_holidays(day.year)


def day_type(local: datetime) -> str:
    """weekday | saturday | sunday (public holidays count as Sundays)."""
    if local.weekday() == 6 or public_holiday(local.date()):
        return "sunday"
    return "saturday" if local.weekday() == 5 else "weekday"


def hourly(profile: list[float], local: datetime) -> float:
    """A 24-value hourly profile, interpolated linearly between hour midpoints."""
    x = local.hour + local.minute / 60 + local.second / 3600 - 0.5
    i = math.floor(x) % 24
    frac = x - math.floor(x)
    return profile[i] * (1 - frac) + profile[(i + 1) % 24] * frac


def climate_temperature(t: datetime, climate: dict[str, float]) -> float:
    """Seasonal and diurnal mean outdoor temperature (degC) of a coastal Norwegian town."""
    doy = t.timetuple().tm_yday + t.hour / 24
    seasonal = climate["mean_c"] - climate["amplitude_c"] * math.cos(
        2 * math.pi * (doy - climate["coldest_doy"]) / 365.25
    )
    local = t.astimezone(OSLO)
    diurnal = climate["diurnal_c"] * math.cos(2 * math.pi * (local.hour + local.minute / 60 - 15) / 24)
    return seasonal + diurnal


def offset_point(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """A point some metres from another (small distances)."""
    dlat = north_m / 111_320
    dlon = east_m / (111_320 * math.cos(math.radians(lat)))
    return round(lat + dlat, 6), round(lon + dlon, 6)


def seconds(t: datetime) -> float:
    return t.timestamp()


def ms_jitter(t0: datetime, span_s: float, u: float) -> datetime:
    """A time within [t0, t0 + span) at whole milliseconds."""
    return t0 + timedelta(milliseconds=int(u * span_s * 1000))
