"""Ingest accounting persisted per worker (``ingest_counters``), in the transaction of the rows.

Counters are written as increments in the same transaction as the observations and
quarantine rows they count, so what the table says always agrees with what is stored:
a crash rolls both back together. ``bydata ingest stats`` sums every worker.

Counted per MQTT delivery (a redelivered message counts again), with one outcome each:

- ``received``: deliveries from the broker on a source topic (Bydata's own live notifications
  are not received data; they are counted as ``own_notification``);
- ``stored``: deliveries that committed at least one new observation, or that carried no
  reading at all (a message with nothing to store is accepted as it is);
- ``duplicate``: deliveries all of whose observations were already stored (QoS-1
  redelivery, the same uplink through two gateways, a replayed batch);
- ``quarantined`` (label: reason): deliveries kept whole in the quarantine table.

So for any run ``received = stored + duplicate + quarantined``. Besides: ``decoded``
(deliveries decoded and normalised), ``observations_stored`` and ``observations_duplicate``
(per observation; ``observations_stored + observations_duplicate`` = observations decoded),
and ``flagged`` (label: quality flag) over newly stored observations, and ``unmapped_field``
(label: ``<device model>/<field>``, bounded per worker) counting fields devices send that their
model neither maps nor ignores.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import psycopg

RECEIVED = "received"
DECODED = "decoded"
STORED = "stored"
DUPLICATE = "duplicate"
QUARANTINED = "quarantined"
OBSERVATIONS_STORED = "observations_stored"
OBSERVATIONS_DUPLICATE = "observations_duplicate"
FLAGGED = "flagged"
OWN_NOTIFICATION = "own_notification"
UNMAPPED_FIELD = "unmapped_field"
# Quarantine replays (``bydata quarantine replay``), kept apart from what the broker delivered.
REPLAY_STORED = "replay_stored"
REPLAY_DUPLICATE = "replay_duplicate"
REPLAY_FAILED = "replay_failed"
REPLAY_OBSERVATIONS_STORED = "replay_observations_stored"

# The worker's last committed batch: lets a writer that lost its connection during COMMIT
# find out whether the commit happened (and so acknowledge instead of writing twice).
_BATCH_SEQ = "_batch_seq"

Tally = Counter[tuple[str, str]]
"""(counter, label) -> increment."""


def add(conn: psycopg.Connection[Any], worker: str, tally: Mapping[tuple[str, str], int]) -> None:
    """Add ``tally`` to the worker's counters (inside the caller's transaction)."""
    items = [(name, label, value) for (name, label), value in tally.items() if value]
    if not items:
        return
    names, labels, values = (list(column) for column in zip(*items, strict=True))
    conn.execute(
        "INSERT INTO ingest_counters AS c (worker, counter, label, value)"
        " SELECT %s, n, l, v FROM unnest(%s::text[], %s::text[], %s::int8[]) AS t(n, l, v)"
        " ON CONFLICT (worker, counter, label) DO UPDATE"
        " SET value = c.value + EXCLUDED.value, updated_at = now()",
        (worker, names, labels, values),
    )


def set_batch_seq(conn: psycopg.Connection[Any], worker: str, seq: int) -> None:
    conn.execute(
        "INSERT INTO ingest_counters AS c (worker, counter, label, value) VALUES (%s, %s, '', %s)"
        " ON CONFLICT (worker, counter, label) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        (worker, _BATCH_SEQ, seq),
    )


def batch_seq(conn: psycopg.Connection[Any], worker: str) -> int:
    """The worker's last committed batch number (0 if none)."""
    row = conn.execute(
        "SELECT value FROM ingest_counters WHERE worker = %s AND counter = %s AND label = ''", (worker, _BATCH_SEQ)
    ).fetchone()
    return 0 if row is None else int(row[0])


def totals(conn: psycopg.Connection[Any], worker: str | None = None) -> Tally:
    """Counters summed over every worker (or one)."""
    query = "SELECT counter, label, sum(value)::int8 FROM ingest_counters WHERE counter <> %s"
    params: list[Any] = [_BATCH_SEQ]
    if worker is not None:
        query += " AND worker = %s"
        params.append(worker)
    query += " GROUP BY counter, label"
    return Counter({(name, label): int(value) for name, label, value in conn.execute(query, params)})


def workers(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Each worker's main counters and when it last wrote."""
    cur = conn.execute(
        "SELECT worker, max(updated_at) AS last_update,"
        " coalesce(sum(value) FILTER (WHERE counter = %s), 0)::int8 AS received,"
        " coalesce(sum(value) FILTER (WHERE counter = %s), 0)::int8 AS stored,"
        " coalesce(sum(value) FILTER (WHERE counter = %s), 0)::int8 AS duplicate,"
        " coalesce(sum(value) FILTER (WHERE counter = %s), 0)::int8 AS quarantined"
        " FROM ingest_counters GROUP BY worker ORDER BY worker",
        (RECEIVED, STORED, DUPLICATE, QUARANTINED),
    )
    names = [c.name for c in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur]


def reset(conn: psycopg.Connection[Any], worker: str | None = None) -> int:
    """Forget the counters (of one worker), e.g. before a measured run; returns rows removed."""
    if worker is None:
        return conn.execute("DELETE FROM ingest_counters WHERE counter <> %s", (_BATCH_SEQ,)).rowcount
    return conn.execute(
        "DELETE FROM ingest_counters WHERE worker = %s AND counter <> %s", (worker, _BATCH_SEQ)
    ).rowcount
