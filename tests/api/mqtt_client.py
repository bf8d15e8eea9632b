"""A plain paho MQTT client for tests: subscribes, waits for the broker's SUBACK, collects messages."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from ingest.mqtt_address import BrokerAddress


class Listener:
    """Messages of the subscribed topics, in arrival order; use as a context manager."""

    def __init__(self, url: str) -> None:
        address = BrokerAddress.parse(url)
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-listener-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5 if address.v5 else paho.MQTTv311,
        )
        if address.username:
            self.client.username_pw_set(address.username, address.password)
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._acked: set[int] = set()
        self._lock = threading.Lock()
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.client.on_subscribe = self._on_subscribe
        self.client.connect(address.host, address.port)
        self.client.loop_start()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, *rest: Any) -> None:
        with self._lock:
            self._acked.add(mid)

    def subscribe(self, *topics: str, timeout: float = 10.0) -> None:
        """Subscribe (QoS 1) and return once the broker acknowledged."""
        result, mid = self.client.subscribe([(t, 1) for t in topics])
        assert result == paho.MQTT_ERR_SUCCESS
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if mid in self._acked:
                    return
            time.sleep(0.01)
        raise AssertionError(f"no SUBACK for {topics} within {timeout} s")

    def next(self, timeout: float = 10.0) -> tuple[str, Any]:
        """The next message as (topic, parsed JSON); AssertionError after ``timeout`` seconds."""
        try:
            topic, payload = self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no MQTT message within {timeout} s") from None
        return topic, orjson.loads(payload)

    def collect(self, count: int, timeout: float = 10.0) -> dict[str, Any]:
        """The next ``count`` messages by topic (each topic once)."""
        found: dict[str, Any] = {}
        for _ in range(count):
            topic, body = self.next(timeout)
            assert topic not in found, f"two messages on {topic}: {found[topic]} and {body}"
            found[topic] = body
        return found

    def publish(self, topic: str, body: Any) -> None:
        self.client.publish(topic, orjson.dumps(body), qos=1).wait_for_publish(10)

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()
