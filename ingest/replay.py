"""Replay quarantined messages after the operator fixed the cause.

Each replayed message goes through the same decoding, normalising and writing as live
ingest, with its original receive time, so a message without a payload timestamp gets
the same phenomenon time every time it is replayed. Rows are locked while replayed and
marked ``replayed`` in the transaction that stores their observations: a second replay
finds nothing to do, and two replays at once never take the same row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ingest.process import Processor
from ingest.registry import Policy, Registry
from ingest.sources import SourceSet
from ingest.types import RawMessage
from schemas.device_models import DeviceModel
from store import counters, quarantine
from store.observations import EntityCreates, IncomingMessage, ObservationWriter, Outcome, Rejection

REPLAY_WORKER = "replay"


@dataclass(slots=True)
class ReplayReport:
    stored: int = 0
    duplicate: int = 0
    observations_stored: int = 0
    still_failing: Counter[str] = field(default_factory=Counter)

    @property
    def replayed(self) -> int:
        return self.stored + self.duplicate

    def as_dict(self) -> dict[str, object]:
        return {
            "replayed": self.replayed,
            "stored": self.stored,
            "duplicate": self.duplicate,
            "observations_stored": self.observations_stored,
            "still_failing": dict(self.still_failing),
        }


def replay(
    database_url: str,
    sources: SourceSet,
    models: Mapping[str, DeviceModel],
    *,
    ids: Sequence[int] | None = None,
    reason: str | None = None,
    device_id: str | None = None,
    policy: Policy = "strict",
    topic_prefix: str = "",
    batch_size: int = 500,
    creates: EntityCreates | None = None,
) -> ReplayReport:
    """Replay the open quarantine rows selected by ``ids``/``reason``/``device_id`` (all if none).

    ``creates`` runs SensorThings creates that are more than readings (``api.mqtt.creates``);
    what they create is not announced on MQTT.
    """
    registry = Registry(database_url, models, policy=policy)
    processor = Processor(sources, registry, models, topic_prefix=topic_prefix)
    writer = ObservationWriter.connect(database_url, REPLAY_WORKER, creates)
    report = ReplayReport()
    try:
        registry.refresh()
        conn = writer.conn
        after = 0
        while True:
            with conn.transaction():
                rows = quarantine.claim_for_replay(
                    conn, ids=ids, reason=reason, device_id=device_id, after_id=after, limit=batch_size
                )
                if not rows:
                    break
                after = rows[-1].id
                messages: list[IncomingMessage] = []
                for row in rows:
                    message = processor.process(RawMessage(row.topic, row.payload, row.received_at))
                    if message is None:  # a SensorThings notification: not data
                        message = IncomingMessage(
                            row.topic,
                            row.payload,
                            row.received_at,
                            rejection=Rejection(row.reason, "a SensorThings notification, not a create request"),
                        )
                    message.quarantine_id = row.id
                    messages.append(message)
                unmapped = processor.unmapped.take()
                result = writer.write(messages, extra={(counters.UNMAPPED_FIELD, k): n for k, n in unmapped.items()})
            for i, outcome in enumerate(result.outcomes):
                if outcome is Outcome.STORED:
                    report.stored += 1
                elif outcome is Outcome.DUPLICATE:
                    report.duplicate += 1
                else:
                    report.still_failing[result.rejections[i].reason] += 1
            report.observations_stored += result.tally[(counters.REPLAY_OBSERVATIONS_STORED, "")]
    finally:
        writer.close()
        registry.close()
    return report
