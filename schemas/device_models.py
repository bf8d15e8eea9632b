"""Device models (``schemas/devices/*.yaml``): how a vendor's fields map to the vocabulary.

Adding a sensor model that uses an existing envelope and codec is a new YAML file here,
not code. Every model is checked against the vocabulary and the unit registry on load,
so a typo fails at start-up, not at the first message.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas import units
from schemas.sta import StationKind
from schemas.vocabulary import vocabulary

Envelope = Literal["tts_v3", "chirpstack_v4", "sensor_community", "nilu", "amsreader", "senml", "sta"]


class FieldMap(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    property: str = Field(description="Vocabulary key of the observed property.")
    unit: str | None = Field(
        default=None,
        description="Unit of the field when the payload does not state one (alias or UCUM).",
    )


class SensorInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    description: str
    encoding_type: str
    metadata: str


class Match(BaseModel):
    """How an unknown device reveals its model (used by ``auto`` provisioning)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tts_version_ids: dict[str, str] | None = None
    chirpstack_profile: str | None = None


class DeviceModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    vendor: str
    name: str
    case: Literal["air", "parking", "energy"]
    envelopes: tuple[Envelope, ...]
    codec: str | None = Field(default=None, description="LoRaWAN payload codec (ingest/codecs/<codec>.py).")
    codec_options: dict[str, Any] = Field(default_factory=dict)
    station_kind: StationKind | None = None
    match: Match = Match()
    sensor: SensorInfo
    fields: dict[str, FieldMap]
    ignore: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> DeviceModel:
        vocab = vocabulary()
        for name, fmap in self.fields.items():
            try:
                prop = vocab.get(fmap.property)
            except KeyError as exc:
                raise ValueError(f"{self.key}: field {name!r}: {exc.args[0]}") from None
            if fmap.unit is not None and prop.result_type == "number":
                try:
                    units.converter(fmap.unit, prop.unit)
                except units.UnitError as exc:
                    raise ValueError(f"{self.key}: field {name!r}: {exc}") from exc
        overlap = set(self.fields) & set(self.ignore)
        if overlap:
            raise ValueError(f"{self.key}: fields both mapped and ignored: {sorted(overlap)}")
        return self


def load_device_models(directory: Path | None = None) -> dict[str, DeviceModel]:
    """Read every ``*.yaml`` in ``directory`` (default: the shipped ``schemas/devices``)."""
    if directory is None:
        root = resources.files("schemas").joinpath("devices")
        texts = [(p.name, p.read_text(encoding="utf-8")) for p in root.iterdir() if p.name.endswith(".yaml")]
    else:
        texts = [(p.name, p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.yaml"))]
    models: dict[str, DeviceModel] = {}
    for filename, text in sorted(texts):
        model = DeviceModel.model_validate(yaml.safe_load(text))
        if f"{model.key}.yaml" != filename:
            raise ValueError(f"{filename}: key {model.key!r} must match the file name")
        models[model.key] = model
    return models


@cache
def device_models() -> dict[str, DeviceModel]:
    """The device models shipped with Bydata."""
    return load_device_models()
