"""The observation writer: one transaction per batch of messages, exactly once.

Per batch, in one transaction:

1. the delivery log (``ingest_deliveries``, see migration 0003) tells redelivered messages
   whose rows are not idempotent by content (a time taken from, or relative to, the receive
   time: flags ``time_assumed``/``time_relative``; or quarantined) their first receive time,
   and records the messages of this batch that need it;
2. the observations are copied (binary ``COPY``) into a temporary staging table, which gives
   each its ``dedup_key`` (``observation_dedup_key``: a hash of result and phenomenon time
   end, migration 0005), and moved with ``INSERT … SELECT … ON CONFLICT (datastream_id,
   phenomenon_time, dedup_key) DO NOTHING RETURNING``: the same reading delivered twice is
   stored once, a different result at the same time is stored beside it, and the returned
   rows (joined back to the staging rows) say which observations are new (they feed the live
   fan-out) and which were duplicates;
3. SensorThings creates that are more than readings (a FeatureOfInterest, a deep insert, a
   Datastream a client made for its own property) are handed, each on a savepoint of its own,
   to the :class:`EntityCreates` the writer was given (the API's entity writer): the same
   transaction, so they too are acknowledged only once committed; the delivery log keeps a
   redelivered one from being created twice;
4. undecodable messages go to the quarantine;
5. the Datastreams of the new readings are widened over them (``store.datastream_spans``:
   phenomenonTime, resultTime, observedArea), and the worker's counters (``store.counters``)
   and its batch number are updated.

The caller acknowledges the batch's MQTT messages only after :meth:`ObservationWriter.write`
returned, i.e. after COMMIT. A database error that one message's data causes (a constraint, a
value PostgreSQL refuses: ``store.db.is_data_error``) never fails the batch: where the rows
are moved, each message is tried on its own savepoint; anywhere else in the transaction, the
batch is written again message by message. The guilty message is quarantined with reason
``store_rejected`` and the rest is stored. Other errors (a lost connection, a read-only server
during a failover) are raised, and the caller retries the whole batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any, Protocol

import orjson
import psycopg
from psycopg.types.json import Jsonb, set_json_dumps, set_json_loads

from schemas import quality
from schemas.observation import NormalisedObservation
from store import counters, datastream_spans, quarantine
from store.db import is_data_error, is_transient

log = logging.getLogger(__name__)

# What the database (or psycopg, for a text it cannot send) raises when it refuses data.
_REFUSALS = (psycopg.Error, UnicodeEncodeError)

# reason codes of ingest.types, repeated here so store needs no ingest
STORE_REJECTED = "store_rejected"
MALFORMED = "malformed"


class Outcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message cannot be used: a reason code (``ingest.types.REASONS``) and the error text."""

    reason: str
    detail: str


@dataclass(slots=True)
class IncomingMessage:
    """One MQTT delivery, decoded (``observations``) or not (``rejection``)."""

    topic: str
    payload: bytes
    received_at: datetime
    observations: Sequence[NormalisedObservation] = ()
    rejection: Rejection | None = None
    source: str | None = None
    device_id: str | None = None
    packet_id: int = 0
    """MQTT packet identifier (QoS 1); 0 when there is none (QoS 0, replay)."""
    redelivered: bool = False
    """The MQTT DUP flag: the broker may have delivered this message before."""
    quarantine_id: int | None = None
    """Set when the message is replayed from the quarantine."""
    create: str | None = None
    """A SensorThings create for :class:`EntityCreates`: the resource path its body is posted to
    (``Datastreams(7)/Observations``); None for readings."""


class CreateRefused(Exception):
    """An entity create the data cannot take (a bad link, a missing property): quarantined with ``rejection``."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.detail)
        self.rejection = rejection


class EntityCreates(Protocol):
    """Runs the SensorThings creates of a batch that are more than readings (see ``IncomingMessage.create``)."""

    def create(self, conn: psycopg.Connection[Any], message: IncomingMessage) -> tuple[int, object]:
        """Create what ``message`` asks for on ``conn``, inside the caller's transaction.

        Returns the number of Observations created and what to announce once committed (handed
        back in ``BatchResult.announce``). Raises :class:`CreateRefused`.
        """
        ...


@dataclass(frozen=True, slots=True)
class NewObservation:
    """An observation this batch stored, with the id the database gave it."""

    id: int
    observation: NormalisedObservation


_new_id = NewObservation.__dict__["id"].__set__
_new_observation = NewObservation.__dict__["observation"].__set__
if tuple(f.name for f in dataclasses.fields(NewObservation)) != ("id", "observation"):
    raise RuntimeError("NewObservation's fields changed: update _stored")


def _stored(oid: int, observation: NormalisedObservation) -> NewObservation:
    """``NewObservation(oid, observation)`` without the frozen dataclass's ``__init__`` (~1 µs a row).

    Its slots are set through their member descriptors, as ``copy`` does: the same object.
    """
    n: NewObservation = object.__new__(NewObservation)
    _new_id(n, oid)
    _new_observation(n, observation)
    return n


@dataclass(slots=True)
class BatchResult:
    outcomes: list[Outcome]
    """One per message, in order."""
    new: list[NewObservation]
    tally: counters.Tally = field(default_factory=Counter)
    rejections: dict[int, Rejection] = field(default_factory=dict)
    """Message index -> why it was quarantined (decoding errors and store rejections)."""
    announce: list[object] = field(default_factory=list)
    """What the entity creates of the batch ask to announce after commit (:class:`EntityCreates`)."""


_STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS ingest_staging (
    seq                 integer NOT NULL,
    datastream_id       bigint NOT NULL,
    phenomenon_time     timestamptz NOT NULL,
    phenomenon_time_end timestamptz,
    result_time         timestamptz,
    received_at         timestamptz NOT NULL,
    result_number       double precision,
    result_boolean      boolean,
    result_text         text,
    result_json         jsonb,
    quality_flags       integer NOT NULL,
    parameters          jsonb,
    dedup_key           bigint NOT NULL GENERATED ALWAYS AS (observation_dedup_key(
                            result_number, result_boolean, result_text, result_json, phenomenon_time_end)) STORED
) ON COMMIT DELETE ROWS
"""
_COPY = (
    "COPY ingest_staging (seq, datastream_id, phenomenon_time, phenomenon_time_end, result_time, received_at,"
    " result_number, result_boolean, result_text, result_json, quality_flags, parameters) FROM STDIN (FORMAT BINARY)"
)
_COPY_TYPES = [
    "int4",
    "int8",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "float8",
    "bool",
    "text",
    "jsonb",
    "int4",
    "jsonb",
]
# Sorted by key, then arrival: the index is filled in order and, of two equal readings in the
# same batch, the first to arrive is the one stored. The new rows come back as (id, seq of the
# staging row they came from), in arrival order; equal readings of one batch name the first.
_MOVE = """
WITH moved AS (
    INSERT INTO observations (datastream_id, phenomenon_time, phenomenon_time_end, result_time, received_at,
                              result_number, result_boolean, result_text, result_json, quality_flags, parameters,
                              dedup_key)
    SELECT datastream_id, phenomenon_time, phenomenon_time_end, result_time, received_at,
           result_number, result_boolean, result_text, result_json, quality_flags, parameters, dedup_key
    FROM ingest_staging ORDER BY datastream_id, phenomenon_time, seq
    ON CONFLICT (datastream_id, phenomenon_time, dedup_key) DO NOTHING
    RETURNING id, datastream_id, phenomenon_time, dedup_key
)
SELECT m.id, min(s.seq) AS seq
FROM moved m
JOIN ingest_staging s
  ON s.datastream_id = m.datastream_id AND s.phenomenon_time = m.phenomenon_time AND s.dedup_key = m.dedup_key
GROUP BY m.id
ORDER BY seq
"""


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def prepare_connection(conn: psycopg.Connection[Any]) -> None:
    """Session settings the writer relies on: UTC, orjson for jsonb, the staging table."""
    set_json_dumps(_dumps, context=conn)
    set_json_loads(orjson.loads, context=conn)
    with conn.transaction():
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute(_STAGING)


def message_hash(topic: str, payload: bytes) -> bytes:
    h = hashlib.blake2b(topic.encode("utf-8", "surrogateescape"), digest_size=16)
    h.update(b"\x00")
    h.update(payload)
    return h.digest()


@cache
def _flag_names(bits: int) -> tuple[str, ...]:
    return tuple(quality.decode(bits))


def _receive_time_bits() -> int:
    """Flags of rows whose phenomenon time depends on when the message was received."""
    return quality.flag("time_assumed") | quality.flag("time_relative")


def _result_columns(result: Any) -> tuple[float | None, bool | None, str | None, Jsonb | None]:
    kind = type(result)
    if kind is float:
        return result, None, None, None
    if kind is bool:
        return None, result, None, None
    if kind is int:
        return float(result), None, None, None
    if result is None:
        return None, None, None, None
    if kind is str:
        return None, None, result, None
    if isinstance(result, (int, float)):  # numpy scalars and other numbers
        return float(result), None, None, None
    return None, None, None, Jsonb(result)


class ObservationWriter:
    """Writes batches for one worker over one connection (not thread-safe: one writer thread)."""

    def __init__(self, conn: psycopg.Connection[Any], worker: str, creates: EntityCreates | None = None) -> None:
        if conn.autocommit:
            raise ValueError("the writer manages transactions; pass a non-autocommit connection")
        self.conn = conn
        self.worker = worker
        self.creates = creates
        self._receive_time = _receive_time_bits()
        prepare_connection(conn)

    @classmethod
    def connect(cls, url: str, worker: str, creates: EntityCreates | None = None) -> ObservationWriter:
        return cls(psycopg.connect(url, connect_timeout=10), worker, creates)

    def close(self) -> None:
        self.conn.close()

    def last_batch_seq(self) -> int:
        """The number of this worker's last committed batch (to resolve a COMMIT of unknown outcome)."""
        seq = counters.batch_seq(self.conn, self.worker)
        self.conn.rollback()
        return seq

    # -- the batch --------------------------------------------------------------------------

    def write(
        self,
        messages: Sequence[IncomingMessage],
        *,
        extra: Mapping[tuple[str, str], int] | None = None,
        batch_seq: int | None = None,
    ) -> BatchResult:
        """Store one batch in one transaction; see the module docstring.

        ``extra`` is added to the counters in the same transaction; ``batch_seq`` (if given)
        is recorded as the worker's last committed batch. Messages with a ``quarantine_id``
        are replays: their quarantine rows are marked instead of new ones being written.
        """
        try:
            with self.conn.transaction():
                result = self._store(messages)
                self._count(result, extra, batch_seq)
            return result
        except _REFUSALS as exc:
            if not is_data_error(exc):
                raise
            log.warning(
                "the database refused data of a batch outside its rows (%s); writing its %d messages one by one",
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                len(messages),
            )
        with self.conn.transaction():
            result = self._store_one_by_one(messages)
            self._count(result, extra, batch_seq)
        return result

    def _count(self, result: BatchResult, extra: Mapping[tuple[str, str], int] | None, batch_seq: int | None) -> None:
        counters.add(self.conn, self.worker, result.tally + Counter(extra or {}))
        if batch_seq is not None:
            counters.set_batch_seq(self.conn, self.worker, batch_seq)

    def _store(self, messages: Sequence[IncomingMessage], *, clear: bool = False) -> BatchResult:
        """Delivery log, rows, quarantine and the tally of ``messages`` (in the caller's transaction).

        ``clear`` empties the staging table afterwards, for when it is used again in the same
        transaction (``ON COMMIT DELETE ROWS`` empties it only at commit).
        """
        conn = self.conn
        already, observations = self._delivery_log(messages)
        result = BatchResult(outcomes=[Outcome.STORED] * len(messages), new=[])
        try:
            with conn.transaction():
                new_per_message = self._insert(messages, observations, result.new, clear=clear)
        except _REFUSALS as exc:
            if not is_data_error(exc):
                raise
            result.new.clear()
            new_per_message = self._insert_isolated(messages, observations, result)
        new_per_message.update(self._create(messages, already, result))
        self._quarantine(messages, already, result)
        self._account(messages, observations, new_per_message, already, result)
        self._widen(result.new)
        return result

    def _widen(self, new: Sequence[NewObservation]) -> None:
        """Keep the Datastreams' phenomenonTime, resultTime and observedArea over the new readings.

        One statement per batch, at the end of its transaction: the row locks it takes on the
        Datastreams (in id order) are held only until the commit that follows. Entity creates
        widened theirs already.
        """
        bounds: dict[int, list[Any]] = {}
        for n in new:
            o = n.observation
            end = o.phenomenon_time_end or o.phenomenon_time
            b = bounds.get(o.datastream_id)
            if b is None:
                bounds[o.datastream_id] = [o.phenomenon_time, end, o.result_time, o.result_time]
                continue
            b[0] = min(b[0], o.phenomenon_time)
            b[1] = max(b[1], end)
            r = o.result_time
            if r is not None:
                if b[2] is None or r < b[2]:
                    b[2] = r
                if b[3] is None or r > b[3]:
                    b[3] = r
        if bounds:
            datastream_spans.widen_bounds(self.conn, {ds: (b[0], b[1], b[2], b[3]) for ds, b in bounds.items()})

    def _create(self, messages: Sequence[IncomingMessage], already: set[int], result: BatchResult) -> dict[int, int]:
        """Run the batch's entity creates, each on a savepoint; Observations created per message.

        One created before (a redelivery the delivery log knows) is not created again. One the
        data cannot take, or that the database refuses, is quarantined; the rest stand.
        """
        created: dict[int, int] = {}
        for i, m in enumerate(messages):
            if m.create is None or m.rejection is not None or i in already:
                continue
            if self.creates is None:
                result.rejections[i] = Rejection(MALFORMED, "this writer takes readings only (no entity creates)")
                continue
            try:
                with self.conn.transaction():
                    count, announce = self.creates.create(self.conn, m)
            except CreateRefused as exc:
                result.rejections[i] = exc.rejection
                continue
            except _REFUSALS as exc:
                # what clears with time is retried with the batch; anything else the database says
                # about a client's entities (PostGIS refusing a shape, a constraint) is this message's
                if is_transient(exc):
                    raise
                result.rejections[i] = Rejection(STORE_REJECTED, f"{type(exc).__name__}: {exc}".strip())
                continue
            except Exception as exc:  # a bug must not stop the worker, nor come back on every restart
                log.exception("unexpected error creating the entities of a message on %s", m.topic)
                result.rejections[i] = Rejection(MALFORMED, f"internal error {type(exc).__name__}: {exc}")
                continue
            created[i] = count
            result.announce.append(announce)
        return created

    def _store_one_by_one(self, messages: Sequence[IncomingMessage]) -> BatchResult:
        """Each message on a savepoint of its own; one the database refuses is quarantined as ``store_rejected``."""
        result = BatchResult(outcomes=[Outcome.STORED] * len(messages), new=[])
        for i, m in enumerate(messages):
            try:
                with self.conn.transaction():
                    one = self._store([m], clear=True)
            except _REFUSALS as exc:
                if not is_data_error(exc):
                    raise
                one = self._set_aside(m, exc)
            result.outcomes[i] = one.outcomes[0]
            result.new.extend(one.new)
            result.announce.extend(one.announce)
            result.tally.update(one.tally)
            if 0 in one.rejections:
                result.rejections[i] = one.rejections[0]
        return result

    def _set_aside(self, m: IncomingMessage, exc: BaseException) -> BatchResult:
        """Quarantine a message the database refused, whole; if even its texts are refused, without them."""
        name = type(exc).__name__
        first = str(exc).strip()
        attempts = [
            dataclasses.replace(m, observations=(), rejection=Rejection(STORE_REJECTED, f"{name}: {first}")),
            dataclasses.replace(
                m,
                observations=(),
                source=None,
                device_id=None,
                rejection=Rejection(STORE_REJECTED, f"{name} (the database also refused this message's error text)"),
            ),
        ]
        for attempt in attempts:
            try:
                with self.conn.transaction():
                    return self._store([attempt], clear=True)
            except _REFUSALS as again:
                if not is_data_error(again):
                    raise
                exc = again
        raise exc

    def _delivery_log(
        self, messages: Sequence[IncomingMessage]
    ) -> tuple[set[int], list[Sequence[NormalisedObservation]]]:
        """Give redelivered messages their first receive time; log this batch's deliveries.

        Returns the indexes of redelivered messages that were already quarantined or created
        (entity creates), and the observations of each message (shifted to the first receive
        time where redelivered).
        """
        observations: list[Sequence[NormalisedObservation]] = [m.observations for m in messages]
        ta = self._receive_time
        needs_log = [
            i
            for i, m in enumerate(messages)
            if m.packet_id
            and m.quarantine_id is None
            and (m.rejection is not None or m.create is not None or any(o.quality_flags & ta for o in m.observations))
        ]
        already: set[int] = set()
        if not needs_log:
            return already, observations
        redelivered_ids = sorted({messages[i].packet_id for i in needs_log if messages[i].redelivered})
        known: dict[int, tuple[bytes, datetime]] = {}
        if redelivered_ids:
            rows = self.conn.execute(
                "SELECT packet_id, message_hash, received_at FROM ingest_deliveries"
                " WHERE worker = %s AND packet_id = ANY(%s)",
                (self.worker, redelivered_ids),
            )
            known = {int(pid): (bytes(h), t) for pid, h, t in rows}
        writes: dict[int, tuple[bytes, datetime]] = {}
        for i in needs_log:
            m = messages[i]
            digest = message_hash(m.topic, m.payload)
            prior = writes.get(m.packet_id) or known.get(m.packet_id)
            if m.redelivered and prior is not None and prior[0] == digest:
                first = prior[1]
                writes[m.packet_id] = prior
                if m.rejection is not None or m.create is not None:
                    already.add(i)
                elif first != m.received_at:
                    shift: timedelta = m.received_at - first
                    observations[i] = [
                        dataclasses.replace(o, phenomenon_time=o.phenomenon_time - shift, received_at=first)
                        if o.quality_flags & ta
                        else o
                        for o in m.observations
                    ]
            else:
                writes[m.packet_id] = (digest, m.received_at)
        pids = list(writes)
        self.conn.execute(
            "INSERT INTO ingest_deliveries AS d (worker, packet_id, message_hash, received_at)"
            " SELECT %s, p, h, t FROM unnest(%s::int4[], %s::bytea[], %s::timestamptz[]) AS u(p, h, t)"
            " ON CONFLICT (worker, packet_id) DO UPDATE"
            " SET message_hash = EXCLUDED.message_hash, received_at = EXCLUDED.received_at"
            " WHERE (d.message_hash, d.received_at) IS DISTINCT FROM (EXCLUDED.message_hash, EXCLUDED.received_at)",
            (self.worker, pids, [writes[p][0] for p in pids], [writes[p][1] for p in pids]),
        )
        return already, observations

    def _insert(
        self,
        messages: Sequence[IncomingMessage],
        observations: Sequence[Sequence[NormalisedObservation]],
        new: list[NewObservation],
        only: Sequence[int] | None = None,
        *,
        clear: bool = False,
    ) -> dict[int, int]:
        """Stage and move the observations of ``only`` (default: all) messages; new per message.

        ``clear`` empties the staging table afterwards (it is used again before COMMIT).
        """
        indexes = range(len(messages)) if only is None else only
        staged: list[tuple[int, NormalisedObservation]] = []
        cur = self.conn.cursor()
        with cur.copy(_COPY) as copy:
            copy.set_types(_COPY_TYPES)
            write_row = copy.write_row
            seq = 0
            for i in indexes:
                if messages[i].rejection is not None:
                    continue
                for o in observations[i]:
                    number, boolean, text, json = _result_columns(o.result)
                    write_row(
                        (
                            seq,
                            o.datastream_id,
                            o.phenomenon_time,
                            o.phenomenon_time_end,
                            o.result_time,
                            o.received_at,
                            number,
                            boolean,
                            text,
                            json,
                            o.quality_flags,
                            None if o.parameters is None else Jsonb(o.parameters),
                        )
                    )
                    staged.append((i, o))
                    seq += 1
        if not staged:
            return {}
        cur.execute(_MOVE)
        moved = cur.fetchall()
        if clear:
            cur.execute("DELETE FROM ingest_staging")
        per_message: dict[int, int] = {}
        for oid, seq in moved:
            i, o = staged[seq]
            new.append(_stored(oid, o))
            per_message[i] = per_message.get(i, 0) + 1
        return per_message

    def _insert_isolated(
        self,
        messages: Sequence[IncomingMessage],
        observations: Sequence[Sequence[NormalisedObservation]],
        result: BatchResult,
    ) -> dict[int, int]:
        """After a constraint error: each message on its own savepoint; the guilty are quarantined."""
        per_message: dict[int, int] = {}
        for i, m in enumerate(messages):
            if m.rejection is not None or not observations[i]:
                continue
            new: list[NewObservation] = []
            try:
                with self.conn.transaction():
                    counts = self._insert(messages, observations, new, only=[i], clear=True)
            except _REFUSALS as exc:
                if not is_data_error(exc):
                    raise
                result.rejections[i] = Rejection(STORE_REJECTED, f"{type(exc).__name__}: {exc}".strip())
                continue
            result.new.extend(new)
            per_message.update(counts)
        return per_message

    def _quarantine(self, messages: Sequence[IncomingMessage], already: set[int], result: BatchResult) -> None:
        rows: list[quarantine.QuarantineRow] = []
        replayed_ok: list[int] = []
        for i, m in enumerate(messages):
            rejection = m.rejection or result.rejections.get(i)
            if rejection is not None:
                result.rejections[i] = rejection
            if m.quarantine_id is not None:
                if rejection is None:
                    replayed_ok.append(m.quarantine_id)
                else:
                    quarantine.mark_failed(self.conn, m.quarantine_id, rejection.reason, rejection.detail)
                continue
            if rejection is None or i in already:
                continue
            rows.append(
                quarantine.QuarantineRow(
                    topic=m.topic,
                    payload=m.payload,
                    received_at=m.received_at,
                    reason=rejection.reason,
                    error=rejection.detail,
                    source=m.source,
                    device_id=m.device_id,
                )
            )
        quarantine.insert(self.conn, rows)
        quarantine.mark_replayed(self.conn, replayed_ok)

    def _account(
        self,
        messages: Sequence[IncomingMessage],
        observations: Sequence[Sequence[NormalisedObservation]],
        new_per_message: Mapping[int, int],
        already: set[int],
        result: BatchResult,
    ) -> None:
        # Counted in local integers and added to the tally once: a Counter update with a tuple
        # key per message and counter was a few µs per message on the write thread.
        tally = result.tally
        rejections = result.rejections
        outcomes = result.outcomes
        stored_outcome, duplicate_outcome, quarantined_outcome = Outcome.STORED, Outcome.DUPLICATE, Outcome.QUARANTINED
        received = decoded = stored = duplicate = observations_stored = observations_duplicate = 0
        for i, m in enumerate(messages):
            rejection = rejections.get(i) if rejections else None
            new = new_per_message.get(i, 0)
            if rejection is not None:
                outcome = duplicate_outcome if i in already else quarantined_outcome
            elif m.create is not None:  # an entity create: stored, or done by an earlier delivery
                outcome = duplicate_outcome if i in already else stored_outcome
            elif new > 0 or not observations[i]:
                outcome = stored_outcome
            else:
                outcome = duplicate_outcome
            outcomes[i] = outcome
            if m.quarantine_id is not None:
                if rejection is not None:
                    tally[(counters.REPLAY_FAILED, rejection.reason)] += 1
                else:
                    name = counters.REPLAY_STORED if outcome is stored_outcome else counters.REPLAY_DUPLICATE
                    tally[(name, "")] += 1
                    tally[(counters.REPLAY_OBSERVATIONS_STORED, "")] += new
                continue
            received += 1
            if m.rejection is None:
                decoded += 1
                observations_stored += new
                if m.create is None:  # a create done before made its Observations then (or was refused)
                    observations_duplicate += len(observations[i]) - new
            if outcome is quarantined_outcome:
                tally[(counters.QUARANTINED, rejection.reason if rejection else "")] += 1
            elif outcome is stored_outcome:
                stored += 1
            else:
                duplicate += 1
        for key, value in (
            (counters.RECEIVED, received),
            (counters.DECODED, decoded),
            (counters.STORED, stored),
            (counters.DUPLICATE, duplicate),
            (counters.OBSERVATIONS_STORED, observations_stored),
            (counters.OBSERVATIONS_DUPLICATE, observations_duplicate),
        ):
            if value:
                tally[(key, "")] += value
        # flags: counted per distinct bit set, then spread over their names
        per_bits = Counter(n.observation.quality_flags for n in result.new)
        per_bits.pop(0, None)
        for bits, count in per_bits.items():
            for name in _flag_names(bits):
                tally[(counters.FLAGGED, name)] += count
