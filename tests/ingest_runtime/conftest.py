"""Shared pieces of the ingest runtime tests: a small provisioning, payload builders."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from ingest.service import Creates, IngestOptions, IngestService
from schemas.device_models import DeviceModel
from schemas.provisioning import Provisioning
from store import counters
from store.provisioning import import_provisioning

from . import streams

PROVISIONING: dict[str, Any] = {
    "version": 1,
    "municipality": "Testby",
    "sites": [
        {
            "id": "zone-a",
            "kind": "parking_zone",
            "name": "Zone A",
            "capacity": 12,
            "location": {"lat": 63.11, "lon": 7.73},
        },
        {"id": "school-1", "kind": "building", "name": "School 1", "heated_floor_area": 2400.0},
    ],
    "devices": [
        {
            "id": "13597771",
            "model": "airrohr-sds011-bme280",
            "name": "Bodø sentrum airrohr",
            "location": {"lat": 67.2804, "lon": 14.4049},
        },
        {"id": "70b3d5e75e00a001", "model": "nwave-nps405", "name": "Space A1", "site": "zone-a"},
        {
            "id": "a81758fffe000001",
            "model": "elsys-ers-co2",
            "name": "Classroom 101",
            "site": "school-1",
            "access_level": "restricted",
        },
    ],
}


@pytest.fixture
def provisioning() -> Provisioning:
    return Provisioning.model_validate(PROVISIONING)


@contextmanager
def running_ingest(
    db_url: str,
    mqtt_url: str,
    *,
    models: Mapping[str, DeviceModel] | None = None,
    creates: Creates | None = None,
    **options: Any,
) -> Iterator[IngestService]:
    """An ingest worker in this process (threads), subscribed when the block starts."""
    options.setdefault("worker", f"test-{uuid.uuid4().hex[:8]}")
    options.setdefault("session_expiry_s", 300)
    options.setdefault("batch_max_age_s", 0.05)
    service = IngestService(db_url, mqtt_url, IngestOptions(**options), models=models, creates=creates)
    stop = threading.Event()
    ready = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            service.run(stop, ready=ready.set)
        except BaseException as exc:
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=target, name="test-ingest", daemon=True)
    thread.start()
    assert ready.wait(30), "ingest did not subscribe within 30 s"
    assert not errors, errors
    try:
        yield service
    finally:
        stop.set()
        thread.join(60)
        assert not thread.is_alive(), "ingest did not stop"
        assert not errors, errors


def totals(db_url: str) -> Counter[tuple[str, str]]:
    with psycopg.connect(db_url) as conn:
        return counters.totals(conn)


def assert_identity(t: Counter[tuple[str, str]]) -> None:
    quarantined = sum(v for (name, _), v in t.items() if name == counters.QUARANTINED)
    assert t[(counters.RECEIVED, "")] == t[(counters.STORED, "")] + t[(counters.DUPLICATE, "")] + quarantined, t


@pytest.fixture
def stream_db(migrated_db: str) -> str:
    """A migrated scratch database with the stream devices provisioned."""
    with psycopg.connect(migrated_db) as conn:
        import_provisioning(conn, Provisioning.model_validate(streams.provisioning()))
    return migrated_db
