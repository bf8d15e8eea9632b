"""The OGC SensorThings API 1.1 data model (OGC 18-088), shared by ingest and the API.

Field names are the standard's JSON names (aliases), so these models validate request
bodies as clients send them and document them as JSON Schema. Navigation properties
hold nested entities for deep insert, or links (``{"@iot.id": 7}``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

ENCODING_GEOJSON = "application/geo+json"
ENCODING_PDF = "application/pdf"
ENCODING_SENSORML = "http://www.opengis.net/doc/IS/SensorML/2.0"

AccessLevel = Literal["open", "restricted"]
StationKind = Literal["reference", "low-cost"]


def parse_time_object(text: str) -> tuple[datetime, datetime | None]:
    """Parse an ISO 8601 instant or ``start/end`` interval (TM_Object) into aware datetimes."""
    start_text, sep, end_text = text.partition("/")
    start = datetime.fromisoformat(start_text)
    end = datetime.fromisoformat(end_text) if sep else None
    for value in (start, end):
        if value is not None and value.tzinfo is None:
            raise ValueError(f"time {text!r} has no zone; SensorThings times need one (e.g. Z)")
    if end is not None and end < start:
        raise ValueError(f"interval {text!r} ends before it starts")
    return start, end


def format_time(start: datetime, end: datetime | None = None) -> str:
    """Inverse of :func:`parse_time_object`, in UTC with ``Z``."""

    def one(t: datetime) -> str:
        return t.astimezone(UTC).isoformat().replace("+00:00", "Z")

    return one(start) if end is None else f"{one(start)}/{one(end)}"


def _check_time_object(value: str | None) -> str | None:
    if value is not None:
        parse_time_object(value)
    return value


class _Entity(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", serialize_by_alias=True)

    iot_id: int | None = Field(default=None, alias="@iot.id", description="Server-assigned integer id.")


class Ref(BaseModel):
    """A link to an existing entity by id."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", serialize_by_alias=True)
    iot_id: int = Field(alias="@iot.id")


class UnitOfMeasurement(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str | None = None
    symbol: str | None = None
    definition: str | None = Field(default=None, description="URI; Bydata uses UCUM codes.")


class ThingProperties(BaseModel):
    """Thing properties Bydata defines for its case services; any other key is kept as is."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    device_id: str | None = Field(default=None, alias="deviceId", description="The device's own identifier.")
    device_model: str | None = Field(default=None, alias="deviceModel", description="Key in schemas/devices/.")
    case: Literal["air", "parking", "energy"] | None = None
    site: str | None = Field(default=None, description="Provisioning site: parking zone, building or area.")
    parking_zone: str | None = Field(default=None, alias="parkingZone")
    zone_capacity: int | None = Field(default=None, alias="zoneCapacity", ge=0)
    building: str | None = None
    heated_floor_area: float | None = Field(
        default=None, alias="heatedFloorArea", gt=0, description="Heated floor area, m2 (NS 3031 BRA)."
    )
    station_kind: StationKind | None = Field(default=None, alias="stationKind")
    access_level: AccessLevel = Field(default="open", alias="accessLevel")
    verified: bool = Field(default=True, description="False for devices created by auto provisioning.")


class DatastreamProperties(BaseModel):
    """Datastream properties Bydata defines; any other key is kept as is."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    property_key: str | None = Field(default=None, alias="propertyKey", description="Key in the vocabulary.")
    access_level: AccessLevel = Field(default="open", alias="accessLevel")
    cumulative: bool = False
    field: str | None = Field(default=None, description="Vendor field this Datastream is decoded from.")


class Location(_Entity):
    name: str
    description: str
    encoding_type: str = Field(default=ENCODING_GEOJSON, alias="encodingType")
    location: dict[str, Any] = Field(description="GeoJSON geometry or feature.")
    properties: dict[str, Any] | None = None
    things: list[Thing | Ref] | None = Field(default=None, alias="Things")


class HistoricalLocation(_Entity):
    time: AwareDatetime
    thing: Thing | Ref | None = Field(default=None, alias="Thing")
    locations: list[Location | Ref] | None = Field(default=None, alias="Locations")


class Sensor(_Entity):
    name: str
    description: str
    encoding_type: str = Field(alias="encodingType")
    metadata: Any
    properties: dict[str, Any] | None = None


class ObservedProperty(_Entity):
    name: str
    definition: str
    description: str
    properties: dict[str, Any] | None = None


class FeatureOfInterest(_Entity):
    name: str
    description: str
    encoding_type: str = Field(default=ENCODING_GEOJSON, alias="encodingType")
    feature: dict[str, Any]
    properties: dict[str, Any] | None = None


class Observation(_Entity):
    phenomenon_time: str | None = Field(
        default=None, alias="phenomenonTime", description="ISO 8601 instant or interval; default: now."
    )
    result: Any
    result_time: AwareDatetime | None = Field(default=None, alias="resultTime")
    result_quality: Any | None = Field(default=None, alias="resultQuality")
    valid_time: str | None = Field(default=None, alias="validTime")
    parameters: dict[str, Any] | None = None
    datastream: Datastream | Ref | None = Field(default=None, alias="Datastream")
    feature_of_interest: FeatureOfInterest | Ref | None = Field(default=None, alias="FeatureOfInterest")

    _times = field_validator("phenomenon_time", "valid_time")(_check_time_object)


class Datastream(_Entity):
    name: str
    description: str
    unit_of_measurement: UnitOfMeasurement = Field(alias="unitOfMeasurement")
    observation_type: str = Field(alias="observationType")
    observed_area: dict[str, Any] | None = Field(default=None, alias="observedArea")
    phenomenon_time: str | None = Field(default=None, alias="phenomenonTime")
    result_time: str | None = Field(default=None, alias="resultTime")
    properties: dict[str, Any] | None = None
    thing: Thing | Ref | None = Field(default=None, alias="Thing")
    sensor: Sensor | Ref | None = Field(default=None, alias="Sensor")
    observed_property: ObservedProperty | Ref | None = Field(default=None, alias="ObservedProperty")
    observations: list[Observation] | None = Field(default=None, alias="Observations")

    _times = field_validator("phenomenon_time", "result_time")(_check_time_object)


class Thing(_Entity):
    name: str
    description: str
    properties: dict[str, Any] | None = None
    locations: list[Location | Ref] | None = Field(default=None, alias="Locations")
    historical_locations: list[HistoricalLocation | Ref] | None = Field(default=None, alias="HistoricalLocations")
    datastreams: list[Datastream | Ref] | None = Field(default=None, alias="Datastreams")


ENTITY_MODELS: dict[str, type[BaseModel]] = {
    "Thing": Thing,
    "Location": Location,
    "HistoricalLocation": HistoricalLocation,
    "Sensor": Sensor,
    "ObservedProperty": ObservedProperty,
    "Datastream": Datastream,
    "Observation": Observation,
    "FeatureOfInterest": FeatureOfInterest,
}

for _model in (*ENTITY_MODELS.values(),):
    _model.model_rebuild()
