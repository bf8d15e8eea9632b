"""The MQTT edge of ingest: the one module that speaks paho.

- QoS 1 subscriptions on a persistent session (MQTT v5: ``clean_start=False`` with a
  session expiry; 3.1.1: ``clean_session=False``), so the broker keeps what a stopped
  worker has not acknowledged.
- Manual acknowledgement: paho does not PUBACK on receipt; the service calls :meth:`ack`
  after the message's rows are committed. MQTT v5 Receive Maximum bounds how many
  unacknowledged messages the broker sends, which is the backpressure that keeps memory
  flat while the database is slow or down.
- Deliveries carry the connection generation they arrived on. After a reconnect the
  broker resends every unacknowledged message with the same packet id; an ack for the
  old connection's copy is dropped (the resent copy is acknowledged when it is
  committed, as a duplicate), so a packet id the broker has meanwhile given to another
  message is never acknowledged by mistake.
- Bydata's live notifications go to ``v1.1/Datastreams(<id>)/Observations``, which is also
  the SensorThings create topic ingest subscribes to. A worker without a share group
  subscribes to the create topics with MQTT v5 No Local, so the broker never sends it its
  own notifications. No Local is not allowed on shared subscriptions (Mosquitto accepts
  and ignores it), so notifications also carry the user property
  ``bydata-origin: ingest`` and are flagged on receipt (:attr:`Delivery.own`): a worker
  never stores what a worker published. MQTT 3.1.1 has neither: see ``ingest.process``.

paho runs its network loop in its own thread (``loop_start``); :attr:`on_delivery` runs on
that thread and must only hand the delivery over (``ingest.service`` puts it on a bounded
queue).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.mqtt_address import BrokerAddress
from ingest.types import RawMessage

log = logging.getLogger(__name__)

# Connection generations are unique in the process, so no two connections share one.
_generations = itertools.count(1)

ORIGIN_KEY = "bydata-origin"
ORIGIN_VALUE = "ingest"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as the broker delivered it, with what acknowledging it needs."""

    raw: RawMessage
    packet_id: int
    """MQTT packet identifier; 0 for QoS 0 (nothing to acknowledge)."""
    qos: int
    redelivered: bool
    """The DUP flag: the broker may have sent this message before."""
    generation: int
    """Which connection it arrived on (see :meth:`MqttEdge.ack`)."""
    own: bool = False
    """Published by a Bydata ingest worker (live notification): not data."""


def shared(filter_: str, group: str | None) -> str:
    return f"$share/{group}/{filter_}" if group else filter_


class MqttEdge:
    """A QoS-1, manually acknowledged, persistent-session subscriber that also publishes."""

    def __init__(
        self,
        address: BrokerAddress,
        *,
        client_id: str,
        filters: Sequence[str],
        on_delivery: Callable[[Delivery], None],
        share_group: str | None = None,
        no_local: Collection[str] = (),
        receive_maximum: int = 10000,
        session_expiry_s: int = 604800,
        keepalive: int = 30,
    ) -> None:
        if share_group and not address.v5:
            raise ValueError(
                "shared subscriptions need MQTT v5; this broker URL asks for 3.1.1 (the embedded broker): "
                "run a single ingest worker there, without a share group"
            )
        self.address = address
        self.client_id = client_id
        self.filters = [shared(f, share_group) for f in filters]
        # No Local where the protocol allows it: v5, and not on shared subscriptions.
        self._no_local = {f for f in filters if f in no_local} if address.v5 and not share_group else set()
        self.on_delivery = on_delivery
        self._generation = next(_generations)
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._started = False
        if address.v5:
            client = paho.Client(
                CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5, manual_ack=True
            )
            self._connect_properties: Properties | None = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            self._connect_properties.SessionExpiryInterval = session_expiry_s
            self._connect_properties.ReceiveMaximum = receive_maximum
            self._publish_properties: Properties | None = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            self._publish_properties.UserProperty = (ORIGIN_KEY, ORIGIN_VALUE)
        else:
            client = paho.Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                protocol=paho.MQTTv311,
                clean_session=False,
                manual_ack=True,
            )
            self._connect_properties = None
            self._publish_properties = None
        if address.username:
            client.username_pw_set(address.username, address.password)
        if address.tls:
            client.tls_set()
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self.client = client
        self.keepalive = keepalive

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in paho's network thread (retrying until the broker answers)."""
        kwargs: dict[str, Any] = {}
        if self.address.v5:
            kwargs = {"clean_start": False, "properties": self._connect_properties}
        self.client.connect_async(self.address.host, self.address.port, self.keepalive, **kwargs)
        self.client.loop_start()
        self._started = True

    def wait_subscribed(self, timeout: float) -> bool:
        return self._subscribed.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is queued (acks included), then disconnect; the session stays on the broker."""
        if not self._started:
            return
        deadline = time.monotonic() + timeout
        while self._connected.is_set() and self.pending_out() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.client.disconnect()
        self.client.loop_stop()
        self._started = False

    def pending_out(self) -> int:
        """Packets queued for sending (acks, notifications); paho keeps no public count."""
        return len(self.client._out_packet)

    # -- paho callbacks (network thread) ----------------------------------------------------

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any) -> None:
        if reason.is_failure:
            log.error("MQTT broker %s refused the connection: %s", self.address.redacted(), reason)
            return
        with self._lock:
            self._generation = next(_generations)
        self._connected.set()
        log.info(
            "connected to %s as %s (session present: %s)",
            self.address.redacted(),
            self.client_id,
            getattr(flags, "session_present", None),
        )
        if self.address.v5:
            client.subscribe([(f, SubscribeOptions(qos=1, noLocal=f in self._no_local)) for f in self.filters])
        else:
            client.subscribe([(f, 1) for f in self.filters])

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        failed = [r for r in reasons if getattr(r, "is_failure", False)]
        if failed:
            log.error("broker refused subscriptions %s: %s", self.filters, failed)
            return
        self._subscribed.set()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        with self._lock:
            self._generation = next(_generations)
        self._connected.clear()
        if reason != 0:
            log.warning("disconnected from %s: %s; reconnecting", self.address.redacted(), reason)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = message._topic.decode("utf-8", "replace")
        own = False
        if self._publish_properties is not None and message.properties is not None:
            user: list[tuple[str, str]] | None = getattr(message.properties, "UserProperty", None)
            own = user is not None and (ORIGIN_KEY, ORIGIN_VALUE) in user
        qos = message.qos
        payload = message.payload
        self.on_delivery(
            Delivery(
                RawMessage(topic, payload if type(payload) is bytes else bytes(payload), datetime.now(UTC)),
                message.mid if qos else 0,
                qos,
                bool(message.dup),
                self._generation,
                own,
            )
        )

    # -- what the service calls (any thread) ------------------------------------------------

    def ack(self, delivery: Delivery) -> bool:
        """PUBACK ``delivery`` if it arrived on the current connection; False if it was dropped."""
        if not delivery.packet_id:
            return True
        with self._lock:
            if delivery.generation != self._generation:
                return False
            self.client.ack(delivery.packet_id, delivery.qos)
        return True

    def publish(self, topic: str, payload: bytes) -> bool:
        """Publish a notification (QoS 0, marked as Bydata's own); False if not connected."""
        info = self.client.publish(topic, payload, qos=0, properties=self._publish_properties)
        return info.rc == paho.MQTT_ERR_SUCCESS
