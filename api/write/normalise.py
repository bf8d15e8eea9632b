"""Observations written through the API go through the ingest normaliser, as MQTT creates do.

A Datastream whose observed property is one of the vocabulary's (a provisioned device's
Datastream, ``datastreams.property_key``, or one whose ObservedProperty carries
``properties.propertyKey``) takes its Observations the way ``bydata ingest`` takes a
SensorThings create on ``v1.1/Datastreams(<id>)/Observations``: the same decoded shape, the
same :func:`ingest.normalise.normalise`, the same binding rule (``store.provisioning``). So the
result is checked and typed for the property (text numbers parsed, booleans from ``on``/``off``
…, a value that does not fit is a 400 naming why), and the quality flags are set: out of range,
future or stale time (the ``sta`` source's window), spike, stuck and counter reset against the
Datastream's newest stored readings, low-cost sensor, unverified device, and ``time_assumed``
when the client gave no phenomenonTime (the server's time is used, as the standard says).

Other Datastreams (created by clients for their own properties) take results as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from api.write.body import result_columns
from ingest.normalise import normalise, property_plan
from ingest.quality import FUTURE_TIME, SPIKE, QualityState
from ingest.registry import _api_model  # the ingest's stand-in model of Datastreams no device owns
from ingest.sources import PlausibilityWindow, default_window, load_sources
from ingest.types import Decoded, DeviceBinding, MappingError, Reading
from schemas import quality
from schemas.device_models import device_models
from store import provisioning
from store.recent import recent_readings


class NotNormalisable(ValueError):
    """The result does not fit the Datastream's property (the normaliser's reason)."""


@cache
def sta_window() -> PlausibilityWindow:
    """The plausibility window of the SensorThings create source (``schemas/sources.yaml``)."""
    for source in load_sources():
        if source.envelope == "sta":
            return source.window
    return default_window()


def _value(columns: Mapping[str, Any]) -> Any:
    for name in ("result_number", "result_boolean", "result_text"):
        if columns.get(name) is not None:
            return columns[name]
    json = columns.get("result_json")
    return json.obj if isinstance(json, Jsonb) else json


def _plain(value: Any) -> Any:
    return value.obj if isinstance(value, Jsonb) else value


class WriteNormaliser:
    """One request's normalisation: bindings and quality state per Datastream, asked once each."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.state = QualityState()
        self._bindings: dict[int, DeviceBinding | None] = {}

    def binding(self, datastream_id: int) -> DeviceBinding | None:
        """The binding the ingest would use for this Datastream; None when its property is not a vocabulary one."""
        if datastream_id in self._bindings:
            return self._bindings[datastream_id]
        found = provisioning.datastream_binding(self.conn, datastream_id)
        binding: DeviceBinding | None = None
        key = found[0] if found is not None else None
        if found is not None and key is not None:
            device_id = found[1]
            streams = {key: datastream_id}
            owner = provisioning.load_bindings(self.conn, [device_id]).get(device_id) if device_id else None
            model = device_models().get(owner.model) if owner is not None else None
            if owner is not None and model is not None:
                low_cost = quality.is_low_cost(owner.station_kind or model.station_kind)
                binding = DeviceBinding(f"Datastreams({datastream_id})", model, streams, low_cost, owner.verified)
            else:
                binding = DeviceBinding(f"Datastreams({datastream_id})", _api_model(), streams)
            self._seed(datastream_id, key)
        self._bindings[datastream_id] = binding
        return binding

    def _seed(self, datastream_id: int, key: str) -> None:
        """Start the Datastream's spike/stuck/counter state from its newest stored readings, as ingest does."""
        try:
            plan = property_plan(key)
        except MappingError:
            return
        if not plan.stateful:
            return
        caps = {datastream_id: plan.rules.seed_rows}
        found = recent_readings(self.conn, caps, skip_flags=FUTURE_TIME, spike_flag=SPIKE)
        r = found.get(datastream_id)
        if r is not None:
            self.state.seed(
                datastream_id,
                r.time.timestamp(),
                r.value,
                repeats=r.repeats,
                ref_time=r.ref_time.timestamp(),
                ref_value=r.ref_value,
            )

    def apply(self, columns: dict[str, Any], received_at: datetime) -> bool:
        """Normalise the Observation in ``columns`` in place (result, times, ``quality_flags``).

        ``phenomenon_time`` None means the client gave none. False when the Datastream takes
        results as given (nothing changed). Raises :class:`NotNormalisable`.
        """
        datastream_id = int(columns["datastream_id"])
        binding = self.binding(datastream_id)
        if binding is None:
            return False
        meta: dict[str, Any] = {"datastream_id": datastream_id}
        if columns.get("result_time") is not None:
            meta["result_time"] = columns["result_time"]
        if columns.get("parameters") is not None:
            meta["parameters"] = _plain(columns["parameters"])
        reading = Reading(
            "result", _value(columns), None, columns.get("phenomenon_time"), columns.get("phenomenon_time_end")
        )
        decoded = Decoded(binding.device_id, (reading,), None, "state", meta)
        try:
            [observation] = normalise(decoded, binding, received_at, self.state, window=sta_window()).observations
        except MappingError as exc:
            raise NotNormalisable(exc.detail) from None
        columns.update(result_columns(observation.result))
        columns["phenomenon_time"] = observation.phenomenon_time
        columns["phenomenon_time_end"] = observation.phenomenon_time_end
        columns["received_at"] = observation.received_at
        columns["quality_flags"] = observation.quality_flags
        return True
