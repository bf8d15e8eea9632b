"""Resolve the database and broker a command uses: the configured ones, or the embedded default."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bydata.settings import Settings
from ingest.broker import EmbeddedBroker
from store.embedded import embedded_postgres


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """Yield a PostgreSQL URL; start the embedded server for the block when none is configured."""
    if settings.database_url is not None:
        yield settings.database_url.get_secret_value()
        return
    with embedded_postgres(settings.data_dir) as url:
        yield url


@contextmanager
def broker_url(settings: Settings) -> Iterator[str]:
    """Yield an MQTT URL; start the embedded broker for the block when none is configured."""
    if settings.mqtt_url is not None:
        yield settings.mqtt_url.get_secret_value()
        return
    from api.mqtt.subscriptions import PLUGIN as SUBSCRIPTION_PLUGIN

    # The API's MQTT extension sees what clients subscribe to through this plugin.
    plugins = {SUBSCRIPTION_PLUGIN: {"port": settings.embedded_mqtt_port}}
    with EmbeddedBroker(settings.embedded_mqtt_port, plugins=plugins) as broker:
        yield broker.url
