"""Versioned migrations (``schemas/sql/NNNN_*.sql``) and optional server features.

Migrations run once each, in order, recorded with a checksum in ``schema_migrations``;
an edited migration that was already applied is an error, not a silent divergence.
Feature scripts (``schemas/sql/features/``) run on every upgrade and are idempotent, so
a server that gains TimescaleDB or PostGIS later gains the features on the next upgrade.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import psycopg

from store.features import Features, detect

_LOCK_KEY = 0x6279_6461_7461  # "bydata": one upgrade at a time per database
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """The database's recorded migrations disagree with the shipped ones."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(slots=True)
class UpgradeReport:
    applied: list[str] = field(default_factory=list)
    features_enabled: list[str] = field(default_factory=list)
    features: Features | None = None


def _sql_dir() -> Any:
    return resources.files("schemas").joinpath("sql")


def shipped_migrations() -> list[Migration]:
    found = []
    for entry in _sql_dir().iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version: {versions}")
    return found


def feature_sql(name: str) -> str:
    return str(_sql_dir().joinpath("features", f"{name}.sql").read_text(encoding="utf-8"))


def applied_migrations(conn: psycopg.Connection[Any]) -> dict[int, str]:
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return {}
    return dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())


def upgrade(conn: psycopg.Connection[Any], *, timescaledb: bool = True, postgis: bool = True) -> UpgradeReport:
    """Bring the database to the shipped schema; safe to run any number of times.

    ``timescaledb``/``postgis`` False keep a database on plain PostgreSQL even where
    the server offers the extensions (tests use it to cover both paths).
    """
    if conn.autocommit:
        raise ValueError("upgrade() manages its own transactions; pass a non-autocommit connection")
    report = UpgradeReport()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = applied_migrations(conn)
        for migration in shipped_migrations():
            recorded = done.get(migration.version)
            if recorded is not None:
                if recorded != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was changed after it was applied"
                    )
                continue
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
            report.applied.append(f"{migration.version:04d}_{migration.name}")
        found = detect(conn)
        if timescaledb and found.timescaledb_usable:
            conn.execute(feature_sql("timescaledb").encode())
            report.features_enabled.append("timescaledb")
            found = detect(conn)
            if found.tsl_licensed:
                conn.execute(feature_sql("timescaledb_tsl").encode())
                report.features_enabled.append("timescaledb_tsl")
        if postgis and found.postgis_available:
            conn.execute(feature_sql("postgis").encode())
            report.features_enabled.append("postgis")
    report.features = detect(conn)
    conn.commit()
    return report
