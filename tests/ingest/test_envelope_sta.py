"""SensorThings MQTT create topics: the Datastream id travels in ``Decoded.meta["datastream_id"]``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import pytest

from ingest.envelopes import sta
from ingest.sources import SourceSet
from ingest.types import DecodeError, RawMessage, Reading
from tests.ingest.ingest_testdata import RECEIVED


def test_datastream_topic(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    d = sta.decode(raw_file("v1.1/Datastreams(42)/Observations", "sta/datastream-topic.json"), sources["sta"])
    assert d.device_id == "Datastreams(42)"
    assert d.meta == {
        "datastream_id": 42,
        "result_time": datetime(2025, 3, 4, 8, 0, 5, tzinfo=UTC),
        "parameters": {"method": "manual"},
    }
    assert d.readings == (Reading("result", 21.5, None, datetime(2025, 3, 4, 8, tzinfo=UTC)),)


def test_observations_topic_with_link_and_interval(sources: SourceSet, raw_file: Callable[..., RawMessage]) -> None:
    d = sta.decode(raw_file("v1.1/Observations", "sta/observations-topic.json"), sources["sta"])
    assert d.meta == {"datastream_id": 42}
    (r,) = d.readings
    assert (r.time, r.time_end) == (datetime(2025, 3, 4, 8, tzinfo=UTC), datetime(2025, 3, 4, 9, tzinfo=UTC))


def test_no_phenomenon_time_and_zone_less(sources: SourceSet) -> None:
    d = sta.decode(RawMessage("v1.1/Datastreams(7)/Observations", b'{"result": true}', RECEIVED), sources["sta"])
    assert d.readings[0].time is None
    body = b'{"result": 3, "phenomenonTime": "2025-03-04T09:00:00"}'
    d = sta.decode(RawMessage("v1.1/Datastreams(7)/Observations", body, RECEIVED), sources["sta"])
    assert d.readings[0].zone_assumed
    assert d.readings[0].time == datetime(2025, 3, 4, 8, tzinfo=UTC)  # the source's default zone, Europe/Oslo


def test_server_published_entity_is_marked(sources: SourceSet) -> None:
    body = b'{"@iot.id": 991, "phenomenonTime": "2025-03-04T08:00:00Z", "result": 1.5}'
    d = sta.decode(RawMessage("v1.1/Datastreams(7)/Observations", body, RECEIVED), sources["sta"])
    assert d.meta["iot_id"] == 991


@pytest.mark.parametrize(
    ("topic", "body", "detail"),
    [
        ("v1.1/Datastreams('a')/Observations", {"result": 1}, "positive integers"),
        ("v1.1/Datastreams(0)/Observations", {"result": 1}, "positive integers"),
        ("v1.1/Things(1)/Observations", {"result": 1}, "not a SensorThings Observation create topic"),
        ("v1.1/Observations", {"result": 1}, "needs a Datastream link"),
        ("v1.1/Observations", {"result": 1, "Datastream": 4}, "must be a link"),
        ("v1.1/Observations", {"result": 1, "Datastream": {"@iot.id": True}}, "positive integers"),
        ("v1.1/Datastreams(4)/Observations", {"result": 1, "Datastream": {"@iot.id": 5}}, "body links 5"),
        ("v1.1/Datastreams(4)/Observations", {"phenomenonTime": "2025-03-04T08:00:00Z"}, "has no result"),
        ("v1.1/Datastreams(4)/Observations", [1], "expected a JSON object"),
        ("v1.1/Datastreams(4)/Observations", {"result": 1, "phenomenonTime": 1741075200}, "must be text"),
        ("v1.1/Datastreams(4)/Observations",
         {"result": 1, "phenomenonTime": "2025-03-04T09:00:00Z/2025-03-04T08:00:00Z"}, "ends before it starts"),
        ("v1.1/Datastreams(4)/Observations", {"result": 1, "parameters": [1]}, "parameters must be an object"),
    ],
)  # fmt: skip
def test_faults(sources: SourceSet, topic: str, body: object, detail: str) -> None:
    with pytest.raises(DecodeError) as info:
        sta.decode(RawMessage(topic, orjson.dumps(body), RECEIVED), sources["sta"])
    assert detail in info.value.detail
