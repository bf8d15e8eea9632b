"""Publish what the API's writes created or changed, after they are committed.

Writes hand their :class:`~api.write.writer.Changes` to :meth:`Notifier.submit` after COMMIT;
a worker thread reads each entity as a GET shows it (``api.sta``'s translator, so the message
is the same document), works out its topics (:mod:`api.mqtt.topics`) and publishes them with
paho, QoS 1, on the app's own connection to the broker. The HTTP response never waits for
MQTT: the queue is bounded, and when it is full (a broker gone for long) notifications are
dropped and counted, never the write.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from api.mqtt import topics
from api.mqtt.subscriptions import SubscriptionRegistry
from api.mqtt.topics import Change, Kind, Member, Message, Subscription
from api.sta import entities as em
from api.sta.odata import ast
from api.sta.odata.parser import QueryError, parse_query_options
from api.sta.routes import StaContext
from api.sta.translate import PathNotFound, PathStep
from ingest.mqtt_address import BrokerAddress
from store import sta as read_store
from store import sta_write as store

if TYPE_CHECKING:
    from api.write.writer import Changes

log = logging.getLogger(__name__)

_STOP = object()
_NO_OPTIONS = parse_query_options([])
_ID_ONLY = parse_query_options([("$select", "id")])


MQTT_CREATE = "http://www.opengis.net/spec/iot_sensing/1.1/req/create-observations-via-mqtt/observations-creation"
MQTT_RECEIVE = "http://www.opengis.net/spec/iot_sensing/1.1/req/receive-updates-via-mqtt/receive-updates"


@dataclass(frozen=True, slots=True)
class MqttOptions:
    """The MQTT extension of one app.

    ``url``: the broker the app publishes on (credentials allowed); ``endpoint``: what clients
    are told to connect to; ``topic_prefix``: the deployment's namespace before ``v1.1/`` (the
    ingest's ``ingest_topic_prefix``); ``subscriptions``: the embedded broker's registry, when
    Bydata can see subscriptions; ``creates``: Observations published to the create topics are
    stored (a ``bydata ingest`` worker subscribes to them).
    """

    url: str
    endpoint: str
    topic_prefix: str = ""
    subscriptions: SubscriptionRegistry | None = None
    creates: bool = True

    def conformance(self) -> list[str]:
        return [MQTT_CREATE, MQTT_RECEIVE] if self.creates else [MQTT_RECEIVE]

    def endpoint_settings(self) -> dict[str, Any]:
        found: dict[str, Any] = {"endpoints": [self.endpoint]}
        if self.topic_prefix:
            found["topicPrefix"] = self.topic_prefix
        return found

    def notifier(self, context: Callable[[], StaContext]) -> Notifier:
        return Notifier(context, MqttPublisher(self.url), prefix=self.topic_prefix, subscriptions=self.subscriptions)


class MqttPublisher:
    """The API's connection to the broker: paho on its own network thread, reconnecting by itself."""

    def __init__(self, url: str, *, client_id: str | None = None, max_queued: int = 10_000) -> None:
        self.address = address = BrokerAddress.parse(url)
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"bydata-api-{uuid.uuid4().hex[:12]}",
            protocol=paho.MQTTv5 if address.v5 else paho.MQTTv311,
        )
        if address.username is not None:
            self.client.username_pw_set(address.username, address.password)
        if address.tls:
            self.client.tls_set()
        self.client.max_queued_messages_set(max_queued)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.connected = threading.Event()
        self._last: paho.MQTTMessageInfo | None = None
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None) -> None:
        if not getattr(reason, "is_failure", False):
            self.connected.set()
            log.info("API publishing to MQTT broker %s", self.address.redacted())

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None) -> None:
        self.connected.clear()

    def start(self) -> None:
        self.client.connect_async(self.address.host, self.address.port, keepalive=30)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> bool:
        info = self.client.publish(topic, payload, qos=1)
        self._last = info
        return bool(info.rc == paho.MQTT_ERR_SUCCESS)

    def flush(self, timeout: float) -> bool:
        """Wait until the broker acknowledged the last message published (True), or ``timeout``."""
        last = self._last
        if last is None or last.rc != paho.MQTT_ERR_SUCCESS:
            return True
        try:
            last.wait_for_publish(timeout)
        except (RuntimeError, ValueError):  # not connected, or queue overflow: nothing to wait for
            return False
        return last.is_published()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Notifier:
    """Turns committed changes into MQTT messages (one worker thread, bounded queue)."""

    def __init__(
        self,
        context: Callable[[], StaContext],
        publisher: MqttPublisher,
        *,
        prefix: str = "",
        subscriptions: SubscriptionRegistry | None = None,
        queue_size: int = 10_000,
    ) -> None:
        self._context = context
        self.publisher = publisher
        self.prefix = prefix
        self.subscriptions = subscriptions
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._run, name="api-mqtt-notify", daemon=True)
        self._idle = threading.Condition()
        self.published = 0
        self.dropped = 0

    def start(self) -> None:
        self.publisher.start()
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Send what is queued (for up to ``timeout`` seconds), then disconnect."""
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(timeout)
        self.publisher.stop()

    def tell(self, changes: Changes) -> None:
        """A committed write's :class:`~api.write.writer.Changes` (the writes' ``notify``)."""
        self.submit(changes_of(changes.created, changes.updated))

    def submit(self, changes: Iterable[Change]) -> None:
        """Queue the changes of one committed write (never blocks)."""
        items = list(changes)
        if not items:
            return
        try:
            self._queue.put_nowait(items)
        except queue.Full:
            self.dropped += len(items)
            log.warning("MQTT notifications dropped: %d changes (queue full; is the broker reachable?)", len(items))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every change submitted so far is published and acknowledged by the broker."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._queue.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return self.publisher.flush(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while True:
            items = self._queue.get()
            try:
                if items is _STOP:
                    return
                for change in items:
                    try:
                        self._notify(change)
                    except Exception:  # one bad notification must not end the others
                        log.exception("MQTT notification of %s(%d) failed", change.entity.name, change.id)
            finally:
                self._queue.task_done()
                with self._idle:
                    self._idle.notify_all()

    # -- one change ----------------------------------------------------------------------------

    def _notify(self, change: Change) -> None:
        context = self._context()
        entity = self._read(context, change, _NO_OPTIONS)
        if entity is None:
            return  # deleted meanwhile: nothing to tell
        members = self._members(context, change)
        sent: set[str] = set()
        document: dict[str, Any] | None = None
        for message in topics.fixed_topics(change, members):
            sent.add(message.topic)
            if message.property is None:
                self._publish(message.topic, entity)
            else:
                document = document or orjson.loads(entity)
                self._publish(message.topic, orjson.dumps(topics.project(document, message.property)))
        if self.subscriptions is not None:
            self._subscribed(context, change, sent)

    def _subscribed(self, context: StaContext, change: Change, sent: set[str]) -> None:
        assert self.subscriptions is not None
        for topic in self.subscriptions.topics():
            subscription = topics.parse_subscription(topic, self.prefix)
            if subscription is None or subscription.topic in sent or not topics.wanted(subscription, change):
                continue
            try:
                payload = self._payload(context, subscription, change)
            except (QueryError, PathNotFound) as exc:  # e.g. $select of a property the entity lacks
                log.debug("subscription %s not served: %s", subscription.topic, exc)
                continue
            if payload is not None:
                sent.add(subscription.topic)
                self._publish(subscription.topic, payload)

    def _payload(self, context: StaContext, subscription: Subscription, change: Change) -> bytes | None:
        """What ``subscription`` gets for ``change``; None when the change is not on its path."""
        if not self._concerns(context, subscription, change):
            return None
        if subscription.path.property is not None:
            entity = self._read(context, change, _NO_OPTIONS)
            if entity is None:
                return None
            return orjson.dumps(topics.project(orjson.loads(entity), subscription.path.property))
        return self._read(context, change, subscription.options)

    def _concerns(self, context: StaContext, subscription: Subscription, change: Change) -> bool:
        """Whether the subscription's path addresses the changed entity (asked of the data)."""
        steps = subscription.path.steps
        if len(steps) == 1:
            return steps[0].id is None or steps[0].id == change.id
        if subscription.path.single:
            query = context.translator.entity(steps, _ID_ONLY, context.base_url)
        else:
            only = parse_query_options([("$filter", f"id eq {int(change.id)}"), ("$select", "id")])
            query = context.translator.collection(steps, only, context.base_url)
        with context.pool.connection() as conn:
            rows = read_store.fetch_column(conn, query.statement, query.params)
        return any(orjson.loads(row).get("@iot.id") == change.id for row in rows)

    def _read(self, context: StaContext, change: Change, options: ast.QueryOptions) -> bytes | None:
        query = context.translator.entity((PathStep(change.entity.set_name, change.id),), options, context.base_url)
        with context.pool.connection() as conn:
            rows = read_store.fetch_column(conn, query.statement, query.params)
        return rows[0].encode() if rows else None

    def _members(self, context: StaContext, change: Change) -> list[Member]:
        """The navigation collections the entity belongs to (by its foreign keys and links)."""
        pairs = topics.collections_of(change.entity)
        if not pairs:
            return []
        members: list[Member] = []
        with context.pool.connection() as conn:
            fks = [r.column for r, _ in pairs if r.join is em.Join.FK_HERE]
            values = store.row_values(conn, change.entity.table, change.id, fks) if fks else {}
            for relation, inverse in pairs:
                target = em.target_of(relation)
                if relation.join is em.Join.FK_HERE:
                    ids: Sequence[int] = [values[relation.column]] if values.get(relation.column) else []
                else:
                    ids = store.linked_ids(
                        conn, relation.link_table, relation.link_source, relation.link_target, change.id
                    )
                members += [Member(target.set_name, i, inverse.name) for i in ids]
        return members

    def _publish(self, topic: str, payload: bytes) -> None:
        if self.publisher.publish(self.prefix + topic, payload):
            self.published += 1
        else:
            self.dropped += 1


def changes_of(
    created: Iterable[tuple[em.EntityType, int]], updated: Iterable[tuple[em.EntityType, int, frozenset[str]]]
) -> list[Change]:
    """The notifications of one write (``Writer.changes``), in the order they happened."""
    out = [Change(Kind.CREATED, entity, ident) for entity, ident in created]
    out += [Change(Kind.UPDATED, entity, ident, names) for entity, ident, names in updated]
    return out


__all__ = ["MQTT_CREATE", "MQTT_RECEIVE", "Change", "Message", "MqttOptions", "MqttPublisher", "Notifier", "changes_of"]
