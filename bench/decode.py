"""Benchmark: decode + normalise of a realistic message mix, against orjson.loads of the same bytes.

Prints one JSON document. The mix follows the three cases: parking (Nwave over The
Things Stack, Bosch over ChirpStack), air (airrohr, NILU hourly records) and building
energy (amsreader list 1 every few seconds and list 3 hourly, Elsys ERS CO2, SenML heat
meters). Every message goes through the same calls the ingest runtime makes: source
match, ``decode_message`` with a registry lookup, ``normalise`` with per-datastream state.

    python -m bench.decode [--messages 30000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import platform
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson

from ingest.decode import decode_message, load_models
from ingest.normalise import normalise
from ingest.quality import QualityState
from ingest.sources import load_sources
from ingest.types import DeviceBinding, RawMessage
from schemas.device_models import DeviceModel

START = datetime(2025, 3, 4, 6, 0, tzinfo=UTC)


def _eui(prefix: str, i: int) -> str:
    return f"{prefix}{i:08x}"


def _nwave(i: int, t: datetime, rng: random.Random) -> tuple[str, bytes, str]:
    eui = _eui("70b3d5e7", i)
    heartbeat = rng.random() < 0.1
    payload = bytes([0, 0xD3, 0xD8, 0, 0x59, 0x0B]) if heartbeat else bytes([rng.randrange(256)])
    doc = {
        "end_device_ids": {"device_id": f"eui-{eui}", "application_ids": {"application_id": "parking"},
                           "dev_eui": eui.upper()},
        "correlation_ids": ["as:up:01HQ3Z8K2V4Y6W8X0A2C4E6G8J"],
        "received_at": t.isoformat().replace("+00:00", "Z"),
        "uplink_message": {
            "f_port": 2 if heartbeat else 1,
            "f_cnt": i,
            "frm_payload": base64.b64encode(payload).decode(),
            "rx_metadata": [{"gateway_ids": {"gateway_id": "ksu-gw-01"}, "rssi": -97, "snr": 6.5}],
            "received_at": t.isoformat().replace("+00:00", "Z"),
            "version_ids": {"brand_id": "nwave", "model_id": "nps405"},
        },
    }  # fmt: skip
    return f"v3/parking/devices/eui-{eui}/up", orjson.dumps(doc), eui


def _chirpstack(profile: str, eui: str, port: int, payload: bytes, t: datetime) -> tuple[str, bytes, str]:
    doc = {
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "time": t.isoformat(),
        "deviceInfo": {"tenantName": "kommune", "applicationName": "app", "deviceProfileName": profile,
                       "deviceName": eui, "devEui": eui},
        "devAddr": "00189440", "dr": 5, "fCnt": 12, "fPort": port,
        "data": base64.b64encode(payload).decode(),
        "rxInfo": [{"gatewayId": "0016c001f153a14c", "rssi": -88, "snr": 7.25}],
    }  # fmt: skip
    return f"application/a/device/{eui}/event/up", orjson.dumps(doc), eui


def _bosch(i: int, t: datetime, rng: random.Random) -> tuple[str, bytes, str]:
    return _chirpstack("bosch-tps110", _eui("fcd6bdff", i), 1, bytes([rng.randrange(2)]), t)


def _elsys(i: int, t: datetime, rng: random.Random) -> tuple[str, bytes, str]:
    temp = int((21 + rng.gauss(0, 0.5)) * 10)
    co2 = rng.randrange(450, 1400)
    payload = bytes([0x01, *temp.to_bytes(2, "big"), 0x02, 38, 0x04, 0, 120, 0x05, rng.randrange(10),
                     0x06, *co2.to_bytes(2, "big"), 0x07, 0x0E, 0x4C])  # fmt: skip
    return _chirpstack("elsys-ers-co2", _eui("a81758ff", i), 5, payload, t)


def _airrohr(i: int, t: datetime, rng: random.Random) -> tuple[str, bytes, str]:
    chip = str(13590000 + i)
    values = [("SDS_P1", rng.uniform(2, 40)), ("SDS_P2", rng.uniform(1, 20)),
              ("BME280_temperature", rng.uniform(-5, 10)), ("BME280_pressure", rng.uniform(99000, 102000)),
              ("BME280_humidity", rng.uniform(60, 99))]  # fmt: skip
    doc = {
        "esp8266id": chip,
        "software_version": "NRZ-2024-135",
        "sensordatavalues": [{"value_type": k, "value": f"{v:.2f}"} for k, v in values]
        + [{"value_type": "samples", "value": "5032003"}, {"value_type": "signal", "value": "-79"}],
    }
    return f"sensor-community/{chip}", orjson.dumps(doc), chip


def _ams(i: int, t: datetime, rng: random.Random, list3: bool) -> tuple[str, bytes, str]:
    mac = f"A4:CF:12:F3:{i // 256:02X}:{i % 256:02X}"
    data: dict[str, object] = {"P": rng.randrange(500, 9000)}
    if list3:
        data = {"lv": "AIDON_V0001", "id": "7359992890941742", "type": "6841131BN243101040", "P": data["P"], "Q": 0,
                "PO": 0, "QO": 611, "I1": 6.12, "I2": 5.87, "I3": 6.4, "U1": 231.4, "U2": 229.8, "U3": 230.9,
                "tPI": 48213.712 + t.timestamp() / 3600, "tPO": 0.0, "tQI": 12.345, "tQO": 7812.004,
                "rtc": int(t.timestamp())}  # fmt: skip
    doc = {"id": mac, "name": "ams", "up": 86400, "t": int(t.timestamp()), "vcc": 3.287, "rssi": -61, "temp": 31.25,
           "data": data, "realtime": {"h": 2.31, "d": 48.7, "t": 5, "x": 3.02, "he": 0.0, "de": 0.0}}  # fmt: skip
    return f"amsreader/{mac.replace(':', '').lower()}", orjson.dumps(doc), mac


def _senml(i: int, t: datetime, rng: random.Random) -> tuple[str, bytes, str]:
    bn = f"urn:dev:mac:0024beff{i:08x}"
    pack = [{"bn": bn + ":", "bt": int(t.timestamp()), "n": "heat_energy", "u": "kWh", "s": 48213.7 + i},
            {"n": "supply_temp", "u": "Cel", "v": round(rng.uniform(55, 70), 1)},
            {"n": "co2", "u": "ppm", "v": rng.randrange(450, 1400), "t": -300}]  # fmt: skip
    return f"senml/gw-{i}", orjson.dumps(pack), bn


def _nilu(i: int, t: datetime, rng: random.Random) -> tuple[str, bytes, str]:
    station = f"Station {i}"
    hour = t.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    records = [{"zone": "Midt-Norge og Nordland", "municipality": "Bodø", "area": "Bodø", "station": station,
                "eoi": None, "component": c, "fromTime": (hour - timedelta(hours=1)).isoformat(),
                "toTime": hour.isoformat(), "value": round(rng.uniform(1, 50), 3), "unit": "µg/m³", "index": 1,
                "color": "6ee86e", "latitude": 67.275501, "longitude": 14.419057}
               for c in ("PM10", "PM2.5", "NO2")]  # fmt: skip
    return f"nilu/station-{i}", orjson.dumps(records), station


# (name, share of messages, devices, generator, model)
MIX: list[tuple[str, float, int, Callable[..., tuple[str, bytes, str]], str]] = [
    ("tts_v3 nwave", 0.30, 2000, _nwave, "nwave-nps405"),
    ("chirpstack_v4 bosch", 0.10, 600, _bosch, "bosch-tps110"),
    ("chirpstack_v4 elsys", 0.15, 400, _elsys, "elsys-ers-co2"),
    ("sensor_community", 0.10, 60, _airrohr, "airrohr-sds011-bme280"),
    ("amsreader list 1", 0.25, 40, lambda i, t, r: _ams(i, t, r, False), "amsreader-han"),
    ("amsreader list 3", 0.02, 40, lambda i, t, r: _ams(i, t, r, True), "amsreader-han"),
    ("senml", 0.06, 40, _senml, "senml-heat-gateway"),
    ("nilu", 0.02, 10, _nilu, "nilu-reference-station"),
]


def build(count: int, seed: int = 4) -> tuple[list[tuple[str, RawMessage]], dict[str, DeviceBinding]]:
    """``count`` messages in time order, and the bindings of every device they name."""
    rng = random.Random(seed)
    models = load_models()
    bindings: dict[str, DeviceBinding] = {}
    next_ds = 1
    messages: list[tuple[str, RawMessage]] = []
    names, weights = [m[0] for m in MIX], [m[1] for m in MIX]
    by_name = {m[0]: m for m in MIX}
    for n in range(count):
        name = rng.choices(names, weights)[0]
        _, _, devices, make, model_key = by_name[name]
        t = START + timedelta(seconds=n * 0.05)
        topic, payload, device = make(rng.randrange(devices), t, rng)
        if device not in bindings:
            model: DeviceModel = models[model_key]
            props = sorted({f.property for f in model.fields.values()})
            bindings[device] = DeviceBinding(device, model, {p: next_ds + k for k, p in enumerate(props)})
            next_ds += len(props)
        messages.append((name, RawMessage(topic, payload, t + timedelta(milliseconds=40))))
    return messages, bindings


def run(messages: list[tuple[str, RawMessage]], bindings: dict[str, DeviceBinding]) -> tuple[float, int, int]:
    sources = load_sources()
    models = load_models()
    state = QualityState()
    lookup = bindings.get

    def model_of(device_id: str) -> DeviceModel | None:
        b = lookup(device_id)
        return b.model if b is not None else None

    observations = flagged = 0
    gc.collect()
    started = time.perf_counter()
    for _, raw in messages:
        source = sources.match(raw.topic)
        decoded = decode_message(raw, source, model_of, models)
        binding = lookup(decoded.device_id)
        if binding is None:
            raise SystemExit(f"benchmark data error: no binding for {decoded.device_id}")
        out = normalise(decoded, binding, raw.received_at, state, window=source.window)
        observations += len(out.observations)
        flagged += out.flagged
    elapsed = time.perf_counter() - started
    return elapsed, observations, flagged


def baseline(messages: list[tuple[str, RawMessage]]) -> float:
    loads = orjson.loads
    gc.collect()
    started = time.perf_counter()
    for _, raw in messages:
        loads(raw.payload)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=30000)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    args = parser.parse_args()

    messages, bindings = build(args.messages)
    run(messages[:2000], bindings)  # warm caches (unit converters, model plans, hint index)
    best = min((run(messages, bindings) for _ in range(args.repeat)), key=lambda r: r[0])
    base = min(baseline(messages) for _ in range(args.repeat))
    elapsed, observations, flagged = best
    mix = Counter(name for name, _ in messages)
    report = {
        "benchmark": "decode+normalise",
        "python": platform.python_version(),
        "messages": len(messages),
        "observations": observations,
        "flagged_observations": flagged,
        "devices": len(bindings),
        "mix": dict(sorted(mix.items())),
        "decode_normalise": {
            "seconds": round(elapsed, 4),
            "messages_per_s": round(len(messages) / elapsed),
            "observations_per_s": round(observations / elapsed),
            "us_per_message": round(elapsed / len(messages) * 1e6, 2),
        },
        "baseline_orjson_loads": {
            "seconds": round(base, 4),
            "messages_per_s": round(len(messages) / base),
        },
        "ratio_to_baseline": round((len(messages) / elapsed) / (len(messages) / base), 4),
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
