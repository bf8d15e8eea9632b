"""From a raw MQTT message to :class:`~ingest.types.Decoded`: envelope, then (LoRaWAN) codec.

Pure: the only outside knowledge is ``model_of``, the runtime's in-memory device
registry (device id -> provisioned model), and the set of known device models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ingest._build import decoded, reading
from ingest.codecs import check_models, get_codec
from ingest.envelopes import ENVELOPES, LORAWAN, Uplink
from ingest.envelopes._common import check_device_id
from ingest.sources import Source
from ingest.types import Decoded, DecodeError, RawMessage, Reading, UnknownDevice
from schemas.device_models import DeviceModel, device_models, load_device_models

ModelLookup = Callable[[str], DeviceModel | None]


def load_models(extra_dir: Path | None = None) -> dict[str, DeviceModel]:
    """The shipped device models plus those in ``extra_dir`` (same key: the extra file wins).

    Adding a sensor model of a known envelope and codec is a YAML file in ``extra_dir``.
    Codecs and their options are checked here, so a typo fails at start-up.
    """
    models = dict(device_models())
    if extra_dir is not None:
        models.update(load_device_models(extra_dir))
    check_models(models)
    return models


class _HintIndex:
    """Envelope model hints (TTS ``brand/model``, ChirpStack profile name) -> device model."""

    def __init__(self, models: Mapping[str, DeviceModel]) -> None:
        self.tts: dict[str, DeviceModel] = {}
        self.chirpstack: dict[str, DeviceModel] = {}
        for model in models.values():
            ids = model.match.tts_version_ids
            if ids and "brand_id" in ids and "model_id" in ids:
                self.tts[f"{ids['brand_id']}/{ids['model_id']}"] = model
            if model.match.chirpstack_profile:
                self.chirpstack[model.match.chirpstack_profile] = model

    def find(self, envelope: str, hint: str | None) -> DeviceModel | None:
        if hint is None:
            return None
        if envelope == "tts_v3":
            return self.tts.get(hint)
        if envelope == "chirpstack_v4":
            return self.chirpstack.get(hint)
        return None


# Keyed by id() of the models mapping, holding the mapping so the id stays valid.
_hint_indexes: dict[int, tuple[Mapping[str, DeviceModel], _HintIndex]] = {}


def _hints(models: Mapping[str, DeviceModel]) -> _HintIndex:
    entry = _hint_indexes.get(id(models))
    if entry is None or entry[0] is not models:
        if len(_hint_indexes) > 16:
            _hint_indexes.clear()
        entry = (models, _HintIndex(models))
        _hint_indexes[id(models)] = entry
    return entry[1]


def _codec_readings(uplink: Uplink, model: DeviceModel) -> tuple[tuple[Reading, ...], str]:
    if model.codec is None:
        if uplink.network_decoded is None:
            raise DecodeError(
                f"device {uplink.device_id}: model {model.key} has no payload codec and the network "
                "server sent no decoded payload"
            )
        fields: Mapping[str, Any] = uplink.network_decoded
        kind = "state"
    else:
        codec = get_codec(model.codec)
        fields = codec.decode(uplink.f_port, uplink.payload, model.codec_options)
        kind = codec.kind(uplink.f_port)
    time, assumed = uplink.time, uplink.zone_assumed
    return tuple([reading(name, value, None, time, None, assumed) for name, value in fields.items()]), kind


def decode_message(
    raw: RawMessage,
    source: Source,
    model_of: ModelLookup,
    models: Mapping[str, DeviceModel] | None = None,
) -> Decoded:
    """Decode one message of ``source``.

    For LoRaWAN the codec comes from the device's model: ``model_of(device_id)`` (the
    provisioned model), else the envelope's model hint matched against
    ``DeviceModel.match`` of ``models`` (default: the shipped models), else
    :class:`UnknownDevice`. ``Decoded.model_hint`` is the key of the model used (for
    other envelopes: the source's ``device_model``, which auto provisioning may use).
    The device id (from the payload or the topic) must be printable text of at most
    ``MAX_DEVICE_ID`` characters (:func:`~ingest.envelopes._common.check_device_id`).
    Raises only :class:`~ingest.types.IngestError` subclasses for bad input.
    """
    decoder = ENVELOPES[source.envelope]
    out = decoder(raw, source)
    check_device_id(out.device_id, f"{source.name} message")
    if isinstance(out, Decoded):
        return out
    model = model_of(out.device_id)
    if model is None:
        model = _hints(device_models() if models is None else models).find(source.envelope, out.model_hint)
    if model is None:
        told = f" (network says {out.model_hint!r})" if out.model_hint else ""
        raise UnknownDevice(f"device {out.device_id} is not provisioned and its model cannot be told{told}")
    readings, kind = _codec_readings(out, model)
    return decoded(out.device_id, readings, model.key, kind, out.meta)


__all__ = ["LORAWAN", "ModelLookup", "decode_message", "load_models"]
