"""Migrations on the real server: idempotent, recorded, and right on both storage paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from store.features import detect
from store.migrations import Migration, MigrationError, shipped_migrations, upgrade
from tests.conftest import ROOT


def _run_cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BYDATA_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "bydata.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_upgrade_twice_via_cli_then_info_reports_hypertable(scratch_db: str) -> None:
    first = _run_cli("db", "upgrade", database_url=scratch_db)
    assert first.returncode == 0, first.stderr
    assert "0001_sensorthings" in first.stdout
    second = _run_cli("db", "upgrade", database_url=scratch_db)
    assert second.returncode == 0, second.stderr
    assert "none (already up to date)" in second.stdout
    info = _run_cli("db", "info", "--json", database_url=scratch_db)
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    assert data["hypertable"] is True
    with psycopg.connect(scratch_db) as conn:
        license_ = conn.execute("SELECT current_setting('timescaledb.license')").fetchone()[0]
    assert data["timescaledb_license"] == license_
    # Detected, not assumed: compression and the hourly continuous aggregate exactly where licensed.
    assert data["compression"] is (license_ == "timescale")
    assert data["migrations_pending"] == []


def test_apache_edition_refuses_what_the_timescale_license_grants(migrated_db: str) -> None:
    """Why the licensed features are detected: the Apache-2 edition rejects the script outright."""
    from store.migrations import feature_sql

    with psycopg.connect(migrated_db) as conn:
        license_ = conn.execute("SELECT current_setting('timescaledb.license')").fetchone()[0]
        if license_ == "timescale":
            conn.execute(feature_sql("timescaledb_tsl").encode())  # idempotent: a second run changes nothing
            assert detect(conn).compression
            return
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="license"):
            conn.execute(feature_sql("timescaledb_tsl").encode())


def test_timescaledb_path(migrated_db: str) -> None:
    with psycopg.connect(migrated_db) as conn:
        features = detect(conn)
        assert features.timescaledb_installed and features.hypertable
        assert features.postgis_installed
        assert features.time_bucket_function == "time_bucket"
        _exercise_store(conn, features.time_bucket_function, postgis=True)


def test_plain_postgresql_path(plain_db: str) -> None:
    with psycopg.connect(plain_db) as conn:
        features = detect(conn)
        assert not features.timescaledb_installed and not features.hypertable
        assert not features.postgis_installed
        assert features.time_bucket_function == "date_bin"
        _exercise_store(conn, features.time_bucket_function, postgis=False)
        cols = {
            r[0]
            for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'locations'")
        }
        assert "geom" not in cols


def _exercise_store(conn: psycopg.Connection, bucket_fn: str, *, postgis: bool) -> None:
    """The same SQL works on both paths: entities, points, duplicate rule, bucketing."""
    thing = conn.execute("INSERT INTO things (name) VALUES ('Olav V gate') RETURNING id").fetchone()[0]
    loc = conn.execute(
        "INSERT INTO locations (name, encoding_type, location) VALUES ('st', 'application/geo+json', %s)"
        " RETURNING point_lon, point_lat",
        (json.dumps({"type": "Point", "coordinates": [14.4, 67.28]}),),
    ).fetchone()
    assert loc == (14.4, 67.28)
    if postgis:  # the geometry follows the GeoJSON
        assert conn.execute("SELECT ST_AsText(geom) FROM locations").fetchone() == ("POINT(14.4 67.28)",)
    sensor = conn.execute(
        "INSERT INTO sensors (name, encoding_type, metadata) VALUES ('s', 'text/html', '\"x\"') RETURNING id"
    ).fetchone()[0]
    prop = conn.execute(
        "INSERT INTO observed_properties (name, definition) VALUES ('NO2', 'http://dd.eionet.europa.eu/"
        "vocabulary/aq/pollutant/8') RETURNING id"
    ).fetchone()[0]
    ds = conn.execute(
        "INSERT INTO datastreams (name, unit_of_measurement, observation_type, thing_id, sensor_id,"
        " observed_property_id) VALUES ('no2', '{}', 'OM_Measurement', %s, %s, %s) RETURNING id",
        (thing, sensor, prop),
    ).fetchone()[0]
    t0 = datetime(2024, 3, 1, 7, 0, tzinfo=UTC)
    rows = [(ds, t0 + timedelta(minutes=15 * i), float(i)) for i in range(8)]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO observations (datastream_id, phenomenon_time, result_number) VALUES (%s, %s, %s)", rows
        )
    bucket = psycopg.sql.SQL(
        "SELECT {fn}(INTERVAL '1 hour', phenomenon_time, %s) AS b, avg(result_number) FROM observations"
        " GROUP BY b ORDER BY b"
    ).format(fn=psycopg.sql.Identifier(bucket_fn))
    hourly = conn.execute(bucket, (t0,)).fetchall()
    assert hourly == [(t0, 1.5), (t0 + timedelta(hours=1), 5.5)]
    # The uniqueness rule of ingest: the same reading (key from observation_dedup_key) is absorbed, a
    # different result at that time is stored; rows without a key (the API's) meet no rule at all.
    later = t0 + timedelta(days=1)
    ingest = (
        "INSERT INTO observations (datastream_id, phenomenon_time, result_number, dedup_key)"
        " VALUES (%s, %s, %s, observation_dedup_key(%s, NULL, NULL, NULL, NULL))"
        " ON CONFLICT (datastream_id, phenomenon_time, dedup_key) DO NOTHING"
    )
    inserted = [conn.execute(ingest, (ds, later, v, v)).rowcount for v in (1.0, 1.0, 2.0)]
    api = "INSERT INTO observations (datastream_id, phenomenon_time, result_number) VALUES (%s, %s, 1.0)"
    inserted += [conn.execute(api, (ds, later)).rowcount for _ in range(2)]
    assert inserted == [1, 0, 1, 1, 1]
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO observations (datastream_id, phenomenon_time, phenomenon_time_end, result_number)"
            " VALUES (%s, %s, %s, 1)",
            (ds, t0 + timedelta(days=1), t0),
        )
    conn.rollback()


def test_plain_database_gains_timescaledb_on_a_later_upgrade(plain_db: str) -> None:
    with psycopg.connect(plain_db) as conn:
        report = upgrade(conn)
        assert report.applied == []
        assert "timescaledb" in report.features_enabled
        assert detect(conn).hypertable


def test_edited_migration_is_refused(migrated_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    edited = [Migration(m.version, m.name, m.sql + "\n-- edited") for m in shipped_migrations()]
    monkeypatch.setattr("store.migrations.shipped_migrations", lambda: edited)
    with psycopg.connect(migrated_db) as conn, pytest.raises(MigrationError, match="changed after it was applied"):
        upgrade(conn)


@pytest.mark.parametrize("timescaledb", [True, False], ids=["timescaledb", "plain"])
def test_readings_stored_before_0005_stay_duplicates(
    scratch_db: str, monkeypatch: pytest.MonkeyPatch, timescaledb: bool
) -> None:
    """Migration 0005 on a database in use: rows keep their ids, get their key, and still absorb redeliveries."""
    before = [m for m in shipped_migrations() if m.version < 5]
    t0 = datetime(2024, 3, 1, 7, 0, tzinfo=UTC)
    with monkeypatch.context() as patch:
        patch.setattr("store.migrations.shipped_migrations", lambda: before)
        with psycopg.connect(scratch_db) as conn:
            upgrade(conn, timescaledb=timescaledb, postgis=False)
            thing = conn.execute("INSERT INTO things (name) VALUES ('t') RETURNING id").fetchone()[0]
            sensor = conn.execute(
                "INSERT INTO sensors (name, encoding_type, metadata) VALUES ('s', 'x', '\"x\"') RETURNING id"
            ).fetchone()[0]
            prop = conn.execute(
                "INSERT INTO observed_properties (name, definition) VALUES ('p', 'd') RETURNING id"
            ).fetchone()[0]
            ds = conn.execute(
                "INSERT INTO datastreams (name, unit_of_measurement, observation_type, thing_id, sensor_id,"
                " observed_property_id) VALUES ('d', '{}', 'x', %s, %s, %s) RETURNING id",
                (thing, sensor, prop),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO observations (datastream_id, phenomenon_time, phenomenon_time_end, result_number,"
                " result_boolean) VALUES (%s, %s, NULL, 1.5, NULL), (%s, %s, %s, 2.5, NULL),"
                " (%s, %s, NULL, NULL, true)",
                (ds, t0, ds, t0 + timedelta(hours=1), t0 + timedelta(hours=2), ds, t0 + timedelta(hours=3)),
            )
            ids = [r[0] for r in conn.execute("SELECT id FROM observations ORDER BY phenomenon_time")]
            conn.commit()
    with psycopg.connect(scratch_db) as conn:
        report = upgrade(conn, timescaledb=timescaledb, postgis=False)
        assert report.applied[0] == "0005_observation_readings"
        assert detect(conn).hypertable is timescaledb
        rows = conn.execute(
            "SELECT id, dedup_key = observation_dedup_key(result_number, result_boolean, result_text, result_json,"
            " phenomenon_time_end) FROM observations ORDER BY phenomenon_time"
        ).fetchall()
        assert rows == [(i, True) for i in ids]
        key = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'observations'::regclass AND contype = 'p'"
        ).fetchone()
        assert key == (0,)  # no primary key: the unique index is the rule
        redelivered = conn.execute(
            "INSERT INTO observations (datastream_id, phenomenon_time, phenomenon_time_end, result_number, dedup_key)"
            " VALUES (%s, %s, %s, 2.5, observation_dedup_key(2.5, NULL, NULL, NULL, %s))"
            " ON CONFLICT (datastream_id, phenomenon_time, dedup_key) DO NOTHING",
            (ds, t0 + timedelta(hours=1), t0 + timedelta(hours=2), t0 + timedelta(hours=2)),
        )
        assert redelivered.rowcount == 0
