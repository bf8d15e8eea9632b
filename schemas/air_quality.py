"""Norwegian air-quality classes (``air_quality.yaml``): which class an hourly mean is in."""

from __future__ import annotations

from functools import cache

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas._data import load_yaml
from schemas.vocabulary import vocabulary


class AirQualityClass(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    index: int = Field(ge=1, le=4)
    name: str
    colour: str = Field(pattern=r"^[0-9a-f]{6}$")


class AirQualityClasses(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: int
    classes: tuple[AirQualityClass, ...]
    hourly: dict[str, tuple[float, float, float]]

    @model_validator(mode="after")
    def _check(self) -> AirQualityClasses:
        if [c.index for c in self.classes] != [1, 2, 3, 4]:
            raise ValueError("classes must be indexes 1, 2, 3, 4 in order")
        known = set(vocabulary().keys())
        for key, bounds in self.hourly.items():
            if key not in known:
                raise ValueError(f"{key}: not a vocabulary key")
            if list(bounds) != sorted(set(bounds)):
                raise ValueError(f"{key}: class bounds {bounds} must rise")
        return self

    def index(self, key: str, value: float) -> int:
        """The class (1-4) of an hourly mean of ``key`` in its canonical unit."""
        return 1 + sum(value >= bound for bound in self.hourly[key])

    def of(self, key: str, value: float) -> AirQualityClass:
        return self.classes[self.index(key, value) - 1]


@cache
def air_quality_classes() -> AirQualityClasses:
    return AirQualityClasses.model_validate(load_yaml("air_quality.yaml"))
