"""SensorThings creates over MQTT that are more than readings, run by the API's writer inside ingest's batch.

OGC 18-088 (14.2.2) lets a client publish an Observation to ``v1.1/Datastreams(<id>)/Observations``,
``v1.1/FeaturesOfInterest(<id>)/Observations`` or ``v1.1/Observations``, with everything a POST
may carry: links to a FeatureOfInterest, ``validTime``, ``resultQuality``, a whole new Datastream
with its Thing, Sensor and ObservedProperty (deep insert). ``bydata ingest`` stores plain readings
itself (the fast path of ``ingest.envelopes.sta``); everything else it hands to
:class:`MqttCreates`, which creates it exactly as ``POST`` to the same path would
(:func:`api.write.routes.plan_create`, the same :class:`~api.write.writer.Writer`: normalisation of
vocabulary Datastreams, a FeatureOfInterest made from the Thing's Location, Datastream spans),
on the batch writer's connection and inside its transaction, so the message is acknowledged only
once its entities are committed. After commit the created entities are announced like the API's
own writes (entity set, entity and collection topics, as a GET shows them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg

from api.sta import entities as em
from api.sta.resource_path import parse_resource_path
from api.sta.translate import PathNotFound
from api.write.body import BodyError
from api.write.routes import plan_create
from api.write.writer import Changes, WriteError, Writer
from ingest.types import MALFORMED, UNKNOWN_DEVICE
from store import sta_write
from store.observations import CreateRefused, IncomingMessage, Rejection


def _refused(reason: str, detail: str) -> CreateRefused:
    return CreateRefused(Rejection(reason, detail))


class MqttCreates:
    """The ``EntityCreates`` of ingest's batch writer (``store.observations``).

    ``notify`` is told each committed create's :class:`Changes` (the API's MQTT notifier); None
    announces nothing.
    """

    def __init__(self, notify: Callable[[Changes], None] | None = None) -> None:
        self.notify = notify

    def create(self, conn: psycopg.Connection[Any], message: IncomingMessage) -> tuple[int, object]:
        if message.create is None:
            raise _refused(MALFORMED, "not a SensorThings create")
        try:
            path = parse_resource_path(message.create)
        except PathNotFound as exc:
            raise _refused(MALFORMED, str(exc)) from None
        if path.single or path.property is not None or path.ref:
            raise _refused(MALFORMED, f"{message.create}: Observations are created in a collection")
        parent_id: int | None = None
        if len(path.steps) > 1:
            first = path.steps[0]
            parent_id = first.id
            parent = em.ENTITY_SETS[first.name]
            if parent_id is None or not sta_write.exists(conn, parent.table, parent_id):
                raise _refused(UNKNOWN_DEVICE, f"no entity at {first.name}({parent_id})")
        try:
            body = orjson.loads(message.payload)
            plan = plan_create(path, body, parent_id)
            if plan.entity is not em.OBSERVATION:
                raise _refused(MALFORMED, f"{message.create}: only Observations are created over MQTT")
            writer = Writer(conn, now=message.received_at)
            plan.run(writer)
            writer.finish()
        except orjson.JSONDecodeError as exc:
            raise _refused(MALFORMED, f"the body is not JSON: {exc}") from None
        except BodyError as exc:
            raise _refused(MALFORMED, f"{exc.where + ': ' if exc.where else ''}{exc.message}") from None
        except WriteError as exc:
            raise _refused(UNKNOWN_DEVICE if exc.code == 404 else MALFORMED, exc.message) from None
        created = sum(1 for entity, _ in writer.changes.created if entity is em.OBSERVATION)
        return created, writer.changes

    def committed(self, announce: Sequence[object]) -> None:
        """Announce what committed creates made (``BatchResult.announce``)."""
        if self.notify is None:
            return
        for changes in announce:
            if isinstance(changes, Changes):
                self.notify(changes)


@contextmanager
def mqtt_creates(
    database_url: str, public_url: str, mqtt_url: str | None, *, topic_prefix: str = ""
) -> Iterator[MqttCreates]:
    """:class:`MqttCreates` whose creates are announced on ``mqtt_url`` (None: not announced).

    The announcements read each entity as a GET shows it, with the translator of this server
    (PostGIS or not) and a small pool of their own, both made when the first announcement is
    due: a worker that starts while the database is down waits for it as before
    (``IngestService``), instead of failing here. The API's notifier publishes on a broker
    connection of its own.
    """
    if mqtt_url is None:
        yield MqttCreates()
        return
    from api.mqtt.notifier import MqttOptions
    from api.sta.routes import PREFIX, StaContext
    from api.sta.translate import Limits
    from store.db import create_pool
    from store.sta import configure_connection

    made: list[StaContext] = []
    lock = threading.Lock()

    def context() -> StaContext:
        with lock:
            if not made:
                pool = create_pool(
                    database_url, min_size=1, max_size=2, name="ingest-creates", configure=configure_connection
                )
                try:
                    made.append(StaContext.for_server(pool, public_url.rstrip("/") + PREFIX, Limits(100, 10_000)))
                except BaseException:
                    pool.close()
                    raise
            return made[0]

    notifier = MqttOptions(url=mqtt_url, endpoint=mqtt_url, topic_prefix=topic_prefix).notifier(context)
    notifier.start()
    try:
        yield MqttCreates(notifier.tell)
    finally:
        notifier.stop()
        with lock:
            for ready in made:
                ready.pool.close()


__all__ = ["MqttCreates", "mqtt_creates"]
