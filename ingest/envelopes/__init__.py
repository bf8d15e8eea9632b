"""Envelope decoders, one module per wire format: ``decode(raw, source)``.

Each is pure (a :class:`~ingest.types.RawMessage` and its :class:`~ingest.sources.Source`
in, values out) and raises only :class:`~ingest.types.IngestError` subclasses. LoRaWAN
network servers return an :class:`Uplink` (the device codec runs later, chosen by the
device's model); every other envelope returns a :class:`~ingest.types.Decoded`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ingest.envelopes import amsreader, chirpstack_v4, nilu, senml, sensor_community, sta, tts_v3
from ingest.envelopes._common import Uplink, normalise_eui
from ingest.sources import Source
from ingest.types import Decoded, RawMessage

EnvelopeDecoder = Callable[[RawMessage, Source], Decoded | Uplink]

ENVELOPES: Mapping[str, EnvelopeDecoder] = {
    tts_v3.NAME: tts_v3.decode,
    chirpstack_v4.NAME: chirpstack_v4.decode,
    sensor_community.NAME: sensor_community.decode,
    nilu.NAME: nilu.decode,
    amsreader.NAME: amsreader.decode,
    senml.NAME: senml.decode,
    sta.NAME: sta.decode,
}
LORAWAN = frozenset({tts_v3.NAME, chirpstack_v4.NAME})

__all__ = ["ENVELOPES", "LORAWAN", "EnvelopeDecoder", "Uplink", "normalise_eui"]
