"""The published vocabulary of observed properties (``vocabulary.yaml``), typed."""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas import units
from schemas._data import load_yaml

ResultType = Literal["number", "boolean", "text", "json"]

# SensorThings observationType URIs (OGC 18-088, table 12) per result type.
OBSERVATION_TYPES: dict[str, str] = {
    "number": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
    "boolean": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_TruthObservation",
    "text": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CategoryObservation",
    "json": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Observation",
}
UCUM_DEFINITION = "http://unitsofmeasure.org/ucum.html#"


class SpikeRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    delta: float = Field(gt=0, description="Largest believable change in the canonical unit.")
    within_s: float = Field(gt=0, description="Time window for that change, seconds.")


class StuckRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    count: int = Field(ge=2, description="Identical readings in a row that mark a stuck sensor.")


class BooleanText(BaseModel):
    """Texts read as a boolean result (compared trimmed and lower-cased)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    true: tuple[str, ...] = Field(min_length=1, description="Texts that mean true.")
    false: tuple[str, ...] = Field(min_length=1, description="Texts that mean false.")

    @model_validator(mode="after")
    def _disjoint(self) -> BooleanText:
        both = {w.strip().lower() for w in self.true} & {w.strip().lower() for w in self.false}
        if both:
            raise ValueError(f"boolean_text: {sorted(both)} would mean both true and false")
        return self


class PropertyDef(BaseModel):
    """One observed property: identity, meaning, canonical unit and plausibility rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    description: str
    definition: str
    unit: str
    symbol: str
    result_type: ResultType
    range: tuple[float, float]
    cumulative: bool = False
    spike: SpikeRule | None = None
    stuck: StuckRule | None = None

    @model_validator(mode="after")
    def _check(self) -> PropertyDef:
        if not units.is_valid(self.unit):
            raise ValueError(f"{self.key}: unit {self.unit!r} is not UCUM")
        if self.range[0] > self.range[1]:
            raise ValueError(f"{self.key}: range {self.range} is empty")
        return self

    @property
    def observation_type(self) -> str:
        return OBSERVATION_TYPES[self.result_type]

    def unit_of_measurement(self) -> dict[str, str]:
        """SensorThings ``unitOfMeasurement`` for Datastreams of this property."""
        return {"name": self.unit, "symbol": self.symbol, "definition": UCUM_DEFINITION + self.unit}


class Vocabulary(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int
    base_uri: str
    boolean_text: BooleanText
    properties: tuple[PropertyDef, ...]

    @model_validator(mode="after")
    def _unique(self) -> Vocabulary:
        keys = [p.key for p in self.properties]
        dupes = {k for k in keys if keys.count(k) > 1}
        if dupes:
            raise ValueError(f"duplicate property keys: {sorted(dupes)}")
        return self

    def get(self, key: str) -> PropertyDef:
        for prop in self.properties:
            if prop.key == key:
                return prop
        raise KeyError(f"unknown observed property {key!r}")

    def keys(self) -> list[str]:
        return [p.key for p in self.properties]


@cache
def vocabulary() -> Vocabulary:
    """The vocabulary shipped with Bydata."""
    return Vocabulary.model_validate(load_yaml("vocabulary.yaml"))
