"""The embedded default: a private PostgreSQL and an in-process MQTT broker, and the demo on them."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
import psycopg

from ingest.mqtt_address import BrokerAddress
from store.embedded import embedded_postgres
from store.features import detect
from store.migrations import upgrade
from tests.conftest import Spawn, free_port, wait_until


def _postgres_pids(data_dir: Path) -> list[int]:
    pids = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and any(str(data_dir) in part for part in cmdline):
            pids.append(proc.pid)
    return pids


def test_embedded_postgres_runs_the_same_schema_and_stops(tmp_path: Path) -> None:
    with embedded_postgres(tmp_path) as url:
        assert _postgres_pids(tmp_path), "no server process"
        with psycopg.connect(url) as conn:
            report = upgrade(conn)
            assert "0001_sensorthings" in report.applied
            features = detect(conn)
            assert features.server_version_num >= 140000
            assert not features.hypertable  # no TimescaleDB in the wheel: plain PostgreSQL path
    assert wait_until(lambda: not _postgres_pids(tmp_path), timeout=15)
    # Data persists in the data dir: a second start finds the migrated schema.
    with embedded_postgres(tmp_path) as url, psycopg.connect(url) as conn:
        assert upgrade(conn).applied == []


def test_embedded_broker_delivers_qos1(embedded_broker_url: str) -> None:
    address = BrokerAddress.parse(embedded_broker_url)
    assert address.protocol == "3.1.1" and address.host == "127.0.0.1"
    received: list[bytes] = []
    done = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        received.append(message.payload)
        if len(received) == 50:
            done.set()

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-sub", protocol=mqtt.MQTTv311)
    sub.on_message = on_message
    sub.connect(address.host, address.port)
    sub.loop_start()
    sub.subscribe("bydata/test/#", qos=1)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-pub", protocol=mqtt.MQTTv311)
    pub.connect(address.host, address.port)
    pub.loop_start()
    try:
        time.sleep(0.3)  # let the subscription settle
        infos = [pub.publish("bydata/test/x", f"m{i}".encode(), qos=1) for i in range(50)]
        for info in infos:
            info.wait_for_publish(timeout=5)
        assert done.wait(10)
        assert sorted(received) == sorted(f"m{i}".encode() for i in range(50))
    finally:
        pub.disconnect()
        sub.disconnect()
        pub.loop_stop()
        sub.loop_stop()


def test_demo_runs_on_the_embedded_default(tmp_path: Path, spawn: Spawn) -> None:
    api_port, mqtt_port = free_port(), free_port()
    env = {
        "BYDATA_API_PORT": str(api_port),
        "BYDATA_EMBEDDED_MQTT_PORT": str(mqtt_port),
        "BYDATA_DATA_DIR": str(tmp_path / "data"),
    }
    for name in ("BYDATA_DATABASE_URL", "BYDATA_MQTT_URL"):
        os.environ.pop(name, None)  # this process only; the demo must not see them
    proc = spawn("-m", "bydata.cli", "demo", "--duration", "150", env=env, log_name="demo.log")

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/health", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    assert wait_until(healthy, timeout=60, interval=0.5), (tmp_path / "demo.log").read_text()
    with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/health", timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "ok"
    assert body["database"]["server_version_num"] >= 140000
    with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/v1.1", timeout=5) as resp:
        settings = json.load(resp)["serverSettings"]  # the API publishes on the embedded broker
    receive = "http://www.opengis.net/spec/iot_sensing/1.1/req/receive-updates-via-mqtt/receive-updates"
    assert receive in settings["conformance"] and settings[receive]["endpoints"] == [f"mqtt://127.0.0.1:{mqtt_port}"]

    def observed(case: str) -> bool:
        """The case's simulators published, ingest stored, the API serves: the whole pipeline ran."""
        query = urllib.parse.urlencode({"$filter": f"Datastream/Thing/properties/case eq '{case}'", "$top": "1"})
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/v1.1/Observations?{query}", timeout=5) as resp:
            return bool(json.load(resp)["value"])

    for case in ("air", "parking", "energy"):
        assert wait_until(lambda case=case: observed(case), timeout=60, interval=1.0), (  # type: ignore[misc]
            case,
            (tmp_path / "demo.log").read_text(),
        )
    log = (tmp_path / "demo.log").read_text()
    assert f"mqtt://127.0.0.1:{mqtt_port}" in log
    assert f"http://127.0.0.1:{api_port}/health" in log
    proc.terminate()
    proc.wait(timeout=30)
    assert wait_until(lambda: not _postgres_pids(tmp_path / "data"), timeout=15), "embedded PostgreSQL left running"


def test_a_second_command_joins_the_running_embedded_broker(embedded_broker_url: str) -> None:
    """`bydata simulate` beside a running demo publishes to the demo's broker, not a private one."""
    from bydata.services import broker_url
    from bydata.settings import Settings

    port = BrokerAddress.parse(embedded_broker_url).port
    settings = Settings(mqtt_url=None, embedded_mqtt_port=port)
    with broker_url(settings) as url:  # a second EmbeddedBroker would fail: the port is taken
        assert url == embedded_broker_url
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-join", protocol=mqtt.MQTTv311)
    sub.connect("127.0.0.1", port)  # and leaving the block left the running broker up
    sub.disconnect()
