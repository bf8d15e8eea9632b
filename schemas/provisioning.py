"""The provisioning file: which devices exist, where, and what they belong to.

Simulators write it in their manifest and a municipality writes the same file for
real devices; ``bydata devices import`` reads it. Devices are keyed on their own
identifiers (DevEUI, esp8266 id, meter id, station id), never on names.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.sta import AccessLevel, StationKind

SiteKind = Literal["parking_zone", "building", "area"]


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    alt: float | None = None

    def geojson(self) -> dict[str, Any]:
        coords = [self.lon, self.lat] if self.alt is None else [self.lon, self.lat, self.alt]
        return {"type": "Point", "coordinates": coords}


class Site(BaseModel):
    """A group the case services count over: a parking zone, a school building, an area."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    kind: SiteKind
    name: str
    location: Point | None = None
    capacity: int | None = Field(default=None, ge=0, description="Parking spaces in a parking zone.")
    heated_floor_area: float | None = Field(default=None, gt=0, description="Heated floor area, m2.")
    properties: dict[str, Any] = Field(default_factory=dict)


class Device(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, description="The device's own identifier, unique within Bydata.")
    model: str = Field(description="Device model key (schemas/devices/<key>.yaml).")
    name: str
    site: str | None = None
    location: Point | None = None
    access_level: AccessLevel = "open"
    station_kind: StationKind | None = Field(default=None, description="Overrides the device model's kind.")
    properties: dict[str, Any] = Field(default_factory=dict)


class Provisioning(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1] = 1
    municipality: str | None = None
    sites: list[Site] = Field(default_factory=list)
    devices: list[Device] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Provisioning:
        site_ids = [s.id for s in self.sites]
        if len(set(site_ids)) != len(site_ids):
            raise ValueError("site ids must be unique")
        device_ids = [d.id for d in self.devices]
        if len(set(device_ids)) != len(device_ids):
            raise ValueError("device ids must be unique")
        known = set(site_ids)
        for device in self.devices:
            if device.site is not None and device.site not in known:
                raise ValueError(f"device {device.id!r} names unknown site {device.site!r}")
        return self

    def site(self, site_id: str) -> Site:
        for site in self.sites:
            if site.id == site_id:
                return site
        raise KeyError(site_id)
