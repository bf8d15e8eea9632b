"""The signals have the shapes the cases are about."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import mean

import numpy as np

from simulators.cases.base import OSLO, CaseOptions
from simulators.cases.calendar import school_day
from simulators.cases.parking import Parking, allocate
from simulators.faults import Dice
from simulators.manifest import read_messages

Simulate = Callable[..., Path]
TUESDAY = datetime(2026, 3, 10, tzinfo=UTC)


def _local_hour(line_time: str) -> float:
    t = datetime.fromisoformat(line_time).astimezone(OSLO)
    return t.hour + t.minute / 60


def test_no2_peaks_at_the_morning_rush(simulate: Simulate) -> None:
    run = simulate(("air",), start=TUESDAY - timedelta(hours=2), duration=timedelta(hours=26))
    no2: dict[int, float] = {}
    for line in read_messages(run):
        if line["device_id"] == "Olav V gate":
            for t in line["truth"]:
                start = datetime.fromisoformat(t["phenomenon_time"]).astimezone(OSLO)
                if t["property"] == "no2" and start.date() == TUESDAY.date():
                    no2[start.hour] = t["value"]
    # the hour holding 07:30 against the hour holding 03:00, local time, on a weekday
    assert no2[7] > 2 * no2[3]
    assert no2[16] > no2[3]  # and the afternoon rush


def test_episode_raises_pm10_and_no2(simulate: Simulate) -> None:
    episode = TUESDAY + timedelta(hours=6)
    kw = {"start": TUESDAY, "duration": timedelta(hours=20)}
    quiet = simulate(("air",), **kw)
    smog = simulate(("air",), episodes=(episode,), **kw)

    def hourly(run: Path, prop: str) -> dict[str, float]:
        return {
            t["phenomenon_time"]: t["value"]
            for line in read_messages(run)
            if line["device_id"] == "Olav V gate"
            for t in line["truth"]
            if t["property"] == prop
        }

    inside = [(episode + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ") for h in range(2, 10)]
    for prop in ("pm10", "no2"):
        calm, bad = hourly(quiet, prop), hourly(smog, prop)
        assert mean(bad[k] for k in inside) > 2 * mean(calm[k] for k in inside), prop
    assert max(hourly(smog, "pm10")[k] for k in inside) > 50  # above the legal daily limit value


def test_low_cost_sensors_read_high_in_humid_air(simulate: Simulate) -> None:
    run = simulate(("air",), start=TUESDAY, duration=timedelta(days=2), seed=3)
    reference = mean(
        t["value"]
        for line in read_messages(run)
        if line["model"] == "nilu-reference-station"
        for t in line["truth"]
        if t["property"] == "pm2_5"
    )
    humid, dry = [], []
    for line in read_messages(run):
        if line["model"] == "airrohr-sds011-bme280":
            v = {t["property"]: t["value"] for t in line["truth"]}
            (humid if v["relative_humidity"] > 85 else dry if v["relative_humidity"] < 70 else []).append(v["pm2_5"])
    assert humid and dry
    assert mean(humid) > 1.3 * mean(dry)
    assert mean(humid) > reference


def _occupancy(zone_profile: str, when: list[datetime], spaces: int = 600) -> list[float]:
    """Share of occupied spaces in the first zone of a profile at each time (stepping the case)."""
    case = Parking(CaseOptions(seed=2, spaces=spaces))
    dice = Dice({}, np.random.default_rng(0))
    zone = next(z for z in case.zones if z.profile is case.data["profiles"][zone_profile])
    out = []
    t = when[0] - timedelta(hours=6)
    for target in when:
        while t < target:
            case.step(t, t + timedelta(minutes=1), dice)
            t += timedelta(minutes=1)
        assert zone.occupied is not None
        out.append(float(zone.occupied.mean()))
    return out


def test_zone_occupancy_follows_time_of_day_and_day_of_week() -> None:
    sunday_night = datetime(2026, 3, 8, 22, 30, tzinfo=UTC)  # 23:30 in Kristiansund
    weekday_noon = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)  # 12:00 on a Tuesday
    for profile in ("shopping", "office"):
        night, noon = _occupancy(profile, [sunday_night, weekday_noon])
        assert noon > night + 0.3, profile
    night, noon = _occupancy("residential", [sunday_night, weekday_noon])
    assert night > noon  # people park at home at night


def test_state_changes_and_heartbeats_from_every_space(simulate: Simulate) -> None:
    run = simulate(("parking",), spaces=50, duration=timedelta(hours=24))
    lines = read_messages(run)
    kinds = {(line["device_id"], line["kind"]) for line in lines}
    devices = {d for d, _ in kinds}
    assert len(devices) == 50
    assert all((d, "heartbeat") in kinds for d in devices)  # 6 h or 24 h heartbeats
    assert sum(k == "state" for _, k in kinds) > 40


def test_spaces_scale_from_a_handful_to_thousands() -> None:
    for total in (10, 200, 5000):
        counts = allocate(total, [8, 6, 5, 10, 9, 12, 7, 8])
        assert sum(counts) == total
    assert len(Parking(CaseOptions(seed=1, spaces=5000)).devices()) == 5000
    assert len(Parking(CaseOptions(seed=1, spaces=10)).devices()) == 10


def test_classroom_co2_rises_with_pupils(simulate: Simulate) -> None:
    assert school_day(TUESDAY.date())
    run = simulate(("energy",), start=TUESDAY, duration=timedelta(hours=12))
    co2_at: dict[str, list[tuple[float, float]]] = {}
    for line in read_messages(run):
        if line["model"] == "elsys-ers-co2":
            for t in line["truth"]:
                if t["property"] == "indoor_co2":
                    co2_at.setdefault(line["device_id"], []).append((_local_hour(t["phenomenon_time"]), t["value"]))
    for readings in co2_at.values():
        night = [v for h, v in readings if 2.9 <= h < 3.2]
        morning = [v for h, v in readings if 9.9 <= h < 10.2]
        assert night and morning
        assert mean(morning) > mean(night) + 250


def test_school_calendar() -> None:
    assert school_day(datetime(2026, 3, 10).date())
    assert not school_day(datetime(2026, 3, 14).date())  # Saturday
    assert not school_day(datetime(2026, 2, 24).date())  # winter break (week 9)
    assert not school_day(datetime(2026, 5, 14).date())  # Ascension Day
    assert not school_day(datetime(2026, 7, 8).date())  # summer
    assert not school_day(datetime(2026, 12, 30).date())  # Christmas
    assert not school_day(datetime(2026, 3, 31).date())  # Holy Week (Easter 5 April 2026)


def test_smart_control_saves_energy(simulate: Simulate) -> None:
    def used(control: str) -> dict[str, float]:
        start = datetime(2026, 1, 16, tzinfo=UTC)  # Friday to Monday: school days and a weekend
        run = simulate(("energy",), start=start, duration=timedelta(days=3), control=control)
        first: dict[tuple[str, str], float] = {}
        last: dict[tuple[str, str], float] = {}
        for line in read_messages(run):
            for t in line["truth"]:
                if t["property"] in ("active_energy_import", "heat_energy"):
                    key = (line["device_id"], t["property"])
                    first.setdefault(key, t["value"])
                    last[key] = t["value"]
        totals = {"active_energy_import": 0.0, "heat_energy": 0.0}
        for key, value in last.items():
            totals[key[1]] += value - first[key]
        return totals

    before, after = used("before"), used("after")
    assert before["heat_energy"] > 0 and before["active_energy_import"] > 0
    for prop in before:
        assert after[prop] < 0.9 * before[prop], prop
    # TEK17's order of magnitude: 110 kWh/m2 a year is 0.3 a day, winter days more
    area = 3900 + 2400 + 2900
    daily = (before["heat_energy"] + before["active_energy_import"]) / area / 3
    assert 0.15 < daily < 1.0


def _reference(run: Path, prop: str) -> dict[datetime, float]:
    """Hourly means of one reference station, keyed by hour start (UTC)."""
    return {
        datetime.fromisoformat(t["phenomenon_time"]): t["value"]
        for line in read_messages(run)
        if line["device_id"] == "Olav V gate"
        for t in line["truth"]
        if t["property"] == prop
    }


def test_road_dust_season_raises_pm10_in_spring(simulate: Simulate) -> None:
    """Studded tyres on dry, cold spring roads: PM10 well above a summer week at the same station."""
    week = timedelta(days=3)
    spring = simulate(("air",), start=datetime(2026, 3, 16, tzinfo=UTC), duration=week)  # Monday to Wednesday
    summer = simulate(("air",), start=datetime(2026, 7, 13, tzinfo=UTC), duration=week)
    assert mean(_reference(spring, "pm10").values()) > 1.8 * mean(_reference(summer, "pm10").values())


def test_strong_wind_dilutes_no2(simulate: Simulate) -> None:
    run = simulate(("air",), start=datetime(2026, 1, 5, tzinfo=UTC), duration=timedelta(days=14))
    wind: dict[datetime, list[float]] = {}
    for line in read_messages(run):
        for t in line["truth"]:
            if t["property"] == "wind_speed":
                at = datetime.fromisoformat(t["phenomenon_time"])
                wind.setdefault(at.replace(minute=0, second=0, microsecond=0), []).append(t["value"])
    calm, windy = [], []
    background = min(_reference(run, "no2").values())
    for hour, no2 in _reference(run, "no2").items():
        if hour in wind:
            w = mean(wind[hour])
            (calm if w < 3 else windy if w > 7 else []).append(no2 - background)
    assert len(calm) > 10 and len(windy) > 10, (len(calm), len(windy))
    assert mean(calm) > 2 * mean(windy)


def test_school_energy_follows_the_school_day_weekend_and_holidays(simulate: Simulate) -> None:
    """Friday (school), the weekend and the winter-break Monday, with smart control."""
    friday = datetime(2026, 2, 20, tzinfo=OSLO)
    assert school_day(friday.date()) and not school_day(datetime(2026, 2, 23).date())
    run = simulate(("energy",), start=friday.astimezone(UTC), duration=timedelta(days=4), control="after")
    power: dict[tuple[int, int], list[float]] = {}
    co2: dict[tuple[int, int], list[float]] = {}
    for line in read_messages(run):
        for t in line["truth"]:
            local = datetime.fromisoformat(t["phenomenon_time"]).astimezone(OSLO)
            key = ((local.date() - friday.date()).days, local.hour)
            if t["property"] == "active_power":
                power.setdefault(key, []).append(t["value"])
            elif t["property"] == "indoor_co2":
                co2.setdefault(key, []).append(t["value"])

    def daytime(day: int, table: dict[tuple[int, int], list[float]], hours: range = range(9, 15)) -> float:
        return mean(v for h in hours for v in table.get((day, h), []))

    school = daytime(0, power)
    for day in (1, 2, 3):  # Saturday, Sunday, the holiday
        assert daytime(day, power) < 0.5 * school, day
    assert daytime(0, power, range(1, 4)) < 0.6 * school  # night setback
    # CO2 rises with the pupils and falls once they leave and the ventilation clears the air.
    assert daytime(0, co2, range(10, 11)) > daytime(0, co2, range(16, 17)) + 200
    assert daytime(0, co2, range(20, 21)) < daytime(0, co2, range(16, 17))
    assert daytime(3, co2, range(10, 11)) < daytime(0, co2, range(10, 11)) - 300  # no pupils in the holiday
