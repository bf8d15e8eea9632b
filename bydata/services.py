"""Resolve the database and broker a command uses: the configured ones, or the embedded default."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from bydata.settings import Settings
from ingest.broker import HOST, EmbeddedBroker, embedded_url
from store.embedded import embedded_postgres

log = logging.getLogger(__name__)


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
    """Yield an MQTT URL; start the embedded broker for the block when none is configured.

    An embedded broker already listening on the port (a running ``bydata demo``) is joined,
    as the embedded PostgreSQL is: ``bydata simulate`` beside the demo publishes to the
    demo's ingest instead of failing on a taken port.
    """
    if settings.mqtt_url is not None:
        yield settings.mqtt_url.get_secret_value()
        return
    if _listening(HOST, settings.embedded_mqtt_port):
        log.info("joining the embedded MQTT broker already running on %s:%s", HOST, settings.embedded_mqtt_port)
        yield embedded_url(settings.embedded_mqtt_port)
        return
    from api.mqtt.subscriptions import PLUGIN as SUBSCRIPTION_PLUGIN

    # The API's MQTT extension sees what clients subscribe to through this plugin.
    plugins = {SUBSCRIPTION_PLUGIN: {"port": settings.embedded_mqtt_port}}
    with EmbeddedBroker(settings.embedded_mqtt_port, plugins=plugins) as broker:
        yield broker.url


def _listening(host: str, port: int) -> bool:
    """The port is taken (tried by binding: a bare connection would make the broker log an error)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the broker binds: TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False
