"""Nothing lost, nothing stored twice: SIGKILL mid-stream, database outage mid-stream, two workers sharing.

Ingest runs as real ``bydata ingest`` processes; the stream mixes airrohr (no payload
time: redelivery must reuse the first receive time), amsreader and Nwave messages.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from schemas.provisioning import Provisioning
from store import counters
from store.migrations import upgrade
from store.provisioning import import_provisioning
from tests.conftest import Spawn, free_port, wait_until

from . import streams
from .conftest import assert_identity, totals

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _observations(db_url: str) -> int:
    try:
        with psycopg.connect(db_url, connect_timeout=3) as conn:
            row = conn.execute("SELECT count(*) FROM observations").fetchone()
            return int(row[0]) if row else 0
    except psycopg.OperationalError:
        return -1


def _settled(db_url: str, expected: int, timeout: float = 90.0) -> None:
    """Wait until ``expected`` observations are stored and stay so (nothing more arrives)."""
    assert wait_until(lambda: _observations(db_url) >= expected, timeout=timeout, interval=0.25), (
        f"{_observations(db_url)} of {expected} observations stored"
    )
    time.sleep(1.5)
    assert _observations(db_url) == expected


def _start_worker(
    spawn: Spawn, tmp_path: Path, db_url: str, mqtt_url: str, client_id: str, prefix: str, **env: str
) -> subprocess.Popen[bytes]:
    log_name = f"{client_id}-{uuid.uuid4().hex[:4]}.log"
    proc = spawn(
        "-m",
        "bydata.cli",
        "ingest",
        env={
            "BYDATA_DATABASE_URL": db_url,
            "BYDATA_MQTT_URL": mqtt_url,
            "BYDATA_INGEST_CLIENT_ID": client_id,
            "BYDATA_INGEST_TOPIC_PREFIX": prefix,
            "BYDATA_INGEST_METRICS_PORT": "0",
            "BYDATA_INGEST_SESSION_EXPIRY_S": "300",
            "BYDATA_INGEST_BATCH_MAX_AGE_S": "0.05",
            "BYDATA_INGEST_RETRY_MAX_S": "1",
            "BYDATA_INGEST_FANOUT": "false",
            "BYDATA_LOG_LEVEL": "INFO",
            **env,
        },
        log_name=log_name,
    )
    log = tmp_path / log_name
    assert wait_until(
        lambda: proc.poll() is not None or (log.exists() and "is subscribed" in log.read_text()), timeout=60
    )
    assert proc.poll() is None, log.read_text()
    return proc


class _Publisher(threading.Thread):
    def __init__(self, mqtt_url: str, messages: list[streams.Message], rate: float) -> None:
        super().__init__(daemon=True)
        self.mqtt_url, self.messages, self.rate = mqtt_url, messages, rate
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            streams.publish(self.mqtt_url, self.messages, rate=self.rate)
        except BaseException as exc:
            self.error = exc

    def finish(self) -> None:
        self.join(120)
        assert not self.is_alive() and self.error is None, self.error


def test_sigkill_mid_stream_loses_nothing(
    stream_db: str, mqtt_url: str, topic_prefix: str, spawn: Spawn, tmp_path: Path
) -> None:
    prefix = topic_prefix + "/"
    client_id = f"kill-{uuid.uuid4().hex[:8]}"
    messages = streams.mixed(prefix, 3000)
    worker = _start_worker(spawn, tmp_path, stream_db, mqtt_url, client_id, prefix)
    publisher = _Publisher(mqtt_url, messages, rate=1000)
    publisher.start()
    assert wait_until(lambda: totals(stream_db)[(counters.RECEIVED, "")] >= 600, timeout=60)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(10)
    killed_at = totals(stream_db)[(counters.RECEIVED, "")]
    assert killed_at < len(messages), "the stream ended before the kill: nothing was tested"
    time.sleep(0.5)  # the stream goes on while the worker is dead; the broker keeps it
    _start_worker(spawn, tmp_path, stream_db, mqtt_url, client_id, prefix)
    publisher.finish()
    _settled(stream_db, sum(m.observations for m in messages))
    streams.check_exactly_once(stream_db, messages)
    t = totals(stream_db)
    assert t[(counters.STORED, "")] == len(messages)
    assert_identity(t)


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of its own (TimescaleDB preloaded), to stop and start in a test."""

    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        cmd = [str(PG_BIN / "pg_ctl"), "-D", str(self.directory / "data"), *args]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
            " -c shared_preload_libraries=timescaledb -c timescaledb.telemetry_level=off"
        )
        self._ctl("-o", options, "-l", str(self.directory / "log"), "-w", "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"{PG_BIN}/initdb is missing: install PostgreSQL 15 (deploy/services.sh does)")
    directory = Path(tempfile.mkdtemp(prefix="bydata-pg-"))
    cmd = [str(PG_BIN / "initdb"), "-D", str(directory / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    pg = PrivatePostgres(directory, free_port())
    pg.start()
    try:
        yield pg
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            pg._ctl("-m", "immediate", "stop")
        shutil.rmtree(directory, ignore_errors=True)


def test_database_outage_mid_stream_loses_nothing(
    private_pg: PrivatePostgres, mqtt_url: str, topic_prefix: str, spawn: Spawn, tmp_path: Path
) -> None:
    db_url = private_pg.url
    with psycopg.connect(db_url) as conn:
        upgrade(conn)
        import_provisioning(conn, Provisioning.model_validate(streams.provisioning()))
    prefix = topic_prefix + "/"
    messages = streams.mixed(prefix, 2400)
    worker = _start_worker(spawn, tmp_path, db_url, mqtt_url, f"outage-{uuid.uuid4().hex[:8]}", prefix)
    publisher = _Publisher(mqtt_url, messages, rate=600)
    publisher.start()
    assert wait_until(lambda: _observations(db_url) > 500, timeout=60)
    private_pg.stop()
    time.sleep(3)  # the stream goes on; ingest retries, holds at most Receive Maximum messages
    assert worker.poll() is None, "ingest exited while the database was down"
    private_pg.start()
    publisher.finish()
    _settled(db_url, sum(m.observations for m in messages))
    streams.check_exactly_once(db_url, messages)
    t = totals(db_url)
    assert t[(counters.STORED, "")] == len(messages)
    assert_identity(t)
    log = next(tmp_path.glob("outage-*.log")).read_text()
    assert "database unavailable" in log  # the outage was noticed, not missed


def test_two_workers_share_a_subscription(
    stream_db: str, mqtt_url: str, topic_prefix: str, spawn: Spawn, tmp_path: Path
) -> None:
    prefix = topic_prefix + "/"
    group = f"g{uuid.uuid4().hex[:8]}"
    workers = [f"share-{i}-{uuid.uuid4().hex[:6]}" for i in range(2)]
    for w in workers:
        _start_worker(spawn, tmp_path, stream_db, mqtt_url, w, prefix, BYDATA_INGEST_SHARE_GROUP=group)
    messages = streams.mixed(prefix, 3000)
    publisher = _Publisher(mqtt_url, messages, rate=3000)
    publisher.start()
    publisher.finish()
    _settled(stream_db, sum(m.observations for m in messages))
    streams.check_exactly_once(stream_db, messages)
    with psycopg.connect(stream_db) as conn:
        per_worker: dict[str, Any] = {w["worker"]: w for w in counters.workers(conn)}
    assert set(per_worker) == set(workers)
    for w in workers:
        assert per_worker[w]["received"] > len(messages) // 10, per_worker  # both took a real share
    assert sum(w["received"] for w in per_worker.values()) == len(messages)
    t = totals(stream_db)
    assert t[(counters.STORED, "")] == len(messages) and t[(counters.DUPLICATE, "")] == 0
    assert_identity(t)


def test_a_worker_started_while_the_database_is_down_waits_for_it(
    private_pg: PrivatePostgres, mqtt_url: str, topic_prefix: str, spawn: Spawn, tmp_path: Path
) -> None:
    """`bydata ingest` (migrations first, then the worker) waits for a database that is not up yet,
    whatever it opens first, and then takes the stream: a deployment whose services start in any order."""
    db_url = private_pg.url
    with psycopg.connect(db_url) as conn:
        upgrade(conn)
        import_provisioning(conn, Provisioning.model_validate(streams.provisioning()))
    private_pg.stop()
    prefix = topic_prefix + "/"
    log_name = f"late-{uuid.uuid4().hex[:6]}.log"
    worker = spawn(
        "-m", "bydata.cli", "ingest",
        env={"BYDATA_DATABASE_URL": db_url, "BYDATA_MQTT_URL": mqtt_url, "BYDATA_INGEST_CLIENT_ID": log_name[:11],
             "BYDATA_INGEST_TOPIC_PREFIX": prefix, "BYDATA_INGEST_METRICS_PORT": "0",
             "BYDATA_INGEST_SESSION_EXPIRY_S": "300", "BYDATA_INGEST_RETRY_MAX_S": "1", "BYDATA_LOG_LEVEL": "INFO"},
        log_name=log_name,
    )  # fmt: skip
    log = tmp_path / log_name
    assert wait_until(lambda: log.exists() and log.read_text().count("database unavailable at start") >= 3, timeout=60)
    assert worker.poll() is None, log.read_text()
    private_pg.start()
    assert wait_until(lambda: "is subscribed" in log.read_text(), timeout=60), log.read_text()
    messages = streams.mixed(prefix, 60)
    streams.publish(mqtt_url, messages)
    _settled(db_url, sum(m.observations for m in messages))
    streams.check_exactly_once(db_url, messages)
