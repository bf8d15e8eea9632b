"""Specs: one draft's content per wire format, rendered into MQTT messages with or without a fault.

Each spec lists the message faults its format can carry (``eligible``) and knows how each
fault looks in its format; the encoders in ``simulators.encoders`` write the bytes.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from schemas import units
from simulators import truth as tr
from simulators.encoders import airrohr, amsreader, bosch, elsys, lorawan, nilu, nwave, senml
from simulators.faults import QUARANTINE_REASON, Dice
from simulators.model import Out, Truth

_STREAM = ("redelivery", "late", "out_of_order")

# The message faults each format can carry.
LORA_FAULTS = ("malformed", "unknown_port", "unknown_device", "duplicate", *_STREAM)
ELSYS_FAULTS = ("malformed", "unknown_device", "duplicate", *_STREAM, "implausible")
AIRROHR_FAULTS = ("malformed", "unknown_device")
NILU_FAULTS = ("malformed", "unknown_device", *_STREAM, "zoneless_time", "string_number", "implausible", "unit_variant")
AMS_FAULTS = ("malformed", "unknown_device", *_STREAM, "missing_time", "string_number", "implausible", "clock_skew")
SENML_FAULTS = (
    "malformed",
    "unknown_device",
    *_STREAM,
    "missing_time",
    "string_number",
    "implausible",
    "unit_variant",
    "clock_skew",
)
ELIGIBLE = (LORA_FAULTS, ELSYS_FAULTS, AIRROHR_FAULTS, NILU_FAULTS, AMS_FAULTS, SENML_FAULTS)


def prefixed(prefix: str, topic: str) -> str:
    return f"{prefix.rstrip('/')}/{topic}" if prefix else topic


def _truncate(payload: bytes, dice: Dice) -> bytes:
    """A proper prefix of a JSON object or array never parses; cut well inside it."""
    cut = dice.integers(max(1, len(payload) // 5), max(2, (len(payload) * 4) // 5))
    return payload[:cut]


def _bad_base64(text: str) -> str:
    """One character outside the alphabet: strict decoders reject it, lenient ones lose the padding."""
    return "*" + text[1:]


def _stream_fault(out: Out, fault: str, dice: Dice) -> list[Out]:
    """Faults of the transport, the same for every format."""
    if fault == "redelivery":
        copy = replace(out, fault="redelivery", outcome="duplicate", delay_s=dice.uniform(1.0, 30.0))
        return [out, copy]
    if fault == "late":
        return [replace(out, fault="late", delay_s=dice.uniform(3600.0, 6 * 3600.0))]
    if fault == "out_of_order":
        return [replace(out, fault="out_of_order", delay_s=dice.uniform(30.0, 900.0))]
    raise ValueError(f"not a transport fault: {fault}")


def _quarantined(out: Out, fault: str, payload: bytes | None = None, **changes: Any) -> list[Out]:
    return [
        replace(
            out,
            payload=out.payload if payload is None else payload,
            fault=fault,
            outcome="quarantined",
            reason=QUARANTINE_REASON[fault],
            **changes,
        )
    ]


def _skew(dice: Dice, off_grid_s: int, *, hours: int | None = None) -> timedelta:
    """1-3 hours ahead (or ``hours``), plus ``off_grid_s``: a shift that takes the device's reporting
    grid off itself, so a skewed reading never lands on a real reading's time."""
    ahead = dice.integers(1, 4) if hours is None else hours
    return timedelta(seconds=ahead * 3600 + off_grid_s)


def _off_grid(grid_s: int) -> int:
    """Half a reporting interval and a second: off a grid of ``grid_s`` seconds."""
    return (grid_s // 2 if grid_s > 1 else 0) + 1


def _hash_id(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


# --- LoRaWAN --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoraDevice:
    """A LoRaWAN device and the network-server application it belongs to."""

    model: str
    network: str  # tts_v3 | chirpstack_v4
    dev_eui: str  # 16 lower-case hex digits: the device id in provisioning
    dev_addr: str
    name: str
    application_id: str
    application_name: str
    tenant_id: str
    tenant_name: str
    profile_id: str = ""
    profile_name: str = ""
    version_ids: tuple[tuple[str, str], ...] = ()
    with_decoded: bool = False
    occupied_bit: int = 0
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def tts_device_id(self) -> str:
        return f"eui-{self.dev_eui}"


@dataclass(slots=True)
class LoraSpec:
    device: LoraDevice
    time: datetime
    f_port: int
    f_cnt: int
    fields: dict[str, Any]
    gateways: tuple[lorawan.GatewayRx, lorawan.GatewayRx]
    prefix: str
    eligible: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.eligible = ELSYS_FAULTS if self.device.model == "elsys-ers-co2" else LORA_FAULTS

    def _payload(self) -> bytes:
        model = self.device.model
        if model == "nwave-nps405":
            return nwave.encode(self.f_port, self.fields, occupied_bit=self.device.occupied_bit)
        if model == "bosch-tps110":
            return bosch.encode(self.f_port, self.fields)
        if model == "elsys-ers-co2":
            return elsys.encode(self.fields)
        raise ValueError(f"no LoRaWAN codec for {model}")

    def truth(self) -> tuple[Truth, ...]:
        fmap = tr._model(self.device.model).fields
        return tuple(tr.truth(self.device.model, k, v, self.time) for k, v in self.fields.items() if k in fmap)

    def _message(
        self,
        *,
        dev_eui: str | None = None,
        f_port: int | None = None,
        data: bytes | str | None = None,
        gateway: int = 0,
        decoded: bool = True,
    ) -> tuple[str, bytes]:
        d = self.device
        eui = dev_eui or d.dev_eui
        port = self.f_port if f_port is None else f_port
        raw = self._payload() if data is None else data
        ident = _hash_id(eui, self.f_cnt, self.time.isoformat())
        gws = [self.gateways[gateway]]
        if d.network == "tts_v3":
            device_id = f"eui-{eui}"
            msg = lorawan.tts_uplink(
                device_id=device_id,
                application_id=d.application_id,
                dev_eui=eui,
                join_eui="70b3d57ed0000000",
                dev_addr=d.dev_addr,
                received_at=self.time,
                f_port=port,
                f_cnt=self.f_cnt,
                frm_payload=raw,
                gateways=gws,
                version_ids=dict(d.version_ids),
                correlation_ids=[f"gs:uplink:{ident[:26].upper()}", f"as:up:{ident[26:52].upper()}"],
                session_key_id=lorawan.b64(bytes.fromhex(ident[:32])),
                decoded_payload=dict(self.fields) if d.with_decoded and decoded else None,
                tenant_id=d.tenant_id,
            )
            topic = lorawan.tts_topic(d.application_id, device_id, d.tenant_id)
        else:
            msg = lorawan.chirpstack_uplink(
                deduplication_id=str(uuid.UUID(ident[:32])),
                time=self.time,
                tenant_id=d.tenant_id,
                tenant_name=d.tenant_name,
                application_id=d.application_id,
                application_name=d.application_name,
                device_profile_id=d.profile_id,
                device_profile_name=d.profile_name,
                device_name=d.name if dev_eui is None else f"ukjent-{eui[-6:]}",
                dev_eui=eui,
                dev_addr=d.dev_addr,
                f_port=port,
                f_cnt=self.f_cnt,
                data=raw,
                gateways=gws,
                obj=dict(self.fields) if d.with_decoded and decoded else None,
                tags=dict(d.tags) or None,
            )
            topic = lorawan.chirpstack_topic(d.application_id, eui)
        return prefixed(self.prefix, topic), lorawan.dumps(msg)

    def render(self, fault: str | None, dice: Dice) -> list[Out]:
        topic, payload = self._message()
        out = Out(topic, payload, self.device.dev_eui, self.truth())
        if fault is None or fault in ("startup", "heartbeat", "stuck"):
            return [replace(out, fault=fault)]
        if fault == "malformed":
            if dice.pick(("truncated", "bad_base64")) == "truncated":
                return _quarantined(out, fault, _truncate(payload, dice))
            _, bad = self._message(data=_bad_base64(lorawan.b64(self._payload())), decoded=False)
            return _quarantined(out, fault, bad)
        if fault == "unknown_port":
            _, bad = self._message(f_port=dice.integers(100, 224), decoded=False)
            return _quarantined(out, fault, bad)
        if fault == "unknown_device":
            eui = "0004a30b00" + f"{dice.integers(0, 1 << 24):06x}"
            topic2, bad = self._message(dev_eui=eui)
            return _quarantined(out, fault, bad, topic=topic2, device_id=eui)
        if fault == "duplicate":
            _, copy = self._message(gateway=1)
            return [out, replace(out, payload=copy, fault="duplicate", outcome="duplicate")]
        if fault == "implausible":  # an ERS CO2 reports 65535 ppm when its NDIR cell fails
            spec = replace(self, fields={**self.fields, "co2": 65535})
            _, bad = spec._message()
            return [replace(out, payload=bad, truth=spec.truth(), fault=fault)]
        return _stream_fault(out, fault, dice)


# --- Sensor.Community -----------------------------------------------------------------------------


@dataclass(slots=True)
class AirrohrSpec:
    esp8266id: str
    software_version: str
    values: list[tuple[str, str]]
    prefix: str
    eligible: tuple[str, ...] = AIRROHR_FAULTS

    def truth(self) -> tuple[Truth, ...]:
        model = "airrohr-sds011-bme280"
        fmap = tr._model(model).fields
        flags = ("low_cost_sensor", "time_assumed")
        return tuple(tr.truth(model, k, v, None, flags=flags) for k, v in self.values if k in fmap)

    def render(self, fault: str | None, dice: Dice) -> list[Out]:
        topic = prefixed(self.prefix, f"sensor-community/{self.esp8266id}")
        payload = airrohr.body(self.esp8266id, self.software_version, self.values)
        out = Out(topic, payload, self.esp8266id, self.truth())
        if fault is None or fault == "stuck":
            return [replace(out, fault=fault)]
        if fault == "malformed":
            return _quarantined(out, fault, _truncate(payload, dice))
        if fault == "unknown_device":
            other = str(dice.integers(20_000_000, 30_000_000))
            bad = airrohr.body(other, self.software_version, self.values)
            return _quarantined(
                out, fault, bad, topic=prefixed(self.prefix, f"sensor-community/{other}"), device_id=other
            )
        raise ValueError(f"airrohr cannot carry {fault}")


# --- NILU -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class NiluSpec:
    station: str
    slug: str
    start: datetime
    values: dict[str, float]  # component -> µg/m³ (rounded as published)
    index: dict[str, int]
    latitude: float
    longitude: float
    prefix: str
    eligible: tuple[str, ...] = NILU_FAULTS

    def _render(
        self, *, station: str | None = None, zoneless: bool = False, tweak: tuple[str, str] | None = None
    ) -> tuple[bytes, tuple[Truth, ...]]:
        """``tweak`` = (component, fault) changes one record's value or unit."""
        model = "nilu-reference-station"
        end = self.start + timedelta(hours=1)
        records, truths = [], []
        flags = ("zone_assumed",) if zoneless else ()
        for component, value in self.values.items():
            wire: float | str = value
            unit = "µg/m³"
            if tweak is not None and tweak[0] == component:
                if tweak[1] == "string_number":
                    wire = repr(value)
                elif tweak[1] == "implausible":
                    wire = -round(abs(value) * 0.3 + 1.2, 3)
                elif tweak[1] == "unit_variant":
                    wire, unit = round(units.convert(value, unit, "mg/m³"), 6), "mg/m³"
            records.append(
                nilu.record(
                    station=station or self.station,
                    component=component,
                    start=self.start,
                    end=end,
                    value=wire,
                    unit=unit,
                    index=self.index[component],
                    latitude=self.latitude,
                    longitude=self.longitude,
                    zoneless=zoneless,
                )
            )
            truths.append(tr.truth(model, component, wire, self.start, unit=unit, time_end=end, flags=flags))
        return nilu.body(records), tuple(truths)

    def render(self, fault: str | None, dice: Dice) -> list[Out]:
        topic = prefixed(self.prefix, f"nilu/bodo/{self.slug}")
        payload, truths = self._render()
        out = Out(topic, payload, self.station, truths)
        if fault is None:
            return [out]
        if fault == "malformed":
            return _quarantined(out, fault, _truncate(payload, dice))
        if fault == "unknown_device":
            other = f"Ukjent stasjon {dice.integers(1, 100)}"
            bad, _ = self._render(station=other)
            return _quarantined(out, fault, bad, topic=prefixed(self.prefix, "nilu/bodo/ukjent"), device_id=other)
        if fault == "zoneless_time":
            payload, truths = self._render(zoneless=True)
            return [replace(out, payload=payload, truth=truths, fault=fault)]
        if fault in ("string_number", "implausible", "unit_variant"):
            payload, truths = self._render(tweak=(dice.pick(tuple(self.values)), fault))
            return [replace(out, payload=payload, truth=truths, fault=fault)]
        return _stream_fault(out, fault, dice)


# --- amsreader ------------------------------------------------------------------------------------


@dataclass(slots=True)
class AmsSpec:
    """One amsreader message: list 1 (``values`` None), list 2 (``values``) or list 3 (and ``registers``)."""

    header: amsreader.Header
    time: datetime
    p: int
    realtime: amsreader.Realtime
    prefix: str
    values: amsreader.Instant | None = None
    registers: dict[str, float] | None = None  # list 3: tpi, tpo, tqi, tqo (kWh, kvarh)
    eligible: tuple[str, ...] = AMS_FAULTS

    def _render(
        self, *, mac: str | None = None, t: datetime | bool | None = True, p: int | str | None = None
    ) -> tuple[bytes, tuple[Truth, ...]]:
        """``t``: True = the real time, None = missing (0), a datetime = a skewed clock."""
        when: datetime | None = self.time if t is True else (t if isinstance(t, datetime) else None)
        header = replace(self.header, mac=mac or self.header.mac, t=int(when.timestamp()) if when else 0)
        flags = ("time_assumed",) if when is None else ("future_time",) if when != self.time else ()
        power: int | str = self.p if p is None else p
        model = "amsreader-han"
        fields: dict[str, Any] = {"P": power}
        v = self.values
        if v is None:
            payload = amsreader.list1(header, power, self.realtime)
        else:  # the values as the template writes them
            fields |= {"Q": v.q, "PO": v.po, "QO": v.qo}
            fields |= {f"I{k}": f"{x:.2f}" for k, x in enumerate(v.currents, 1)}
            fields |= {f"U{k}": f"{x:.2f}" for k, x in enumerate(v.voltages, 1)}
            r = self.registers
            if r is None:
                payload = amsreader.list2(header, power, v, self.realtime)
            else:
                fields |= {"tPI": f"{r['tpi']:.3f}", "tPO": f"{r['tpo']:.3f}", "tQI": f"{r['tqi']:.3f}",
                           "tQO": f"{r['tqo']:.3f}"}  # fmt: skip
                payload = amsreader.list3(
                    header, p=power, values=v, tpi=r["tpi"], tpo=r["tpo"], tqi=r["tqi"], tqo=r["tqo"], rtc=header.t,
                    realtime=self.realtime,
                )  # fmt: skip
        truths = tuple(tr.truth(model, name, value, when, flags=flags) for name, value in fields.items())
        return payload, truths

    def render(self, fault: str | None, dice: Dice) -> list[Out]:
        topic = prefixed(self.prefix, f"amsreader/{self.header.mac.replace(':', '').lower()}")
        payload, truths = self._render()
        out = Out(topic, payload, self.header.mac, truths)
        if fault is None or fault == "counter_reset":
            return [replace(out, fault=fault)]
        if fault == "malformed":
            return _quarantined(out, fault, _truncate(payload, dice))
        if fault == "unknown_device":
            mac = "A4:CF:12:" + ":".join(f"{dice.integers(0, 256):02X}" for _ in range(3))
            bad, _ = self._render(mac=mac)
            topic2 = prefixed(self.prefix, f"amsreader/{mac.replace(':', '').lower()}")
            return _quarantined(out, fault, bad, topic=topic2, device_id=mac)
        if fault == "missing_time":
            payload, truths = self._render(t=None)
        elif fault == "clock_skew":
            # whole-second times 2.5 s apart fall on 0 and 2 of every 5 s (3600 is a multiple of 5): 1 is
            # free. One hour ahead always: two skewed readings of one meter never meet (no shift of 1-3
            # hours keeps both off the grid and off each other)
            payload, truths = self._render(t=self.time + _skew(dice, 1, hours=1))
        elif fault == "string_number":
            payload, truths = self._render(p=str(self.p))
        elif fault == "implausible":  # an unsigned register read as -1
            payload, truths = self._render(p=4294967295)
        else:
            return _stream_fault(out, fault, dice)
        return [replace(out, payload=payload, truth=truths, fault=fault)]


# --- SenML ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class SenmlSpec:
    model: str
    base_name: str  # ``urn:dev:mac:<eui>:``; the device id is the base name without the colon
    time: datetime
    records: list[senml.Record]
    prefix: str
    grid_s: int
    implausible: tuple[str, float] = ("wind_speed", -1.0)  # (record, value) for the implausible fault
    variants: tuple[tuple[str, str], ...] = ()  # (record, unit) the unit_variant fault may use
    eligible: tuple[str, ...] = SENML_FAULTS

    @property
    def device_id(self) -> str:
        return self.base_name.rstrip(":")

    def _render(
        self,
        records: list[senml.Record],
        *,
        base_name: str | None = None,
        when: datetime | bool | None = True,
    ) -> tuple[bytes, tuple[Truth, ...]]:
        at: datetime | None = self.time if when is True else (when if isinstance(when, datetime) else None)
        flags = ("time_assumed",) if at is None else ("future_time",) if at != self.time else ()
        if at is None:  # the gateway lost its clock: no base time, no relative times
            records = [replace(r, t=None) for r in records]
        bt = int(at.timestamp()) if at is not None else None
        pack = senml.pack(base_name or self.base_name, bt, records)
        fmap = tr._model(self.model).fields
        truths = tuple(
            tr.truth(
                self.model,
                r.name,
                r.value if not isinstance(r.value, bool) else int(r.value),
                None if at is None else at + timedelta(seconds=r.t or 0),
                unit=r.unit,
                flags=flags,
            )
            for r in records
            if r.name in fmap
        )
        return senml.body(pack), truths

    def render(self, fault: str | None, dice: Dice) -> list[Out]:
        gateway = self.device_id.rsplit(":", 1)[-1]
        topic = prefixed(self.prefix, f"senml/{gateway}")
        payload, truths = self._render(self.records)
        out = Out(topic, payload, self.device_id, truths)
        if fault is None or fault in ("counter_reset", "stuck"):
            return [replace(out, fault=fault)]
        if fault == "malformed":
            return _quarantined(out, fault, _truncate(payload, dice))
        if fault == "unknown_device":
            eui = f"0024befffe{dice.integers(0, 1 << 24):06x}"
            bad, _ = self._render(self.records, base_name=f"urn:dev:mac:{eui}:")
            return _quarantined(
                out, fault, bad, topic=prefixed(self.prefix, f"senml/{eui}"), device_id=f"urn:dev:mac:{eui}"
            )
        if fault == "missing_time":
            payload, truths = self._render(self.records, when=None)
        elif fault == "clock_skew":
            payload, truths = self._render(self.records, when=self.time + _skew(dice, _off_grid(self.grid_s)))
        elif fault in ("string_number", "implausible", "unit_variant"):
            payload, truths = self._render(self._tweak(fault, dice))
        else:
            return _stream_fault(out, fault, dice)
        return [replace(out, payload=payload, truth=truths, fault=fault)]

    def _tweak(self, fault: str, dice: Dice) -> list[senml.Record]:
        records = list(self.records)
        if fault == "string_number":
            i = dice.pick([str(k) for k, r in enumerate(records) if r.field == "v"])
            records[int(i)] = replace(records[int(i)], value=repr(records[int(i)].value))
            return records
        if fault == "implausible":
            name, value = self.implausible
            return [replace(r, value=value) if r.name == name else r for r in records]
        name, unit = self.variants[dice.integers(0, len(self.variants))]
        # Factors from the shared unit conversion (pint), as ingest converts back; 4 decimals as a gateway writes.
        return [
            replace(r, unit=unit, value=round(units.convert(float(r.value), r.unit or "1", unit), 4))
            if r.name == name
            else r
            for r in records
        ]
