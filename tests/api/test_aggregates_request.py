"""The aggregation extension's request parser: tables of accepted and refused parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.aggregates_request import AggregateRequestError, parse_interval, parse_request
from store.aggregates import BucketSpec

BASE = {"interval": "PT1H", "from": "2024-03-01T00:00:00Z", "to": "2024-03-31T00:00:00Z"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT1H", BucketSpec("fixed", 3600, "PT1H")),
        ("PT15M", BucketSpec("fixed", 900, "PT15M")),
        ("PT90S", BucketSpec("fixed", 90, "PT90S")),
        ("PT36H", BucketSpec("fixed", 129600, "PT36H")),
        ("PT1H30M", BucketSpec("fixed", 5400, "PT1H30M")),
        ("P1D", BucketSpec("days", 1, "P1D")),
        ("P7D", BucketSpec("days", 7, "P7D")),
        ("P1W", BucketSpec("days", 7, "P1W")),
        ("P1M", BucketSpec("months", 1, "P1M")),
        ("P3M", BucketSpec("months", 3, "P3M")),
        ("P1Y", BucketSpec("months", 12, "P1Y")),
        (" P1D ", BucketSpec("days", 1, "P1D")),
    ],
)
def test_intervals(text: str, expected: BucketSpec) -> None:
    assert parse_interval(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not an ISO 8601 duration"),
        ("1H", "not an ISO 8601 duration"),
        ("P", "not an ISO 8601 duration"),
        ("PT", "not an ISO 8601 duration"),
        ("P1DT", "not an ISO 8601 duration"),
        ("PT1.5H", "not an ISO 8601 duration"),
        ("PT-1H", "not an ISO 8601 duration"),
        ("PT0S", "is zero"),
        ("P1DT12H", "mixes days and clock"),
        ("P1M1D", "mixes months and days"),
        ("P5M", "must divide a year"),
        ("P2Y", "must divide a year"),
        ("PT9000H", "longer than a year"),
        ("1 hour'; DROP TABLE observations; --", "not an ISO 8601 duration"),
    ],
)
def test_bad_intervals(text: str, message: str) -> None:
    with pytest.raises(AggregateRequestError, match=message) as caught:
        parse_interval(text)
    assert caught.value.parameter == "interval"


def test_a_full_request() -> None:
    query = parse_request(
        7,
        {**BASE, "aggregates": "avg, max,increase,avg", "timeZone": "Europe/Oslo", "source": "observations"},
        max_buckets=1000,
    )
    assert query.datastream_id == 7
    assert query.functions == ("avg", "max", "increase")
    assert query.start == datetime(2024, 3, 1, tzinfo=UTC)
    assert query.end == datetime(2024, 3, 31, tzinfo=UTC)
    assert query.time_zone == "Europe/Oslo" and query.source == "observations"


def test_defaults() -> None:
    query = parse_request(1, {**BASE, "from": "2024-03-01T00:00:00+01:00"}, max_buckets=1000)
    assert query.functions == ("count", "avg", "min", "max")
    assert query.time_zone == "UTC" and query.source == "auto"
    assert query.start.utcoffset() == timedelta(hours=1)
    assert query.start == datetime(2024, 2, 29, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    ("params", "parameter", "message"),
    [
        ({"from": BASE["from"], "to": BASE["to"]}, "interval", "is required"),
        ({"interval": "PT1H", "to": BASE["to"]}, "from", "is required"),
        ({"interval": "PT1H", "from": BASE["from"]}, "to", "is required"),
        ({**BASE, "from": "2024-03-01T00:00:00"}, "from", "no time zone"),
        ({**BASE, "to": "yesterday"}, "to", "not an ISO 8601 time"),
        ({**BASE, "to": "2024-03-01T00:00:00Z"}, "to", "later than from"),
        ({**BASE, "aggregates": "avg,median"}, "aggregates", "'median' not known"),
        ({**BASE, "aggregates": "avg,"}, "aggregates", "empty name"),
        ({**BASE, "aggregates": "avg);DROP TABLE x;--"}, "aggregates", "not known"),
        ({**BASE, "timeZone": "Mars/Olympus"}, "timeZone", "not an IANA time zone"),
        ({**BASE, "timeZone": "../../etc/passwd"}, "timeZone", "not an IANA time zone"),
        ({**BASE, "source": "cache"}, "source", "not one of"),
        ({**BASE, "interval": "PT1M"}, "interval", "the limit is 1000"),
        ({**BASE, "$filter": "result gt 1"}, "$filter", "unknown parameter"),
    ],
)
def test_refused(params: dict[str, str], parameter: str, message: str) -> None:
    with pytest.raises(AggregateRequestError, match=message) as caught:
        parse_request(1, params, max_buckets=1000)
    assert caught.value.parameter == parameter
