"""NILU records: fixed +01:00 intervals, lists of one station, nulls and "N/A"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from ingest.envelopes import nilu
from ingest.sources import SourceSet
from ingest.types import DecodeError, RawMessage, Reading
from tests.ingest.ingest_testdata import RECEIVED

TOPIC = "nilu/olav-v-gate"
PLUS1 = timezone(timedelta(hours=1))


def test_wire_formats_record(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    d = nilu.decode(raw_file(TOPIC, "nilu/bodo-pm10.json"), sources["nilu"])
    assert d.device_id == "Olav V gate"
    assert d.model_hint == "nilu-reference-station"
    assert d.readings == (
        Reading(
            "PM10", 10.506, "µg/m³", datetime(2018, 6, 4, 11, tzinfo=PLUS1), datetime(2018, 6, 4, 12, tzinfo=PLUS1)
        ),
    )
    assert d.readings[0].time == datetime(2018, 6, 4, 10, tzinfo=UTC)
    assert d.meta == {}  # eoi is null


def test_list_of_one_station(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    d = nilu.decode(raw_file(TOPIC, "nilu/bodo-hour-list.json"), sources["nilu"])
    assert [(r.field, r.value) for r in d.readings] == [("PM10", 18.2), ("PM2.5", 6.4), ("NO2", 41.0)]
    assert d.meta == {"eoi": "NO0120A"}


def test_null_value_passes_through_for_the_normaliser(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    d = nilu.decode(raw_file(TOPIC, "nilu/null-value.json"), sources["nilu"])
    assert d.readings[0].value is None


def test_zone_less_times_use_the_source_zone(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    d = nilu.decode(raw_file(TOPIC, "nilu/zoneless-mg.json"), sources["nilu"])
    (r,) = d.readings
    assert r.zone_assumed
    assert r.time == datetime(2018, 6, 4, 10, tzinfo=UTC)  # read as +01:00, the source's declared zone
    assert r.unit == "mg/m³"


def test_na_unit_and_station_fall_back(sources: SourceSet) -> None:
    record = {
        "station": "N/A",
        "component": "NO2",
        "value": 3.0,
        "unit": "N/A",
        "fromTime": "2025-03-04T08:00:00+01:00",
    }
    d = nilu.decode(RawMessage("nilu/station-7", orjson.dumps(record), RECEIVED), sources["nilu"])
    assert d.device_id == "station-7"
    assert d.readings[0].unit is None


@pytest.mark.parametrize(
    ("doc", "detail"),
    [
        ([], "empty list"),
        (["PM10"], "is not an object"),
        ({"station": "A", "value": 1}, "no component"),
        ({"station": "A", "component": "PM10"}, "has no value"),
        ({"station": "A", "component": "PM10", "value": 1, "unit": 5}, "is not text"),
        ({"station": "A", "component": "PM10", "value": 1, "fromTime": "2018-06-04T12:00:00+01:00",
          "toTime": "2018-06-04T11:00:00+01:00"}, "toTime is before fromTime"),
        ([{"station": "A", "component": "PM10", "value": 1}, {"station": "B", "component": "PM10", "value": 2}],
         "mixes stations"),
        ({"station": "A", "component": "PM10", "value": 1, "fromTime": "04.06.2018 11:00"}, "ISO 8601"),
    ],
)  # fmt: skip
def test_faults(sources: SourceSet, doc: object, detail: str) -> None:
    with pytest.raises(DecodeError) as info:
        nilu.decode(RawMessage(TOPIC, orjson.dumps(doc), RECEIVED), sources["nilu"])
    assert detail in info.value.detail
