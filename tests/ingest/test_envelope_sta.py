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
    "topic",
    ["v1.1/Observations", "v1.1/FeaturesOfInterest(3)/Observations", "v1.1/Datastreams(7)/Observations"],
)
def test_a_notification_is_marked_whatever_it_links(sources: SourceSet, topic: str) -> None:
    """The API's notifications on v1.1/Observations carry navigation links, not a Datastream: never quarantined."""
    body = {
        "@iot.id": 5,
        "@iot.selfLink": "http://x/v1.1/Observations(5)",
        "result": 1,
        "Datastream@iot.navigationLink": "http://x/v1.1/Observations(5)/Datastream",
    }
    d = sta.decode(RawMessage(topic, orjson.dumps(body), RECEIVED), sources["sta"])
    assert d.meta == {"iot_id": 5} and d.readings == ()


# What the OGC test suite publishes (ets-sta10 Capability7Test): links to an existing Datastream and
# FeatureOfInterest with validTime and parameters, and a deep insert of Datastream, Thing, Sensor ...
LINKED = {
    "phenomenonTime": "2015-03-01T02:40:00+02:00",
    "validTime": "2016-01-01T01:01:01.000Z/2016-01-01T23:59:59.000Z",
    "result": 4611686018427387904,
    "parameters": {"param1": "some value1"},
    "Datastream": {"@iot.id": 7},
    "FeatureOfInterest": {"@iot.id": 3},
}
DEEP = {
    "phenomenonTime": "2015-03-01T00:00:00.000Z",
    "result": 12,
    "FeatureOfInterest": {"name": "A weather station.", "description": "A weather station.",
                          "encodingType": "application/vnd.geo+json",
                          "feature": {"type": "Point", "coordinates": [-114.05, 51.05]}},
    "Datastream": {"name": "test datastream.", "description": "d", "unitOfMeasurement": {"name": "Celsius"},
                   "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                   "Thing": {"name": "Test Thing", "description": "t"}},
}  # fmt: skip


@pytest.mark.parametrize(
    ("topic", "body", "path", "device"),
    [
        ("v1.1/Observations", LINKED, "Observations", "Datastreams(7)"),
        ("v1.1/Datastreams(7)/Observations", LINKED, "Datastreams(7)/Observations", "Datastreams(7)"),
        ("v1.1/FeaturesOfInterest(3)/Observations", LINKED, "FeaturesOfInterest(3)/Observations", "Datastreams(7)"),
        ("v1.1/FeaturesOfInterest(3)/Observations", {"result": 1}, "FeaturesOfInterest(3)/Observations",
         "FeaturesOfInterest(3)/Observations"),
        ("v1.1/Observations", DEEP, "Observations", "Observations"),
        ("v1.1/Datastreams(7)/Observations", {"result": 1, "validTime": "2016-01-01T00:00:00Z/2016-01-02T00:00:00Z"},
         "Datastreams(7)/Observations", "Datastreams(7)"),
        ("v1.1/Datastreams(7)/Observations", {"result": 1, "resultQuality": {"x": 1}}, "Datastreams(7)/Observations",
         "Datastreams(7)"),
        ("v1.0/Datastreams(7)/Observations", {"result": 1, "FeatureOfInterest": {"@iot.id": 3}},
         "Datastreams(7)/Observations", "Datastreams(7)"),
    ],
)  # fmt: skip
def test_what_readings_cannot_hold_is_an_entity_create(
    sources: SourceSet, topic: str, body: dict[str, object], path: str, device: str
) -> None:
    d = sta.decode(RawMessage(topic, orjson.dumps(body), RECEIVED), sources["sta"])
    assert d.meta == {"entity_create": path}
    assert d.device_id == device and d.readings == ()
    assert sta.resource_path(topic) == path


def test_readings_keep_the_fast_path(sources: SourceSet) -> None:
    body = {"result": 1, "phenomenonTime": "2025-03-04T08:00:00Z", "Datastream": {"@iot.id": 7}}
    d = sta.decode(RawMessage("v1.1/Observations", orjson.dumps(body), RECEIVED), sources["sta"])
    assert d.meta == {"datastream_id": 7} and len(d.readings) == 1


@pytest.mark.parametrize(
    ("topic", "body", "detail"),
    [
        ("v1.1/Datastreams('a')/Observations", {"result": 1}, "positive integers"),
        ("v1.1/Datastreams(0)/Observations", {"result": 1}, "positive integers"),
        ("v1.1/Things(1)/Observations", {"result": 1}, "not a SensorThings Observation create topic"),
        ("v1.1/Observations", {"result": 1}, "needs a Datastream link"),
        ("v1.1/Observations", {"result": 1, "Datastream": 4}, "must be a link"),
        ("v1.1/Observations", {"result": 1, "Datastream": {}}, "must be a link"),
        ("v1.1/Datastreams(4)/Observations", {"result": 1, "Datastream": {"name": "x"}}, "carries a new Datastream"),
        ("v1.1/FeaturesOfInterest(x)/Observations", {"result": 1}, "positive integers"),
        ("v1.1/Observations", {"FeatureOfInterest": {"@iot.id": 1}, "Datastream": {"@iot.id": 1}}, "has no result"),
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
