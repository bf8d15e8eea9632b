"""frost-sta-client, the Python client most SensorThings users have, reading through real HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import frost_sta_client as fsc
import pytest
import uvicorn

from api.app import create_app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def service(sta_full_db: str) -> Iterator[fsc.SensorThingsService]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(sta_full_db, pool_min=1, pool_max=2, public_url=base, default_top=5, max_top=100)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):  # at most 10 s
        if server.started:
            break
        time.sleep(0.05)
    assert server.started
    try:
        yield fsc.SensorThingsService(f"{base}/v1.1")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_find_and_navigate(service: fsc.SensorThingsService) -> None:
    thing = service.things().find(1)
    assert thing.name == "Bodø air station"
    assert thing.properties["stationKind"] == "reference"
    datastream = service.datastreams().find(1)
    assert datastream.unit_of_measurement.symbol == "µg/m³"


def test_query_filter_orderby_desc_and_next_links(service: fsc.SensorThingsService) -> None:
    """The client's $orderby is upper-case DESC; the server's default top here is 5, so it follows nextLinks."""
    observations = (
        service.datastreams().find(1).get_observations().query()
        .filter("result ge 12").orderby("phenomenonTime", "DESC").list()
    )  # fmt: skip
    results = [o.result for o in observations]  # iterating follows @iot.nextLink
    assert results == list(range(33, 11, -1))


def test_query_expand_and_select(service: fsc.SensorThingsService) -> None:
    things = service.things().query().filter("name eq 'Parking zone A'").expand("Datastreams").list()
    (thing,) = list(things)
    assert [d.name for d in thing.datastreams] == ["Occupancy A"]
    locations = list(service.locations().query().filter(
        "geo.intersects(location, geography'POLYGON((7 63, 8 63, 8 64, 7 64, 7 63))')"
    ).list())  # fmt: skip
    assert [loc.id for loc in locations] == [2]
