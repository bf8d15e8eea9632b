"""amsreader JSON (UtilitechAS/amsreader-firmware ``JsonMqttHandler`` with ``json1``/``json2``/``json3``).

The firmware fills printf templates, so the layout (four-space indent, ``" : "``) is the
template's: list 1 carries active power ``P`` (W), list 2 adds the meter's identity, reactive
power ``Q``/``QO`` (var), export ``PO`` (W), phase currents ``I1``-``I3`` (A) and voltages
``U1``-``U3`` (V), list 3 adds the cumulative registers ``tPI``/``tPO`` (kWh), ``tQI``/``tQO``
(kvarh) and the meter clock ``rtc``. An Aidon meter sends list 1 every 2.5 s, list 2 every 10 s
and list 3 on the hour; amsreader publishes each as it comes. ``t`` is the package time (epoch
seconds; 0 when the meter sent none).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Header:
    mac: str
    name: str
    uptime_s: int
    t: int
    vcc: float
    rssi: int
    temp: float


@dataclass(frozen=True, slots=True)
class Realtime:
    """Energy accounting the firmware appends (use this hour / today, threshold, month max)."""

    h: float
    d: float
    threshold: int
    x: float
    he: float = 0.0
    de: float = 0.0


def _num(value: int | float | str, fmt: str) -> str:
    if isinstance(value, str):  # a bridge that quotes numbers: a real fault
        return f'"{value}"'
    return format(value, fmt)


def _head(h: Header) -> str:
    return (
        "{\n"
        f'    "id" : "{h.mac}",\n'
        f'    "name" : "{h.name}",\n'
        f'    "up" : {h.uptime_s},\n'
        f'    "t" : {h.t},\n'
        f'    "vcc" : {h.vcc:.3f},\n'
        f'    "rssi": {h.rssi},\n'
        f'    "temp": {h.temp:.2f},\n'
        '    "data" : {\n'
    )


def _tail(r: Realtime) -> str:
    return (
        "    },\n"
        '    "realtime" : {\n'
        f'        "h" : {r.h:.2f},\n'
        f'        "d" : {r.d:.1f},\n'
        f'        "t" : {r.threshold},\n'
        f'        "x" : {r.x:.2f},\n'
        f'        "he" : {r.he:.2f},\n'
        f'        "de" : {r.de:.1f}\n'
        "    }\n"
        "}\n"
    )


def list1(header: Header, p: int | str, realtime: Realtime) -> bytes:
    return (_head(header) + f'        "P" : {_num(p, "d")}\n' + _tail(realtime)).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Instant:
    """List 2's values besides ``P``: the meter's identity and the instantaneous readings."""

    list_id: str
    meter_id: str
    meter_type: str
    q: int
    po: int
    qo: int
    currents: tuple[float, float, float]
    voltages: tuple[float, float, float]


def _list2_data(p: int | str, v: Instant) -> str:
    i1, i2, i3 = v.currents
    u1, u2, u3 = v.voltages
    return (
        f'        "lv" : "{v.list_id}",\n'
        f'        "id" : "{v.meter_id}",\n'
        f'        "type" : "{v.meter_type}",\n'
        f'        "P" : {_num(p, "d")},\n'
        f'        "Q" : {v.q},\n'
        f'        "PO" : {v.po},\n'
        f'        "QO" : {v.qo},\n'
        f'        "I1" : {i1:.2f},\n'
        f'        "I2" : {i2:.2f},\n'
        f'        "I3" : {i3:.2f},\n'
        f'        "U1" : {u1:.2f},\n'
        f'        "U2" : {u2:.2f},\n'
        f'        "U3" : {u3:.2f}'
    )


def list2(header: Header, p: int | str, values: Instant, realtime: Realtime) -> bytes:
    return (_head(header) + _list2_data(p, values) + "\n" + _tail(realtime)).encode("utf-8")


def list3(
    header: Header,
    *,
    p: int | str,
    values: Instant,
    tpi: float | str,
    tpo: float,
    tqi: float,
    tqo: float,
    rtc: int,
    realtime: Realtime,
) -> bytes:
    data = (
        _list2_data(p, values) + ",\n"
        f'        "tPI" : {_num(tpi, ".3f")},\n'
        f'        "tPO" : {tpo:.3f},\n'
        f'        "tQI" : {tqi:.3f},\n'
        f'        "tQO" : {tqo:.3f},\n'
        f'        "rtc" : {rtc}\n'
    )
    return (_head(header) + data + _tail(realtime)).encode("utf-8")
