"""Rennesøy school energy: an AMS meter (amsreader), classroom CO2 sensors (Elsys ERS CO2 via
ChirpStack) and a district-heat meter (SenML gateway) per school building.

Each building is a one-node thermal model stepped every minute: heat loss through the envelope
and the ventilation (with heat recovery), internal gains from pupils, lights and equipment,
thermal mass that makes a cold morning cost extra. Heating follows a set-point schedule and
ventilation a fan schedule; electricity is standby + lights + equipment + fans. Classroom CO2 is
a mass balance: pupils breathe it in, the room's airflow carries it out.

``control='before'`` runs the schedules the buildings had (ventilation and heating every day,
long hours, no demand control); ``'after'`` runs smart control (school days only, night and
holiday set-back, demand-controlled ventilation, motion-controlled lights). Weather and
occupancy draw from their own random streams, so both runs see the same days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from schemas.provisioning import Device, Point, Site
from simulators.cases.base import OSLO, CaseOptions, climate_temperature, load_data, offset_point, rng
from simulators.cases.calendar import school_day
from simulators.encoders import amsreader, elsys, senml
from simulators.encoders.lorawan import GatewayRx
from simulators.faults import Dice
from simulators.formats import AmsSpec, LoraDevice, LoraSpec, SenmlSpec
from simulators.model import Draft


def presence(local: datetime, is_school_day: bool) -> float:
    """Share of a class's pupils in the classroom."""
    if not is_school_day:
        return 0.0
    h = local.hour + local.minute / 60
    if 8.5 <= h < 11.25 or 12.0 <= h < 14.5:
        # short breaks: the first ten minutes of every other hour the room half empties
        return 0.5 if (h % 2.0) < 1 / 6 and h > 9 else 1.0
    if 11.25 <= h < 12.0:
        return 0.15  # lunch
    if 8.0 <= h < 8.5 or 14.5 <= h < 15.5:
        return 0.1  # teachers preparing, after-school club
    return 0.0


@dataclass(slots=True)
class _School:
    conf: dict[str, Any]
    area: float
    rooms: int
    devices: list[LoraDevice]
    points: list[tuple[float, float]]
    room_offset: np.ndarray
    usage: np.ndarray  # how full each room's class is
    elsys_phase: np.ndarray
    vdd: np.ndarray
    t_in: float = 20.5
    co2: np.ndarray = field(default_factory=lambda: np.zeros(0))
    room_t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tpi: float = 0.0  # true register, kWh
    tpi_offset: float = 0.0  # subtracted after a counter reset
    heat: float = 0.0
    heat_offset: float = 0.0
    power_w: float = 0.0
    heat_w: float = 0.0
    supply_c: float = 60.0
    hour_kwh: float = 0.0
    day_kwh: float = 0.0
    month_max: float = 0.0
    uptime0: float = 0.0
    boot: float | None = None
    co2_history: list[float] = field(default_factory=list)
    f_cnt: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    motion: np.ndarray = field(default_factory=lambda: np.zeros(0))
    stuck: dict[int, tuple[int, float]] = field(default_factory=dict)


class Energy:
    name = "energy"

    def __init__(self, options: CaseOptions) -> None:
        self.options = options
        self.data = load_data("rennesoy.yaml")
        self.control = self.data["control"][options.control]
        layout = rng(options.seed, "energy", 0)
        self._weather_rng = rng(options.seed, "energy", 1)
        self._room_rng = rng(options.seed, "energy", 2)
        self._meter_rng = rng(options.seed, "energy", 3)
        self.anomaly = 0.0
        self.schools: list[_School] = []
        serial = 0
        for conf in self.data["schools"]:
            n = int(conf["classrooms"])
            devices, points = [], []
            for k in range(n):
                serial += 1
                cs = self.data["chirpstack"]
                devices.append(
                    LoraDevice(
                        model="elsys-ers-co2",
                        network="chirpstack_v4",
                        dev_eui=f"a81758fffe{serial:06x}",
                        dev_addr=f"0207{serial:04x}",
                        name=f"{conf['name']} rom {101 + k}",
                        application_id=cs["application_id"],
                        application_name=cs["application_name"],
                        tenant_id=cs["tenant_id"],
                        tenant_name=cs["tenant_name"],
                        profile_id=cs["profile_id"],
                        profile_name=cs["profile_name"],
                        with_decoded=bool(layout.random() < 0.5),
                        tags=(("building", conf["id"]), ("room", str(101 + k))),
                    )
                )
                points.append(offset_point(conf["lat"], conf["lon"], *(layout.uniform(-40, 40, 2))))
            school = _School(
                conf=conf,
                area=float(conf["heated_floor_area"]),
                rooms=n,
                devices=devices,
                points=points,
                room_offset=layout.normal(0, 0.6, n),
                usage=layout.uniform(0.7, 1.0, n),
                elsys_phase=layout.uniform(0, self.data["elsys_interval_s"], n),
                vdd=layout.uniform(3450, 3670, n),
                tpi=float(layout.uniform(150_000, 600_000)),
                heat=float(layout.uniform(20_000, 90_000)),
                uptime0=float(layout.uniform(3600, 90 * 86400)),
            )
            school.co2 = np.full(n, 450.0)
            school.room_t = np.full(n, 20.5)
            school.f_cnt = layout.integers(0, 20_000, n)
            school.motion = np.zeros(n)
            self.schools.append(school)
        self.gateways = {
            s.conf["id"]: GatewayRx(
                s.conf["gateway"]["id"], s.conf["gateway"]["eui"], 0, 0.0, 0, s.conf["lat"], s.conf["lon"]
            )
            for s in self.schools
        }

    # --- provisioning ------------------------------------------------------------------------------

    def sites(self) -> list[Site]:
        return [
            Site(
                id=s.conf["id"],
                kind="building",
                name=s.conf["name"],
                location=Point(lat=s.conf["lat"], lon=s.conf["lon"]),
                heated_floor_area=s.area,
                properties={"classrooms": s.rooms, "municipality": self.data["municipality"]},
            )
            for s in self.schools
        ]

    def devices(self) -> list[Device]:
        out: list[Device] = []
        for s in self.schools:
            c = s.conf
            here = Point(lat=c["lat"], lon=c["lon"])
            out.append(
                Device(
                    id=c["ams"]["mac"],
                    model="amsreader-han",
                    name=f"{c['name']} AMS-måler",
                    site=c["id"],
                    location=here,
                    properties={"meter_id": c["ams"]["meter_id"]},
                )
            )
            out.append(
                Device(
                    id=f"urn:dev:mac:{c['heat_gateway']}",
                    model="senml-heat-gateway",
                    name=f"{c['name']} varmemåler",
                    site=c["id"],
                    location=here,
                )
            )
            out += [
                Device(
                    id=d.dev_eui,
                    model=d.model,
                    name=d.name,
                    site=c["id"],
                    location=Point(lat=p[0], lon=p[1]),
                    access_level="restricted",
                    properties={"room": d.name.rsplit(" ", 1)[-1]},
                )
                for d, p in zip(s.devices, s.points, strict=True)
            ]
        return out

    # --- schedules ---------------------------------------------------------------------------------

    def _setpoint(self, local: datetime, sday: bool) -> float:
        h = self.control["heating"]
        on = h["day_from"] <= local.hour < h["day_to"] and (sday or not h["school_days_only"])
        return float(h["day_c"] if on else h["night_c"])

    def _ventilation(self, local: datetime, sday: bool, occupancy: float) -> float:
        """Share of the design airflow."""
        v = self.control["ventilation"]
        if not (v["from"] <= local.hour < v["to"]) or (v["school_days_only"] and not sday):
            return 0.0
        return 0.25 + 0.75 * occupancy if v["demand_controlled"] else 1.0

    def _lights(self, local: datetime, sday: bool, occupancy: float) -> float:
        light = self.control["lighting"]
        if light["motion"]:
            return min(1.0, occupancy * 1.2) if sday else 0.0
        if light["weekdays"]:
            return 1.0 if local.weekday() < 5 and light["from"] <= local.hour < light["to"] else 0.05
        return 0.0

    # --- stepping ----------------------------------------------------------------------------------

    def step(self, t0: datetime, t1: datetime, dice: Dice) -> list[Draft]:
        dt = (t1 - t0).total_seconds()
        mid = t0 + (t1 - t0) / 2
        a = dt / 3600
        self.anomaly += a / 60 * (0 - self.anomaly) + 0.8 * math.sqrt(a) * float(self._weather_rng.normal())
        t_out = climate_temperature(mid, self.data["climate"]) + self.anomaly
        local = mid.astimezone(OSLO)
        sday = school_day(local.date())
        base_presence = presence(local, sday)
        room_noise = self._room_rng.normal(0, 1, (len(self.schools), 12))
        drafts: list[Draft] = []
        for b, s in enumerate(self.schools):
            occ = np.clip(base_presence * s.usage * (1 + 0.05 * room_noise[b, : s.rooms]), 0, 1)
            pupils = occ * s.conf["pupils_per_room"]
            mean_occ = float(occ.mean())
            self._thermal(s, dt, t_out=t_out, local=local, sday=sday, occ=mean_occ, pupils=pupils)
            self._rooms(s, dt, local=local, sday=sday, occ=occ, pupils=pupils)
            drafts += self._ams(s, t0, t1, dice)
            drafts += self._elsys(s, t0, t1, t_out=t_out, local=local, dice=dice)
            drafts += self._heat(s, t0, t1, dice)
        return drafts

    def _thermal(
        self, s: _School, dt: float, *, t_out: float, local: datetime, sday: bool, occ: float, pupils: np.ndarray
    ) -> None:
        bc = self.data["building"]
        airflow = s.area * bc["airflow_m3h_per_m2"] * self._ventilation(local, sday, occ)
        lights = self._lights(local, sday, occ)
        elec = s.area * (bc["base_w_per_m2"] + bc["lighting_w_per_m2"] * lights + bc["equipment_w_per_m2"] * occ)
        elec += airflow * bc["fan_w_per_m3h"]
        elec *= 1 + 0.02 * float(self._meter_rng.normal())
        gains = elec * 0.8 + float(pupils.sum()) * 70
        h_loss = s.area * bc["ua_w_per_m2k"] + airflow * 0.34 * (1 - bc["heat_recovery"])  # W/K
        cap = s.area * bc["capacity_wh_per_m2k"] * 3600  # J/K
        setpoint = self._setpoint(local, sday)
        p_max = s.area * bc["heat_max_w_per_m2"]
        # free-running temperature after dt, then heat what the set-point needs (within p_max)
        eq = t_out + gains / h_loss
        free = eq + (s.t_in - eq) * math.exp(-h_loss * dt / cap)
        if free < setpoint:
            need = cap * (setpoint - free) / dt
            heat = min(p_max, need)
            s.t_in = free + heat * dt / cap
        else:
            heat = 0.0
            s.t_in = min(free, 26.0)
        s.power_w, s.heat_w = elec, heat
        kwh = elec * dt / 3.6e6
        s.tpi += kwh
        s.hour_kwh += kwh
        s.day_kwh += kwh
        s.heat += heat * dt / 3.6e6
        setback = 8.0 if setpoint < 19 else 0.0
        s.supply_c = (
            max(30.0, min(70.0, 35 + 1.3 * (20 - t_out) - setback)) if heat > 0 else max(25.0, s.supply_c - 0.05)
        )

    def _rooms(
        self, s: _School, dt: float, *, local: datetime, sday: bool, occ: np.ndarray, pupils: np.ndarray
    ) -> None:
        rc = self.data["classroom"]
        vent = self._ventilation(local, sday, float(occ.mean()))
        if vent == 0.0:
            q = np.full(s.rooms, 0.1 * rc["volume_m3"])  # infiltration
        elif self.control["ventilation"]["demand_controlled"]:
            q = rc["dcv_min_m3h"] + (rc["dcv_max_m3h"] - rc["dcv_min_m3h"]) * occ
        else:
            q = np.full(s.rooms, float(rc["cav_m3h"]))
        gen = pupils * rc["co2_lps_per_pupil"] * 3.6  # m3/h
        steady = rc["co2_outdoor_ppm"] + gen / q * 1e6
        s.co2 = steady + (s.co2 - steady) * np.exp(-q / rc["volume_m3"] * dt / 3600)
        s.room_t = s.t_in + s.room_offset + 1.2 * occ
        s.motion += self._room_rng.poisson(occ * 2.5 * dt / 60)
        s.co2_history.append(float(s.co2.mean()))
        del s.co2_history[:-10]

    # --- messages ----------------------------------------------------------------------------------

    def _ams(self, s: _School, t0: datetime, t1: datetime, dice: Dice) -> list[Draft]:
        list1_s, list2_s, list3_s = self.data["ams_list_s"]
        conf = s.conf["ams"]
        out: list[Draft] = []
        if s.boot is None:
            s.boot = t0.timestamp() - s.uptime0
        first = math.ceil((t0.timestamp() - conf["phase_s"]) / list1_s) * list1_s + conf["phase_s"]
        for at_s in np.arange(first, t1.timestamp(), list1_s):
            since = float(at_s) - conf["phase_s"]  # multiples of 2.5 s: exact in binary
            # amsreader stamps a package with whole seconds
            at = datetime.fromtimestamp(math.floor(float(at_s)), tz=UTC)
            p = max(0, round(s.power_w * (1 + 0.01 * float(self._meter_rng.normal()))))
            local = at.astimezone(OSLO)
            header = amsreader.Header(
                mac=conf["mac"],
                name=s.conf["id"],
                uptime_s=int(at.timestamp() - s.boot),
                t=int(at.timestamp()),
                vcc=round(3.29 + 0.02 * float(self._meter_rng.random()), 3),
                rssi=int(self._meter_rng.integers(-75, -55)),
                temp=round(31 + 4 * float(self._meter_rng.random()), 2),
            )
            s.month_max = max(s.month_max, s.hour_kwh)
            realtime = amsreader.Realtime(round(s.hour_kwh, 2), round(s.day_kwh, 1), 10, round(s.month_max, 2))
            values = registers = fault = None
            if since % list2_s == 0:  # list 2: the instantaneous values besides P
                i1, i2, i3 = (round(p / 3 / 230 * (1 + 0.05 * k), 2) for k in (-1, 0, 1))
                u1, u2, u3 = (round(230 + float(self._meter_rng.normal(0, 1.5)), 2) for _ in range(3))
                values = amsreader.Instant(
                    conf["list_id"], conf["meter_id"], conf["type"], 0, 0, round(p * 0.12), (i1, i2, i3), (u1, u2, u3)
                )
            if since % list3_s == 0:  # list 3, on the hour: list 2 and the registers
                if dice.roll("counter_reset"):
                    s.tpi_offset = s.tpi  # the register restarts from zero (meter exchange, firmware)
                    fault = "counter_reset"
                kwh = s.tpi - s.tpi_offset
                registers = {"tpi": round(kwh, 3), "tpo": 0.0, "tqi": round(kwh * 0.05, 3), "tqo": round(kwh * 0.12, 3)}
                s.hour_kwh = 0.0
                if local.hour == 0:
                    s.day_kwh = 0.0
            spec = AmsSpec(header, at, p, realtime, self.options.prefix, values, registers)
            kind = "list3" if registers is not None else "list2" if values is not None else "list1"
            out.append(Draft(at, self.name, conf["mac"], "amsreader-han", kind, spec, fault))
        return out

    def _elsys(
        self, s: _School, t0: datetime, t1: datetime, *, t_out: float, local: datetime, dice: Dice
    ) -> list[Draft]:
        interval = self.data["elsys_interval_s"]
        out: list[Draft] = []
        s0, s1 = t0.timestamp(), t1.timestamp()
        due = s.elsys_phase + np.floor((s1 - s.elsys_phase) / interval) * interval
        daylight = (
            max(0.0, math.sin(math.pi * (local.hour + local.minute / 60 - 7) / 10)) if 7 <= local.hour < 17 else 0.0
        )
        for i in (int(k) for k in np.flatnonzero(due >= s0)):
            r = self._room_rng
            at = datetime.fromtimestamp(round(float(due[i]), 3), tz=UTC)
            lights_on = self._lights(local, school_day(local.date()), float(s.co2[i] > 600))
            co2 = float(s.co2[i]) + float(r.normal(0, 8))
            fault = None
            if i in s.stuck:
                left, frozen = s.stuck[i]
                co2 = frozen
                s.stuck[i] = (left - 1, frozen)
                if left <= 1:
                    del s.stuck[i]
                fault = "stuck"
            elif dice.roll("stuck"):
                s.stuck[i] = (60 + dice.integers(5, 20), round(co2))
                fault = "stuck"
            fields = elsys.reading(
                temperature=float(s.room_t[i]) + float(r.normal(0, 0.1)),
                humidity=min(70.0, max(15.0, 30 + 0.8 * t_out + 0.01 * (co2 - 420) + float(r.normal(0, 1.0)))),
                light=lights_on * 420 + daylight * 900 * float(r.uniform(0.6, 1.0)) + float(r.uniform(0, 3)),
                motion=int(min(255, s.motion[i])),
                co2=co2,
                vdd=float(s.vdd[i]) - 0.001 * (at.timestamp() % 86400) / 86400 + float(r.normal(0, 3)),
            )
            s.motion[i] = 0
            s.f_cnt[i] += 1
            device = s.devices[i]
            gw = self.gateways[s.conf["id"]]
            rssi = int(r.integers(-105, -70))
            snr = round(float(r.uniform(-3, 9)), 1)
            stamp = int(at.timestamp() * 1e6) & 0xFFFFFFFF
            gws = (
                GatewayRx(gw.gateway_id, gw.eui, rssi, snr, stamp, gw.lat, gw.lon),
                GatewayRx(
                    gw.gateway_id + "-2", gw.eui[:-1] + "9", rssi - 11, round(snr - 5, 1), stamp + 17, gw.lat, gw.lon
                ),
            )
            spec = LoraSpec(device, at, elsys.PORT, int(s.f_cnt[i]), fields, gws, self.options.prefix)
            out.append(Draft(at, self.name, device.dev_eui, device.model, "reading", spec, fault))
        return out

    def _heat(self, s: _School, t0: datetime, t1: datetime, dice: Dice) -> list[Draft]:
        interval = self.data["heat_interval_s"]
        boundary = math.floor(t1.timestamp() / interval) * interval
        if not t0.timestamp() <= boundary < t1.timestamp():
            return []
        at = datetime.fromtimestamp(boundary, tz=UTC)
        fault = None
        if dice.roll("counter_reset"):
            s.heat_offset = s.heat
            fault = "counter_reset"
        extract_co2 = s.co2_history[-6] if len(s.co2_history) >= 6 else s.co2_history[0]
        records = [
            senml.Record("heat_energy", "kWh", round(s.heat - s.heat_offset, 1), field="s"),
            senml.Record("supply_temp", "Cel", round(s.supply_c, 1)),
            senml.Record("return_temp", "Cel", round(s.supply_c - (12 if s.heat_w > 0 else 2), 1)),
            senml.Record("heat_power", "kW", round(s.heat_w / 1000, 2)),
            senml.Record("co2", "ppm", round(extract_co2), t=-300),
        ]
        eui = s.conf["heat_gateway"]
        spec = SenmlSpec(
            "senml-heat-gateway",
            f"urn:dev:mac:{eui}:",
            at,
            records,
            self.options.prefix,
            interval,
            implausible=("supply_temp", -3276.8),
            variants=(("heat_energy", "Wh"),),
        )
        return [Draft(at, self.name, spec.device_id, "senml-heat-gateway", "pack", spec, fault)]
