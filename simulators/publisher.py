"""QoS-1 publisher on paho-mqtt 2 for any broker URL (``ingest.mqtt_address.BrokerAddress``).

paho numbers QoS-1 messages with 16-bit ids and fails silently (``MQTT_ERR_QUEUE_SIZE`` on the
returned info, no exception) once 65,535 are unacknowledged. So the publisher caps the
unacknowledged messages (a semaphore released by PUBACK) well below that and checks every
``publish()`` result. While the connection is down paho keeps QoS-1 messages and sends them
after its automatic reconnect (``MQTT_ERR_NO_CONN`` means "queued", not "lost").
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest.mqtt_address import BrokerAddress

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """The broker could not be reached, or refused a message."""


class Publisher:
    def __init__(
        self,
        url: str,
        *,
        max_unacked: int = 1000,
        client_id: str | None = None,
        connect_timeout: float = 30.0,
    ) -> None:
        if not 1 <= max_unacked <= 20_000:
            raise ValueError("max_unacked must be between 1 and 20000 (paho's ids are 16-bit)")
        self.address = BrokerAddress.parse(url)
        self.max_unacked = max_unacked
        self.connect_timeout = connect_timeout
        self._window = threading.BoundedSemaphore(max_unacked)
        self._lock = threading.Lock()
        self._unacked = 0
        self._connected = threading.Event()
        self.published = 0
        self.acked = 0
        self.connects = 0
        self._closing = False
        protocol = mqtt.MQTTv5 if self.address.v5 else mqtt.MQTTv311
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"bydata-sim-{uuid.uuid4().hex[:10]}",
            protocol=protocol,
        )
        if self.address.username:
            self._client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            self._client.tls_set()
        self._client.max_inflight_messages_set(min(max_unacked, 1000))
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish

    # paho callbacks (its network thread) ---------------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("broker refused the connection: %s", reason)
            return
        self.connects += 1
        self._connected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connected.clear()
        if self._closing:
            return
        log.warning("disconnected from the broker (%s); paho reconnects and resends unacknowledged messages", reason)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._lock:
            self._unacked -= 1
            self.acked += 1
        self._window.release()

    # API -------------------------------------------------------------------------------------------

    def connect(self) -> Publisher:
        a = self.address
        deadline = time.monotonic() + self.connect_timeout
        delay = 0.2
        while True:
            try:
                if self.address.v5:
                    self._client.connect(a.host, a.port, keepalive=30, clean_start=True)
                else:
                    self._client.connect(a.host, a.port, keepalive=30)
                break
            except OSError as exc:
                if time.monotonic() + delay > deadline:
                    raise PublishError(f"cannot reach the MQTT broker at {a.redacted()}: {exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        self._client.loop_start()
        if not self._connected.wait(max(0.1, deadline - time.monotonic())):
            self._client.loop_stop()
            raise PublishError(f"the MQTT broker at {a.redacted()} did not accept the connection")
        return self

    def publish(self, topic: str, payload: bytes, timeout: float = 60.0) -> None:
        """Publish at QoS 1; blocks while ``max_unacked`` messages wait for their PUBACK."""
        if not self._window.acquire(timeout=timeout):
            raise PublishError(f"no PUBACK for {timeout:.0f} s with {self.max_unacked} messages unacknowledged")
        with self._lock:
            self._unacked += 1
        info = self._client.publish(topic, payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            with self._lock:
                self._unacked -= 1
            self._window.release()
            raise PublishError(f"publish to {topic!r} failed: {mqtt.error_string(info.rc)}")
        self.published += 1

    @property
    def unacked(self) -> int:
        with self._lock:
            return self._unacked

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until every message is acknowledged; False if some are still waiting."""
        deadline = time.monotonic() + timeout
        while self.unacked > 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 60.0) -> None:
        flushed = self.flush(timeout)
        self._closing = True
        self._client.disconnect()
        self._client.loop_stop()
        if not flushed:
            raise PublishError(f"{self.unacked} messages were not acknowledged within {timeout:.0f} s")

    def __enter__(self) -> Publisher:
        return self.connect()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closing = True
            self._client.disconnect()
            self._client.loop_stop()
