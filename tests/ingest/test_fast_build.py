"""The fast builders make exactly the objects the dataclass constructors make, still frozen."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from ingest._build import decoded, observation, raw_message, reading
from ingest.types import Decoded, RawMessage, Reading
from schemas.observation import NormalisedObservation

T = datetime(2025, 3, 4, 9, tzinfo=UTC)


def test_same_objects_as_the_constructors() -> None:
    r = reading("co2", 776, "ppm", T, None, True)
    assert r == Reading("co2", 776, "ppm", T, None, True)
    assert hash(r) == hash(Reading("co2", 776, "ppm", T, None, True))
    assert decoded("d", (r,), "m", "state", {"a": 1}) == Decoded("d", (r,), "m", "state", {"a": 1})
    o = observation(7, T, T, 1.5, None, T, 3, {"p": 1})
    assert o == NormalisedObservation(7, T, T, 1.5, None, T, 3, {"p": 1})
    m = raw_message("a/b", b"{}", T)
    assert m == RawMessage("a/b", b"{}", T) and hash(m) == hash(RawMessage("a/b", b"{}", T))


def test_still_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        reading("co2", 776, None, T).value = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        observation(7, T, T, 1.5, None, None, 0, None).result = 2.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        raw_message("a/b", b"{}", T).topic = "c"  # type: ignore[misc]
