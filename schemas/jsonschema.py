"""JSON Schema documents generated from the models, published under ``schemas/json/``.

The committed files are the public contract; ``tests/test_jsonschema.py`` fails when
they drift from the models, and ``bydata schemas export`` rewrites them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from schemas.device_models import DeviceModel
from schemas.observation import NormalisedObservation
from schemas.provisioning import Provisioning
from schemas.sta import ENTITY_MODELS, DatastreamProperties, ThingProperties
from schemas.vocabulary import Vocabulary

BASE_ID = "https://bydata.no/schemas/"
JSON_DIR = Path(__file__).parent / "json"


def _doc(name: str, schema: dict[str, Any], title: str) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE_ID}{name}",
        **schema,
        "title": title,
    }


def documents() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema document."""
    docs: dict[str, dict[str, Any]] = {}
    for entity, model in ENTITY_MODELS.items():
        name = f"sta-{entity}.schema.json"
        docs[name] = _doc(name, model.model_json_schema(by_alias=True), f"SensorThings {entity}")
    plain: dict[str, tuple[type[BaseModel], str]] = {
        "thing-properties.schema.json": (ThingProperties, "Bydata Thing properties"),
        "datastream-properties.schema.json": (DatastreamProperties, "Bydata Datastream properties"),
        "provisioning.schema.json": (Provisioning, "Bydata provisioning file"),
        "device-model.schema.json": (DeviceModel, "Bydata device model"),
        "vocabulary.schema.json": (Vocabulary, "Bydata vocabulary of observed properties"),
    }
    for name, (model, title) in plain.items():
        docs[name] = _doc(name, model.model_json_schema(by_alias=True), title)
    obs = "normalised-observation.schema.json"
    docs[obs] = _doc(obs, TypeAdapter(NormalisedObservation).json_schema(), "Bydata normalised observation")
    return docs


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def export(directory: Path = JSON_DIR) -> list[Path]:
    """Write every document; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, doc in documents().items():
        path = directory / name
        path.write_text(render(doc), encoding="utf-8")
        written.append(path)
    return written
