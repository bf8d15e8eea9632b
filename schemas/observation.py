"""The normalised observation: what every vendor format becomes before it is stored.

A frozen, slotted dataclass rather than a pydantic model: ingest builds tens of
thousands per second and has already validated every field on the way in. Its JSON
Schema is still generated (through pydantic's TypeAdapter) and published.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Result = float | int | bool | str | dict[str, Any] | list[Any] | None


@dataclass(frozen=True, slots=True)
class NormalisedObservation:
    """One reading in the shared schema, ready for the store.

    ``phenomenon_time`` is when the value was true (from the payload where it has one);
    ``received_at`` is when Bydata received it; both are kept so late data can be told
    from live data. Results are in the canonical UCUM unit of the Datastream's property.
    """

    datastream_id: int
    phenomenon_time: datetime
    received_at: datetime
    result: Result
    phenomenon_time_end: datetime | None = None
    result_time: datetime | None = None
    quality_flags: int = field(default=0, metadata={"description": "Bit set; see schemas/quality.yaml."})
    parameters: dict[str, Any] | None = None
