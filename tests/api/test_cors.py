"""Browsers may use every method the API serves (CORS): preflights, and what a script can read."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app

ORIGIN = "https://map.city.example"


def preflight(client: TestClient, path: str, method: str, headers: str = "content-type") -> dict[str, str]:
    response = client.options(
        path,
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers},
    )
    assert response.status_code == 200, (method, path, response.text)
    return dict(response.headers)


SERVED = [
    ("GET", "/v1.1/Things"),
    ("POST", "/v1.1/Things"),
    ("PATCH", "/v1.1/Things(1)"),
    ("PUT", "/v1.1/Things(1)"),
    ("DELETE", "/v1.1/Things(1)"),
    ("POST", "/v1.1/$batch"),
    ("POST", "/v1.1/CreateObservations"),
    ("GET", "/ext/aggregates/v1/Datastreams(1)"),
]


def test_preflight_allows_every_method_the_api_serves(migrated_db: str) -> None:
    with TestClient(create_app(migrated_db, pool_min=1, pool_max=1)) as client:
        for method, path in SERVED:
            headers = preflight(client, path, method)
            assert method in headers["access-control-allow-methods"].split(", "), (method, path)
            assert headers["access-control-allow-origin"] == "*"
            assert "content-type" in headers["access-control-allow-headers"].lower()


def test_a_browser_write_can_read_the_location_header(migrated_db: str) -> None:
    with TestClient(create_app(migrated_db, pool_min=1, pool_max=1)) as client:
        # JSON Patch and multipart batches send their own content types
        preflight(client, "/v1.1/Things(1)", "PATCH", "content-type, authorization")
        response = client.post("/v1.1/Things", json={"name": "n", "description": "d"}, headers={"Origin": ORIGIN})
        assert response.status_code == 201
        assert response.headers["access-control-allow-origin"] == "*"
        exposed = [h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")]
        assert "location" in exposed and "bydata-errors" in exposed
        assert response.headers["location"].endswith("/v1.1/Things(1)")
        # what the API does not serve stays refused
        response = client.options("/v1.1/Things", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "TRACE"})
        assert response.status_code == 400
