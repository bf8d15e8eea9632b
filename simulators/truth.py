"""Ground truth from vendor fields: the device model names the property, the vocabulary the unit.

The conversion is ``schemas.units.converter``, the same one ingest uses, so a truth value is
exactly what a correct ingest stores (e.g. 100720.00 Pa -> 1007.2 hPa).
"""

from __future__ import annotations

from datetime import datetime
from functools import cache

from schemas import units
from schemas.device_models import DeviceModel, device_models
from schemas.vocabulary import PropertyDef, vocabulary
from simulators.model import Truth, Value


@cache
def _model(key: str) -> DeviceModel:
    return device_models()[key]


@cache
def _prop(key: str) -> PropertyDef:
    return vocabulary().get(key)


def property_of(model: str, field: str) -> str:
    return _model(model).fields[field].property


def truth(
    model: str,
    field: str,
    value: Value | str,
    time: datetime | None,
    *,
    unit: str | None = None,
    time_end: datetime | None = None,
    flags: tuple[str, ...] = (),
) -> Truth:
    """The stored value of ``field`` as sent (text numbers parsed, ``unit`` overriding the model's)."""
    fmap = _model(model).fields[field]
    prop = _prop(fmap.property)
    result: Value
    if prop.result_type == "boolean":
        result = bool(value)
    else:
        number = float(value)
        src = unit or fmap.unit
        result = units.converter(src, prop.unit)(number) if src is not None else number
    return Truth(prop.key, time, result, time_end, flags)
