"""MQTT broker URLs: ``mqtt://user:password@host:port?protocol=5&client_id=…`` (``mqtts://`` for TLS)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

Protocol = Literal["5", "3.1.1"]


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    protocol: Protocol = "5"

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"MQTT URL must start with mqtt:// or mqtts://, got {parts.scheme!r}")
        tls = parts.scheme in ("mqtts", "ssl")
        query = parse_qs(parts.query)
        protocol = query.get("protocol", ["5"])[0]
        if protocol not in ("5", "3.1.1"):
            raise ValueError(f"MQTT protocol must be 5 or 3.1.1, got {protocol!r}")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
            protocol=protocol,  # type: ignore[arg-type]
        )

    @property
    def v5(self) -> bool:
        return self.protocol == "5"

    def redacted(self) -> str:
        """The URL without its password, for logs and banners."""
        user = f"{self.username}:***@" if self.username else ""
        scheme = "mqtts" if self.tls else "mqtt"
        suffix = "" if self.v5 else "?protocol=3.1.1"
        return f"{scheme}://{user}{self.host}:{self.port}{suffix}"
