"""The ingest worker: MQTT in, batches committed, acknowledged, fanned out.

Three threads, two bounded hand-overs; this module and ``ingest.mqtt`` hold all the threading::

    network thread --inbox--> decode thread --batches (2)--> write thread
    (ingest.mqtt)             (ingest.process)               (store.observations)
         ^                                                        |
         '---------- outbox: PUBACK each message, then notifications -'

- The network thread (``ingest-mqtt``) reads messages and appends them to the inbox, a deque
  the decode thread drains (woken only when it sleeps). The broker never has more than
  Receive Maximum messages unacknowledged, which bounds the inbox; with MQTT 3.1.1, which has
  no Receive Maximum, a full inbox makes the network thread wait.
- The decode thread decodes and normalises, and groups messages into batches by size
  (messages or observations) or age.
- The write thread commits a batch in one transaction and only then queues its messages'
  acknowledgements (in arrival order) and the notifications on the network thread's outbox.
  A crash before that point loses nothing: the broker resends, and the store absorbs what
  had been committed.
- While the database is unreachable the write thread retries the same batch with
  exponential backoff. The batch queue fills, the decode thread blocks, the inbox fills,
  and the broker stops sending once Receive Maximum messages are unacknowledged: memory
  stays bounded and the backlog waits on the broker.
- A lost connection during COMMIT leaves its outcome unknown; the worker's batch number,
  committed with the rows, tells on reconnect whether to acknowledge or write again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
import psycopg

from ingest import DEFAULT_CLIENT_ID
from ingest.decode import load_models
from ingest.metrics import IngestMetrics
from ingest.mqtt import Delivery, MqttEdge
from ingest.mqtt_address import BrokerAddress
from ingest.process import Processor
from ingest.registry import Policy, Registry, RegistryUnavailable
from ingest.sources import SourceSet, load_sources
from schemas.device_models import DeviceModel
from schemas.sta import format_time
from store import counters
from store.db import is_transient
from store.observations import BatchResult, EntityCreates, IncomingMessage, NewObservation, ObservationWriter

log = logging.getLogger(__name__)

_STOP = object()


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """What a worker needs to know besides where the database and broker are (see ``Settings``)."""

    worker: str = DEFAULT_CLIENT_ID
    share_group: str | None = None
    policy: Policy = "strict"
    topic_prefix: str = ""
    batch_max_messages: int = 2000
    batch_max_observations: int = 10000
    batch_max_age_s: float = 0.2
    receive_maximum: int = 10000
    session_expiry_s: int = 604800
    fanout: bool = True
    sta_creates: bool = True
    retry_max_s: float = 10.0
    registry_refresh_s: float = 30.0
    base_url: str = "http://127.0.0.1:8080"


@dataclass(slots=True)
class _Batch:
    messages: list[IncomingMessage] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    observations: int = 0
    notifications: int = 0
    started: float = 0.0
    unmapped: Mapping[str, int] = field(default_factory=dict)
    """``model/field`` -> messages carrying that unmapped field (``Processor.unmapped``)."""


def check_worker_identity(worker: str, share_group: str | None) -> None:
    """Refuse a worker in a share group that kept the default client id.

    The client id keys the MQTT session, the delivery log and the batch number: two workers
    with one id take over each other's session (the broker drops the other connection) and
    mix their logs, which breaks exactly-once. A lone worker may keep the default; a worker
    that shares a subscription is one of several, so it must be named.
    """
    if share_group and worker == DEFAULT_CLIENT_ID:
        raise ValueError(
            f"a worker in share group {share_group!r} needs a client id of its own: set BYDATA_INGEST_CLIENT_ID"
            f" (or --client-id) to a name no other worker uses and keep it across restarts; workers sharing"
            f" the default {DEFAULT_CLIENT_ID!r} would take over each other's MQTT session and mix their"
            " delivery logs and batch numbers"
        )


def notification(new: NewObservation, base_url: str) -> bytes:
    """A stored observation as a SensorThings Observation entity (JSON)."""
    o = new.observation
    link = f"{base_url}/v1.1/Observations({new.id})"
    body: dict[str, Any] = {
        "@iot.id": new.id,
        "@iot.selfLink": link,
        "phenomenonTime": o.phenomenon_time
        if o.phenomenon_time_end is None
        else format_time(o.phenomenon_time, o.phenomenon_time_end),
        "resultTime": o.result_time,
        "result": o.result,
        "Datastream@iot.navigationLink": f"{link}/Datastream",
        "FeatureOfInterest@iot.navigationLink": f"{link}/FeatureOfInterest",
    }
    if o.parameters is not None:
        body["parameters"] = o.parameters
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_UTC_Z)


class Creates(EntityCreates, Protocol):
    """SensorThings creates that are more than readings (``api.mqtt.creates.MqttCreates``)."""

    def committed(self, announce: Sequence[object]) -> None:
        """Announce what a committed batch's creates made (``BatchResult.announce``)."""
        ...


class IngestService:
    """One ingest worker. :meth:`run` blocks until ``stop`` is set (or a thread fails).

    ``creates`` runs the SensorThings creates the batch writer cannot take as readings (a
    FeatureOfInterest, a deep insert, a client's own Datastream); without it they are
    quarantined as ``malformed``.
    """

    def __init__(
        self,
        database_url: str,
        mqtt_url: str,
        options: IngestOptions | None = None,
        *,
        sources: SourceSet | None = None,
        models: Mapping[str, DeviceModel] | None = None,
        metrics: IngestMetrics | None = None,
        creates: Creates | None = None,
    ) -> None:
        self.options = opts = options or IngestOptions()
        self.creates = creates
        check_worker_identity(opts.worker, opts.share_group)
        self.database_url = database_url
        self.models = dict(models) if models is not None else load_models()
        self.sources = sources or load_sources()
        self.sources.check_models(self.models)
        self.metrics = metrics or IngestMetrics(opts.worker)
        self.registry = Registry(database_url, self.models, policy=opts.policy, refresh_s=opts.registry_refresh_s)
        self.processor = Processor(self.sources, self.registry, self.models, topic_prefix=opts.topic_prefix)
        # The inbox holds at most what the broker may have unacknowledged (Receive Maximum),
        # plus slack for 3.1.1 brokers, whose own in-flight limit applies instead.
        self._inbox: deque[Delivery] = deque()
        self._inbox_limit = opts.receive_maximum + opts.batch_max_messages
        self._inbox_ready = threading.Event()
        self._batches: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._seq: int | None = None
        self._writer: ObservationWriter | None = None
        sta_filters = {opts.topic_prefix + f for s in self.sources if s.envelope == "sta" for f in s.filters}
        filters = [opts.topic_prefix + f for f in self.sources.filters()]
        if not opts.sta_creates:
            filters = [f for f in filters if f not in sta_filters]
        self.edge = MqttEdge(
            BrokerAddress.parse(mqtt_url),
            client_id=opts.worker,
            filters=filters,
            on_delivery=self._on_delivery,
            share_group=opts.share_group,
            no_local=sta_filters,
            receive_maximum=opts.receive_maximum,
            session_expiry_s=opts.session_expiry_s,
        )
        self.metrics.watch_edge(self.edge.stats)
        self.batches_written = 0

    # -- network thread ---------------------------------------------------------------------

    def _on_delivery(self, delivery: Delivery) -> None:
        """Hand a delivery to the decode thread: a deque append, and a wake-up only if it sleeps."""
        inbox = self._inbox
        while len(inbox) >= self._inbox_limit:  # only with 3.1.1 brokers, which ignore Receive Maximum
            if self._stop.wait(0.01):
                return  # stopping: the message stays unacknowledged and the broker will resend it
        inbox.append(delivery)
        if not self._inbox_ready.is_set():
            self._inbox_ready.set()

    # -- decode thread ----------------------------------------------------------------------

    def _process(self, delivery: Delivery) -> IncomingMessage | None:
        delay = 0.2
        while True:
            try:
                return self.processor.process(
                    delivery.raw, packet_id=delivery.packet_id, redelivered=delivery.redelivered
                )
            except RegistryUnavailable as exc:
                if self._stop.is_set():
                    raise
                log.warning("device registry unavailable (%s); retrying in %.1f s", exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self.options.retry_max_s)

    def _decode_loop(self) -> None:
        opts = self.options
        batch = _Batch()
        inbox = self._inbox
        while not self._stop.is_set():
            wait = batch.started + opts.batch_max_age_s - time.monotonic() if batch.deliveries else 0.5
            item: Delivery | None = None
            try:
                item = inbox.popleft()
            except IndexError:
                if wait > 0:
                    self._inbox_ready.clear()
                    if not inbox:  # re-checked after clear(): an append in between is not missed
                        self._inbox_ready.wait(wait)
                    continue
            if item is not None:
                try:
                    message = self._process(item)
                except RegistryUnavailable:
                    break  # stopping while the database is down: the message is resent later
                if not batch.deliveries:
                    batch.started = time.monotonic()
                batch.deliveries.append(item)
                if message is None:
                    batch.notifications += 1
                else:
                    batch.messages.append(message)
                    batch.observations += len(message.observations)
            if batch.deliveries and (
                len(batch.deliveries) >= opts.batch_max_messages
                or batch.observations >= opts.batch_max_observations
                or time.monotonic() - batch.started >= opts.batch_max_age_s
            ):
                batch.unmapped = self.processor.unmapped.take()
                self._hand_over(batch)
                batch = _Batch()
        # Stopping: the batch being built is still written (and acknowledged) if the write
        # thread takes it; what is left in the inbox stays unacknowledged and is resent.
        if batch.deliveries:
            batch.unmapped = self.processor.unmapped.take()
            self._hand_over(batch, deadline=time.monotonic() + 5)
        self._hand_over(_STOP, deadline=time.monotonic() + 30)

    def _hand_over(self, batch: Any, deadline: float | None = None) -> None:
        self.metrics.inbox.set(len(self._inbox))
        while deadline is not None or not self._stop.is_set():
            try:
                self._batches.put(batch, timeout=0.5)
                return
            except queue.Full:
                if deadline is not None and time.monotonic() > deadline:
                    return

    # -- write thread -----------------------------------------------------------------------

    def _connect_writer(self) -> ObservationWriter:
        if self._writer is None:
            self._writer = ObservationWriter.connect(self.database_url, self.options.worker, self.creates)
            if self._seq is None:
                self._seq = self._writer.last_batch_seq()
        return self._writer

    def _drop_writer(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # closing a broken connection: nothing to save
                log.debug("closing the writer's connection failed", exc_info=True)
        self._writer = None

    def _write(self, batch: _Batch) -> BatchResult | None:
        """Commit ``batch``; None if an earlier attempt turned out to have committed it."""
        delay = 0.2
        uncertain = False
        seq: int | None = None
        while True:
            try:
                writer = self._connect_writer()
                assert self._seq is not None
                if seq is None:
                    seq = self._seq + 1
                if uncertain and writer.last_batch_seq() >= seq:
                    log.info("batch %d was committed before the connection broke; acknowledging it", seq)
                    self._seq = seq
                    return None
                started = time.perf_counter()
                extra = {(counters.OWN_NOTIFICATION, ""): batch.notifications}
                extra.update({(counters.UNMAPPED_FIELD, label): n for label, n in batch.unmapped.items()})
                result = writer.write(batch.messages, extra=extra, batch_seq=seq)
                self.metrics.batch_seconds.observe(time.perf_counter() - started)
                self._seq = seq
                return result
            except psycopg.Error as exc:
                # the writer sets aside what one message's data causes; what is left either clears
                # with time (an outage, a failover's read-only primary, a shutdown) or is a fault
                if not is_transient(exc):
                    raise
                self._drop_writer()
                uncertain = seq is not None
                self.metrics.db_retries.inc()
                if self._stop.is_set():
                    raise
                log.warning(
                    "database unavailable (%s: %s); retrying the batch in %.1f s",
                    type(exc).__name__,
                    str(exc).strip(),
                    delay,
                )
                self._stop.wait(delay)
                delay = min(delay * 2, self.options.retry_max_s)

    def _write_loop(self) -> None:
        while True:
            try:
                batch = self._batches.get(timeout=0.5)
            except queue.Empty:
                if self._failure is not None:
                    return
                continue
            if batch is _STOP:
                return
            try:
                result = self._write(batch)
            except psycopg.Error as exc:
                if self._stop.is_set() and is_transient(exc):
                    return  # stopping while the database is down: nothing acknowledged, all resent later
                raise
            for delivery in batch.deliveries:
                self.edge.ack(delivery)
            self.batches_written += 1
            self.metrics.batch_size.observe(len(batch.deliveries))
            if result is None:
                continue
            self.metrics.record(result.tally)
            self.metrics.plain[counters.OWN_NOTIFICATION].inc(batch.notifications)
            self.metrics.record_unmapped(batch.unmapped)
            if self.options.fanout and result.new:
                self._fan_out(result.new)
            if result.announce and self.creates is not None:
                self.creates.committed(result.announce)

    def _fan_out(self, new: list[NewObservation]) -> None:
        prefix, base = self.options.topic_prefix, self.options.base_url
        publish = self.edge.publish
        for n in new:
            publish(f"{prefix}v1.1/Datastreams({n.observation.datastream_id})/Observations", notification(n, base))

    # -- life cycle -------------------------------------------------------------------------

    def _guard(self, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            log.debug("thread %s is native thread %d", threading.current_thread().name, threading.get_native_id())
            try:
                target()
            except BaseException as exc:
                log.exception("ingest thread %s failed", threading.current_thread().name)
                self._failure = exc
                self._stop.set()

        return run

    def stop(self) -> None:
        self._stop.set()

    def run(self, stop: threading.Event | None = None, *, ready: Callable[[], None] | None = None) -> None:
        """Run until ``stop`` (or :meth:`stop`); raises if a thread failed."""
        log.info(
            "ingest worker %s: %d sources, policy %s, share group %s",
            self.options.worker,
            len(self.sources),
            self.options.policy,
            self.options.share_group or "-",
        )
        self._await_database(stop)
        decode = threading.Thread(target=self._guard(self._decode_loop), name="ingest-decode", daemon=True)
        write = threading.Thread(target=self._guard(self._write_loop), name="ingest-write", daemon=True)
        decode.start()
        write.start()
        self.edge.start()
        try:
            if ready is not None:
                while not self.edge.wait_subscribed(0.2):
                    if self._stop.is_set() or (stop is not None and stop.is_set()):
                        break
                ready()
            while not self._stop.is_set():
                if stop is not None and stop.wait(0.2):
                    break
                if stop is None:
                    self._stop.wait(0.2)
        finally:
            self._stop.set()
            decode.join(timeout=10)
            write.join(timeout=30)
            self.edge.stop()
            self._drop_writer()
            self.registry.close()
            log.info("ingest worker %s stopped after %d batches", self.options.worker, self.batches_written)
        if self._failure is not None:
            raise RuntimeError("an ingest thread failed") from self._failure

    def _await_database(self, stop: threading.Event | None) -> None:
        """Load the registry and the quality state before subscribing, waiting for the database if it is not up yet.

        The state (spike, stuck, counter reset) resumes from the newest stored readings of every
        provisioned device's Datastreams, so a restart does not blind the checks.
        """
        delay = 0.5
        while True:
            try:
                self.registry.refresh()
                seeded = self.processor.seed(self.registry.bindings())
                log.info("quality checks resume from the stored readings of %d Datastreams", seeded)
                return
            except RegistryUnavailable as exc:
                if self._stop.is_set() or (stop is not None and stop.is_set()):
                    raise
                log.warning("database unavailable at start (%s); retrying in %.1f s", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, self.options.retry_max_s)
