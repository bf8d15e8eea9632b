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
  own notifications and they cost nothing. No Local is not allowed on shared
  subscriptions (Mosquitto accepts and ignores it) and MQTT 3.1.1 lacks it: there the
  notifications do arrive and ``ingest.process`` recognises them as entities (they carry
  an ``@iot.id``, which a create request never does). A v5 user property marking them
  was measured and rejected while paho encoded them (about 20 µs per publish for the
  properties alone); they are now encoded without properties (``ingest.mqtt_packets``).

The network thread (``ingest-mqtt``) drives paho's loop itself and, between reads, writes
the acknowledgements and notifications other threads queued on the outbox (a thread-safe
deque): each packet is written where it is made, with no wake-up or hand-over per packet.
:attr:`on_delivery` runs on that thread and must only hand the delivery over
(``ingest.service`` puts it on a bounded queue).

The hot path bypasses paho's per-packet machinery where it only costs time (see
``ingest.mqtt_packets``), relying on paho 2.2 internals that
``tests/ingest_runtime/test_mqtt_internals.py`` pins down:

- a plain QoS 0/1 PUBLISH is parsed by :func:`~ingest.mqtt_packets.parse_publish` in
  :meth:`_Client._handle_publish` and delivered directly (paho still reads the packet,
  tracks keepalive and handles every other packet type and every unusual PUBLISH);
- the acknowledgements and notifications of one flush are joined, in queue order, into
  byte chunks that go on paho's own outgoing queue (``_out_packet``) as ready-made packets
  and are written by paho's ``loop_write`` on this thread: paho's ordering, partial writes
  and keepalive stay as they were, and a reconnect discards whatever was not yet written,
  so no acknowledgement reaches a later connection.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest._build import raw_message
from ingest.mqtt_address import BrokerAddress
from ingest.mqtt_packets import PUBACK, parse_publish, puback, publish_prefix, read_publish
from ingest.mqtt_packets import publish as encode_publish
from ingest.types import RawMessage

log = logging.getLogger(__name__)

# Connection generations are unique in the process, so no two connections share one.
_generations = itertools.count(1)
_TICK = 0.005  # longest a queued acknowledgement waits for the network thread, seconds
_READ_BURST = 200  # packets read between two select() calls and outbox flushes
_OUTBOX_LIMIT = 200_000  # notifications beyond this are dropped (best effort) rather than held
_CHUNK = 65536  # bytes of acknowledgements and notifications per packet put on paho's queue
_TOPIC_CACHE = 50_000  # encoded topic prefixes kept (one per Datastream notified)


@dataclass(slots=True)
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


class _BufferedSocket:
    """A socket whose reads are buffered: one ``recv`` of up to 64 KiB serves many MQTT packets.

    paho reads every packet with three or four ``recv`` calls (command byte, length bytes,
    body); under load that was a third of the network thread's time here, most of it in
    releasing and re-taking the GIL around each call. ``pending()`` (which paho also asks TLS
    sockets) tells paho's loop to read on without waiting in ``select`` while bytes are buffered.
    """

    __slots__ = ("_buffer", "_position", "_sock")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buffer = b""
        self._position = 0

    def recv(self, size: int) -> bytes:
        buffer, position = self._buffer, self._position
        if position >= len(buffer):
            data: bytes = self._sock.recv(65536)  # BlockingIOError and TLS wants pass through to paho
            if len(data) <= size:
                return data
            self._buffer, self._position = data, size
            return data[:size]
        end = position + size
        self._position = end
        return buffer[position:end]

    def pending(self) -> int:
        inner = getattr(self._sock, "pending", None)
        return len(self._buffer) - self._position + (inner() if inner is not None else 0)

    def send(self, data: bytes | bytearray) -> int:
        sent: int = self._sock.send(data)
        return sent

    def fileno(self) -> int:
        fd: int = self._sock.fileno()
        return fd

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def close(self) -> None:
        self._sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _Client(paho.Client):
    """paho's client with buffered reads (see :class:`_BufferedSocket`) and a short PUBLISH path.

    ``deliver(topic, payload, packet_id, qos, dup)``, when set, receives every plain QoS 0/1
    PUBLISH directly (:mod:`ingest.mqtt_packets`): read whole from the socket buffer
    (:meth:`_packet_read`) or, when paho has already started reading it (a packet split
    across two reads), from paho's packet (:meth:`_handle_publish`). paho's own path reads a
    packet in three or four calls, builds a v5 ``Properties`` object, an ``MQTTMessage``
    and a debug-log call and matches the topic against callback filters under two locks:
    30-45 µs per message against 6-12 µs here, hand-over included (socketpair
    micro-benchmark on the project's machine). Anything else (QoS 2, properties, topic aliases, bad
    UTF-8, malformed packets, every other packet type) still goes through paho, whose
    PUBLISH path ends in ``on_message``. With manual acknowledgement paho keeps no state
    for a received QoS 0/1 message, so nothing is left out by not calling it.
    """

    deliver: Callable[[str, bytes, int, int, bool], None] | None = None

    def _create_socket(self) -> Any:
        return _BufferedSocket(super()._create_socket())

    def _packet_read(self) -> MQTTErrorCode:
        deliver = self.deliver
        sock = self._sock
        if deliver is not None and type(sock) is _BufferedSocket and self._in_packet["command"] == 0:
            found = read_publish(sock._buffer, sock._position, self._protocol == paho.MQTTv5)
            if found is not None:
                fields, sock._position = found
                self._last_bytes_received = time.monotonic()  # paho's keepalive clock
                deliver(*fields)
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._packet_read()

    def _handle_publish(self) -> MQTTErrorCode:
        deliver = self.deliver
        if deliver is not None:
            body = self._in_packet["packet"]
            fields = parse_publish(self._in_packet["command"], body, 0, len(body), self._protocol == paho.MQTTv5)
            if fields is not None:
                deliver(*fields)
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._handle_publish()

    def queue_bytes(self, data: bytes) -> MQTTErrorCode:
        """Write ready-made packets (whole ones, joined) through paho's outgoing queue, now.

        Labelled PUBACK for paho's bookkeeping: ``_packet_write`` treats a PUBACK as plain
        bytes, where a QoS-0 PUBLISH would want a message-info object. Network thread only.
        """
        self._out_packet.append(
            {"command": PUBACK, "mid": 0, "qos": 0, "pos": 0, "to_process": len(data), "packet": data, "info": None}
        )
        return self.loop_write()


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
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._outbox: deque[Delivery | bytes] = deque()
        # notifications queued (by the publishing thread) and taken (by the network thread):
        # each counter has one writer, so the difference, bounded by _OUTBOX_LIMIT, needs no lock
        self._notes_queued = 0
        self._notes_taken = 0
        self._prefixes: dict[str, bytes] = {}  # topic -> its encoded PUBLISH prefix
        self._received = 0
        self.stats: Counter[str] = Counter()
        """published, publish_dropped, acks_dropped (read by the metrics)."""
        if address.v5:
            client = _Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5, manual_ack=True)
            self._connect_properties: Properties | None = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            self._connect_properties.SessionExpiryInterval = session_expiry_s
            self._connect_properties.ReceiveMaximum = receive_maximum
        else:
            client = _Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                protocol=paho.MQTTv311,
                clean_session=False,
                manual_ack=True,
            )
            self._connect_properties = None
        if address.username:
            client.username_pw_set(address.username, address.password)
        if address.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.deliver = self._deliver
        self.client = client
        self._v5 = address.v5
        self.keepalive = keepalive

    # -- life cycle: the network thread ------------------------------------------------------

    def start(self) -> None:
        """Start the network thread; it connects, and reconnects, until :meth:`stop`."""
        kwargs: dict[str, Any] = {}
        if self.address.v5:
            kwargs = {"clean_start": False, "properties": self._connect_properties}
        self.client.connect_async(self.address.host, self.address.port, self.keepalive, **kwargs)
        self._thread = threading.Thread(target=self._run, name="ingest-mqtt", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """paho's loop, driven here rather than by ``loop_start``, with the outbox drained in between.

        Acknowledgements and notifications are written by this thread, so there is no
        hand-over per packet, and the connection generation an ack is checked against cannot
        change under it.
        """
        client = self.client
        delay = 1.0
        while not self._stopping.is_set():
            if client.socket() is None:
                try:
                    client.reconnect()
                    delay = 1.0
                except OSError as exc:
                    log.warning(
                        "cannot reach MQTT broker %s (%s); retrying in %.0f s", self.address.redacted(), exc, delay
                    )
                    self._stopping.wait(delay)
                    delay = min(delay * 2, 30.0)
                    continue
            rc = client.loop(timeout=_TICK)
            # paho reads one packet per select(); keep reading while messages keep coming
            for _ in range(_READ_BURST):
                if rc != paho.MQTT_ERR_SUCCESS:
                    break
                before = self._received
                rc = client.loop_read()
                if self._received == before:
                    break
            self._flush()
            if rc != paho.MQTT_ERR_SUCCESS and client.socket() is None and not self._stopping.is_set():
                self._stopping.wait(delay)
                delay = min(delay * 2, 30.0)
        # stopping: send the acknowledgements already committed, then say goodbye
        self._flush()
        if client.socket() is not None:
            client.disconnect()
            for _ in range(100):
                if client.socket() is None or not client._out_packet:
                    break
                client.loop(timeout=_TICK)

    def _flush(self) -> None:
        """Write what other threads asked for: acknowledgements and notifications, in queue order.

        One flush joins them into chunks of about :data:`_CHUNK` bytes, each written with one
        ``send``; an acknowledgement of an earlier connection's copy is dropped here.
        """
        outbox = self._outbox
        n = len(outbox)
        if not n:
            return
        client = self.client
        generation = self._generation
        connected = self._connected.is_set() and client.socket() is not None
        parts: list[bytes] = []
        size = 0
        acks_dropped = published = publish_dropped = taken = 0
        popleft = outbox.popleft
        for _ in range(n):
            item = popleft()
            if isinstance(item, bytes):
                taken += 1
                if not connected:
                    publish_dropped += 1
                    continue
                published += 1
                size += len(item)
                parts.append(item)
            elif connected and item.generation == generation:
                size += 4
                parts.append(puback(item.packet_id))
            else:
                acks_dropped += 1
                continue
            if size >= _CHUNK:
                if client.queue_bytes(b"".join(parts)) != paho.MQTT_ERR_SUCCESS:
                    connected = False
                parts.clear()
                size = 0
        if parts:
            client.queue_bytes(b"".join(parts))
        self._notes_taken += taken
        stats = self.stats
        if published:
            stats["published"] += published
        if publish_dropped:
            stats["publish_dropped"] += publish_dropped
        if acks_dropped:
            stats["acks_dropped"] += acks_dropped

    def wait_subscribed(self, timeout: float) -> bool:
        return self._subscribed.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def stop(self, timeout: float = 10.0) -> None:
        """Send the queued acknowledgements, then disconnect; the session stays on the broker."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # -- paho callbacks (network thread) ----------------------------------------------------

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any) -> None:
        if reason.is_failure:
            log.error("MQTT broker %s refused the connection: %s", self.address.redacted(), reason)
            return
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
        self._generation = next(_generations)
        self._connected.clear()
        if reason != 0:
            log.warning("disconnected from %s: %s; reconnecting", self.address.redacted(), reason)

    def _deliver(self, topic: str, payload: bytes, packet_id: int, qos: int, dup: bool) -> None:
        self._received += 1
        self.on_delivery(
            Delivery(raw_message(topic, payload, datetime.now(UTC)), packet_id, qos, dup, self._generation)
        )

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        """paho's path, for what :meth:`_Client._handle_publish` leaves to it."""
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = message._topic.decode("utf-8", "replace")
        qos = message.qos
        payload = message.payload
        self._deliver(
            topic, payload if type(payload) is bytes else bytes(payload), message.mid if qos else 0, qos, message.dup
        )

    # -- what the service calls (any thread) ------------------------------------------------

    def ack(self, delivery: Delivery) -> None:
        """Acknowledge ``delivery`` (written by the network thread).

        Dropped if it arrived on an earlier connection: the broker has resent it on the current
        one, and its packet id may by now belong to another message.
        """
        if delivery.packet_id:
            self._outbox.append(delivery)

    def publish(self, topic: str, payload: bytes) -> bool:
        """Publish a notification at QoS 0 (best effort); False if it was dropped at once.

        Encoded here, on the caller's thread, with the topic's part cached; the network
        thread only joins the bytes.
        """
        if self._notes_queued - self._notes_taken >= _OUTBOX_LIMIT or not self._connected.is_set():
            self.stats["publish_dropped"] += 1
            return False
        prefix = self._prefixes.get(topic)
        if prefix is None:
            if len(self._prefixes) >= _TOPIC_CACHE:
                self._prefixes.clear()
            prefix = self._prefixes[topic] = publish_prefix(topic, self._v5)
        self._outbox.append(encode_publish(prefix, payload))
        self._notes_queued += 1
        return True
