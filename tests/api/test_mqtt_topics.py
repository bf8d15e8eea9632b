"""Table tests of the MQTT extension's topics (pure)."""

from __future__ import annotations

import pytest

from api.mqtt.subscriptions import SubscriptionRegistry
from api.mqtt.topics import Change, Kind, Member, Message, fixed_topics, parse_subscription, wanted
from api.sta import entities as em

OBS_CREATED = Change(Kind.CREATED, em.OBSERVATION, 9)
THING_RENAMED = Change(Kind.UPDATED, em.THING, 3, frozenset({"name", "Locations"}))


@pytest.mark.parametrize(
    ("change", "members", "expected"),
    [
        (
            OBS_CREATED,
            [Member("Datastreams", 4, "Observations")],
            [Message("v1.1/Observations"), Message("v1.1/Datastreams(4)/Observations")],
        ),
        (
            THING_RENAMED,
            [Member("Locations", 1, "Things"), Member("Locations", 2, "Things")],
            [
                Message("v1.1/Things"),
                Message("v1.1/Things(3)"),
                Message("v1.1/Things(3)/name", "name"),  # a property topic; not one for the navigation
                Message("v1.1/Locations(1)/Things"),
                Message("v1.1/Locations(2)/Things"),
            ],
        ),
    ],
)
def test_fixed_topics(change: Change, members: list[Member], expected: list[Message]) -> None:
    assert fixed_topics(change, members) == expected


def test_collections_leave_out_the_feature_of_interest_observations() -> None:
    from api.mqtt.topics import collections_of

    pairs = [(r.name, i.name) for r, i in collections_of(em.OBSERVATION)]
    assert pairs == [("Datastream", "Observations")]
    assert [(r.name, i.name) for r, i in collections_of(em.DATASTREAM)] == [
        ("Thing", "Datastreams"), ("Sensor", "Datastreams"), ("ObservedProperty", "Datastreams"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("topic", "prefix", "entity", "select", "single", "prop"),
    [
        ("v1.1/Things", "", "Thing", None, False, None),
        ("city/v1.1/Things?$select=name,id", "city/", "Thing", ("name", "id"), False, None),
        ("v1.1/Datastreams(1)/Observations", "", "Observation", None, False, None),
        ("v1.1/Datastreams(1)/Thing", "", "Thing", None, True, None),
        ("v1.1/Things(1)/name", "", "Thing", None, True, "name"),
        ("v1.1/Observations(5)/Datastream/Thing?$select=name", "", "Thing", ("name",), True, None),
    ],
)
def test_subscriptions_that_name_a_resource_path(
    topic: str, prefix: str, entity: str, select: tuple[str, ...] | None, single: bool, prop: str | None
) -> None:
    found = parse_subscription(topic, prefix)
    assert found is not None
    assert (found.entity.name, found.select, found.path.single, found.path.property) == (entity, select, single, prop)
    assert found.topic == topic.removeprefix(prefix)


@pytest.mark.parametrize(
    ("topic", "prefix"),
    [
        ("v1.1/#", ""),
        ("v1.1/+/Observations", ""),
        ("other/v1.1/Things", "city/"),  # outside the deployment's prefix
        ("v1.0/Things", ""),
        ("v1.1/Gadgets", ""),
        ("v1.1/Things(1)/$ref", ""),
        ("v1.1/Things(1)/name/$value", ""),
        ("v1.1/Things?$filter=name eq 'x'", ""),  # only $select shapes what is sent
        ("v1.1/Things?$select=colour", ""),
    ],
)
def test_what_is_not_a_served_subscription(topic: str, prefix: str) -> None:
    # a wrong $select is refused when the data is read; the name itself still parses
    found = parse_subscription(topic, prefix)
    if topic.endswith("colour"):
        assert found is not None and found.select == ("colour",)
    else:
        assert found is None


@pytest.mark.parametrize(
    ("topic", "change", "expected"),
    [
        ("v1.1/Things", THING_RENAMED, True),
        ("v1.1/Things?$select=description", THING_RENAMED, False),  # a change elsewhere is not told
        ("v1.1/Things?$select=name", THING_RENAMED, True),
        ("v1.1/Things?$select=name", Change(Kind.CREATED, em.THING, 3), True),
        ("v1.1/Things(3)/name", THING_RENAMED, True),
        ("v1.1/Things(3)/description", THING_RENAMED, False),
        ("v1.1/Datastreams(1)/Thing", THING_RENAMED, True),
        ("v1.1/Datastreams(1)/Thing", Change(Kind.CREATED, em.THING, 3), False),  # entity topics tell changes
        ("v1.1/Datastreams", THING_RENAMED, False),
        ("v1.1/Datastreams(1)/Observations", OBS_CREATED, True),
    ],
)
def test_wanted(topic: str, change: Change, expected: bool) -> None:
    subscription = parse_subscription(topic)
    assert subscription is not None
    assert wanted(subscription, change) is expected


def test_registry_counts_clients() -> None:
    registry = SubscriptionRegistry()
    registry.subscribed("a", "v1.1/Things")
    registry.subscribed("a", "v1.1/Things")  # again: still one
    registry.subscribed("b", "v1.1/Things")
    registry.subscribed("b", "v1.1/Sensors")
    registry.unsubscribed("a", "v1.1/Things")
    assert sorted(registry.topics()) == ["v1.1/Sensors", "v1.1/Things"]
    registry.gone("b")
    assert registry.topics() == []
