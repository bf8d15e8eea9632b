"""amsreader JSON (JsonMqttHandler templates json1/json3.json): several values per message."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import pytest

from ingest.envelopes import amsreader
from ingest.sources import SourceSet
from ingest.types import DecodeError, RawMessage
from tests.ingest.ingest_testdata import RECEIVED

TOPIC = "amsreader/a4cf12f37701"


def test_list1(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    d = amsreader.decode(raw_file(TOPIC, "amsreader/list1.json"), sources["amsreader"])
    assert d.device_id == "A4:CF:12:F3:77:01"
    assert d.model_hint == "amsreader-han"
    assert [(r.field, r.value) for r in d.readings] == [("P", 4210)]
    assert d.readings[0].time == datetime.fromtimestamp(1741078802, UTC)


def test_list3_carries_every_register(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    d = amsreader.decode(raw_file(TOPIC, "amsreader/list3.json"), sources["amsreader"])
    fields = {r.field: r.value for r in d.readings}
    assert len(d.readings) == 18
    assert fields["tPI"] == 48213.712
    assert fields["P"] == 4215
    assert fields["id"] == "7359992890941742"
    assert {r.time for r in d.readings} == {datetime(2025, 3, 4, 9, 0, tzinfo=UTC)}


def test_system_message_has_no_readings(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    d = amsreader.decode(raw_file(TOPIC, "amsreader/system.json"), sources["amsreader"])
    assert (d.kind, d.readings, d.device_id) == ("status", (), "A4:CF:12:F3:77:01")


def test_zero_time_means_none(sources: SourceSet) -> None:
    doc = {"id": "A4:CF:12:F3:77:01", "t": 0, "data": {"P": 1}}
    d = amsreader.decode(RawMessage(TOPIC, orjson.dumps(doc), RECEIVED), sources["amsreader"])
    assert d.readings[0].time is None


@pytest.mark.parametrize(
    ("doc", "detail"),
    [
        (b'{"id":"A4:CF:12:F3:77:01","t":1741078802,"data":{"P":42', "not valid JSON"),
        ({"id": "x", "t": 1741078802, "data": [1]}, "data is not an object"),
        ({"id": "x", "t": "1741078802", "data": {"P": 1}}, "epoch seconds"),
        ({"id": "x", "t": 1e20, "data": {"P": 1}}, "not a plausible epoch"),
        ({"id": "x", "t": -5, "data": {"P": 1}}, "not a plausible epoch"),
    ],
)
def test_faults(sources: SourceSet, doc: object, detail: str) -> None:
    payload = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    with pytest.raises(DecodeError) as info:
        amsreader.decode(RawMessage(TOPIC, payload, RECEIVED), sources["amsreader"])
    assert detail in info.value.detail


def test_device_from_topic_when_no_id(sources: SourceSet) -> None:
    d = amsreader.decode(RawMessage(TOPIC, b'{"t":1741078802,"data":{"P":5}}', RECEIVED), sources["amsreader"])
    assert d.device_id == "a4cf12f37701"
