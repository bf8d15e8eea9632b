"""Shared constants of the pure ingest tests (payload directory, a fixed receive time)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ingest.types import DeviceBinding
from schemas.device_models import DeviceModel

PAYLOADS = Path(__file__).parent / "payloads"
RECEIVED = datetime(2025, 3, 4, 9, 0, 30, tzinfo=UTC)


def binding_for(
    model: DeviceModel, *, first_id: int = 1, low_cost: bool = False, verified: bool = True
) -> DeviceBinding:
    """A DeviceBinding with one Datastream per property the model maps, numbered from ``first_id``."""
    properties = sorted({f.property for f in model.fields.values()})
    datastreams = {key: first_id + i for i, key in enumerate(properties)}
    return DeviceBinding(f"test-{model.key}", model, datastreams, low_cost=low_cost, verified=verified)
