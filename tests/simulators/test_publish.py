"""Publishing to real brokers: every message in the manifest arrives, and nothing else."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.mqtt_address import BrokerAddress
from simulators.engine import RunOptions
from simulators.manifest import read_messages
from simulators.publisher import Publisher, PublishError
from simulators.run import run
from tests.conftest import wait_until

Spawn = Callable[..., object]


def _count(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return -1


def test_parking_5000_spaces_at_speed_60_all_arrive(
    mqtt_url: str, topic_prefix: str, spawn: Callable[..., object], tmp_path: Path
) -> None:
    """Another process counts what arrives; it equals the manifest.

    A fixed weekday noon keeps the message count independent of the hour the test runs at
    (at night few spaces change state).
    """
    counted = tmp_path / "count.txt"
    spawn(
        "-m", "tests.simulators.count_subscriber", mqtt_url, f"{topic_prefix}/#", str(counted), log_name="counter.log"
    )
    assert wait_until(lambda: Path(f"{counted}.ready").exists(), timeout=20), "the counting subscriber did not start"
    manifest = tmp_path / "manifest"
    sim = spawn(
        "-m", "bydata", "simulate", "parking",
        "--spaces", "5000", "--speed", "60", "--duration", "10m", "--start", "2026-11-25T11:00:00+01:00",
        "--fault", "duplicate=0.02", "--fault", "redelivery=0.02", "--fault", "malformed=0.01",
        "--broker", mqtt_url, "--topic-prefix", topic_prefix, "--manifest", str(manifest),
        log_name="simulate.log",
    )  # fmt: skip
    assert isinstance(sim, __import__("subprocess").Popen)
    sim.wait(timeout=120)
    log = (tmp_path / "simulate.log").read_text()
    assert sim.returncode == 0, log
    assert "manifest:" in log
    expected = json.loads((manifest / "run.json").read_text())["messages"]
    assert expected == len(read_messages(manifest)) > 300
    assert json.loads((manifest / "run.json").read_text())["devices"] == 5000
    assert wait_until(lambda: _count(counted) >= expected, timeout=30), (_count(counted), expected)
    assert not wait_until(lambda: _count(counted) > expected, timeout=1.0)  # and nothing more
    assert _count(counted) == expected


def test_embedded_broker_speaks_mqtt_311(embedded_broker_url: str, topic_prefix: str, tmp_path: Path) -> None:
    """The embedded amqtt broker (MQTT 3.1.1) takes the stream too; a subscriber sees it in order."""
    address = BrokerAddress.parse(embedded_broker_url)
    assert not address.v5
    received: list[tuple[str, bytes]] = []
    ready, lock = threading.Event(), threading.Lock()
    sub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    sub.on_connect = lambda c, *_: c.subscribe(f"{topic_prefix}/#", qos=1)
    sub.on_subscribe = lambda *_: ready.set()

    def on_message(c: object, u: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            received.append((msg.topic, msg.payload))

    sub.on_message = on_message
    sub.connect(address.host, address.port)
    sub.loop_start()
    try:
        assert ready.wait(10)
        opts = RunOptions(
            cases=("air", "energy"),
            start=datetime(2026, 3, 10, 8, tzinfo=UTC),
            duration=timedelta(minutes=15),
            topic_prefix=topic_prefix,
            faults={"redelivery": 0.05, "late": 0.05},
        )
        with Publisher(embedded_broker_url, max_unacked=50) as pub:
            summary = run(opts, tmp_path / "m", pub.publish, pace=False)
        expected = [(line["topic"], line["sha256"]) for line in read_messages(tmp_path / "m")]
        assert summary["messages"] == len(expected) > 100
        assert wait_until(lambda: len(received) >= len(expected), timeout=30)
        import hashlib

        with lock:
            got = [(t, hashlib.sha256(p).hexdigest()) for t, p in received]
        assert got == expected
    finally:
        sub.disconnect()
        sub.loop_stop()


def test_publisher_reports_an_unreachable_broker() -> None:
    from tests.conftest import free_port

    with pytest.raises(PublishError, match="cannot reach"):
        Publisher(f"mqtt://127.0.0.1:{free_port()}", connect_timeout=1.0).connect()
    with pytest.raises(ValueError, match="16-bit"):
        Publisher("mqtt://127.0.0.1:1", max_unacked=70_000)


def test_python_m_bydata_has_help(spawn: Callable[..., object], tmp_path: Path) -> None:
    proc = spawn("-m", "bydata", "simulate", "--help", log_name="help.log")
    assert isinstance(proc, __import__("subprocess").Popen)
    assert proc.wait(timeout=60) == 0
    text = (tmp_path / "help.log").read_text()
    for option in ("--spaces", "--speed", "--backfill-days", "--fault", "--topic-prefix", "--control", "--scenario"):
        assert option in text
    assert sys.executable
