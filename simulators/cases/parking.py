"""Kristiansund parking: one sensor per space, zones with a capacity, two vendors.

Each space is a two-state Markov process whose arrival and departure rates follow its zone's
hourly target occupancy (weekday, Saturday, Sunday and public holiday) and mean stay, so
occupancy has the right level *and* the right churn. A sensor reports on every change (fPort 1)
and sends periodic heartbeats (fPort 2); Nwave sensors go through The Things Stack, Bosch
sensors through ChirpStack. Everything is vectorised per zone, so 5,000 spaces are cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from schemas.device_models import device_models
from schemas.provisioning import Device, Point, Site
from simulators.cases.base import (
    OSLO,
    CaseOptions,
    climate_temperature,
    day_type,
    hourly,
    load_data,
    offset_point,
    rng,
)
from simulators.encoders import bosch, nwave
from simulators.encoders.lorawan import GatewayRx
from simulators.faults import Dice
from simulators.formats import LoraDevice, LoraSpec
from simulators.model import Draft


def allocate(total: int, weights: list[float]) -> list[int]:
    """Largest-remainder split of ``total`` spaces over zones by weight."""
    w = np.asarray(weights, dtype=float)
    exact = total * w / w.sum()
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: total - int(counts.sum())]:
        counts[i] += 1
    return [int(c) for c in counts]


@dataclass(slots=True)
class _Zone:
    id: str
    name: str
    lat: float
    lon: float
    vendor: str
    profile: dict[str, Any]
    devices: list[LoraDevice]
    points: list[tuple[float, float]]
    gateways: list[tuple[int, int]]  # (primary, alternate) index per space
    rssi: np.ndarray
    bias: np.ndarray
    phase: np.ndarray  # heartbeat phase, seconds
    battery: np.ndarray
    occupied: np.ndarray | None = None
    last_change: np.ndarray | None = None
    f_cnt: np.ndarray | None = None


class Parking:
    name = "parking"

    def __init__(self, options: CaseOptions) -> None:
        self.options = options
        self.data = load_data("kristiansund.yaml")
        layout = rng(options.seed, "parking", 0)
        self._occ = rng(options.seed, "parking", 1)
        self._misc = rng(options.seed, "parking", 2)
        self.gateways = [GatewayRx(g["id"], g["eui"], 0, 0.0, 0, g["lat"], g["lon"]) for g in self.data["gateways"]]
        zones = self.data["zones"]
        counts = allocate(options.spaces, [z["weight"] for z in zones])
        self.zones: list[_Zone] = []
        serial = {"nwave": 0, "bosch": 0}
        for z, n in zip(zones, counts, strict=True):
            if n == 0:
                continue
            vendor = self.data["vendors"][z["vendor"]]
            decoded = layout.random(n) < vendor["decoded_share"]
            devices, points, gws = [], [], []
            for k in range(n):
                serial[z["vendor"]] += 1
                devices.append(
                    self._device(
                        z["vendor"], serial[z["vendor"]], f"{z['name']} plass {k + 1}", bool(decoded[k]), z["id"]
                    )
                )
                points.append(offset_point(z["lat"], z["lon"], *(layout.uniform(-60, 60, 2))))
                here = points[-1]
                order = sorted(range(len(self.gateways)), key=lambda g: _dist(here, self.gateways[g]))
                gws.append((order[0], order[1]))
            self.zones.append(
                _Zone(
                    id=z["id"],
                    name=z["name"],
                    lat=z["lat"],
                    lon=z["lon"],
                    vendor=z["vendor"],
                    profile=self.data["profiles"][z["profile"]],
                    devices=devices,
                    points=points,
                    gateways=gws,
                    rssi=layout.uniform(-118, -85, n),
                    bias=np.exp(layout.normal(0.0, 0.15, n)),
                    phase=layout.uniform(0, vendor["heartbeat_h"] * 3600, n),
                    battery=layout.uniform(3.30, 3.60, n),
                )
            )

    def _device(self, vendor: str, serial: int, name: str, decoded: bool, zone: str) -> LoraDevice:
        v = self.data["vendors"][vendor]
        model = device_models()[v["model"]]
        if vendor == "nwave":
            tts = self.data["tts"]
            return LoraDevice(
                model=v["model"],
                network=v["network"],
                dev_eui=f"70b3d5e75e{serial:06x}",
                dev_addr=f"260b{serial:04x}",
                name=name,
                application_id=tts["application_id"],
                application_name=tts["application_id"],
                tenant_id=tts["tenant_id"],
                tenant_name=tts["tenant_id"],
                version_ids=tuple(sorted((model.match.tts_version_ids or {}).items())),
                with_decoded=decoded,
                occupied_bit=int(model.codec_options.get("occupied_bit", 0)),
            )
        cs = self.data["chirpstack"]
        return LoraDevice(
            model=v["model"],
            network=v["network"],
            dev_eui=f"fcd6bd0000{serial:06x}",
            dev_addr=f"01a2{serial:04x}",
            name=name,
            application_id=cs["application_id"],
            application_name=cs["application_name"],
            tenant_id=cs["tenant_id"],
            tenant_name=cs["tenant_name"],
            profile_id=cs["profile_id"],
            profile_name=model.match.chirpstack_profile or cs["profile_name"],
            with_decoded=decoded,
            tags=(("zone", zone),),
        )

    # --- provisioning ------------------------------------------------------------------------------

    def sites(self) -> list[Site]:
        return [
            Site(
                id=z.id,
                kind="parking_zone",
                name=z.name,
                location=Point(lat=z.lat, lon=z.lon),
                capacity=len(z.devices),
                properties={"municipality": self.data["municipality"]},
            )
            for z in self.zones
        ]

    def devices(self) -> list[Device]:
        return [
            Device(
                id=d.dev_eui,
                model=d.model,
                name=d.name,
                site=z.id,
                location=Point(lat=p[0], lon=p[1]),
                access_level="open",
            )
            for z in self.zones
            for d, p in zip(z.devices, z.points, strict=True)
        ]

    # --- simulation --------------------------------------------------------------------------------

    def _target(self, zone: _Zone, t: datetime) -> np.ndarray:
        local = t.astimezone(OSLO)
        p = hourly(zone.profile[day_type(local)], local)
        return np.clip(p * zone.bias, 0.01, 0.97)

    def _init(self, zone: _Zone, t0: datetime) -> None:
        n = len(zone.devices)
        p = self._target(zone, t0)
        zone.occupied = self._occ.random(n) < p
        zone.last_change = t0.timestamp() - self._occ.exponential(zone.profile["stay_min"] * 60, n)
        zone.f_cnt = self._occ.integers(0, 30_000, n)

    def step(self, t0: datetime, t1: datetime, dice: Dice) -> list[Draft]:
        dt = (t1 - t0).total_seconds()
        s0, s1 = t0.timestamp(), t1.timestamp()
        mid = t0 + (t1 - t0) / 2
        outdoor = climate_temperature(mid, self.data["climate"])
        drafts: list[Draft] = []
        for zone in self.zones:
            if zone.occupied is None:
                self._init(zone, t0)
            assert zone.occupied is not None and zone.last_change is not None and zone.f_cnt is not None
            n = len(zone.devices)
            p = self._target(zone, mid)
            leave = 1.0 / (zone.profile["stay_min"] * 60)
            arrive = leave * p / (1.0 - p)
            u, when = self._occ.random(n), self._occ.random(n)
            prob = np.where(zone.occupied, 1.0 - np.exp(-leave * dt), 1.0 - np.exp(-arrive * dt))
            change = u < prob
            change_at = s0 + np.floor(when * dt * 1000) / 1000
            period = self.data["vendors"][zone.vendor]["heartbeat_h"] * 3600
            hb_at = zone.phase + np.floor((s1 - zone.phase) / period) * period
            beat = hb_at >= s0
            for i in np.flatnonzero(change | beat):
                events: list[tuple[float, str]] = []
                if change[i]:
                    events.append((float(change_at[i]), "state"))
                if beat[i]:
                    events.append((round(float(hb_at[i]), 3), "heartbeat"))
                for at, kind in sorted(events):
                    drafts.extend(self._emit(zone, int(i), at=at, kind=kind, outdoor=outdoor, dice=dice))
        return drafts

    def _emit(self, zone: _Zone, i: int, *, at: float, kind: str, outdoor: float, dice: Dice) -> list[Draft]:
        assert zone.occupied is not None and zone.last_change is not None and zone.f_cnt is not None
        t = datetime.fromtimestamp(at, tz=UTC)
        out: list[Draft] = []
        if kind == "state":
            zone.occupied[i] = not zone.occupied[i]
            minutes = (at - float(zone.last_change[i])) / 60
            zone.last_change[i] = at
            fields = (
                nwave.status(bool(zone.occupied[i]), minutes)
                if zone.vendor == "nwave"
                else bosch.status(bool(zone.occupied[i]))
            )
            out.append(self._draft(zone, i, t, port=1, fields=fields, kind="state"))
            if dice.roll("startup"):
                t_reset = t + timedelta(seconds=dice.uniform(2, 20))
                zone.f_cnt[i] = -1  # a reset rejoins: the frame counter restarts at 0
                out.append(
                    self._draft(
                        zone, i, t_reset, port=3, fields=self._startup(zone, i), kind="startup", fault="startup"
                    )
                )
            if dice.roll("heartbeat"):
                t_beat = t + timedelta(seconds=dice.uniform(30, 300))
                out.append(
                    self._draft(
                        zone,
                        i,
                        t_beat,
                        port=2,
                        fields=self._heartbeat(zone, i, outdoor),
                        kind="heartbeat",
                        fault="heartbeat",
                    )
                )
        else:
            out.append(self._draft(zone, i, t, port=2, fields=self._heartbeat(zone, i, outdoor), kind="heartbeat"))
        return out

    def _heartbeat(self, zone: _Zone, i: int, outdoor: float) -> dict[str, Any]:
        assert zone.occupied is not None
        temp = outdoor + 1.5 + float(self._misc.normal(0, 1.0))
        if zone.vendor == "nwave":
            volts = float(zone.battery[i]) - (0.06 if temp < -5 else 0.0) + float(self._misc.normal(0, 0.004))
            return nwave.heartbeat(bool(zone.occupied[i]), volts, temp)
        return bosch.heartbeat(bool(zone.occupied[i]), temp)

    def _startup(self, zone: _Zone, i: int) -> dict[str, Any]:
        assert zone.occupied is not None
        firmware = self.data["vendors"][zone.vendor]["firmware"]
        if zone.vendor == "nwave":
            return nwave.startup(firmware, "watchdog", bool(zone.occupied[i]))
        return bosch.startup(firmware, "watchdog", bool(zone.occupied[i]))

    def _draft(
        self,
        zone: _Zone,
        i: int,
        t: datetime,
        *,
        port: int,
        fields: dict[str, Any],
        kind: str,
        fault: str | None = None,
    ) -> Draft:
        assert zone.f_cnt is not None
        zone.f_cnt[i] += 1
        device = zone.devices[i]
        primary, alternate = zone.gateways[i]
        rssi = round(float(zone.rssi[i]) + float(self._misc.normal(0, 3)))
        snr = round(float(self._misc.uniform(-8, 10)), 1)
        stamp = int(t.timestamp() * 1e6) & 0xFFFFFFFF
        gws = (
            _rx(self.gateways[primary], rssi, snr, stamp),
            _rx(self.gateways[alternate], rssi - 9, round(snr - 4.5, 1), (stamp + 7919) & 0xFFFFFFFF),
        )
        spec = LoraSpec(device, t, port, int(zone.f_cnt[i]), fields, gws, self.options.prefix)
        return Draft(t, self.name, device.dev_eui, device.model, kind, spec, fault)


def _rx(g: GatewayRx, rssi: int, snr: float, stamp: int) -> GatewayRx:
    return GatewayRx(g.gateway_id, g.eui, rssi, snr, stamp, g.lat, g.lon)


def _dist(p: tuple[float, float], g: GatewayRx) -> float:
    return math.hypot(p[0] - g.lat, (p[1] - g.lon) * math.cos(math.radians(p[0])))
