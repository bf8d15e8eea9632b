"""LoRaWAN payload codecs, one module per vendor codec: ``decode(port, payload, options)``.

A codec turns an uplink's FPort and bytes, with the device model's ``codec_options``,
into a dict of the vendor's own field names (as the vendor's published codec in
TheThingsNetwork/lorawan-devices names them); the device model maps those fields to
the vocabulary. Codecs are pure and raise only :class:`~ingest.types.UnsupportedPort`
(a port the codec does not define) or :class:`~ingest.types.DecodeError` (bytes that do
not fit). ``kind(port)`` tells state messages from heartbeats, start-ups and the like.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ingest.codecs import bosch_tps110, elsys, nwave_nps405
from schemas.device_models import DeviceModel


@dataclass(frozen=True, slots=True)
class Codec:
    name: str
    decode: Callable[[int, bytes, Mapping[str, Any]], dict[str, Any]]
    kinds: Mapping[int, str]
    check_options: Callable[[Mapping[str, Any]], None]

    def kind(self, port: int) -> str:
        """Message kind of a port: ``state`` unless the codec says otherwise (heartbeat, startup …)."""
        return self.kinds.get(port, "state")


CODECS: Mapping[str, Codec] = {
    m.NAME: Codec(m.NAME, m.decode, m.KINDS, m.check_options) for m in (nwave_nps405, bosch_tps110, elsys)
}


def get_codec(name: str) -> Codec:
    try:
        return CODECS[name]
    except KeyError:
        raise KeyError(f"unknown payload codec {name!r} (known: {sorted(CODECS)})") from None


def check_models(models: Mapping[str, DeviceModel]) -> None:
    """Fail at start-up if a device model names an unknown codec or options it does not take."""
    for model in models.values():
        if model.codec is None:
            if model.codec_options:
                raise ValueError(f"device model {model.key}: codec_options without a codec")
            continue
        try:
            get_codec(model.codec).check_options(model.codec_options)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"device model {model.key}: {exc}") from exc
