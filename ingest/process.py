"""One message, from topic and bytes to what the store writes: observations, or a quarantine reason.

Source matching, decoding and normalising are pure functions of their own modules; this
module strings them together with the device registry and turns every failure into a
stable reason code. An unexpected exception in a decoder is quarantined too (reason
``malformed``, the exception in the error text): a poison message must never stop the
ingest or come back on every restart.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ingest._build import raw_message
from ingest.decode import decode_message
from ingest.envelopes import sta
from ingest.normalise import normalise, property_plan
from ingest.quality import FUTURE_TIME, SPIKE, QualityState
from ingest.registry import Registry, RegistryUnavailable
from ingest.sources import Source, SourceSet
from ingest.types import MALFORMED, DeviceBinding, IngestError, MappingError, NoSource, RawMessage
from schemas.device_models import DeviceModel
from schemas.observation import NormalisedObservation
from store.observations import IncomingMessage, Rejection

log = logging.getLogger(__name__)

__all__ = ["Processor", "RegistryUnavailable", "UnmappedFields"]

OTHER = "(other)"
"""The field label of unmapped fields past :attr:`UnmappedFields.limit` distinct ones."""
_MAX_FIELD = 64  # characters of a field name kept in its label


def _label(model: str, name: str) -> str:
    """``model/field`` with the field name cut short and its control characters escaped."""
    shown = name if len(name) <= _MAX_FIELD else name[:_MAX_FIELD] + "…"
    if not shown.isprintable():
        shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in shown)
    return f"{model}/{shown}"


class UnmappedFields:
    """Fields devices send that their model neither maps nor ignores, counted per ``model/field``.

    Field names are chosen by the senders, so at most ``limit`` distinct pairs get a label of
    their own; the rest are counted as ``<model>/(other)``. The counts since the last
    :meth:`take` go into the batch's counters (``unmapped_field``), so ``bydata ingest stats``
    and the metrics show them.
    """

    __slots__ = ("_labels", "_pending", "limit")

    def __init__(self, limit: int = 500) -> None:
        self.limit = limit
        self._labels: dict[tuple[str, str], str] = {}
        self._pending: Counter[str] = Counter()

    def add(self, model: str, names: tuple[str, ...]) -> None:
        labels, pending = self._labels, self._pending
        for name in names:
            label = labels.get((model, name))
            if label is None:
                if len(labels) < self.limit:
                    label = labels[(model, name)] = _label(model, name)
                else:
                    label = f"{model}/{OTHER}"
            pending[label] += 1

    def take(self) -> Counter[str]:
        """The counts since the last call (and forget them)."""
        taken, self._pending = self._pending, Counter()
        return taken

    def __len__(self) -> int:
        return len(self._labels)


@dataclass(slots=True)
class Processor:
    """Decodes and normalises messages for one worker (owns the quality state; one thread)."""

    sources: SourceSet
    registry: Registry
    models: Mapping[str, DeviceModel]
    topic_prefix: str = ""
    state: QualityState = field(default_factory=QualityState)
    unmapped: UnmappedFields = field(default_factory=UnmappedFields)
    """Vendor fields seen but neither mapped nor ignored (bounded): for the operator."""
    seeded: set[str] = field(default_factory=set)
    """Devices whose Datastreams' quality state was started from the store (see :meth:`seed`)."""

    def seed(self, bindings: Iterable[DeviceBinding]) -> int:
        """Start the spike, stuck and counter-reset state of these devices from their newest stored readings.

        Without it a restarted worker would judge each Datastream's first reading against
        nothing: a meter reset across a restart would go unflagged. One statement for all the
        devices given (the worker calls it for every provisioned device at start, then once for
        each device it meets later); Datastreams already in the state keep theirs. Returns how
        many Datastreams were seeded. Raises :class:`RegistryUnavailable` (nothing is marked done).
        """
        caps: dict[int, int] = {}
        devices: list[str] = []
        for binding in bindings:
            if binding.device_id in self.seeded:
                continue
            devices.append(binding.device_id)
            for key, datastream_id in binding.datastreams.items():
                try:
                    plan = property_plan(key)
                except MappingError:
                    continue
                if plan.stateful and datastream_id not in self.state.streams:
                    caps[datastream_id] = plan.rules.seed_rows
        seeded = 0
        if caps:
            found = self.registry.recent_readings(caps, skip_flags=FUTURE_TIME, spike_flag=SPIKE)
            for datastream_id, r in found.items():
                if datastream_id not in self.state.streams:
                    self.state.seed(
                        datastream_id,
                        r.time.timestamp(),
                        r.value,
                        repeats=r.repeats,
                        ref_time=r.ref_time.timestamp(),
                        ref_value=r.ref_value,
                    )
                    seeded += 1
        self.seeded.update(devices)
        return seeded

    def _strip(self, topic: str) -> str:
        if not self.topic_prefix:
            return topic
        if topic.startswith(self.topic_prefix):
            return topic[len(self.topic_prefix) :]
        raise NoSource(f"topic {topic!r} is outside the configured prefix {self.topic_prefix!r}")

    def process(self, raw: RawMessage, *, packet_id: int = 0, redelivered: bool = False) -> IncomingMessage | None:
        """Decode and normalise ``raw``; raises only :class:`RegistryUnavailable` (retry later).

        None means the message is a SensorThings notification, not data: an Observation with an
        ``@iot.id`` on a create topic is an entity a server published (Bydata's own live
        fan-out among them; a create request never carries an id). A lone MQTT v5 worker never
        receives its own (No Local, see ``ingest.mqtt``); workers in a share group and MQTT
        3.1.1 workers do, and this is how they are told apart.

        A SensorThings create that is more than a reading (``ingest.envelopes.sta``), or whose
        Datastream has no vocabulary property, comes back with ``create`` set and no
        observations: the batch writer's entity writer creates it.
        """
        source: Source | None = None
        device_id: str | None = None
        try:
            topic = self._strip(raw.topic)
            source = self.sources.match(topic)
            local = raw if topic is raw.topic else raw_message(topic, raw.payload, raw.received_at)
            decoded = decode_message(local, source, self.registry.model_of, self.models)
            device_id = decoded.device_id
            create: str | None = None
            observations: Sequence[NormalisedObservation] = ()
            if source.envelope == "sta":
                if decoded.meta.get("iot_id") is not None:
                    return None
                create = decoded.meta.get("entity_create")
            if create is None:
                binding = self.registry.binding_for(decoded)
                if source.envelope == "sta" and not binding.datastreams:
                    # a Datastream a client made for its own property: results as given, by the entity writer
                    create = sta.resource_path(topic)
            if create is None:
                if binding.device_id not in self.seeded:
                    self.seed((binding,))
                result = normalise(decoded, binding, raw.received_at, self.state, window=source.window)
                if result.unmapped:
                    self.unmapped.add(binding.model.key, result.unmapped)
                observations = result.observations
        except RegistryUnavailable:
            raise
        except IngestError as exc:
            return self._rejected(raw, exc.reason, exc.detail, source, device_id, packet_id, redelivered)
        except Exception as exc:  # a decoder bug must not stop the ingest: keep the message, say why
            log.exception("unexpected error decoding a message on %s", raw.topic)
            detail = f"internal error {type(exc).__name__}: {exc}"
            return self._rejected(raw, MALFORMED, detail, source, device_id, packet_id, redelivered)
        return IncomingMessage(
            topic=raw.topic,
            payload=raw.payload,
            received_at=raw.received_at,
            observations=observations,
            source=source.name,
            device_id=device_id,
            packet_id=packet_id,
            redelivered=redelivered,
            create=create,
        )

    @staticmethod
    def _rejected(  # noqa: PLR0917 (a private constructor of one value)
        raw: RawMessage,
        reason: str,
        detail: str,
        source: Source | None,
        device_id: str | None,
        packet_id: int,
        redelivered: bool,
    ) -> IncomingMessage:
        return IncomingMessage(
            topic=raw.topic,
            payload=raw.payload,
            received_at=raw.received_at,
            rejection=Rejection(reason, detail),
            source=source.name if source else None,
            device_id=device_id,
            packet_id=packet_id,
            redelivered=redelivered,
        )
