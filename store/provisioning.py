"""Provisioning in the database: sites, devices and the SensorThings entities behind them.

A device becomes a Thing (with its Location), one Sensor per device model, one
ObservedProperty per vocabulary key and one Datastream per device and mapped property.
Everything is keyed on identifiers, never on names: devices on their own id, Sensors on
the device model key, ObservedProperties on the vocabulary key, Datastreams on
``(device_id, property_key)``. Importing the same file twice changes nothing; importing
an edited file updates what changed and keeps history (a moved device gets a new Location
and a HistoricalLocation, a dropped property keeps its Datastream and its observations).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from schemas.device_models import DeviceModel, device_models
from schemas.provisioning import Device, Provisioning, Site
from schemas.sta import ENCODING_GEOJSON, DatastreamProperties, ThingProperties
from schemas.vocabulary import PropertyDef, vocabulary

# One provisioning change at a time per database: imports and auto-provisioning by several
# ingest workers must not create the same Sensor or device twice.
_LOCK_KEY = 0x6279_6461_7470  # "bydatp"


class ProvisioningError(ValueError):
    """The provisioning file names something Bydata does not know (a device model, a property)."""


@dataclass(slots=True)
class ImportReport:
    sites_created: int = 0
    sites_updated: int = 0
    devices_created: int = 0
    devices_updated: int = 0
    devices_unchanged: int = 0
    datastreams_created: int = 0
    datastreams_updated: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class BindingRow:
    """A provisioned device as ingest needs it: model, trust, and its Datastream per property."""

    device_id: str
    model: str
    verified: bool
    station_kind: str | None
    datastreams: Mapping[str, int] = field(default_factory=dict)


def _lock(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))


def mapped_properties(model: DeviceModel) -> dict[str, str]:
    """Vocabulary key -> the first vendor field mapped to it (one Datastream per property)."""
    found: dict[str, str] = {}
    for field_name, fmap in model.fields.items():
        found.setdefault(fmap.property, field_name)
    return found


def import_provisioning(
    conn: psycopg.Connection[Any],
    provisioning: Provisioning,
    models: Mapping[str, DeviceModel] | None = None,
) -> ImportReport:
    """Create or update every site and device of ``provisioning`` in one transaction."""
    models = device_models() if models is None else models
    unknown = sorted({d.model for d in provisioning.devices} - set(models))
    if unknown:
        raise ProvisioningError(f"unknown device model(s) {unknown}; known: {sorted(models)}")
    report = ImportReport()
    with conn.transaction():
        _lock(conn)
        for new_site in provisioning.sites:
            created = _upsert_site(conn, new_site)
            if created is True:
                report.sites_created += 1
            elif created is False:
                report.sites_updated += 1
        sites = {s.id: s for s in provisioning.sites}
        existing_sites = _site_rows(conn, {d.site for d in provisioning.devices if d.site and d.site not in sites})
        for device in provisioning.devices:
            site: Site | None = sites.get(device.site) if device.site else None
            if device.site and site is None:
                site = existing_sites.get(device.site)
                if site is None:
                    raise ProvisioningError(
                        f"device {device.id!r} names site {device.site!r}, which is not provisioned"
                    )
            outcome = _upsert_device(conn, device, models[device.model], site=site, verified=True, report=report)
            if outcome == "created":
                report.devices_created += 1
            elif outcome == "updated":
                report.devices_updated += 1
            else:
                report.devices_unchanged += 1
    return report


def auto_provision(conn: psycopg.Connection[Any], device_id: str, model: DeviceModel) -> bool:
    """Create an unknown device of a known model, marked unverified; False if it already exists."""
    with conn.transaction():
        _lock(conn)
        if conn.execute("SELECT 1 FROM devices WHERE id = %s", (device_id,)).fetchone():
            return False
        device = Device(id=device_id, model=model.key, name=f"{model.name} {device_id}")
        _upsert_device(conn, device, model, site=None, verified=False, report=ImportReport())
    return True


def _upsert_site(conn: psycopg.Connection[Any], site: Site) -> bool | None:
    """True if created, False if updated, None if unchanged."""
    row = conn.execute(
        "INSERT INTO sites AS s (id, kind, name, capacity, heated_floor_area, location, properties)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name,"
        " capacity = EXCLUDED.capacity, heated_floor_area = EXCLUDED.heated_floor_area,"
        " location = EXCLUDED.location, properties = EXCLUDED.properties"
        " WHERE (s.kind, s.name, s.capacity, s.heated_floor_area, s.location, s.properties)"
        " IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.name, EXCLUDED.capacity, EXCLUDED.heated_floor_area,"
        " EXCLUDED.location, EXCLUDED.properties)"
        " RETURNING (xmax = 0)",
        (
            site.id,
            site.kind,
            site.name,
            site.capacity,
            site.heated_floor_area,
            Jsonb(site.location.geojson()) if site.location else None,
            Jsonb(site.properties),
        ),
    ).fetchone()
    return None if row is None else bool(row[0])


def _site_rows(conn: psycopg.Connection[Any], ids: Iterable[str]) -> dict[str, Site]:
    wanted = sorted(ids)
    if not wanted:
        return {}
    rows = conn.execute(
        "SELECT id, kind, name, capacity, heated_floor_area, location, properties FROM sites WHERE id = ANY(%s)",
        (wanted,),
    ).fetchall()
    sites = {}
    for sid, kind, name, capacity, area, location, props in rows:
        point = None
        if location and location.get("type") == "Point":
            lon, lat, *alt = location["coordinates"]
            point = {"lat": lat, "lon": lon, "alt": alt[0] if alt else None}
        sites[sid] = Site.model_validate(
            {
                "id": sid,
                "kind": kind,
                "name": name,
                "capacity": capacity,
                "heated_floor_area": area,
                "location": point,
                "properties": props or {},
            }
        )
    return sites


def thing_properties(device: Device, model: DeviceModel, site: Site | None, *, verified: bool) -> dict[str, Any]:
    """The Thing's properties (``schemas.sta.ThingProperties``) for a provisioned device."""
    values: dict[str, Any] = {
        "deviceId": device.id,
        "deviceModel": model.key,
        "case": model.case,
        "stationKind": device.station_kind or model.station_kind,
        "accessLevel": device.access_level,
        "verified": verified,
    }
    if site is not None:
        values["site"] = site.id
        if site.kind == "parking_zone":
            values["parkingZone"] = site.id
            values["zoneCapacity"] = site.capacity
        elif site.kind == "building":
            values["building"] = site.id
            values["heatedFloorArea"] = site.heated_floor_area
    known = ThingProperties.model_validate(values).model_dump(by_alias=True, exclude_none=True)
    return {**device.properties, **known}


def _sensor_id(conn: psycopg.Connection[Any], model: DeviceModel) -> int:
    props = {"deviceModel": model.key, "vendor": model.vendor}
    row = conn.execute(
        "SELECT id FROM sensors WHERE properties ->> 'deviceModel' = %s ORDER BY id LIMIT 1", (model.key,)
    ).fetchone()
    values = (model.name, model.sensor.description, model.sensor.encoding_type, Jsonb(model.sensor.metadata))
    if row is not None:
        conn.execute(
            "UPDATE sensors SET name = %s, description = %s, encoding_type = %s, metadata = %s,"
            " properties = coalesce(properties, '{}') || %s WHERE id = %s"
            " AND (name, description, encoding_type, metadata) IS DISTINCT FROM (%s, %s, %s, %s)",
            (*values, Jsonb(props), row[0], *values),
        )
        return int(row[0])
    created = conn.execute(
        "INSERT INTO sensors (name, description, encoding_type, metadata, properties)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (*values, Jsonb(props)),
    ).fetchone()
    assert created is not None
    return int(created[0])


def _observed_property_id(conn: psycopg.Connection[Any], prop: PropertyDef) -> int:
    row = conn.execute(
        "SELECT id FROM observed_properties WHERE properties ->> 'propertyKey' = %s ORDER BY id LIMIT 1",
        (prop.key,),
    ).fetchone()
    values = (prop.name, prop.definition, prop.description)
    if row is not None:
        conn.execute(
            "UPDATE observed_properties SET name = %s, definition = %s, description = %s WHERE id = %s"
            " AND (name, definition, description) IS DISTINCT FROM (%s, %s, %s)",
            (*values, row[0], *values),
        )
        return int(row[0])
    created = conn.execute(
        "INSERT INTO observed_properties (name, definition, description, properties)"
        " VALUES (%s, %s, %s, %s) RETURNING id",
        (*values, Jsonb({"propertyKey": prop.key})),
    ).fetchone()
    assert created is not None
    return int(created[0])


def _set_location(conn: psycopg.Connection[Any], thing_id: int, name: str, geojson: dict[str, Any]) -> bool:
    """Point the Thing at ``geojson``; a move creates a new Location and a HistoricalLocation."""
    current = conn.execute(
        "SELECT l.id, l.location FROM thing_locations tl JOIN locations l ON l.id = tl.location_id"
        " WHERE tl.thing_id = %s ORDER BY l.id DESC",
        (thing_id,),
    ).fetchall()
    if len(current) == 1 and current[0][1] == geojson:
        return False
    row = conn.execute(
        "INSERT INTO locations (name, description, encoding_type, location) VALUES (%s, %s, %s, %s) RETURNING id",
        (name, f"Location of {name}", ENCODING_GEOJSON, Jsonb(geojson)),
    ).fetchone()
    assert row is not None
    location_id = int(row[0])
    conn.execute("DELETE FROM thing_locations WHERE thing_id = %s", (thing_id,))
    conn.execute("INSERT INTO thing_locations (thing_id, location_id) VALUES (%s, %s)", (thing_id, location_id))
    hist = conn.execute(
        "INSERT INTO historical_locations (thing_id, time) VALUES (%s, now()) RETURNING id", (thing_id,)
    ).fetchone()
    assert hist is not None
    conn.execute(
        "INSERT INTO historical_location_locations (historical_location_id, location_id) VALUES (%s, %s)",
        (hist[0], location_id),
    )
    return True


def _upsert_device(
    conn: psycopg.Connection[Any],
    device: Device,
    model: DeviceModel,
    *,
    site: Site | None,
    verified: bool,
    report: ImportReport,
) -> str:
    """Create or update one device and its entities; returns created | updated | unchanged."""
    props = thing_properties(device, model, site, verified=verified)
    description = f"{model.vendor} {model.name}, device {device.id}"
    existing = conn.execute("SELECT thing_id FROM devices WHERE id = %s", (device.id,)).fetchone()
    changed = False
    if existing is None:
        row = conn.execute(
            "INSERT INTO things (name, description, properties) VALUES (%s, %s, %s) RETURNING id",
            (device.name, description, Jsonb(props)),
        ).fetchone()
        assert row is not None
        thing_id = int(row[0])
        conn.execute(
            "INSERT INTO devices (id, model, thing_id, site_id, verified) VALUES (%s, %s, %s, %s, %s)",
            (device.id, model.key, thing_id, site.id if site else None, verified),
        )
    else:
        thing_id = int(existing[0])
        updated = conn.execute(
            "UPDATE things SET name = %s, description = %s, properties = %s WHERE id = %s"
            " AND (name, description, properties) IS DISTINCT FROM (%s, %s, %s)",
            (device.name, description, Jsonb(props), thing_id, device.name, description, Jsonb(props)),
        )
        changed |= updated.rowcount > 0
        updated = conn.execute(
            "UPDATE devices SET model = %s, site_id = %s, verified = %s, updated_at = now() WHERE id = %s"
            " AND (model, site_id, verified) IS DISTINCT FROM (%s, %s, %s)",
            (model.key, site.id if site else None, verified, device.id, model.key, site.id if site else None, verified),
        )
        changed |= updated.rowcount > 0
    point = device.location or (site.location if site else None)
    if point is not None:
        changed |= _set_location(conn, thing_id, device.name, point.geojson()) and existing is not None
    sensor_id = _sensor_id(conn, model)
    vocab = vocabulary()
    for key, vendor_field in mapped_properties(model).items():
        prop = vocab.get(key)
        ds_props = DatastreamProperties.model_validate(
            {
                "propertyKey": key,
                "accessLevel": device.access_level,
                "cumulative": prop.cumulative,
                "field": vendor_field,
            }
        ).model_dump(by_alias=True, exclude_none=True)
        values = (
            f"{device.name} {prop.name}",
            f"{prop.name}{f' ({prop.symbol})' if prop.symbol else ''} from {model.name} {device.id}",
            Jsonb(prop.unit_of_measurement()),
            prop.observation_type,
            Jsonb(ds_props),
            thing_id,
            sensor_id,
            _observed_property_id(conn, prop),
        )
        row = conn.execute(
            "INSERT INTO datastreams AS d (name, description, unit_of_measurement, observation_type, properties,"
            " thing_id, sensor_id, observed_property_id, device_id, property_key)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (device_id, property_key) DO UPDATE SET name = EXCLUDED.name,"
            " description = EXCLUDED.description, unit_of_measurement = EXCLUDED.unit_of_measurement,"
            " observation_type = EXCLUDED.observation_type, properties = EXCLUDED.properties,"
            " thing_id = EXCLUDED.thing_id, sensor_id = EXCLUDED.sensor_id,"
            " observed_property_id = EXCLUDED.observed_property_id"
            " WHERE (d.name, d.description, d.unit_of_measurement, d.observation_type, d.properties, d.thing_id,"
            " d.sensor_id, d.observed_property_id) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.description,"
            " EXCLUDED.unit_of_measurement, EXCLUDED.observation_type, EXCLUDED.properties, EXCLUDED.thing_id,"
            " EXCLUDED.sensor_id, EXCLUDED.observed_property_id)"
            " RETURNING (xmax = 0)",
            (*values, device.id, key),
        ).fetchone()
        if row is not None:
            if row[0]:
                report.datastreams_created += 1
            else:
                report.datastreams_updated += 1
            changed |= existing is not None
    if existing is None:
        return "created"
    return "updated" if changed else "unchanged"


def load_bindings(conn: psycopg.Connection[Any], device_ids: Sequence[str] | None = None) -> dict[str, BindingRow]:
    """Provisioned devices with their Datastream per property (all, or the ids given)."""
    query = (
        "SELECT d.id, d.model, d.verified, t.properties ->> 'stationKind',"
        " coalesce(jsonb_object_agg(ds.property_key, ds.id) FILTER (WHERE ds.id IS NOT NULL), '{}')"
        " FROM devices d JOIN things t ON t.id = d.thing_id"
        " LEFT JOIN datastreams ds ON ds.device_id = d.id AND ds.property_key IS NOT NULL"
    )
    params: tuple[Any, ...] = ()
    if device_ids is not None:
        query += " WHERE d.id = ANY(%s)"
        params = (list(device_ids),)
    query += " GROUP BY d.id, t.properties"
    return {
        row[0]: BindingRow(
            device_id=row[0],
            model=row[1],
            verified=bool(row[2]),
            station_kind=row[3],
            datastreams={str(k): int(v) for k, v in row[4].items()},
        )
        for row in conn.execute(query, params)
    }


def list_devices(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Every provisioned device with its Thing, site, trust and number of Datastreams."""
    cur = conn.execute(
        "SELECT d.id, d.model, d.thing_id, t.name, d.site_id, d.verified, count(ds.id) AS datastreams,"
        " d.created_at, d.updated_at"
        " FROM devices d JOIN things t ON t.id = d.thing_id LEFT JOIN datastreams ds ON ds.device_id = d.id"
        " GROUP BY d.id, t.name ORDER BY d.id"
    )
    names = [c.name for c in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur]


def datastream_binding(conn: psycopg.Connection[Any], datastream_id: int) -> tuple[str | None, str | None] | None:
    """(vocabulary key, device id) of a Datastream, for SensorThings creates; None if it does not exist.

    The key is the Datastream's own ``property_key`` or, for Datastreams created through the
    API, that of its ObservedProperty.
    """
    row = conn.execute(
        "SELECT coalesce(ds.property_key, op.properties ->> 'propertyKey'), ds.device_id"
        " FROM datastreams ds JOIN observed_properties op ON op.id = ds.observed_property_id WHERE ds.id = %s",
        (datastream_id,),
    ).fetchone()
    return None if row is None else (row[0], row[1])
