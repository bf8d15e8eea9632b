"""Norwegian air-quality classes: bounds from the data file, a value at a bound in the higher class."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.air_quality import AirQualityClasses, air_quality_classes


@pytest.mark.parametrize(
    ("key", "value", "index", "name"),
    [
        ("pm2_5", 0.0, 1, "lite"),
        ("pm2_5", 29.9, 1, "lite"),
        ("pm2_5", 30.0, 2, "moderat"),  # where people with asthma are warned
        ("pm2_5", 149.9, 3, "høy"),
        ("pm2_5", 150.0, 4, "svært høy"),
        ("pm10", 59.99, 1, "lite"),
        ("pm10", 60.0, 2, "moderat"),
        ("pm10", 400.0, 4, "svært høy"),
        ("no2", 199.0, 2, "moderat"),
        ("no2", 200.0, 3, "høy"),
    ],
)
def test_class_of_an_hourly_mean(key: str, value: float, index: int, name: str) -> None:
    classes = air_quality_classes()
    assert classes.index(key, value) == index
    assert classes.of(key, value).name == name


def test_nilu_colours() -> None:
    assert [c.colour for c in air_quality_classes().classes] == ["6ee86e", "ff9900", "ff0000", "990099"]


def test_unknown_key() -> None:
    with pytest.raises(KeyError):
        air_quality_classes().index("indoor_co2", 900)


@pytest.mark.parametrize(
    "hourly",
    [{"pm10": [60, 60, 400]}, {"pm10": [120, 60, 400]}, {"not_a_property": [1, 2, 3]}],
)
def test_bad_files_are_refused(hourly: dict[str, list[float]]) -> None:
    data = air_quality_classes().model_dump()
    with pytest.raises(ValidationError):
        AirQualityClasses.model_validate({**data, "hourly": hourly})
