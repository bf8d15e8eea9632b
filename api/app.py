"""The HTTP application: health, and the OGC SensorThings API 1.1 under ``/v1.1``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from psycopg_pool import ConnectionPool

from api import aggregates, errors
from api.aggregates import router as aggregates_router
from api.head import HeadAsGet
from api.mqtt.notifier import MqttOptions, Notifier
from api.sta.routes import PREFIX, StaContext, build_router
from api.sta.translate import Limits
from api.write.batch import build_batch_router
from api.write.data_array import build_data_array_router
from api.write.routes import build_write_router
from store.db import create_pool
from store.features import detect
from store.sta import configure_connection

CORS_METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")
CORS_EXPOSED_HEADERS = ("Location", "Bydata-Errors")


def server_settings(public_url: str, mqtt: MqttOptions | None, base_url: str) -> dict[str, Any]:
    """What Bydata adds to the service root's ``serverSettings`` beyond the read classes.

    The MQTT classes only when the app has a broker: each names the endpoints clients use.
    """
    settings: dict[str, Any] = {
        "conformance": [aggregates.CONFORMANCE],
        aggregates.CONFORMANCE: aggregates.server_settings(public_url),
    }
    if mqtt is not None:
        for uri in mqtt.conformance():
            settings["conformance"].append(uri)
            settings[uri] = mqtt.endpoint_settings()
    return settings


def create_app(
    database_url: str,
    *,
    pool_min: int = 1,
    pool_max: int = 10,
    public_url: str = "http://127.0.0.1:8080",
    default_top: int = 100,
    max_top: int = 10_000,
    max_entities: int = 100_000,
    aggregate_max_buckets: int = 100_000,
    cors_origins: Sequence[str] = ("*",),
    mqtt: MqttOptions | None = None,
) -> FastAPI:
    """Build the app around one connection pool, opened at start-up and closed at shutdown.

    ``public_url`` is the absolute prefix clients see (self and next links are absolute).
    ``max_entities``: the most entities one SensorThings response builds, expansions included.
    ``cors_origins``: open data is read from browsers too (web maps, dashboards), so requests
    are allowed from any origin by default. ``mqtt``: the broker the MQTT extension publishes on
    (None: no MQTT extension).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = create_pool(
            database_url, min_size=pool_min, max_size=pool_max, name="api", configure=partial(configure_connection)
        )
        app.state.pool = pool
        app.state.aggregate_max_buckets = aggregate_max_buckets
        app.state.public_url = public_url.rstrip("/")
        app.state.server_settings = partial(server_settings, public_url.rstrip("/"), mqtt)
        app.state.notify = None
        notifier: Notifier | None = None
        try:
            limits = Limits(default_top=min(default_top, max_top), max_top=max_top, max_entities=max_entities)
            app.state.sta = StaContext.for_server(pool, public_url.rstrip("/") + PREFIX, limits)
            if mqtt is not None:
                notifier = mqtt.notifier(lambda: app.state.sta)
                notifier.start()
                app.state.notifier = notifier
                app.state.notify = notifier.tell
            yield
        finally:
            if notifier is not None:
                notifier.stop()
            pool.close()

    app = FastAPI(
        title="Bydata",
        description="Open sensor data for municipalities: OGC SensorThings API 1.1 over a shared schema.",
        version="0.1.0",
        lifespan=lifespan,
    )
    errors.install(app)
    if cors_origins:
        # every method the API serves (so browser clients can write and send batches), any request
        # header (Content-Type application/json etc. needs a preflight), and the headers clients
        # read: Location of a created entity, Bydata-Errors of CreateObservations
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=list(CORS_METHODS),
            allow_headers=["*"],
            expose_headers=list(CORS_EXPOSED_HEADERS),
        )

    @app.get("/health", tags=["operations"], summary="Liveness and database reachability")
    def health(request: Request) -> JSONResponse:
        pool: ConnectionPool = request.app.state.pool
        body: dict[str, Any] = {"status": "ok"}
        try:
            with pool.connection(timeout=5) as conn:
                body["database"] = detect(conn).as_dict()
        except Exception as exc:  # report, don't raise: a health check answers either way
            body = {"status": "unavailable", "error": f"database: {type(exc).__name__}: {exc}"}
            return JSONResponse(body, status_code=503)
        return JSONResponse(body)

    app.add_middleware(HeadAsGet)  # outermost: HEAD is GET for every route, CORS and errors included
    app.include_router(build_router())
    app.include_router(build_data_array_router())
    app.include_router(build_batch_router())
    app.include_router(build_write_router())
    app.include_router(aggregates_router)
    return app
