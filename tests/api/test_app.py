"""The app on the project's own fixtures: a migrated database with TimescaleDB+PostGIS, and plain PostgreSQL."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app


@pytest.mark.parametrize(("fixture", "postgis"), [("migrated_db", True), ("plain_db", False)])
def test_serves_an_empty_database_and_detects_features(
    request: pytest.FixtureRequest, fixture: str, postgis: bool
) -> None:
    url: str = request.getfixturevalue(fixture)
    app = create_app(url, pool_min=1, pool_max=2, public_url="https://city.example/sta")
    with TestClient(app) as client:
        root = client.get("/v1.1").json()
        assert root["value"][0] == {"name": "Things", "url": "https://city.example/sta/v1.1/Things"}
        assert client.get("/v1.1/Observations").json() == {"value": []}
        assert client.get("/v1.1/Things(1)").status_code == 404
        assert client.get("/health").json()["status"] == "ok"
        assert app.state.sta.translator.features.postgis is postgis
        response = client.get("/v1.1/Locations", params={"$filter": "geo.length(location) gt 0"})
        assert response.status_code == (200 if postgis else 501)
