"""Sources as data: topic filters (MQTT wildcard rules), matching, the shipped file, bad files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from ingest.sources import (
    PlausibilityWindow,
    Source,
    SourceSet,
    TopicFilterError,
    compile_filter,
    default_window,
    load_sources,
    parse_timezone,
    sources_from_data,
    topic_matches,
)
from ingest.types import NO_SOURCE, NoSource
from tests.conftest import ROOT

# (filter, topic, matches) — MQTT 5.0 §4.7.1/4.7.2 examples plus Bydata's {name} levels.
MATCH_TABLE = [
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/#", "sport", True),
    ("#", "anything/at/all", True),
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("#", "$SYS/broker/load", False),
    ("+/monitor/Clients", "$SYS/monitor/Clients", False),
    ("$SYS/#", "$SYS/broker/load", True),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
    ("v3/+/devices/{device_id}/up", "v3/parking@kristiansund/devices/eui-70b3d5e75e000341/up", True),
    ("v3/+/devices/{device_id}/up", "v3/parking/devices/eui-70b3d5e75e000341/down/sent", False),
    ("application/+/device/{device_id}/event/up", "application/17c8/device/0101010101010101/event/up", True),
    ("application/+/device/{device_id}/event/up", "application/17c8/device/0101010101010101/event/status", False),
    ("v1.1/+/Observations", "v1.1/Datastreams(42)/Observations", True),
    ("v1.1/Observations", "v1.1/Observations", True),
    ("v1.1/Observations", "v1.1/Datastreams(42)/Observations", False),
    ("a/b.c/d", "a/bxc/d", False),  # literal levels are literal, not regex
]


@pytest.mark.parametrize(("topic_filter", "topic", "expected"), MATCH_TABLE)
def test_topic_matching(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected


@pytest.mark.parametrize(
    "bad", ["", "sport/tennis#", "sport/#/ranking", "sport+", "v1.1/Datastreams({id})/Observations", "a/{x}/{x}"]
)
def test_invalid_filters_are_refused(bad: str) -> None:
    with pytest.raises(TopicFilterError):
        compile_filter(bad)


def test_placeholders_subscribe_as_plus_and_capture() -> None:
    mqtt_filter, pattern = compile_filter("sensor-community/{device_id}")
    assert mqtt_filter == "sensor-community/+"
    m = pattern.match("sensor-community/13597771")
    assert m is not None and m.group("device_id") == "13597771"


def test_shipped_sources_cover_every_envelope(sources: SourceSet) -> None:
    assert {s.envelope for s in sources} == {
        "tts_v3",
        "chirpstack_v4",
        "sensor_community",
        "nilu",
        "amsreader",
        "senml",
        "sta",
    }
    assert "v3/+/devices/+/up" in sources.filters()
    nilu = sources["nilu"]
    assert nilu.device_model == "nilu-reference-station"
    assert nilu.timezone.utcoffset(None) == timedelta(hours=1)
    assert nilu.window.max_late_s == 2592000
    assert sources["amsreader"].timezone == ZoneInfo("Europe/Oslo")  # the file's default
    assert sources["tts"].window.max_future_s == 120


@pytest.mark.parametrize(
    ("topic", "name"),
    [
        ("v3/parking/devices/eui-1/up", "tts"),
        ("application/x/device/0101010101010101/event/up", "chirpstack"),
        ("sensor-community/13597771", "sensor-community"),
        ("nilu/olav-v-gate", "nilu"),
        ("amsreader/a4cf12f37701", "amsreader"),
        ("senml/gw-1", "senml"),
        ("v1.1/Datastreams(7)/Observations", "sta"),
        ("v1.0/Observations", "sta"),
    ],
)
def test_topic_to_source(sources: SourceSet, topic: str, name: str) -> None:
    assert sources.match(topic).name == name


def test_unmatched_topic_is_no_source(sources: SourceSet) -> None:
    with pytest.raises(NoSource) as info:
        sources.match("zigbee2mqtt/kitchen")
    assert info.value.reason == NO_SOURCE
    assert "zigbee2mqtt/kitchen" in info.value.detail


def test_first_matching_source_wins() -> None:
    data = {
        "version": 1,
        "sources": [
            {"name": "special", "envelope": "senml", "topics": ["senml/gw-7"], "device_model": "senml-weather-station"},
            {"name": "general", "envelope": "senml", "topics": ["senml/+"], "device_model": "senml-heat-gateway"},
        ],
    }
    sources = sources_from_data(data)
    assert sources.match("senml/gw-7").name == "special"
    assert sources.match("senml/gw-8").name == "general"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"envelope": "mbus"}, "envelope"),
        ({"topics": ["a/#/b"]}, "'#' must be the last"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"max_late_s": 0}, "max_late_s"),
        ({"device_id_from": "topic", "topics": ["senml/+"]}, "device_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_source_files_fail_at_load(change: dict[str, object], message: str) -> None:
    source = {"name": "s", "envelope": "senml", "topics": ["senml/{device_id}"], **change}
    with pytest.raises(ValueError, match=message):
        sources_from_data({"version": 1, "sources": [source]})


def test_duplicate_names_fail() -> None:
    source = {"name": "s", "envelope": "senml", "topics": ["senml/+"]}
    with pytest.raises(ValueError, match="duplicate"):
        sources_from_data({"version": 1, "sources": [source, source]})


def test_unknown_device_model_is_caught(models: dict[str, object]) -> None:
    sources = sources_from_data(
        {"version": 1, "sources": [{"name": "s", "envelope": "senml", "topics": ["x"], "device_model": "nope"}]}
    )
    with pytest.raises(ValueError, match="nope"):
        sources.check_models(models)
    load_sources().check_models(models)  # the shipped file names only shipped models


def test_load_from_path(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text("version: 1\nsources:\n  - {name: a, envelope: amsreader, topics: ['ams/#']}\n", encoding="utf-8")
    sources = load_sources(path)
    assert [s.name for s in sources] == ["a"]
    assert sources.match("ams/x/y").envelope == "amsreader"


@pytest.mark.parametrize(
    ("text", "offset_at_new_year"),
    [("UTC", timedelta(0)), ("+01:00", timedelta(hours=1)), ("-03:30", timedelta(hours=-3, minutes=-30)),
     ("Europe/Oslo", timedelta(hours=1))],
)  # fmt: skip
def test_parse_timezone(text: str, offset_at_new_year: timedelta) -> None:
    zone = parse_timezone(text)
    assert datetime(2025, 1, 1, tzinfo=zone).utcoffset() == offset_at_new_year
    assert datetime(2025, 1, 1, tzinfo=zone).astimezone(UTC).tzinfo is UTC


def test_defaults_come_from_the_shipped_file(tmp_path: Path) -> None:
    """The default zone and window are data: the shipped file's, also for a file that leaves them out."""
    shipped = yaml.safe_load((ROOT / "schemas" / "sources.yaml").read_text(encoding="utf-8"))["defaults"]
    window = PlausibilityWindow(float(shipped["max_future_s"]), float(shipped["max_late_s"]))
    assert default_window() == window
    one = {"name": "a", "envelope": "senml", "topics": ["x/{device_id}"]}
    (bare,) = sources_from_data({"version": 1, "sources": [one]})
    assert bare.window == window
    assert (
        datetime(2025, 7, 1, tzinfo=bare.timezone).utcoffset()
        == datetime(2025, 7, 1, tzinfo=parse_timezone(shipped["timezone"])).utcoffset()
    )
    (partial,) = sources_from_data({"version": 1, "defaults": {"max_late_s": 60}, "sources": [one]})
    assert partial.window == PlausibilityWindow(window.max_future_s, 60.0)
    assert Source("code", "senml", ("x/#",)).window == window  # built in code: the same defaults
