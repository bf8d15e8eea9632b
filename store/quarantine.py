"""The quarantine: messages that could not be decoded, mapped or stored, kept whole.

Each row holds the topic, the payload bytes, the receive time, a stable reason code
(``ingest.types.REASONS``), the error text, the source and device where they were known.
An operator fixes the cause (imports the device, adds a device model) and replays; a replayed
row is marked ``replayed`` in the same transaction that stores its observations, so a second
replay finds nothing to do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

OPEN = "open"
REPLAYED = "replayed"
DISCARDED = "discarded"


MAX_ERROR = 4000  # characters of an error text kept (the payload is always kept whole)


def payload_hash(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=16).digest()


def safe_text(value: str, limit: int | None = None) -> str:
    """``value`` as text PostgreSQL stores: NUL escaped as ``\\x00``, unencodable characters escaped.

    Error texts and ids of quarantined messages may quote what a sender wrote; PostgreSQL
    text cannot hold a NUL, and a lone surrogate cannot be sent as UTF-8. The payload is
    ``bytea`` and needs none of this.
    """
    if "\x00" in value:
        value = value.replace("\x00", "\\x00")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    if limit is not None and len(value) > limit:
        value = value[:limit] + "… (cut)"
    return value


def _maybe(value: str | None) -> str | None:
    return None if value is None else safe_text(value, MAX_ERROR)


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    topic: str
    payload: bytes
    received_at: datetime
    reason: str
    error: str
    source: str | None = None
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class QuarantinedMessage:
    id: int
    received_at: datetime
    topic: str
    payload: bytes
    source: str | None
    device_id: str | None
    reason: str
    error: str
    status: str
    replayed_at: datetime | None
    replay_count: int


_COLUMNS = sql.SQL(", ").join(
    sql.Identifier(c)
    for c in (
        "id",
        "received_at",
        "topic",
        "payload",
        "source",
        "device_id",
        "reason",
        "error",
        "status",
        "replayed_at",
        "replay_count",
    )
)


def insert(conn: psycopg.Connection[Any], rows: Sequence[QuarantineRow]) -> None:
    """Quarantine ``rows`` (inside the caller's transaction); texts through :func:`safe_text`."""
    if not rows:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO quarantine (received_at, topic, payload, payload_hash, source, device_id, reason, error)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    r.received_at,
                    safe_text(r.topic),
                    r.payload,
                    payload_hash(r.payload),
                    _maybe(r.source),
                    _maybe(r.device_id),
                    safe_text(r.reason, MAX_ERROR),
                    safe_text(r.error, MAX_ERROR),
                )
                for r in rows
            ],
        )


def _message(row: Sequence[Any]) -> QuarantinedMessage:
    return QuarantinedMessage(
        id=int(row[0]),
        received_at=row[1],
        topic=row[2],
        payload=bytes(row[3]),
        source=row[4],
        device_id=row[5],
        reason=row[6],
        error=row[7],
        status=row[8],
        replayed_at=row[9],
        replay_count=int(row[10]),
    )


def _filters(
    *, reason: str | None, status: str | None, device_id: str | None, ids: Sequence[int] | None
) -> tuple[sql.Composable, list[Any]]:
    clauses: list[sql.Composable] = []
    params: list[Any] = []
    for column, value in (("reason", reason), ("status", status), ("device_id", device_id)):
        if value is not None:
            clauses.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    if ids is not None:
        clauses.append(sql.SQL("id = ANY(%s)"))
        params.append(list(ids))
    if not clauses:
        return sql.SQL(""), params
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses), params


def list_messages(
    conn: psycopg.Connection[Any],
    *,
    reason: str | None = None,
    status: str | None = OPEN,
    device_id: str | None = None,
    limit: int = 100,
) -> list[QuarantinedMessage]:
    where, params = _filters(reason=reason, status=status, device_id=device_id, ids=None)
    rows = conn.execute(
        sql.SQL("SELECT {} FROM quarantine{} ORDER BY id LIMIT %s").format(_COLUMNS, where),
        [*params, limit],
    ).fetchall()
    return [_message(r) for r in rows]


def get(conn: psycopg.Connection[Any], message_id: int) -> QuarantinedMessage | None:
    row = conn.execute(sql.SQL("SELECT {} FROM quarantine WHERE id = %s").format(_COLUMNS), (message_id,)).fetchone()
    return None if row is None else _message(row)


def summary(conn: psycopg.Connection[Any]) -> list[tuple[str, str, int]]:
    """(status, reason, count) over the whole quarantine."""
    return [
        (str(s), str(r), int(n))
        for s, r, n in conn.execute(
            "SELECT status, reason, count(*) FROM quarantine GROUP BY status, reason ORDER BY status, reason"
        )
    ]


def claim_for_replay(
    conn: psycopg.Connection[Any],
    *,
    ids: Sequence[int] | None = None,
    reason: str | None = None,
    device_id: str | None = None,
    after_id: int = 0,
    limit: int = 1000,
) -> list[QuarantinedMessage]:
    """Lock up to ``limit`` open rows with ids above ``after_id`` for replay (in the caller's transaction).

    ``SKIP LOCKED`` lets two replays run at once without replaying a row twice.
    """
    where, params = _filters(reason=reason, status=OPEN, device_id=device_id, ids=ids)
    where = sql.SQL("{} AND id > %s").format(where) if params else sql.SQL(" WHERE id > %s")
    rows = conn.execute(
        sql.SQL("SELECT {} FROM quarantine{} ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED").format(_COLUMNS, where),
        [*params, after_id, limit],
    ).fetchall()
    return [_message(r) for r in rows]


def mark_replayed(conn: psycopg.Connection[Any], ids: Sequence[int]) -> None:
    if ids:
        conn.execute(
            "UPDATE quarantine SET status = %s, replayed_at = now(), replay_count = replay_count + 1"
            " WHERE id = ANY(%s)",
            (REPLAYED, list(ids)),
        )


def mark_failed(conn: psycopg.Connection[Any], message_id: int, reason: str, error: str) -> None:
    """A replay that failed again: the row stays open with the new reason and error."""
    conn.execute(
        "UPDATE quarantine SET reason = %s, error = %s, replayed_at = now(), replay_count = replay_count + 1"
        " WHERE id = %s",
        (safe_text(reason, MAX_ERROR), safe_text(error, MAX_ERROR), message_id),
    )


def discard(conn: psycopg.Connection[Any], ids: Sequence[int]) -> int:
    """Mark rows the operator decided to drop; they stay for the record but are no longer open."""
    return conn.execute(
        "UPDATE quarantine SET status = %s WHERE id = ANY(%s) AND status = %s", (DISCARDED, list(ids), OPEN)
    ).rowcount
