"""frost-sta-client, the Python client most SensorThings users have, against Bydata under uvicorn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import frost_sta_client as fsc
import geojson
import httpx
import pytest

from tests.conftest import Spawn, free_port, wait_until


@pytest.fixture
def service(migrated_db: str, spawn: Spawn) -> fsc.SensorThingsService:
    port = free_port()
    spawn(
        "-c",
        "from bydata.cli import app; app()",
        "api",
        env={"BYDATA_DATABASE_URL": migrated_db, "BYDATA_API_PORT": str(port), "BYDATA_LOG_LEVEL": "WARNING"},
        log_name="api.log",
    )

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    assert wait_until(up, timeout=30), "the API did not start"
    return fsc.SensorThingsService(f"http://127.0.0.1:{port}/v1.1")


def test_create_read_query_page_and_create_observations(service: fsc.SensorThingsService) -> None:
    location = fsc.Location(
        name="Bodø", description="station", encoding_type="application/geo+json", location=geojson.Point((14.4, 67.28))
    )
    thing = fsc.Thing(name="air station", description="reference", properties={"case": "air"}, locations=[location])
    service.create(thing)
    assert isinstance(thing.id, int)

    sensor = fsc.Sensor(name="NILU", description="reference", encoding_type="application/pdf", metadata="x.pdf")
    prop = fsc.ObservedProperty(name="PM10", definition="urn:pm10", description="particles")
    datastream = fsc.Datastream(
        name="PM10",
        description="PM10 at Bodø",
        observation_type="http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
        unit_of_measurement=fsc.UnitOfMeasurement(name="ug/m3", symbol="µg/m³", definition="ug/m3"),
        thing=thing,  # the client sends the whole Thing with its @iot.id: a link
        sensor=sensor,
        observed_property=prop,
    )
    service.create(datastream)
    assert isinstance(datastream.id, int)

    start = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(5):
        obs = fsc.Observation(
            phenomenon_time=(start + timedelta(hours=i)).isoformat(), result=10 + i, datastream=datastream
        )
        service.create(obs)

    # dataArray create: self links back, in order.
    dav = fsc.DataArrayValue()
    dav.datastream = datastream
    dav.components = {fsc.DataArrayValue.Property.PHENOMENON_TIME, fsc.DataArrayValue.Property.RESULT}
    for i in range(5, 8):
        dav.add_observation(fsc.Observation(phenomenon_time=(start + timedelta(hours=i)).isoformat(), result=10 + i))
    document = fsc.DataArrayDocument()
    document.add_data_array_value(dav)
    created = service.observations().create(document)
    assert len(created) == 3 and all("Observations(" in o.self_link for o in created)

    # Read, filter, expand, order DESC, and follow next links page by page.
    found = service.things().find(thing.id)
    assert found.name == "air station"
    listed = (
        service.observations()
        .query()
        .filter(f"Datastream/id eq {datastream.id} and result ge 12")
        .orderby("phenomenonTime", "DESC")
        .top(2)
        .list()
    )
    results = [o.result for o in listed]
    assert results == [17, 16, 15, 14, 13, 12]
    expanded = service.datastreams().query().expand("Thing,Observations($top=1;$orderby=phenomenonTime desc)").list()
    entities = list(expanded)
    assert entities[0].thing.name == "air station"

    # Update (PUT with @iot.id in the body) and delete.
    found.description = "moved to the harbour"
    service.update(found)
    assert service.things().find(thing.id).description == "moved to the harbour"
    service.delete(datastream)
    with pytest.raises(Exception, match=r"404|Not Found"):
        service.datastreams().find(datastream.id)
