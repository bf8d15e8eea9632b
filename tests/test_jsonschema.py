"""The committed JSON Schema documents are the models, and real documents validate against them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from schemas.jsonschema import JSON_DIR, documents, render


@pytest.mark.parametrize("name", sorted(documents()))
def test_committed_schema_matches_models(name: str) -> None:
    path = JSON_DIR / name
    assert path.exists(), f"{path} is missing: run `bydata schemas export`"
    assert path.read_text(encoding="utf-8") == render(documents()[name]), (
        f"{path} drifted from the models: run `bydata schemas export` and commit"
    )


def test_no_stale_schema_files() -> None:
    assert {p.name for p in JSON_DIR.glob("*.json")} == set(documents())


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((JSON_DIR / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


VALID: list[tuple[str, dict[str, Any]]] = [
    (
        "sta-Thing.schema.json",
        {
            "name": "P-plass A-01",
            "description": "Nwave sensor, Kristiansund sentrum",
            "properties": {"parkingZone": "ksu-a", "zoneCapacity": 40},
            "Locations": [
                {
                    "name": "A-01",
                    "description": "space",
                    "encodingType": "application/geo+json",
                    "location": {"type": "Point", "coordinates": [7.73, 63.11]},
                }
            ],
        },
    ),
    (
        "sta-Observation.schema.json",
        {"phenomenonTime": "2024-03-01T07:30:00Z", "result": 41.2, "Datastream": {"@iot.id": 7}},
    ),
    (
        "normalised-observation.schema.json",
        {
            "datastream_id": 7,
            "phenomenon_time": "2024-03-01T07:30:00Z",
            "received_at": "2024-03-01T07:30:02Z",
            "result": 41.2,
            "quality_flags": 64,
        },
    ),
    (
        "provisioning.schema.json",
        {
            "sites": [{"id": "ksu-a", "kind": "parking_zone", "name": "Sentrum", "capacity": 40}],
            "devices": [{"id": "70b3d5e75e000001", "model": "nwave-nps405", "name": "A-01", "site": "ksu-a"}],
        },
    ),
]

INVALID: list[tuple[str, dict[str, Any]]] = [
    ("sta-Thing.schema.json", {"description": "no name"}),
    ("sta-Observation.schema.json", {"phenomenonTime": "2024-03-01T07:30:00Z"}),  # no result
    ("normalised-observation.schema.json", {"datastream_id": "seven", "result": 1}),
    ("provisioning.schema.json", {"sites": [{"id": "x", "kind": "car-park", "name": "y"}]}),
]


@pytest.mark.parametrize(("name", "doc"), VALID)
def test_valid_documents(name: str, doc: dict[str, Any]) -> None:
    _validator(name).validate(doc)


@pytest.mark.parametrize(("name", "doc"), INVALID)
def test_invalid_documents(name: str, doc: dict[str, Any]) -> None:
    assert list(_validator(name).iter_errors(doc)), f"{name} accepted {doc}"


def test_export_writes_every_document(tmp_path: Path) -> None:
    from schemas.jsonschema import export

    written = export(tmp_path)
    assert sorted(p.name for p in written) == sorted(documents())
