"""What the connected server offers: detected, never assumed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg


@dataclass(frozen=True, slots=True)
class Features:
    server_version: str
    server_version_num: int
    timescaledb_available: str | None
    timescaledb_preloaded: bool
    timescaledb_installed: str | None
    timescaledb_license: str | None
    postgis_available: str | None
    postgis_installed: str | None
    hypertable: bool
    compression: bool
    continuous_aggregates: bool

    @property
    def timescaledb_usable(self) -> bool:
        return self.timescaledb_available is not None and self.timescaledb_preloaded

    @property
    def tsl_licensed(self) -> bool:
        """Compression and continuous aggregates need the Timescale license, not Apache-2."""
        return self.timescaledb_license == "timescale"

    @property
    def time_bucket_function(self) -> str:
        """``time_bucket`` on a hypertable, else PostgreSQL's own ``date_bin``."""
        return "time_bucket" if self.timescaledb_installed else "date_bin"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scalar(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def detect(conn: psycopg.Connection[Any]) -> Features:
    """Read versions, extensions and TimescaleDB state of the database ``conn`` is on."""
    available = dict(
        conn.execute(
            "SELECT name, default_version FROM pg_available_extensions WHERE name IN ('timescaledb', 'postgis')"
        ).fetchall()
    )
    installed = dict(
        conn.execute(
            "SELECT extname, extversion FROM pg_extension WHERE extname IN ('timescaledb', 'postgis')"
        ).fetchall()
    )
    preload = str(_scalar(conn, "SELECT current_setting('shared_preload_libraries')") or "")
    license_ = (
        _scalar(conn, "SELECT current_setting('timescaledb.license', true)")
        if installed.get("timescaledb") or "timescaledb" in preload
        else None
    )
    hypertable = compression = caggs = False
    if installed.get("timescaledb"):
        hypertable = bool(
            _scalar(
                conn,
                "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = %s",
                ("observations",),
            )
        )
        compression = bool(
            _scalar(
                conn,
                "SELECT coalesce(bool_or(compression_enabled), false) FROM timescaledb_information.hypertables"
                " WHERE hypertable_name = %s",
                ("observations",),
            )
        )
        caggs = bool(_scalar(conn, "SELECT count(*) FROM timescaledb_information.continuous_aggregates"))
    return Features(
        server_version=str(_scalar(conn, "SHOW server_version")),
        server_version_num=int(_scalar(conn, "SHOW server_version_num")),
        timescaledb_available=available.get("timescaledb"),
        timescaledb_preloaded="timescaledb" in preload,
        timescaledb_installed=installed.get("timescaledb"),
        timescaledb_license=license_ or None,
        postgis_available=available.get("postgis"),
        postgis_installed=installed.get("postgis"),
        hypertable=hypertable,
        compression=compression,
        continuous_aggregates=caggs,
    )
