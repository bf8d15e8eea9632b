"""Decoded vendor readings -> :class:`~schemas.observation.NormalisedObservation` rows.

Pure and allocation-light: per device model a plan (field -> property, canonical unit,
range, rules) is compiled once and cached; unit converters are cached per unit pair.
A message is normalised whole or not at all: every value is parsed and converted before
any flag is computed or any state touched, so a :class:`MappingError` leaves the
caller's :class:`~ingest.quality.QualityState` exactly as it was.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from ingest._build import observation
from ingest.quality import (
    FUTURE_TIME,
    LOW_COST_SENSOR,
    OUT_OF_RANGE,
    STALE_TIME,
    TIME_ASSUMED,
    TIME_RELATIVE,
    UNVERIFIED_DEVICE,
    ZONE_ASSUMED,
    QualityState,
    Rules,
)
from ingest.sources import PlausibilityWindow, default_window
from ingest.types import Decoded, DeviceBinding, MappingError, Reading
from schemas import units
from schemas.device_models import DeviceModel
from schemas.observation import NormalisedObservation
from schemas.vocabulary import PropertyDef, vocabulary

NUMBER, BOOLEAN, TEXT, JSON = 0, 1, 2, 3
_KINDS = {"number": NUMBER, "boolean": BOOLEAN, "text": TEXT, "json": JSON}
_UNSEEN = object()


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """How one vendor field becomes observations of one property."""

    property: str
    kind: int
    canonical: str
    default_unit: str
    low: float
    high: float
    rules: Rules
    stateful: bool
    scale: float = 1.0  # default unit -> canonical: value * scale + offset
    offset: float = 0.0
    identity: bool = True


@dataclass(frozen=True, slots=True)
class ModelPlan:
    fields: Mapping[str, FieldPlan]
    ignore: frozenset[str]


@dataclass(frozen=True, slots=True)
class Normalised:
    """The observations of one message, and the fields that produced none.

    ``ignored``: fields the model lists under ``ignore`` (skipped silently);
    ``unmapped``: fields neither mapped nor ignored (not an error; the runtime counts
    them so a municipality can see what a device sends that Bydata does not keep).
    """

    observations: tuple[NormalisedObservation, ...]
    ignored: tuple[str, ...] = ()
    unmapped: tuple[str, ...] = ()

    @property
    def flagged(self) -> int:
        """How many observations carry at least one quality flag."""
        return sum(1 for o in self.observations if o.quality_flags)


def _property_plan(prop: PropertyDef, unit: str | None) -> FieldPlan:
    rules = Rules(
        cumulative=prop.cumulative,
        spike_delta=prop.spike.delta if prop.spike else None,
        spike_within_s=prop.spike.within_s if prop.spike else 0.0,
        stuck_count=prop.stuck.count if prop.stuck else None,
    )
    kind = _KINDS[prop.result_type]
    default_unit = unit or prop.unit
    conv = units.converter(default_unit, prop.unit) if kind == NUMBER else None
    return FieldPlan(
        property=prop.key,
        kind=kind,
        canonical=prop.unit,
        default_unit=default_unit,
        low=float(prop.range[0]),
        high=float(prop.range[1]),
        rules=rules,
        stateful=kind == NUMBER and rules.stateful,
        scale=conv.scale if conv else 1.0,
        offset=conv.offset if conv else 0.0,
        identity=conv.identity if conv else True,
    )


# Keyed by id(); each entry holds its key object so the id cannot be reused while cached.
_model_plans: dict[int, tuple[DeviceModel, ModelPlan]] = {}
_property_plans: dict[str, FieldPlan] = {}
_converters: dict[tuple[str, str], units.Converter] = {}


def model_plan(model: DeviceModel) -> ModelPlan:
    """The compiled plan of a device model (cached per model object)."""
    entry = _model_plans.get(id(model))
    if entry is not None and entry[0] is model:
        return entry[1]
    vocab = vocabulary()
    plan = ModelPlan(
        fields={name: _property_plan(vocab.get(f.property), f.unit) for name, f in model.fields.items()},
        ignore=frozenset(model.ignore),
    )
    if len(_model_plans) > 4096:
        _model_plans.clear()
    _model_plans[id(model)] = (model, plan)
    return plan


def property_plan(key: str) -> FieldPlan:
    """Plan for a property whose value arrives in its canonical unit (SensorThings creates)."""
    plan = _property_plans.get(key)
    if plan is None:
        try:
            prop = vocabulary().get(key)
        except KeyError as exc:
            raise MappingError(str(exc)) from None
        plan = _property_plans[key] = _property_plan(prop, None)
    return plan


def _converter(unit: str, canonical: str, field: str) -> units.Converter:
    conv = _converters.get((unit, canonical))
    if conv is None:
        try:
            conv = units.converter(unit, canonical)
        except units.UnitError as exc:
            raise MappingError(f"field {field!r}: unit {unit!r} cannot be converted to {canonical!r}: {exc}") from None
        _converters[(unit, canonical)] = conv
    return conv


def _number(raw: Any, field: str) -> float:
    kind = type(raw)
    if kind is float:
        value: float = raw
    elif kind is int:
        try:
            value = float(raw)
        except OverflowError:
            raise MappingError(f"field {field!r}: {raw!r} is too large") from None
    elif kind is str:
        try:
            value = float(raw.strip())
        except ValueError:
            raise MappingError(f"field {field!r}: {raw!r} is not a number") from None
    elif raw is None:
        raise MappingError(f"field {field!r} is null")
    else:
        raise MappingError(f"field {field!r}: expected a number, got {type(raw).__name__} {raw!r:.60}")
    if not math.isfinite(value):
        raise MappingError(f"field {field!r}: {raw!r} is not a finite number")
    return value


@cache
def _boolean_words() -> tuple[frozenset[str], frozenset[str]]:
    """Texts read as true and as false (``boolean_text`` of the vocabulary), lower case."""
    words = vocabulary().boolean_text
    return frozenset(w.lower() for w in words.true), frozenset(w.lower() for w in words.false)


def _boolean(raw: Any, field: str) -> bool:
    if raw is True or raw is False:
        return bool(raw)
    if type(raw) in (int, float) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        text = raw.strip().lower()
        true, false = _boolean_words()
        if text in true:
            return True
        if text in false:
            return False
    raise MappingError(f"field {field!r}: {raw!r:.60} is not a boolean")


def _value(plan: FieldPlan, reading: Reading) -> Any:
    """The reading's value as the property's result type, in its canonical unit."""
    raw = reading.value
    if plan.kind == NUMBER:
        kind = type(raw)
        if kind is float and math.isfinite(raw):
            value: float = raw
        elif kind is int and -(2**53) <= raw <= 2**53:
            value = float(raw)
        else:
            value = _number(raw, reading.field)
        unit = reading.unit
        if unit is None or unit == plan.default_unit:
            if not plan.identity:
                value = round(value * plan.scale + plan.offset, 9)
        elif unit != plan.canonical:
            value = _converter(unit, plan.canonical, reading.field)(value)
        return value
    if plan.kind == BOOLEAN:
        return _boolean(raw, reading.field)
    if raw is None:
        raise MappingError(f"field {reading.field!r} is null")
    if plan.kind == TEXT:
        if isinstance(raw, dict | list):
            raise MappingError(f"field {reading.field!r}: expected text, got {type(raw).__name__}")
        return str(raw)
    return raw


def _sta_plan(binding: DeviceBinding, datastream_id: Any) -> FieldPlan:
    for key, ds in binding.datastreams.items():
        if ds == datastream_id:
            return property_plan(key)
    raise MappingError(f"Datastream {datastream_id} is not one of device {binding.device_id}'s Datastreams")


def normalise(
    decoded: Decoded,
    binding: DeviceBinding,
    received_at: datetime,
    state: QualityState,
    *,
    window: PlausibilityWindow | None = None,
) -> Normalised:
    """Map, convert and flag every reading of ``decoded`` for the device ``binding``.

    ``received_at`` (aware) is when Bydata received the message; it is the phenomenon
    time of readings without one (flag ``time_assumed``) and is kept on every row.
    ``window`` is the source's plausibility window (future clock skew, lateness; default: the
    shipped sources file's defaults).
    Raises :class:`MappingError` (reason ``unmapped``) naming the field when a mapped
    value cannot be used; nothing is returned and ``state`` is untouched in that case.
    """
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    received = received_at if received_at.tzinfo is UTC else received_at.astimezone(UTC)
    meta = decoded.meta
    sta_datastream = meta.get("datastream_id") if meta else None
    plan = None if sta_datastream is not None else model_plan(binding.model)
    datastreams = binding.datastreams
    base = (LOW_COST_SENSOR if binding.low_cost else 0) | (0 if binding.verified else UNVERIFIED_DEVICE)

    # Pass 1: map and convert everything (may raise); nothing is flagged or remembered yet.
    staged: list[tuple[FieldPlan, int, Any, Reading]] = []
    ignored: list[str] = []
    unmapped: list[str] = []
    for reading in decoded.readings:
        if plan is None:
            fplan = _sta_plan(binding, sta_datastream)
            datastream_id = int(sta_datastream)  # type: ignore[arg-type]
        else:
            found = plan.fields.get(reading.field)
            if found is None:
                (ignored if reading.field in plan.ignore else unmapped).append(reading.field)
                continue
            fplan = found
            ds = datastreams.get(fplan.property)
            if ds is None:
                raise MappingError(
                    f"field {reading.field!r}: device {binding.device_id} has no Datastream for {fplan.property!r}"
                )
            datastream_id = ds
        staged.append((fplan, datastream_id, _value(fplan, reading), reading))
    if not staged:
        return Normalised((), tuple(ignored), tuple(unmapped))

    # Pass 2: times, flags and per-datastream state.
    if window is None:
        window = default_window()
    latest = received + window.max_future
    earliest = received - window.max_late
    result_time = meta.get("result_time") if meta else None
    parameters = meta.get("parameters") if meta else None
    if result_time is not None and result_time.tzinfo is not UTC:
        result_time = result_time.astimezone(UTC)
    observations: list[NormalisedObservation] = []
    # Readings of one message usually share one time object: judge each time once.
    seen: Any = _UNSEEN
    t_utc, t_flags, ts = received, TIME_ASSUMED, 0.0
    for fplan, datastream_id, value, reading in staged:
        t = reading.time
        if t is not seen:
            seen = t
            if t is None:
                t_utc, t_flags = received, TIME_ASSUMED
            else:
                t_utc = t if t.tzinfo is UTC else t.astimezone(UTC)
                t_flags = FUTURE_TIME if t_utc > latest else STALE_TIME if t_utc < earliest else 0
            ts = t_utc.timestamp()
        flags = base | t_flags
        if reading.zone_assumed:
            flags |= ZONE_ASSUMED
        if reading.time_relative:
            flags |= TIME_RELATIVE
        end = reading.time_end
        if end is not None and end.tzinfo is not UTC:
            end = end.astimezone(UTC)
        if fplan.kind == NUMBER:
            if value < fplan.low or value > fplan.high:
                flags |= OUT_OF_RANGE
            if fplan.stateful and not t_flags & FUTURE_TIME:
                flags |= state.check(datastream_id, fplan.rules, ts, value)
        observations.append(observation(datastream_id, t_utc, received, value, end, result_time, flags, parameters))
    return Normalised(tuple(observations), tuple(ignored), tuple(unmapped))
