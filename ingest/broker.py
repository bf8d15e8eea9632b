"""The embedded default broker: amqtt in-process, bound to 127.0.0.1.

Enough for the zero-install demo (a few thousand messages per second). amqtt speaks
MQTT 3.1.1 only, so clients connect to it with 3.1.1 (no shared subscriptions);
production uses Mosquitto or any MQTT v5 broker.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

HOST = "127.0.0.1"


def embedded_url(port: int, host: str = HOST) -> str:
    """How clients reach the embedded broker: MQTT 3.1.1, which is all amqtt speaks."""
    return f"mqtt://{host}:{port}?protocol=3.1.1"


class EmbeddedBroker:
    """An amqtt broker on its own event-loop thread, so synchronous code can start and stop it."""

    def __init__(self, port: int, host: str = HOST, plugins: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.host = host
        self.port = port
        self.plugins = dict(plugins or {})  # more amqtt plugins: dotted class path -> its config
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="embedded-mqtt", daemon=True)
        self._broker: Any = None

    @property
    def url(self) -> str:
        return embedded_url(self.port, self.host)

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
                **{name: dict(config) for name, config in self.plugins.items()},
            },
        }

    async def _start(self) -> None:
        from amqtt.broker import Broker

        self._broker = Broker(self._config())
        await self._broker.start()

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout)
        log.info("embedded MQTT broker listening on %s:%s", self.host, self.port)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._broker is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(timeout)
            except Exception:  # shutting down: log, never mask the caller's own error
                log.exception("embedded broker did not shut down cleanly")
            self._broker = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
