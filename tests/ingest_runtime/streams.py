"""Message streams in the vendors' real wire formats, and a careful QoS-1 publisher.

Every message's readings encode its sequence number, so a test can check each message
was stored exactly once: airrohr PM10 = seq / 100 (no payload time: the hard case for
exactly-once), amsreader power = seq watts at t0 + seq seconds, Nwave occupancy at a
``received_at`` of t0 + seq seconds.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest.mqtt_address import BrokerAddress

T0 = datetime(2025, 3, 4, 8, 0, tzinfo=UTC)
AIRROHR = [f"1359{n:04d}" for n in range(20)]
AMS = [f"A4:CF:12:F3:77:{n:02X}" for n in range(5)]
NWAVE = [f"70b3d5e75e00{n:04x}" for n in range(10)]


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    kind: str
    seq: int
    observations: int


def airrohr(prefix: str, seq: int) -> Message:
    device = AIRROHR[seq % len(AIRROHR)]
    body = {
        "esp8266id": device,
        "software_version": "NRZ-2024-135",
        "sensordatavalues": [
            {"value_type": "SDS_P1", "value": f"{seq / 100:.2f}"},
            {"value_type": "SDS_P2", "value": "7.10"},
            {"value_type": "BME280_temperature", "value": "4.20"},
            {"value_type": "BME280_pressure", "value": "100720.00"},
            {"value_type": "BME280_humidity", "value": "91.20"},
            {"value_type": "samples", "value": "5032003"},
        ],
    }
    return Message(f"{prefix}sensor-community/{device}", orjson.dumps(body), "airrohr", seq, 5)


def amsreader(prefix: str, seq: int) -> Message:
    mac = AMS[seq % len(AMS)]
    t = int(T0.timestamp()) + seq
    body = {"id": mac, "name": "ams", "up": 100 + seq, "t": t, "data": {"P": seq, "tPI": 1000.0 + seq / 1000}}
    return Message(f"{prefix}amsreader/{mac}", orjson.dumps(body), "amsreader", seq, 2)


def nwave(prefix: str, seq: int) -> Message:
    eui = NWAVE[seq % len(NWAVE)]
    at = (T0 + timedelta(seconds=seq)).isoformat().replace("+00:00", "Z")
    body = {
        "end_device_ids": {
            "device_id": f"eui-{eui}",
            "application_ids": {"application_id": "parking"},
            "dev_eui": eui.upper(),
        },
        "received_at": at,
        "uplink_message": {
            "f_port": 1,
            "f_cnt": seq,
            "frm_payload": base64.b64encode(bytes([0x95 if seq % 2 else 0x94])).decode(),
            "received_at": at,
            "version_ids": {"brand_id": "nwave", "model_id": "nps405"},
        },
    }
    return Message(f"{prefix}v3/parking/devices/eui-{eui}/up", orjson.dumps(body), "nwave", seq, 1)


KINDS = (airrohr, amsreader, nwave)


def mixed(prefix: str, count: int, start: int = 0) -> list[Message]:
    """``count`` messages cycling through the kinds, sequence numbers from ``start``."""
    return [KINDS[i % len(KINDS)](prefix, i) for i in range(start, start + count)]


def provisioning() -> dict[str, Any]:
    devices: list[dict[str, Any]] = [
        {"id": d, "model": "airrohr-sds011-bme280", "name": f"airrohr {d}"} for d in AIRROHR
    ]
    devices += [{"id": m, "model": "amsreader-han", "name": f"meter {m}"} for m in AMS]
    devices += [{"id": e, "model": "nwave-nps405", "name": f"space {e}"} for e in NWAVE]
    return {"version": 1, "devices": devices}


def client(url: str, client_id: str = "", v5: bool | None = None, inflight: int = 20) -> mqtt.Client:
    address = BrokerAddress.parse(url)
    use_v5 = address.v5 if v5 is None else v5
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5 if use_v5 else mqtt.MQTTv311)
    if address.username:
        c.username_pw_set(address.username, address.password)
    c.max_inflight_messages_set(inflight)
    c.connect(address.host, address.port)
    c.loop_start()
    return c


def publish(
    url: str, messages: Iterable[Message], *, qos: int = 1, inflight: int = 500, rate: float | None = None
) -> int:
    """Publish and wait for every PUBACK; in-flight capped (paho's 16-bit ids), each result checked."""
    c = client(url, inflight=inflight)
    window = threading.BoundedSemaphore(inflight)
    c.on_publish = lambda *_: window.release()
    sent = 0
    pending = []
    started = time.monotonic()
    try:
        for m in messages:
            if not window.acquire(timeout=30):
                raise TimeoutError("the broker stopped acknowledging publishes")
            info = c.publish(m.topic, m.payload, qos=qos)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise RuntimeError(f"publish failed: {mqtt.error_string(info.rc)}")
            pending.append(info)
            sent += 1
            if rate is not None:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        for info in pending:
            info.wait_for_publish(timeout=30)
            if not info.is_published():
                raise TimeoutError("a publish was not acknowledged")
    finally:
        c.disconnect()
        c.loop_stop()
    return sent


def chunks(items: Sequence[Message], size: int) -> Iterator[Sequence[Message]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def check_exactly_once(db_url: str, messages: Sequence[Message]) -> None:
    """Every message's readings are stored, each exactly once, and nothing else is."""
    import psycopg

    by_kind: dict[str, list[Message]] = {}
    for m in messages:
        by_kind.setdefault(m.kind, []).append(m)
    with psycopg.connect(db_url) as conn:
        total = conn.execute("SELECT count(*) FROM observations").fetchone()
        assert total is not None
        assert total[0] == sum(m.observations for m in messages), "observations stored != observations published"

        def values(key: str) -> list[Any]:
            return [
                r[0]
                for r in conn.execute(
                    "SELECT coalesce(o.result_number::text, o.result_boolean::text) FROM observations o"
                    " JOIN datastreams d ON d.id = o.datastream_id WHERE d.property_key = %s",
                    (key,),
                )
            ]

        pm10 = sorted(round(float(v), 2) for v in values("pm10"))
        assert pm10 == sorted(round(m.seq / 100, 2) for m in by_kind.get("airrohr", []))
        power = sorted(int(float(v)) for v in values("active_power"))
        assert power == sorted(m.seq for m in by_kind.get("amsreader", []))
        assert len(values("parking_occupancy")) == len(by_kind.get("nwave", []))
