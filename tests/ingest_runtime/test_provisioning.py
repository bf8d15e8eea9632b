"""Provisioning into the database: the SensorThings entities behind each device, idempotently."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from schemas.device_models import device_models
from schemas.provisioning import Provisioning
from schemas.sta import ThingProperties
from schemas.vocabulary import vocabulary
from store.provisioning import (
    ProvisioningError,
    auto_provision,
    import_provisioning,
    list_devices,
    load_bindings,
    mapped_properties,
)

from .conftest import PROVISIONING

TABLES = (
    "sites",
    "devices",
    "things",
    "locations",
    "thing_locations",
    "historical_locations",
    "sensors",
    "observed_properties",
    "datastreams",
)


def _counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    count = sql.SQL("SELECT count(*) FROM {}")
    return {t: conn.execute(count.format(sql.Identifier(t))).fetchone()[0] for t in TABLES}  # type: ignore[index]


def test_import_creates_every_entity(migrated_db: str, provisioning: Provisioning) -> None:
    models = device_models()
    with psycopg.connect(migrated_db) as conn:
        report = import_provisioning(conn, provisioning)
        assert report.devices_created == 3 and report.sites_created == 2
        expected_streams = sum(len(mapped_properties(models[d.model])) for d in provisioning.devices)
        assert report.datastreams_created == expected_streams

        counts = _counts(conn)
        assert counts["devices"] == counts["things"] == 3
        assert counts["sensors"] == 3  # one per device model
        keys = {k for d in provisioning.devices for k in mapped_properties(models[d.model])}
        assert counts["observed_properties"] == len(keys)  # one per vocabulary key
        assert counts["datastreams"] == expected_streams
        # every device here has a location (its own or its site's); the building has none
        assert counts["locations"] == counts["thing_locations"] == counts["historical_locations"] == 2

        props = conn.execute(
            "SELECT t.properties FROM devices d JOIN things t ON t.id = d.thing_id WHERE d.id = %s",
            ("70b3d5e75e00a001",),
        ).fetchone()[0]  # type: ignore[index]
        parsed = ThingProperties.model_validate(props)
        assert parsed.device_id == "70b3d5e75e00a001"
        assert parsed.device_model == "nwave-nps405"
        assert parsed.case == "parking"
        assert parsed.parking_zone == "zone-a" and parsed.zone_capacity == 12
        assert parsed.verified is True

        school = conn.execute(
            "SELECT t.properties FROM devices d JOIN things t ON t.id = d.thing_id WHERE d.id = %s",
            ("a81758fffe000001",),
        ).fetchone()[0]  # type: ignore[index]
        assert school["building"] == "school-1" and school["heatedFloorArea"] == 2400.0
        assert school["accessLevel"] == "restricted"
        air = conn.execute(
            "SELECT t.properties FROM devices d JOIN things t ON t.id = d.thing_id WHERE d.id = %s", ("13597771",)
        ).fetchone()[0]  # type: ignore[index]
        assert air["stationKind"] == "low-cost"

        # the parking space inherits its zone's location
        loc = conn.execute(
            "SELECT l.location FROM devices d JOIN thing_locations tl ON tl.thing_id = d.thing_id"
            " JOIN locations l ON l.id = tl.location_id WHERE d.id = %s",
            ("70b3d5e75e00a001",),
        ).fetchone()[0]  # type: ignore[index]
        assert loc == {"type": "Point", "coordinates": [7.73, 63.11]}

        # Datastreams carry the vocabulary's unit and observation type, and the device binding
        rows = conn.execute(
            "SELECT ds.property_key, ds.unit_of_measurement, ds.observation_type, ds.properties, op.definition"
            " FROM datastreams ds JOIN observed_properties op ON op.id = ds.observed_property_id"
            " WHERE ds.device_id = %s",
            ("13597771",),
        ).fetchall()
        assert {r[0] for r in rows} == set(mapped_properties(models["airrohr-sds011-bme280"]))
        for key, unit, obs_type, ds_props, definition in rows:
            prop = vocabulary().get(key)
            assert unit == prop.unit_of_measurement()
            assert obs_type == prop.observation_type
            assert definition == prop.definition
            assert ds_props["propertyKey"] == key

        bindings = load_bindings(conn)
        assert set(bindings) == {d.id for d in provisioning.devices}
        nwave = bindings["70b3d5e75e00a001"]
        assert set(nwave.datastreams) == set(mapped_properties(models["nwave-nps405"]))
        assert nwave.verified and nwave.model == "nwave-nps405"
        assert bindings["13597771"].station_kind == "low-cost"


def test_import_twice_changes_nothing(migrated_db: str, provisioning: Provisioning) -> None:
    with psycopg.connect(migrated_db) as conn:
        import_provisioning(conn, provisioning)
        before = _counts(conn)
        ids_before = conn.execute("SELECT id, thing_id FROM devices ORDER BY id").fetchall()
        report = import_provisioning(conn, provisioning)
        assert report.devices_created == report.devices_updated == 0
        assert report.devices_unchanged == 3
        assert report.datastreams_created == report.datastreams_updated == 0
        assert _counts(conn) == before
        assert conn.execute("SELECT id, thing_id FROM devices ORDER BY id").fetchall() == ids_before


def test_edit_renames_and_moves_keeping_history(migrated_db: str) -> None:
    with psycopg.connect(migrated_db) as conn:
        import_provisioning(conn, Provisioning.model_validate(PROVISIONING))
        edited: dict[str, Any] = {**PROVISIONING, "devices": [dict(d) for d in PROVISIONING["devices"]]}
        edited["devices"][0]["name"] = "Bodø torg airrohr"  # same id, new name: same Thing
        edited["devices"][0]["location"] = {"lat": 67.2810, "lon": 14.3990}
        report = import_provisioning(conn, Provisioning.model_validate(edited))
        assert report.devices_updated == 1 and report.devices_created == 0
        thing = conn.execute(
            "SELECT t.id, t.name FROM devices d JOIN things t ON t.id = d.thing_id WHERE d.id = '13597771'"
        ).fetchone()
        assert thing is not None and thing[1] == "Bodø torg airrohr"
        assert conn.execute("SELECT count(*) FROM things").fetchone() == (3,)
        hist = conn.execute("SELECT count(*) FROM historical_locations WHERE thing_id = %s", (thing[0],)).fetchone()
        assert hist == (2,)
        current = conn.execute(
            "SELECT l.location FROM thing_locations tl JOIN locations l ON l.id = tl.location_id"
            " WHERE tl.thing_id = %s",
            (thing[0],),
        ).fetchall()
        assert current == [({"type": "Point", "coordinates": [14.399, 67.281]},)]
        names = {r[0] for r in conn.execute("SELECT name FROM datastreams WHERE device_id = '13597771'")}
        assert all(n.startswith("Bodø torg airrohr ") for n in names)


def test_unknown_model_is_refused_whole(migrated_db: str) -> None:
    bad: dict[str, Any] = {
        **PROVISIONING,
        "devices": [*PROVISIONING["devices"], {"id": "x1", "model": "no-such-model", "name": "X"}],
    }
    with psycopg.connect(migrated_db) as conn:
        with pytest.raises(ProvisioningError, match="no-such-model"):
            import_provisioning(conn, Provisioning.model_validate(bad))
        assert _counts(conn)["devices"] == 0


def test_auto_provision_is_unverified_until_imported(migrated_db: str) -> None:
    model = device_models()["nwave-nps405"]
    with psycopg.connect(migrated_db) as conn:
        assert auto_provision(conn, "70b3d5e75e00a001", model) is True
        assert auto_provision(conn, "70b3d5e75e00a001", model) is False
        binding = load_bindings(conn, ["70b3d5e75e00a001"])["70b3d5e75e00a001"]
        assert binding.verified is False
        assert set(binding.datastreams) == set(mapped_properties(model))
        props = conn.execute(
            "SELECT t.properties FROM devices d JOIN things t ON t.id = d.thing_id WHERE d.id = '70b3d5e75e00a001'"
        ).fetchone()[0]  # type: ignore[index]
        assert props["verified"] is False
        streams_before = dict(binding.datastreams)

        import_provisioning(conn, Provisioning.model_validate(PROVISIONING))
        binding = load_bindings(conn, ["70b3d5e75e00a001"])["70b3d5e75e00a001"]
        assert binding.verified is True
        assert dict(binding.datastreams) == streams_before  # same Datastreams, now verified
        listed = {d["id"]: d for d in list_devices(conn)}
        assert listed["70b3d5e75e00a001"]["verified"] is True
        assert listed["70b3d5e75e00a001"]["datastreams"] == len(streams_before)


def test_low_cost_follows_the_station_kinds_of_quality_yaml(
    migrated_db: str, provisioning: Provisioning, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which station kind is low-cost is data (``schemas/quality.yaml``), not a word in the code."""
    from ingest.registry import Registry
    from schemas import quality

    with psycopg.connect(migrated_db) as conn:
        import_provisioning(conn, provisioning)
    models = device_models()
    kinds = {d.id: models[d.model].station_kind for d in provisioning.devices}
    assert "low-cost" in kinds.values() and "reference" not in kinds.values()

    def low_cost(registry: Registry) -> dict[str, bool]:
        registry.refresh()
        return {d: b.low_cost for d, b in registry._bindings.items()}

    registry = Registry(migrated_db, models)
    try:
        assert low_cost(registry) == {d: k in quality.low_cost_station_kinds() for d, k in kinds.items()}
        assert any(low_cost(registry).values())
        monkeypatch.setattr(quality, "low_cost_station_kinds", lambda: frozenset({"no-such-kind"}))
        assert not any(low_cost(registry).values())
    finally:
        registry.close()
