"""Observations name an existing Datastream: the rule of migration 0006, checked per statement.

On the real server, on both storage paths, and under concurrency: a Datastream deleted while an
ingest transaction writes its Observations leaves none behind, whichever commits first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from store.db import is_data_error
from store.migrations import shipped_migrations, upgrade
from tests.conftest import wait_until

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
INSERT = "INSERT INTO observations (datastream_id, phenomenon_time, result_number) VALUES (%s, %s, %s)"


@pytest.fixture(params=[True, False], ids=["timescaledb", "plain"])
def db(request: pytest.FixtureRequest, scratch_db: str) -> Iterator[str]:
    with psycopg.connect(scratch_db) as conn:
        upgrade(conn, timescaledb=request.param, postgis=False)
        _entities(conn)
        conn.commit()
    yield scratch_db


def _entities(conn: psycopg.Connection) -> None:
    """Things 1 and 2; Datastreams 1 and 2 of Thing 1, 3 of Thing 2."""
    conn.execute("INSERT INTO things (id, name) VALUES (1, 'a'), (2, 'b')")
    conn.execute("INSERT INTO sensors (id, name, encoding_type, metadata) VALUES (1, 's', 'text/plain', '\"x\"')")
    conn.execute("INSERT INTO observed_properties (id, name, definition) VALUES (1, 'p', 'd')")
    conn.execute(
        "INSERT INTO datastreams (id, name, unit_of_measurement, observation_type, thing_id, sensor_id,"
        " observed_property_id) VALUES (1, 'd1', '{}', 'x', 1, 1, 1), (2, 'd2', '{}', 'x', 1, 1, 1),"
        " (3, 'd3', '{}', 'x', 2, 1, 1)"
    )


def _counts(conn: psycopg.Connection) -> dict[int, int]:
    return dict(conn.execute("SELECT datastream_id, count(*) FROM observations GROUP BY 1").fetchall())


def test_rows_naming_a_missing_datastream_are_refused_whole(db: str) -> None:
    with psycopg.connect(db) as conn:
        with conn.cursor() as cur:
            cur.executemany(INSERT, [(ds, T0 + timedelta(minutes=i), i) for i in range(10) for ds in (1, 2, 3)])
        conn.commit()
        with pytest.raises(psycopg.errors.ForeignKeyViolation) as refused:
            conn.execute(
                "INSERT INTO observations (datastream_id, phenomenon_time, result_number)"
                " SELECT 1 + g %% 3, %s + g * interval '1 minute', g FROM generate_series(100, 110) g"
                " UNION ALL SELECT 42, %s, 1",
                (T0, T0),
            )
        assert is_data_error(refused.value)  # ingest quarantines the message, stores the rest
        assert refused.value.diag.message_detail == 'Key (datastream_id)=(42) is not present in table "datastreams".'
        conn.rollback()
        with (
            pytest.raises(psycopg.errors.ForeignKeyViolation),
            conn.cursor().copy("COPY observations (datastream_id, phenomenon_time, result_number) FROM STDIN") as copy,
        ):
            copy.write_row((1, T0 + timedelta(days=1), 1.0))
            copy.write_row((7, T0 + timedelta(days=1), 1.0))
        conn.rollback()
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="datastream_id\\)=\\(9\\)"):
            conn.execute("UPDATE observations SET datastream_id = 9 WHERE result_number = 3")
        conn.rollback()
        moved = conn.execute("UPDATE observations SET datastream_id = 2 WHERE datastream_id = 1 AND result_number < 5")
        assert moved.rowcount == 5
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="still referenced"):
            conn.execute("UPDATE datastreams SET id = 10 WHERE id = 3")
        conn.rollback()
        assert _counts(conn) == {1: 10, 2: 10, 3: 10}


def test_deleting_datastreams_deletes_their_observations(db: str) -> None:
    with psycopg.connect(db) as conn:
        with conn.cursor() as cur:
            cur.executemany(INSERT, [(ds, T0 + timedelta(days=i), i) for i in range(20) for ds in (1, 2, 3)])
        conn.commit()
        conn.execute("DELETE FROM datastreams WHERE id = 2")
        assert _counts(conn) == {1: 20, 3: 20}
        conn.execute("DELETE FROM things WHERE id = 1")  # cascades to Datastream 1, and on to its Observations
        assert _counts(conn) == {3: 20}
        conn.commit()
        conn.execute("TRUNCATE datastreams CASCADE")
        assert _counts(conn) == {}
        conn.rollback()
        assert _counts(conn) == {3: 20}
        conn.execute("DELETE FROM observations")
        changed = conn.execute("UPDATE datastreams SET id = 30 WHERE id = 3")  # an id no Observation names may
        assert changed.rowcount == 1


def _waiting(db: str, pid: int) -> bool:
    with psycopg.connect(db, autocommit=True) as watcher:
        row = watcher.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return row is not None and row[0] == "Lock"


def _in_thread(work: Callable[[], None]) -> tuple[threading.Thread, list[BaseException | None]]:
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_datastream_deleted_while_its_observations_are_written_keeps_none(db: str) -> None:
    """The writer commits first: the delete waits for its lock, then takes the new rows with it."""
    with psycopg.connect(db) as writer, psycopg.connect(db) as deleter:
        with writer.cursor() as cur:
            cur.executemany(INSERT, [(1, T0 + timedelta(minutes=i), i) for i in range(50)])
        deleter_pid = deleter.info.backend_pid

        def delete() -> None:
            deleter.execute("DELETE FROM datastreams WHERE id = 1")
            deleter.commit()

        thread, outcome = _in_thread(delete)
        assert wait_until(lambda: _waiting(db, deleter_pid), timeout=20)
        writer.commit()
        thread.join(20)
        assert outcome == [None]
        assert _counts(writer) == {}


def test_observations_written_while_their_datastream_is_deleted_are_refused(db: str) -> None:
    """The delete commits first: the writer waits for it, then finds the Datastream gone."""
    with psycopg.connect(db) as writer, psycopg.connect(db) as deleter:
        deleter.execute("DELETE FROM datastreams WHERE id = 1")
        writer_pid = writer.info.backend_pid

        def write() -> None:
            with writer.cursor() as cur:
                cur.executemany(INSERT, [(ds, T0 + timedelta(minutes=i), i) for i in range(50) for ds in (1, 2)])
            writer.commit()

        thread, outcome = _in_thread(write)
        assert wait_until(lambda: _waiting(db, writer_pid), timeout=20)
        deleter.commit()
        thread.join(20)
        assert len(outcome) == 1 and isinstance(outcome[0], psycopg.errors.ForeignKeyViolation)
        writer.rollback()
        assert _counts(writer) == {}
        assert writer.execute("SELECT count(*) FROM datastreams").fetchone() == (2,)


@pytest.mark.parametrize("timescaledb", [True, False], ids=["timescaledb", "plain"])
def test_upgrade_of_a_database_in_use_keeps_its_rows_and_the_rule(
    scratch_db: str, monkeypatch: pytest.MonkeyPatch, timescaledb: bool
) -> None:
    before = [m for m in shipped_migrations() if m.version < 6]
    with monkeypatch.context() as patch:
        patch.setattr("store.migrations.shipped_migrations", lambda: before)
        with psycopg.connect(scratch_db) as conn:
            upgrade(conn, timescaledb=timescaledb, postgis=False)
            _entities(conn)
            with conn.cursor() as cur:
                cur.executemany(INSERT, [(ds, T0 + timedelta(days=3 * i), i) for i in range(10) for ds in (1, 3)])
            conn.commit()
    with psycopg.connect(scratch_db) as conn:
        assert upgrade(conn, timescaledb=timescaledb, postgis=False).applied == ["0006_observation_datastream_check"]
        # the per-row foreign key is gone from the table and, on TimescaleDB, from every chunk
        left = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confrelid = 'datastreams'::regclass"
            " AND conname LIKE %s",
            ("%observations_datastream_id_fkey",),
        ).fetchone()
        assert left == (0,)
        assert _counts(conn) == {1: 10, 3: 10}
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(INSERT, (5, T0, 1.0))
        conn.rollback()
        conn.execute("DELETE FROM datastreams WHERE id = 3")
        assert _counts(conn) == {1: 10}
