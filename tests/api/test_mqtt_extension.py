"""Conformance: the MQTT extension (OGC 18-088, 14.2), class by class, with plain paho clients.

Receiving updates (req/receive-updates-via-mqtt/receive-updates) on the real Mosquitto: entity
sets, entities, properties and navigation collections get what HTTP writes created or changed,
after commit. ``$select`` topics and navigations to one entity on the embedded broker, whose
subscriptions Bydata sees. Creating Observations (req/create-observations-via-mqtt/
observations-creation) through the ingest runtime.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.mqtt.notifier import MQTT_CREATE, MQTT_RECEIVE, MqttOptions
from api.mqtt.subscriptions import PLUGIN, registry_for
from ingest.broker import EmbeddedBroker
from schemas.provisioning import Provisioning
from store.provisioning import import_provisioning
from tests.api.mqtt_client import Listener
from tests.api.test_create_update_delete import BASE, POINT, UOM, get, post, thing_body
from tests.conftest import free_port, wait_until

ENDPOINT = "mqtt://broker.example:1883"


def start(url: str, options: MqttOptions) -> Iterator[TestClient]:
    with TestClient(create_app(url, pool_min=1, pool_max=4, public_url=BASE, mqtt=options), base_url=BASE) as client:
        assert client.app.state.notifier.publisher.connected.wait(10), "the API did not connect to the broker"
        yield client


@pytest.fixture
def mosquitto(migrated_db: str, mqtt_url: str, topic_prefix: str) -> Iterator[tuple[TestClient, str, str]]:
    prefix = topic_prefix + "/"
    options = MqttOptions(url=mqtt_url, endpoint=ENDPOINT, topic_prefix=prefix)
    for client in start(migrated_db, options):
        yield client, mqtt_url, prefix


def datastream_of(client: TestClient) -> tuple[int, int]:
    """A new Thing with a Datastream; its notifications are all out before this returns."""
    thing = post(client, "Things", thing_body())
    ds = get(client, f"Things({thing['@iot.id']})/Datastreams")["value"][0]["@iot.id"]
    assert client.app.state.notifier.flush(10)
    return int(thing["@iot.id"]), int(ds)


def test_service_root_lists_the_mqtt_classes_and_endpoints(mosquitto: tuple[TestClient, str, str]) -> None:
    client, _, prefix = mosquitto
    settings = get(client, "")["serverSettings"]
    assert {MQTT_CREATE, MQTT_RECEIVE} <= set(settings["conformance"])
    for uri in (MQTT_CREATE, MQTT_RECEIVE):
        assert settings[uri] == {"endpoints": [ENDPOINT], "topicPrefix": prefix}


def test_a_datastreams_observations_topic_gets_an_observation_created_over_http(
    mosquitto: tuple[TestClient, str, str],
) -> None:
    """The plain MQTT client case: subscribe to a Datastream's Observations, create one over HTTP."""
    client, url, prefix = mosquitto
    _, ds = datastream_of(client)
    with Listener(url) as listener:
        listener.subscribe(f"{prefix}v1.1/Datastreams({ds})/Observations")
        bad = client.post(f"/v1.1/Datastreams({ds})/Observations", json={"result": 1, "colour": "red"})
        assert bad.status_code == 400  # a failed write tells nothing: the next message is the good one
        created = post(
            client, f"Datastreams({ds})/Observations", {"phenomenonTime": "2024-03-01T00:00:00Z", "result": 7}
        )
        topic, body = listener.next()
    assert topic == f"{prefix}v1.1/Datastreams({ds})/Observations"
    assert body == created == get(client, f"Observations({created['@iot.id']})")


def test_entity_sets_get_each_entity_of_a_deep_insert(mosquitto: tuple[TestClient, str, str]) -> None:
    client, url, prefix = mosquitto
    sets = ("Things", "Locations", "Datastreams", "Sensors", "ObservedProperties", "Observations")
    with Listener(url) as listener:
        listener.subscribe(*(f"{prefix}v1.1/{name}" for name in sets))
        thing = post(client, "Things", thing_body())
        got = listener.collect(len(sets))
    # deep insert: each entity on its set's topic, as a GET shows it
    assert got[f"{prefix}v1.1/Things"] == get(client, f"Things({thing['@iot.id']})")
    ds = get(client, f"Things({thing['@iot.id']})/Datastreams")["value"][0]
    assert got[f"{prefix}v1.1/Datastreams"]["@iot.id"] == ds["@iot.id"]
    assert got[f"{prefix}v1.1/Observations"]["result"] == 70.4


def test_a_feature_of_interest_made_from_the_location_is_announced_once(mosquitto: tuple[TestClient, str, str]) -> None:
    """An Observation without a FeatureOfInterest gets one made from its Thing's Location: a new entity,
    told on v1.1/FeaturesOfInterest like one the client sent; the next Observation reuses it (no message)."""
    client, url, prefix = mosquitto
    body = thing_body()
    del body["Datastreams"][0]["Observations"]
    thing = post(client, "Things", body)
    ds = get(client, f"Things({thing['@iot.id']})/Datastreams")["value"][0]["@iot.id"]
    assert client.app.state.notifier.flush(10)
    with Listener(url) as listener:
        listener.subscribe(f"{prefix}v1.1/FeaturesOfInterest", f"{prefix}v1.1/Observations")
        first = post(client, f"Datastreams({ds})/Observations", {"phenomenonTime": "2024-03-01T00:00Z", "result": 1})
        got = listener.collect(2)
        second = post(client, f"Datastreams({ds})/Observations", {"phenomenonTime": "2024-03-01T01:00Z", "result": 2})
        topic, body = listener.next()
        assert listener.messages.empty()
    feature = get(client, f"Observations({first['@iot.id']})/FeatureOfInterest")
    assert got[f"{prefix}v1.1/FeaturesOfInterest"] == feature
    assert got[f"{prefix}v1.1/Observations"]["@iot.id"] == first["@iot.id"]
    assert (topic, body["@iot.id"]) == (f"{prefix}v1.1/Observations", second["@iot.id"])
    assert get(client, f"Observations({second['@iot.id']})/FeatureOfInterest")["@iot.id"] == feature["@iot.id"]


def test_entity_and_property_topics_get_changes(mosquitto: tuple[TestClient, str, str]) -> None:
    client, url, prefix = mosquitto
    thing, _ = datastream_of(client)
    with Listener(url) as listener:
        listener.subscribe(
            f"{prefix}v1.1/Things({thing})", f"{prefix}v1.1/Things({thing})/name", f"{prefix}v1.1/Things"
        )
        response = client.patch(f"/v1.1/Things({thing})", json={"name": "renamed"})
        assert response.status_code == 200
        got = listener.collect(3)
    assert got[f"{prefix}v1.1/Things({thing})"] == response.json()
    assert got[f"{prefix}v1.1/Things"] == response.json()
    assert got[f"{prefix}v1.1/Things({thing})/name"] == {"name": "renamed"}


def test_navigation_collections_get_members_created_and_changed(mosquitto: tuple[TestClient, str, str]) -> None:
    client, url, prefix = mosquitto
    thing, ds = datastream_of(client)
    datastream = get(client, f"Datastreams({ds})?$expand=Sensor,ObservedProperty")
    body = {
        "name": "second", "description": "d", "observationType": datastream["observationType"],
        "unitOfMeasurement": datastream["unitOfMeasurement"], "Thing": {"@iot.id": thing},
        "Sensor": {"@iot.id": datastream["Sensor"]["@iot.id"]},
        "ObservedProperty": {"@iot.id": datastream["ObservedProperty"]["@iot.id"]},
    }  # fmt: skip
    with Listener(url) as listener:
        listener.subscribe(f"{prefix}v1.1/Things({thing})/Datastreams")
        created = post(client, "Datastreams", body)
        topic, message = listener.next()
        assert topic == f"{prefix}v1.1/Things({thing})/Datastreams" and message == created
        changed = client.put(f"/v1.1/Datastreams({created['@iot.id']})", json={**body, "name": "third"})
        assert changed.status_code == 200
        _, message = listener.next()
    assert message == changed.json() and message["name"] == "third"


def test_a_change_set_is_told_after_it_commits_and_a_failed_one_never(
    mosquitto: tuple[TestClient, str, str],
) -> None:
    client, url, prefix = mosquitto
    _, ds = datastream_of(client)

    def observation(time: str) -> dict[str, Any]:
        return {
            "method": "post",
            "url": f"Datastreams({ds})/Observations",
            "body": {"phenomenonTime": time, "result": 1},
        }

    failed = [
        {"id": "a", "atomicityGroup": "g", **observation("2024-05-01T00:00:00Z")},
        # no such Datastream: 400, and the whole set is undone
        {"id": "b", "atomicityGroup": "g", "method": "post", "url": "Observations",
         "body": {"phenomenonTime": "2024-05-01T00:00:00Z", "result": 1, "Datastream": {"@iot.id": 999999}}},
    ]  # fmt: skip
    good = [{"id": "c", "atomicityGroup": "h", **observation("2024-05-02T00:00:00Z")}]
    with Listener(url) as listener:
        listener.subscribe(f"{prefix}v1.1/Datastreams({ds})/Observations")
        assert client.post("/v1.1/$batch", json={"requests": failed}).json()["responses"][1]["status"] == 400
        assert client.post("/v1.1/$batch", json={"requests": good}).json()["responses"][0]["status"] == 201
        _, message = listener.next()
    assert message["phenomenonTime"] == "2024-05-02T00:00:00Z"


# ---- the embedded broker: Bydata sees subscriptions --------------------------------------------


@pytest.fixture
def embedded(migrated_db: str) -> Iterator[tuple[TestClient, str]]:
    port = free_port()
    with EmbeddedBroker(port, plugins={PLUGIN: {"port": port}}) as broker:
        options = MqttOptions(url=broker.url, endpoint=broker.url, subscriptions=registry_for(port))
        for client in start(migrated_db, options):
            yield client, broker.url


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("?", maxsplit=1)[0])


def _subscribed(url: str, listener: Listener, *topics: str) -> None:
    """Subscribe and wait until the broker's plugin has told the registry (SUBACK comes first)."""
    listener.subscribe(*topics)
    assert wait_until(lambda: set(topics) <= set(registry_for(port_of(url)).topics()), timeout=10)


def test_select_topics_get_the_selected_properties(embedded: tuple[TestClient, str]) -> None:
    client, url = embedded
    with Listener(url) as listener:
        _subscribed(url, listener, "v1.1/Things?$select=name,description")
        thing = post(client, "Things", {"name": "lamp", "description": "street lamp"})
        _, message = listener.next()
        assert message == {"name": "lamp", "description": "street lamp"}
        client.patch(f"/v1.1/Things({thing['@iot.id']})", json={"properties": {"x": 1}})  # not selected: nothing
        client.patch(f"/v1.1/Things({thing['@iot.id']})", json={"name": "bright lamp"})
        _, message = listener.next()
    assert message == {"name": "bright lamp", "description": "street lamp"}


def test_a_navigation_to_one_entity_gets_its_changes(embedded: tuple[TestClient, str]) -> None:
    client, url = embedded
    thing, ds = datastream_of(client)
    _, other = datastream_of(client)
    with Listener(url) as listener:
        _subscribed(url, listener, f"v1.1/Datastreams({ds})/Thing", f"v1.1/Datastreams({other})/Thing")
        response = client.patch(f"/v1.1/Things({thing})", json={"description": "moved"})
        topic, message = listener.next()
    assert topic == f"v1.1/Datastreams({ds})/Thing"  # not the other Datastream's Thing
    assert message == response.json()


def test_the_registry_forgets_clients_that_leave(embedded: tuple[TestClient, str]) -> None:
    _, url = embedded
    port = port_of(url)
    with Listener(url) as listener:
        _subscribed(url, listener, "v1.1/Sensors?$select=name")
    assert wait_until(lambda: "v1.1/Sensors?$select=name" not in registry_for(port).topics(), timeout=10)


# ---- creating Observations over MQTT: the ingest runtime ----------------------------------------

AIRROHR = {
    "version": 1,
    "municipality": "Testby",
    "sites": [],
    "devices": [
        {"id": "13597771", "model": "airrohr-sds011-bme280", "name": "Bodø", "location": {"lat": 67.28, "lon": 14.4}}
    ],
}


def test_an_observation_published_to_a_datastream_is_created_through_ingest(
    mosquitto: tuple[TestClient, str, str], migrated_db: str
) -> None:
    from tests.ingest_runtime.conftest import running_ingest

    client, url, prefix = mosquitto
    with psycopg.connect(migrated_db) as conn:
        import_provisioning(conn, Provisioning.model_validate(AIRROHR))
        row = conn.execute("SELECT id FROM datastreams WHERE property_key = 'pm10'").fetchone()
    assert row is not None
    ds = int(row[0])
    topic = f"{prefix}v1.1/Datastreams({ds})/Observations"
    with running_ingest(migrated_db, url, topic_prefix=prefix), Listener(url) as listener:
        listener.subscribe(topic)
        listener.publish(topic, {"phenomenonTime": "2024-06-01T12:00:00Z", "result": 14.5})
        assert listener.next()[1] == {"phenomenonTime": "2024-06-01T12:00:00Z", "result": 14.5}  # the create itself
        _, notification = listener.next(30)  # ingest's own notification of the stored row
        # the entity set topic takes a body that links its Datastream
        listener.publish(
            f"{prefix}v1.1/Observations",
            {"Datastream": {"@iot.id": ds}, "phenomenonTime": "2024-06-01T13:00:00Z", "result": "15.5"},
        )
        assert wait_until(lambda: get(client, f"Datastreams({ds})/Observations?$top=0&$count=true")["@iot.count"] == 2)
    assert notification["result"] == 14.5 and isinstance(notification["@iot.id"], int)
    stored = get(client, f"Observations({notification['@iot.id']})")
    assert stored["phenomenonTime"] == "2024-06-01T12:00:00Z"
    assert stored["resultQuality"] == {"qualityFlags": ["stale_time", "low_cost_sensor"]}  # normalised by ingest
    later = get(client, f"Datastreams({ds})/Observations?$orderby=phenomenonTime desc&$top=1")["value"][0]
    assert later["result"] == 15.5  # a number sent as text, typed by the normaliser


# ---- creates over MQTT that are more than readings (ets-sta10 Capability7Test's four cases) ------


def _same_time(a: str, b: str) -> bool:
    from datetime import datetime

    def instants(text: str) -> list[datetime]:
        return [datetime.fromisoformat(part) for part in text.split("/")]

    return instants(a) == instants(b)


def _matches(stored: dict[str, Any], sent: dict[str, Any]) -> bool:
    """The OGC suite's comparison: the same keys, times as instants, links by @iot.id."""
    if stored.keys() != sent.keys():
        return False
    for key, value in sent.items():
        if key.lower().endswith("time"):
            if not _same_time(stored[key], value):
                return False
        elif stored[key] != value:
            return False
    return True


def test_observations_created_over_mqtt_as_the_ogc_suite_sends_them(
    mosquitto: tuple[TestClient, str, str], migrated_db: str
) -> None:
    """req/create-observations-via-mqtt/observations-creation, on every create topic, for a Datastream a
    client created over HTTP (no vocabulary property): links, validTime, parameters, a deep insert, and a
    plain reading; each stored once as a POST would store it, and announced."""
    from api.mqtt.creates import mqtt_creates
    from store import counters
    from tests.ingest_runtime.conftest import assert_identity, running_ingest, totals

    client, url, prefix = mosquitto
    _, ds = datastream_of(client)
    foi = post(client, "FeaturesOfInterest", {"name": "f", "description": "d", "encodingType": "application/geo+json",
                                              "feature": POINT})["@iot.id"]  # fmt: skip
    before = get(client, "Observations?$count=true&$top=0")["@iot.count"]

    def linked(result: int) -> dict[str, Any]:
        return {
            "phenomenonTime": "2015-03-01T02:40:00+02:00",
            "validTime": "2016-01-01T01:01:01.000Z/2016-01-01T23:59:59.000Z",
            "result": result,
            "parameters": {"param1": "some value1", "param2": "some value2"},
            "Datastream": {"@iot.id": ds},
            "FeatureOfInterest": {"@iot.id": foi},
        }

    deep = {
        "phenomenonTime": "2015-03-01T00:00:00.000Z",
        "result": 91,
        "FeatureOfInterest": {"name": "A weather station.", "description": "A weather station.",
                              "encodingType": "application/vnd.geo+json",
                              "feature": {"type": "Point", "coordinates": [-114.05, 51.05]}},
        "Datastream": {
            "unitOfMeasurement": UOM, "name": "test datastream.", "description": "test datastream.",
            "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
            "Thing": {"name": "Test Thing", "description": "This is a Test Thing From TestNG"},
            "ObservedProperty": {"name": "Luminous Flux", "definition": "urn:flux", "description": "flux"},
            "Sensor": {"name": "Acme Fluxomatic 1000", "description": "Acme Fluxomatic 1000",
                       "encodingType": "http://schema.org/description", "metadata": "Light flux sensor"},
        },
    }  # fmt: skip
    sent = [
        (f"{prefix}v1.1/Observations", linked(-8_070_450_532_247_928_832)),  # the suite's random longs
        (f"{prefix}v1.1/Datastreams({ds})/Observations", linked(4_611_686_018_427_387_905)),
        (f"{prefix}v1.1/FeaturesOfInterest({foi})/Observations", linked(13)),
        (f"{prefix}v1.1/Observations", deep),
        (f"{prefix}v1.1/Datastreams({ds})/Observations", {"phenomenonTime": "2024-01-01T00:00:00Z", "result": "on"}),
    ]
    with (
        mqtt_creates(migrated_db, BASE, url, topic_prefix=prefix) as creates,
        running_ingest(migrated_db, url, topic_prefix=prefix, creates=creates),
        Listener(url) as listener,
    ):
        listener.subscribe(f"{prefix}v1.1/Things", f"{prefix}v1.1/FeaturesOfInterest")
        with Listener(url) as publisher:
            for topic, body in sent:
                publisher.publish(topic, body)
        assert wait_until(
            lambda: get(client, "Observations?$count=true&$top=0")["@iot.count"] == before + len(sent), timeout=30
        )
        announced = listener.collect(2)  # the deep insert's new Thing and FeatureOfInterest
    assert announced[f"{prefix}v1.1/Things"]["name"] == "Test Thing"
    assert announced[f"{prefix}v1.1/FeaturesOfInterest"]["name"] == "A weather station."

    # each as the suite reads it back: the newest Observation, its Datastream and feature by id
    expand = (
        "$expand=Datastream($select=id),FeatureOfInterest($select=id)"
        "&$select=result,phenomenonTime,validTime,parameters"
    )
    ids = [o["@iot.id"] for o in get(client, f"Observations?$orderby=id desc&$top={len(sent)}")["value"][::-1]]
    for ident, (_, body) in zip(ids[:3], sent[:3], strict=True):
        want = {**body, "Datastream": {"@iot.id": ds}, "FeatureOfInterest": {"@iot.id": foi}}
        stored = get(client, f"Observations({ident})?{expand}")
        assert _matches(stored, want), (stored, want)
    made = get(client, f"Observations({ids[3]})?$expand=Datastream($expand=Thing),FeatureOfInterest")
    assert made["result"] == 91 and made["Datastream"]["name"] == "test datastream."
    assert made["Datastream"]["Thing"]["name"] == "Test Thing"
    assert made["FeatureOfInterest"]["feature"] == {"type": "Point", "coordinates": [-114.05, 51.05]}
    plain = get(client, f"Observations({ids[4]})")
    assert plain["result"] == "on" and plain["resultQuality"] is None  # a client's property: as given, no flags

    t = totals(migrated_db)
    assert t[(counters.RECEIVED, "")] == t[(counters.STORED, "")] == len(sent)
    assert t[(counters.OBSERVATIONS_STORED, "")] == len(sent)
    assert_identity(t)


def test_a_create_over_mqtt_the_data_cannot_take_is_quarantined_with_its_reason(
    mosquitto: tuple[TestClient, str, str], migrated_db: str
) -> None:
    from api.mqtt.creates import MqttCreates
    from store import quarantine
    from tests.ingest_runtime.conftest import running_ingest

    client, url, prefix = mosquitto
    _, ds = datastream_of(client)
    bad = [
        (f"{prefix}v1.1/FeaturesOfInterest(999999)/Observations", {"result": 1, "Datastream": {"@iot.id": ds}},
         "unknown_device", "no entity at FeaturesOfInterest(999999)"),
        (f"{prefix}v1.1/Datastreams({ds})/Observations", {"result": 1, "FeatureOfInterest": {"@iot.id": 999999}},
         "malformed", "no FeatureOfInterest with @iot.id 999999"),
        (f"{prefix}v1.1/Datastreams({ds})/Observations", {"result": 1, "validTime": "yesterday"},
         "malformed", "validTime"),
    ]  # fmt: skip
    with running_ingest(migrated_db, url, topic_prefix=prefix, creates=MqttCreates()), Listener(url) as publisher:
        for topic, body, _, _ in bad:
            publisher.publish(topic, body)
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            assert wait_until(lambda: len(quarantine.list_messages(conn)) == len(bad), timeout=30)
            rows = quarantine.list_messages(conn)
    for row, (topic, body, reason, detail) in zip(rows, bad, strict=True):
        assert (row.topic, row.reason) == (topic, reason)
        assert detail in row.error and orjson.loads(row.payload) == body
    assert get(client, f"Datastreams({ds})/Observations?$count=true&$top=0")["@iot.count"] == 1  # thing_body's own


def test_a_quarantined_create_is_created_once_by_replay_after_the_cause_is_fixed(
    mosquitto: tuple[TestClient, str, str], migrated_db: str
) -> None:
    """A create that could not be carried out (its Thing had no Location to make a FeatureOfInterest
    from) waits in the quarantine; once the Thing has a Location, a replay creates it, once."""
    from api.mqtt.creates import MqttCreates
    from ingest.decode import load_models
    from ingest.replay import replay
    from ingest.sources import load_sources
    from store import quarantine
    from tests.ingest_runtime.conftest import running_ingest

    client, url, prefix = mosquitto
    body = thing_body()
    del body["Locations"], body["Datastreams"][0]["Observations"]
    thing = post(client, "Things", body)["@iot.id"]
    ds = get(client, f"Things({thing})/Datastreams")["value"][0]["@iot.id"]
    create = {"phenomenonTime": "2024-04-01T00:00:00Z", "result": 3, "validTime": "2024-04-01T00:00Z/2024-04-02T00:00Z"}
    with running_ingest(migrated_db, url, topic_prefix=prefix, creates=MqttCreates()), Listener(url) as publisher:
        publisher.publish(f"{prefix}v1.1/Datastreams({ds})/Observations", create)
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            assert wait_until(lambda: len(quarantine.list_messages(conn)) == 1, timeout=30)
            assert "has no Location" in quarantine.list_messages(conn)[0].error
    location = {"name": "here", "description": "d", "encodingType": "application/geo+json", "location": POINT}
    post(client, f"Things({thing})/Locations", location)

    def again() -> Any:
        return replay(migrated_db, load_sources(), load_models(), topic_prefix=prefix, creates=MqttCreates())

    first, second = again(), again()
    assert (first.stored, first.observations_stored, dict(first.still_failing)) == (1, 1, {})
    assert (second.replayed, dict(second.still_failing)) == (0, {})
    [stored] = get(client, f"Datastreams({ds})/Observations?$expand=FeatureOfInterest")["value"]
    assert stored["result"] == 3 and stored["validTime"] == "2024-04-01T00:00:00Z/2024-04-02T00:00:00Z"
    assert stored["FeatureOfInterest"]["feature"] == POINT
