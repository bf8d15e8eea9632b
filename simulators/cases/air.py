"""Bodø air quality: reference stations (NILU hourly records), low-cost airrohr sensors, and a
SenML weather station.

The model runs each minute. Weather is a set of mean-reverting random processes (wind, outdoor
temperature anomaly, humidity, pressure) plus a rain/dry Markov chain that wets and dries the
roads. Concentrations follow from it:

* NO2 = background + traffic (weekday peaks 07:30 and 15:45) x dispersion, higher in the cold;
* PM10 = background + sea salt in strong wind + road dust, which needs studded-tyre season,
  dry roads and cold, peaks with traffic and builds up when the wind is weak;
* PM2.5 = background + a share of the road dust + evening wood burning in the cold;
* dispersion falls with wind speed, so strong wind dilutes everything.

Low-cost sensors read high in humid air (hygroscopic growth of the particles the optical sensor
counts), plus a per-sensor bias. ``--scenario episode@T`` forces a calm, dry, cold inversion for
twelve hours from T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from schemas.air_quality import air_quality_classes
from schemas.provisioning import Device, Point, Site
from simulators.cases.base import OSLO, CaseOptions, climate_temperature, day_type, load_data, rng
from simulators.encoders import airrohr, senml
from simulators.faults import Dice
from simulators.formats import AirrohrSpec, NiluSpec, SenmlSpec
from simulators.model import Draft
from simulators.truth import property_of

EPISODE = timedelta(hours=12)


def traffic(local: datetime) -> float:
    """Relative traffic (about 1 at the weekday morning peak, 0.05 at night)."""
    h = local.hour + local.minute / 60
    kind = day_type(local)
    if kind == "weekday":
        return (
            0.05
            + 0.95 * math.exp(-(((h - 7.5) / 0.9) ** 2))
            + 0.85 * math.exp(-(((h - 15.75) / 1.2) ** 2))
            + (0.45 * math.exp(-(((h - 12.0) / 2.5) ** 2)))
        )
    peak = 0.45 if kind == "saturday" else 0.3
    return 0.05 + peak * math.exp(-(((h - 13.0) / 3.0) ** 2))


def dispersion(wind: float) -> float:
    """Dilution by wind: 1.4 in calm air, 0.45 at 5.5 m/s, 0.2 in a gale."""
    return 1.0 / (0.4 + wind / 3.0)


def studded_season(t: datetime) -> float:
    """Studded tyres are allowed 1 Nov - 1st Monday after Easter in Nordland; spring is the dust season."""
    return {1: 0.6, 2: 0.8, 3: 1.0, 4: 1.0, 5: 0.2, 11: 0.4, 12: 0.5}.get(t.month, 0.0)


@dataclass(slots=True)
class Weather:
    wind_log: float = math.log(5.5)
    direction: float = 220.0
    anomaly: float = 0.0
    humidity: float = 78.0
    pressure: float = 1005.0
    raining: bool = False
    wetness: float = 0.5


@dataclass(slots=True)
class _Accum:
    """Sums of minute values for the running hour (NILU) or interval (airrohr, weather)."""

    sums: dict[str, float] = field(default_factory=dict)
    n: int = 0

    def add(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.n += 1

    def mean(self) -> dict[str, float]:
        return {k: v / max(1, self.n) for k, v in self.sums.items()}


class Air:
    name = "air"

    def __init__(self, options: CaseOptions) -> None:
        self.options = options
        self.data = load_data("bodo.yaml")
        layout = rng(options.seed, "air", 0)
        self._weather_rng = rng(options.seed, "air", 1)
        self._sensor_rng = rng(options.seed, "air", 2)
        self.weather = Weather()
        self.low_cost = self.data["low_cost"]
        self.bias = np.exp(layout.normal(0.05, 0.15, len(self.low_cost)))
        self.phase = layout.uniform(0, self.data["low_cost_interval_s"], len(self.low_cost))
        self.next_send = [0.0] * len(self.low_cost)
        self.samples = [0] * len(self.low_cost)
        self.stuck: list[tuple[int, dict[str, float]] | None] = [None] * len(self.low_cost)
        self.lc_acc = [_Accum() for _ in self.low_cost]
        self.ref_acc = [_Accum() for _ in self.data["reference"]]
        self.hour: datetime | None = None
        self.pending: list[tuple[datetime, int, datetime, dict[str, float]]] = []
        self.wx_acc = _Accum()
        self.wx_stuck: tuple[int, float] | None = None
        self.started = False

    # --- provisioning ------------------------------------------------------------------------------

    def sites(self) -> list[Site]:
        a = self.data["area"]
        return [Site(id=a["id"], kind="area", name=a["name"], location=Point(lat=a["lat"], lon=a["lon"]))]

    def devices(self) -> list[Device]:
        area = self.data["area"]["id"]
        out = [
            Device(
                id=s["station"],
                model="nilu-reference-station",
                name=f"NILU {s['station']}",
                site=area,
                location=Point(lat=s["lat"], lon=s["lon"]),
                station_kind="reference",
            )
            for s in self.data["reference"]
        ]
        out += [
            Device(
                id=s["id"],
                model="airrohr-sds011-bme280",
                name=f"Sensor.Community {s['name']}",
                site=area,
                location=Point(lat=s["lat"], lon=s["lon"]),
                station_kind="low-cost",
                properties={"esp8266id": s["id"]},
            )
            for s in self.low_cost
        ]
        out += [
            Device(
                id=f"urn:dev:mac:{w['eui']}",
                model="senml-weather-station",
                name=w["name"],
                site=area,
                location=Point(lat=w["lat"], lon=w["lon"]),
            )
            for w in self.data["weather"]
        ]
        return out

    # --- the model ---------------------------------------------------------------------------------

    def _episode(self, t: datetime) -> float:
        """0 outside an episode, ramping to 1 inside it."""
        level = 0.0
        for start in self.options.episodes:
            x = (t - start).total_seconds() / EPISODE.total_seconds()
            if 0.0 <= x <= 1.0:
                level = max(level, min(1.0, 6 * x, 6 * (1 - x)))
        return level

    def _advance_weather(self, t: datetime, dt: float) -> tuple[float, float, float, float, float]:
        """One minute of weather; returns wind (m/s), direction, temperature, humidity, pressure."""
        w, r = self.weather, self._weather_rng
        a = dt / 3600.0
        w.wind_log += a / 8 * (math.log(5.5) - w.wind_log) + 0.18 * math.sqrt(a) * r.normal()
        w.direction = (w.direction + 8 * math.sqrt(a) * r.normal()) % 360
        w.anomaly += a / 48 * (0 - w.anomaly) + 0.9 * math.sqrt(a) * r.normal()
        w.humidity += a / 10 * (78 - w.humidity) + 3.0 * math.sqrt(a) * r.normal()
        w.pressure += a / 36 * (1005 - w.pressure) + 1.2 * math.sqrt(a) * r.normal()
        u = r.random()
        w.raining = (u > a / 8) if w.raining else (u < a / 40)
        episode = self._episode(t)
        if episode > 0:
            w.raining = False
        if w.raining:
            w.wetness = min(1.0, w.wetness + a * 1.5)
        else:
            w.wetness = max(0.0, w.wetness - a / 6 * (1 + math.exp(w.wind_log) / 6))
        wind = math.exp(w.wind_log) * (1 - 0.8 * episode)
        temp = climate_temperature(t, self.data["climate"]) + w.anomaly - 6 * episode
        humidity = min(99.0, max(35.0, w.humidity + (12 if w.raining else 0)))
        return wind, w.direction, temp, humidity, w.pressure

    def _concentrations(self, t: datetime, traffic_share: float, wind: float, temp: float) -> dict[str, float]:
        local = t.astimezone(OSLO)
        tr = traffic(local) * traffic_share
        disp = dispersion(wind)
        episode = self._episode(t)
        inversion = 1.0 + 1.5 * episode
        cold = min(1.6, 1.0 + 0.04 * max(0.0, -temp))
        dry = 1.0 - (0.0 if episode > 0 else self.weather.wetness)
        dust = 120 * tr * studded_season(t) * dry * (1.0 if temp < 5 else 0.3) * disp * inversion
        dust = max(dust, 90 * episode * traffic_share)
        salt = 0.4 * max(0.0, wind - 8) ** 2
        burning = 8 * cold * disp if 17 <= local.hour <= 23 and temp < 3 else 0.0
        no2 = 6 + 55 * tr * disp * cold * inversion
        return {"NO2": no2, "PM10": 7 + salt + dust + burning, "PM2.5": 3 + 0.1 * salt + 0.15 * dust + burning}

    # --- stepping ----------------------------------------------------------------------------------

    def step(self, t0: datetime, t1: datetime, dice: Dice) -> list[Draft]:
        dt = (t1 - t0).total_seconds()
        if not self.started:
            self.started = True
            self.next_send = [t0.timestamp() + float(p) for p in self.phase]
            self.hour = t0.replace(minute=0, second=0, microsecond=0)
        mid = t0 + (t1 - t0) / 2
        wind, direction, temp, humidity, pressure = self._advance_weather(mid, dt)
        drafts: list[Draft] = []
        hour = t0.replace(minute=0, second=0, microsecond=0)
        assert self.hour is not None
        if hour != self.hour:  # the previous hour is complete: NILU publishes it some minutes later
            lo, hi = self.data["nilu_lag_min"]
            for i, acc in enumerate(self.ref_acc):
                if acc.n:
                    lag = timedelta(minutes=float(self._sensor_rng.uniform(lo, hi)))
                    self.pending.append((hour + lag, i, self.hour, acc.mean()))
                self.ref_acc[i] = _Accum()
            self.hour = hour
        for i, s in enumerate(self.data["reference"]):
            self.ref_acc[i].add(self._concentrations(mid, s["traffic"], wind, temp))
        due = [p for p in self.pending if p[0] < t1]
        self.pending = [p for p in self.pending if p[0] >= t1]
        for at, i, start, values in due:
            drafts.append(self._nilu(at, i, start, values))
        for i, s in enumerate(self.low_cost):
            c = self._concentrations(mid, s["traffic"], wind, temp)
            self.lc_acc[i].add({**c, "T": temp, "RH": humidity, "P": pressure})
            self.samples[i] += int(dt * 1000 / 40)  # the firmware loops about every 40 ms
            if self.next_send[i] < t1.timestamp():
                at = datetime.fromtimestamp(round(self.next_send[i], 3), tz=UTC)
                drafts.append(self._airrohr(i, at, dice))
                self.next_send[i] += self.data["low_cost_interval_s"] + float(self._sensor_rng.uniform(0.5, 4.0))
        self.wx_acc.add(
            {
                "wind": wind,
                "u": math.sin(math.radians(direction)),
                "v": math.cos(math.radians(direction)),
                "T": temp,
                "RH": humidity,
            }
        )
        interval = self.data["weather_interval_s"]
        boundary = math.floor(t1.timestamp() / interval) * interval
        if t0.timestamp() <= boundary < t1.timestamp() and self.wx_acc.n:
            drafts.append(self._weather(datetime.fromtimestamp(boundary, tz=UTC), dice))
        return drafts

    def _nilu(self, at: datetime, i: int, start: datetime, values: dict[str, float]) -> Draft:
        s = self.data["reference"][i]
        published = {c: round(values[c], 3) for c in self.data["components"]}
        classes = air_quality_classes()
        index = {c: classes.index(property_of("nilu-reference-station", c), v) for c, v in published.items()}
        spec = NiluSpec(s["station"], s["slug"], start, published, index, s["lat"], s["lon"], self.options.prefix)
        return Draft(at, self.name, s["station"], "nilu-reference-station", "hourly", spec)

    def _airrohr(self, i: int, at: datetime, dice: Dice) -> Draft:
        s, r = self.low_cost[i], self._sensor_rng
        m = self.lc_acc[i].mean()
        self.lc_acc[i] = _Accum()
        rh = min(0.97, m["RH"] / 100)
        growth = 1.0 + 0.25 * rh * rh / (1.0 - rh)  # hygroscopic growth: optical counts rise with humidity
        pm10 = max(0.0, m["PM10"] * growth * float(self.bias[i]) * (1 + 0.08 * r.normal()))
        pm25 = max(0.0, m["PM2.5"] * growth * float(self.bias[i]) * (1 + 0.08 * r.normal()))
        temperature = m["T"] + 0.8 + 0.1 * r.normal()
        humidity = min(100.0, max(5.0, m["RH"] - 3 + 0.5 * r.normal()))
        pressure = m["P"] * 100 + 12 * r.normal()
        fault = None
        stuck = self.stuck[i]
        if stuck is not None:
            left, frozen = stuck
            pm10, pm25 = frozen["pm10"], frozen["pm25"]
            self.stuck[i] = (left - 1, frozen) if left > 1 else None
            fault = "stuck"
        elif dice.roll("stuck"):
            self.stuck[i] = (30 + dice.integers(5, 20), {"pm10": pm10, "pm25": pm25})
            fault = "stuck"
        samples = self.samples[i]
        self.samples[i] = 0
        values = airrohr.sds_bme280_values(
            round(pm10, 1),
            round(pm25, 1),
            temperature,
            pressure,
            humidity,
            samples=samples,
            min_micro=int(r.integers(20, 60)),
            max_micro=int(r.integers(15000, 60000)),
            signal=int(r.integers(-88, -55)),
            interval_ms=None if s["software"] < "NRZ-2020-130" else self.data["low_cost_interval_s"] * 1000,
        )
        spec = AirrohrSpec(s["id"], s["software"], values, self.options.prefix)
        return Draft(at, self.name, s["id"], "airrohr-sds011-bme280", "reading", spec, fault)

    def _weather(self, at: datetime, dice: Dice) -> Draft:
        w = self.data["weather"][0]
        m = self.wx_acc.mean()
        self.wx_acc = _Accum()
        direction = round(math.degrees(math.atan2(m["u"], m["v"])) % 360, 0)
        temperature = round(m["T"], 1)
        fault = None
        if self.wx_stuck is not None:
            left, frozen = self.wx_stuck
            temperature = frozen
            self.wx_stuck = (left - 1, frozen) if left > 1 else None
            fault = "stuck"
        elif dice.roll("stuck"):
            self.wx_stuck = (60 + dice.integers(5, 20), temperature)
            fault = "stuck"
        records = [
            senml.Record("wind_speed", "m/s", round(m["wind"], 1)),
            senml.Record("wind_direction", "deg", direction),
            senml.Record("temperature", "Cel", temperature),
            senml.Record("humidity", "%RH", round(m["RH"], 1)),
        ]
        assert property_of("senml-weather-station", "humidity") == "relative_humidity"
        spec = SenmlSpec(
            "senml-weather-station",
            f"urn:dev:mac:{w['eui']}:",
            at,
            records,
            self.options.prefix,
            self.data["weather_interval_s"],
            implausible=("wind_speed", -1.0),
            variants=(("temperature", "degF"), ("humidity", "/")),
        )
        return Draft(at, self.name, spec.device_id, "senml-weather-station", "pack", spec, fault)
