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
from collections.abc import Mapping
from dataclasses import dataclass, field

from ingest._build import raw_message
from ingest.decode import decode_message
from ingest.normalise import normalise
from ingest.quality import QualityState
from ingest.registry import Registry, RegistryUnavailable
from ingest.sources import Source, SourceSet
from ingest.types import MALFORMED, IngestError, NoSource, RawMessage
from schemas.device_models import DeviceModel
from store.observations import IncomingMessage, Rejection

log = logging.getLogger(__name__)

__all__ = ["Processor", "RegistryUnavailable"]


@dataclass(slots=True)
class Processor:
    """Decodes and normalises messages for one worker (owns the quality state; one thread)."""

    sources: SourceSet
    registry: Registry
    models: Mapping[str, DeviceModel]
    topic_prefix: str = ""
    state: QualityState = field(default_factory=QualityState)
    unmapped_fields: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(device model, vendor field) seen but neither mapped nor ignored: for the operator."""

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
        """
        source: Source | None = None
        device_id: str | None = None
        try:
            topic = self._strip(raw.topic)
            source = self.sources.match(topic)
            local = raw if topic is raw.topic else raw_message(topic, raw.payload, raw.received_at)
            decoded = decode_message(local, source, self.registry.model_of, self.models)
            device_id = decoded.device_id
            if source.envelope == "sta" and decoded.meta.get("iot_id") is not None:
                return None
            binding = self.registry.binding_for(decoded)
            result = normalise(decoded, binding, raw.received_at, self.state, window=source.window)
        except RegistryUnavailable:
            raise
        except IngestError as exc:
            return self._rejected(raw, exc.reason, exc.detail, source, device_id, packet_id, redelivered)
        except Exception as exc:  # a decoder bug must not stop the ingest: keep the message, say why
            log.exception("unexpected error decoding a message on %s", raw.topic)
            detail = f"internal error {type(exc).__name__}: {exc}"
            return self._rejected(raw, MALFORMED, detail, source, device_id, packet_id, redelivered)
        for name in result.unmapped:
            self.unmapped_fields[(binding.model.key, name)] += 1
        return IncomingMessage(
            topic=raw.topic,
            payload=raw.payload,
            received_at=raw.received_at,
            observations=result.observations,
            source=source.name,
            device_id=device_id,
            packet_id=packet_id,
            redelivered=redelivered,
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
