"""Shared pieces of the ingest runtime tests: a small provisioning, payload builders."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.provisioning import Provisioning

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
