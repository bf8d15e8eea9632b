"""What clients of the embedded broker subscribe to, so Bydata can serve topics it cannot guess.

``$select`` topics (``v1.1/Things?$select=name``) and navigations to one entity
(``v1.1/Datastreams(1)/Thing``) have too many possible names to publish them all; they are
published only to filters someone subscribed to. The embedded amqtt broker runs in the same
process as the API (``bydata demo``), and :class:`SubscriptionPlugin`, loaded into it, keeps
:func:`registry_for` its port up to date. An external broker tells Bydata nothing: there
only the topics of :func:`api.mqtt.topics.fixed_topics` are served.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from amqtt.contexts import BaseContext
from amqtt.plugins.base import BasePlugin

PLUGIN = f"{__name__}.SubscriptionPlugin"


class SubscriptionRegistry:
    """Subscribed topic filters with how many clients hold each; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, set[str]] = {}
        self._counts: Counter[str] = Counter()

    def subscribed(self, client_id: str, topic: str) -> None:
        with self._lock:
            topics = self._clients.setdefault(client_id, set())
            if topic not in topics:
                topics.add(topic)
                self._counts[topic] += 1

    def unsubscribed(self, client_id: str, topic: str) -> None:
        with self._lock:
            topics = self._clients.get(client_id)
            if topics is not None and topic in topics:
                topics.discard(topic)
                self._drop(topic)

    def gone(self, client_id: str) -> None:
        """A client whose session ended: its subscriptions end with it."""
        with self._lock:
            for topic in self._clients.pop(client_id, set()):
                self._drop(topic)

    def _drop(self, topic: str) -> None:
        self._counts[topic] -= 1
        if self._counts[topic] <= 0:
            del self._counts[topic]

    def topics(self) -> list[str]:
        with self._lock:
            return list(self._counts)


_registries: dict[int, SubscriptionRegistry] = {}
_registries_lock = threading.Lock()


def registry_for(port: int) -> SubscriptionRegistry:
    """The registry of the embedded broker on ``port`` in this process (created on first use)."""
    with _registries_lock:
        found = _registries.get(port)
        if found is None:
            found = _registries[port] = SubscriptionRegistry()
        return found


class SubscriptionPlugin(BasePlugin[BaseContext]):  # type: ignore[misc]
    """amqtt broker plugin: reports subscriptions to :func:`registry_for` the broker's port."""

    @dataclass
    class Config:
        port: int = 0

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self.registry = registry_for(int(self._get_config_option("port", 0)))

    async def on_broker_client_subscribed(self, *, client_id: str, topic: str, qos: int) -> None:
        self.registry.subscribed(client_id, topic)

    async def on_broker_client_unsubscribed(self, *, client_id: str, topic: str) -> None:
        self.registry.unsubscribed(client_id, topic)

    async def on_broker_client_disconnected(self, *, client_id: str, client_session: Any) -> None:
        if getattr(client_session, "clean_session", True):
            self.registry.gone(client_id)
