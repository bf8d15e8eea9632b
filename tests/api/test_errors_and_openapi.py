"""One JSON error shape for every error, and an OpenAPI document that lists every path."""

from __future__ import annotations

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg_pool import PoolTimeout

from api import errors
from api.sta import entities as em
from api.sta import routes
from tests.api.conftest import ROOT

ERROR_KEYS = {"code", "type", "message", "parameter", "column"}


@pytest.mark.parametrize(
    ("method", "path", "status", "kind"),
    [
        ("GET", "/Things?$filter=name eq", 400, "bad_request"),
        ("GET", "/Things?$top=x", 400, "bad_request"),
        ("GET", "/Things(42)", 404, "not_found"),
        ("GET", "/Gadgets", 404, "not_found"),
        ("POST", "/Things(1)", 405, "method_not_allowed"),
        ("DELETE", "/Things", 405, "method_not_allowed"),
        ("PATCH", "/Things(1)/name", 405, "method_not_allowed"),
        ("GET", "/Locations?$filter=geo.length(location) gt 1", None, None),
        ("GET", "/Observations?$resultFormat=csv", 501, "not_implemented"),
        # beyond 18-088 (FROST-Server's extensions, OData lambdas): refused, not answered empty
        ("GET", "/Observations?$filter=before(phenomenonTime, 2024-01-01T00:00:00Z)", 400, "bad_request"),
        ("GET", "/Observations?$filter=phenomenonTime eq 2024-01-01T00:00:00Z/2024-01-02T00:00:00Z", 400,
         "bad_request"),
        ("GET", "/Things?$filter=Locations/any(l:l/name eq 'x')", 400, "bad_request"),
    ],
)  # fmt: skip
def test_error_shape(
    full: TestClient, plain: TestClient, method: str, path: str, status: int | None, kind: str | None
) -> None:
    if status is None:  # 501 on plain PostgreSQL, 200 with PostGIS
        assert full.get(ROOT + path).status_code == 200
        client, status, kind = plain, 501, "not_implemented"
    else:
        client = full
    response = client.request(method, ROOT + path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["code"] == status and body["type"] == kind
    assert isinstance(body["message"], str) and body["message"]


def test_500_has_the_same_shape() -> None:
    app = FastAPI()
    errors.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret detail")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    body = response.json()
    assert set(body) == ERROR_KEYS and body["type"] == "internal_error"
    assert "secret detail" not in body["message"]


def test_database_errors_become_400(full: TestClient) -> None:
    """A value the database cannot evaluate (a time beyond its range) is the client's error, not a 500."""
    response = full.get(
        ROOT + "/Observations", params={"$filter": "phenomenonTime lt 9999-01-01T00:00:00Z add duration'P999999999D'"}
    )
    assert response.status_code == 400
    body = response.json()
    assert set(body) == ERROR_KEYS and "out of range" in body["message"]


def test_openapi_documents_every_path(full: TestClient) -> None:
    spec = full.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert "/health" in paths and "/v1.1" in paths
    for entity in em.ENTITY_SETS.values():
        s = entity.set_name
        assert {f"/v1.1/{s}", f"/v1.1/{s}({{id}})", f"/v1.1/{s}/$ref"} <= paths
        for prop in entity.properties:
            assert f"/v1.1/{s}({{id}})/{prop}" in paths
            assert f"/v1.1/{s}({{id}})/{prop}/$value" in paths
        for rel in entity.relations.values():
            assert f"/v1.1/{s}({{id}})/{rel.name}" in paths
            assert f"/v1.1/{s}({{id}})/{rel.name}/$ref" in paths
    assert "/v1.1/{path}" in paths
    collection = spec["paths"]["/v1.1/Observations"]["get"]
    assert {p["name"] for p in collection["parameters"]} >= {
        "$filter",
        "$expand",
        "$select",
        "$orderby",
        "$top",
        "$skip",
        "$count",
    }
    entity_op = spec["paths"]["/v1.1/Things({id})"]["get"]
    assert any(p["name"] == "id" and p["in"] == "path" for p in entity_op["parameters"])


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), 503),
        (psycopg.errors.InvalidDatetimeFormat("invalid input syntax"), 400),
        (PoolTimeout("couldn't get a connection after 30.00 sec"), 503),
        (psycopg.OperationalError("connection refused"), 503),
    ],
)
def test_database_trouble_maps_to_statuses(error: Exception, status: int) -> None:
    with pytest.raises(errors.ApiError) as info, routes._database_errors():
        raise error
    assert info.value.code == status and info.value.message


def test_browsers_may_read(full: TestClient) -> None:
    response = full.get(ROOT + "/Things", headers={"Origin": "https://map.example"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
