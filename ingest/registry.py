"""The device registry ingest decodes against: provisioned devices as ``DeviceBinding``s.

An in-memory cache over ``store.provisioning`` so the hot path costs a dict lookup. It
is refreshed whole every ``refresh_s`` seconds, and a device it does not know is looked
up once (then remembered as unknown for ``miss_ttl_s``), so ``bydata devices import``
while ingest runs takes effect within seconds without a restart.

Policies for a device that is not provisioned:

- ``strict`` (default): :class:`~ingest.types.UnknownDevice`, so the message is quarantined
  with reason ``unknown_device`` and can be replayed after the device is imported;
- ``auto``: if its model can be told (LoRaWAN model hints, the source's ``device_model``),
  the device is provisioned on the spot (Thing, Datastreams) marked unverified, and its
  observations carry the ``unverified_device`` flag until someone imports it.

Used from one thread (the decoding thread); not thread-safe. A database that cannot be
reached raises :class:`RegistryUnavailable`, which the caller must retry: it is never a
reason to quarantine.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal

import psycopg
import yaml

from ingest.types import STORE_REJECTED, Decoded, DeviceBinding, IngestError, UnknownDevice
from schemas import quality
from schemas.device_models import DeviceModel, SensorInfo
from schemas.provisioning import Provisioning
from store.db import is_data_error, is_transient
from store.provisioning import BindingRow, auto_provision, datastream_binding, load_bindings
from store.recent import RecentReadings, recent_readings

log = logging.getLogger(__name__)

Policy = Literal["strict", "auto"]
_STA_DEVICE = re.compile(r"^Datastreams\((\d+)\)$")


class RegistryUnavailable(RuntimeError):
    """The database could not be asked; retry later (never quarantine for this)."""


def read_provisioning_file(path: Path) -> Provisioning:
    """Parse a provisioning file (YAML or JSON; ``schemas.provisioning`` format)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML/JSON: {exc}") from exc
    return Provisioning.model_validate(data)


@cache
def _api_model() -> DeviceModel:
    """Stand-in model of Datastreams created through the SensorThings API (no device behind them).

    The normaliser reads only the Datastream's property for SensorThings creates, never
    the device model, so this carries no fields.
    """
    return DeviceModel.model_construct(
        key="sensorthings-api",
        vendor="Bydata",
        name="Datastream created through the SensorThings API",
        case="air",
        envelopes=("sta",),
        codec=None,
        codec_options={},
        station_kind=None,
        sensor=SensorInfo(description="", encoding_type="text/plain", metadata=""),
        fields={},
        ignore=(),
    )


class Registry:
    def __init__(
        self,
        database_url: str,
        models: Mapping[str, DeviceModel],
        *,
        policy: Policy = "strict",
        refresh_s: float = 30.0,
        miss_ttl_s: float = 5.0,
    ) -> None:
        self.database_url = database_url
        self.models = models
        self.policy = policy
        self.refresh_s = refresh_s
        self.miss_ttl_s = miss_ttl_s
        self._conn: psycopg.Connection[Any] | None = None
        self._bindings: dict[str, DeviceBinding] = {}
        self._misses: dict[str, float] = {}
        self._loaded_at = -float("inf")
        self.auto_provisioned = 0

    # -- database ---------------------------------------------------------------------------

    def _db(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(self.database_url, autocommit=True, connect_timeout=10)
            except psycopg.OperationalError as exc:
                raise RegistryUnavailable(str(exc)) from exc
        return self._conn

    def _ask(self, what: Any, *args: Any) -> Any:
        """Run ``what(conn, *args)``: an outage is :class:`RegistryUnavailable` (retry), refused data an IngestError."""
        try:
            return what(self._db(), *args)
        except psycopg.Error as exc:
            if is_data_error(exc):
                raise IngestError(
                    f"the database refused this device's data: {type(exc).__name__}: {exc}".strip(),
                    reason=STORE_REJECTED,
                ) from exc
            if not is_transient(exc):
                raise
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            raise RegistryUnavailable(f"{type(exc).__name__}: {exc}".strip()) from exc

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- cache ------------------------------------------------------------------------------

    def _binding(self, row: BindingRow) -> DeviceBinding | None:
        model = self.models.get(row.model)
        if model is None:
            log.warning("device %s has model %r, which is not loaded; treated as unknown", row.device_id, row.model)
            return None
        return DeviceBinding(
            device_id=row.device_id,
            model=model,
            datastreams=dict(row.datastreams),
            low_cost=quality.is_low_cost(row.station_kind or model.station_kind),
            verified=row.verified,
        )

    def refresh(self) -> None:
        """Reload every binding now."""
        rows = self._ask(load_bindings)
        fresh: dict[str, DeviceBinding] = {}
        for device_id, row in rows.items():
            binding = self._binding(row)
            if binding is not None:
                fresh[device_id] = binding
        self._bindings = fresh
        self._misses.clear()
        self._loaded_at = time.monotonic()

    def _maybe_refresh(self) -> None:
        if time.monotonic() - self._loaded_at >= self.refresh_s:
            self.refresh()

    def lookup(self, device_id: str) -> DeviceBinding | None:
        """The device's binding, asking the database once per ``miss_ttl_s`` for unknown ones."""
        self._maybe_refresh()
        found = self._bindings.get(device_id)
        if found is not None:
            return found
        missed = self._misses.get(device_id)
        now = time.monotonic()
        if missed is not None and now - missed < self.miss_ttl_s:
            return None
        sta = _STA_DEVICE.match(device_id)
        binding = self._sta_binding(device_id, int(sta.group(1))) if sta else self._load_one(device_id)
        if binding is None:
            if len(self._misses) > 100_000:
                self._misses.clear()
            self._misses[device_id] = now
            return None
        self._bindings[device_id] = binding
        return binding

    def _load_one(self, device_id: str) -> DeviceBinding | None:
        row = self._ask(load_bindings, [device_id]).get(device_id)
        return None if row is None else self._binding(row)

    def _sta_binding(self, key: str, datastream_id: int) -> DeviceBinding | None:
        found = self._ask(datastream_binding, datastream_id)
        if found is None:
            return None
        property_key, device_id = found
        owner = self.lookup(device_id) if device_id else None
        streams = {property_key: datastream_id} if property_key else {}
        if owner is not None:
            return DeviceBinding(key, owner.model, streams, owner.low_cost, owner.verified)
        return DeviceBinding(key, _api_model(), streams)

    # -- what decoding asks -----------------------------------------------------------------

    def model_of(self, device_id: str) -> DeviceModel | None:
        """The provisioned model of a device (``decode_message``'s ``model_of``)."""
        binding = self.lookup(device_id)
        return None if binding is None else binding.model

    def binding_for(self, decoded: Decoded) -> DeviceBinding:
        """The binding to normalise ``decoded`` with, applying the policy to unknown devices."""
        binding = self.lookup(decoded.device_id)
        if binding is not None:
            return binding
        if _STA_DEVICE.match(decoded.device_id):
            raise UnknownDevice(f"{decoded.device_id} does not exist")
        if self.policy == "strict":
            raise UnknownDevice(f"device {decoded.device_id} is not provisioned (policy strict)")
        model = self.models.get(decoded.model_hint) if decoded.model_hint else None
        if model is None:
            raise UnknownDevice(f"device {decoded.device_id} is not provisioned and its model cannot be told")
        if self._ask(auto_provision, decoded.device_id, model):
            self.auto_provisioned += 1
            log.info("auto-provisioned device %s as %s (unverified)", decoded.device_id, model.key)
        self._misses.pop(decoded.device_id, None)
        binding = self._load_one(decoded.device_id)
        if binding is None:  # removed between the two statements: treat as unknown
            raise UnknownDevice(f"device {decoded.device_id} could not be provisioned")
        self._bindings[decoded.device_id] = binding
        return binding

    def bindings(self) -> list[DeviceBinding]:
        """Every binding loaded so far (provisioned devices, and those looked up since)."""
        return list(self._bindings.values())

    def recent_readings(
        self, caps: Mapping[int, int], *, skip_flags: int, spike_flag: int
    ) -> dict[int, RecentReadings]:
        """The newest stored readings of these Datastreams (``store.recent``); :class:`RegistryUnavailable` if down."""
        found: dict[int, RecentReadings] = self._ask(
            lambda conn: recent_readings(conn, caps, skip_flags=skip_flags, spike_flag=spike_flag)
        )
        return found

    def __len__(self) -> int:
        return len(self._bindings)
