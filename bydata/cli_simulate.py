"""``bydata simulate``: publish a case's simulated devices to MQTT and write the ground truth."""

from __future__ import annotations

import re
import signal
import threading
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

app = typer.Typer(help="Simulated devices of the three cases, with faults and a ground-truth manifest.")
console = Console(stderr=True, soft_wrap=True)  # URLs and paths stay on one line


class CaseName(StrEnum):
    air = "air"
    parking = "parking"
    energy = "energy"
    all = "all"


class Control(StrEnum):
    before = "before"
    after = "after"


_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*$")


def parse_span(text: str) -> timedelta:
    """``90``/``90s``, ``30m``, ``6h``, ``2d`` -> timedelta (plain numbers are seconds)."""
    m = _SPAN.match(text)
    if not m:
        raise typer.BadParameter(f"{text!r} is not a duration like 90s, 30m, 6h or 2d")
    number, unit = float(m.group(1)), m.group(2) or "s"
    scale = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}[unit]
    return timedelta(seconds=number * scale)


def parse_time(text: str) -> datetime:
    """ISO 8601; a time without a zone is UTC."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time (e.g. 2026-03-04T07:00:00Z)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_scenario(text: str) -> datetime:
    name, sep, when = text.partition("@")
    if name != "episode" or not sep:
        raise typer.BadParameter(f"{text!r}: the scenario is written episode@<ISO time>")
    return parse_time(when)


@app.command("simulate", no_args_is_help=True)
def simulate(
    case: Annotated[CaseName, typer.Argument(help="Which case to simulate: air, parking, energy or all.")],
    *,
    seed: Annotated[int, typer.Option(help="Random seed: same seed and options, same messages byte for byte.")] = 1,
    start: Annotated[
        str | None,
        typer.Option(
            help="Simulated time at which live publishing begins (ISO 8601, default now). "
            "With --speed above 1 and a --duration, the default is now minus the duration, so "
            "payload times never run ahead of the wall clock."
        ),
    ] = None,
    speed: Annotated[float, typer.Option(help="Simulated seconds per wall-clock second (1440: a day a minute).")] = 1.0,
    duration: Annotated[
        str | None,
        typer.Option(
            help="Simulated time to run live after --start (90s, 30m, 6h, 2d). Default: until Ctrl-C, "
            "or 0 when --backfill-days is given."
        ),
    ] = None,
    backfill_days: Annotated[
        float, typer.Option(help="Publish this many days before --start first, as fast as the broker takes them.")
    ] = 0.0,
    spaces: Annotated[int, typer.Option(help="Parking: number of spaces (one sensor each), 10 ... 5000.")] = 200,
    control: Annotated[
        Control, typer.Option(help="Energy: 'before' = wasteful schedules, 'after' = smart control.")
    ] = Control.before,
    scenario: Annotated[
        list[str] | None,
        typer.Option(help="Air: episode@<ISO time> puts a pollution episode there (repeatable)."),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="NAME=RATE for one fault (repeatable), e.g. duplicate=0.02. See --list-faults."),
    ] = None,
    faults: Annotated[float | None, typer.Option(help="One rate for every fault (then --fault overrides).")] = None,
    list_faults: Annotated[bool, typer.Option("--list-faults", help="List the faults and exit.")] = False,
    topic_prefix: Annotated[str, typer.Option(help="Prefix of every topic (keeps test runs apart).")] = "",
    broker: Annotated[
        str | None,
        typer.Option(
            help="MQTT URL (mqtt://user:pw@host:port, ?protocol=3.1.1). Default: BYDATA_MQTT_URL or "
            "the embedded broker."
        ),
    ] = None,
    manifest: Annotated[
        Path | None, typer.Option(help="Directory for the manifest (default: <data dir>/runs/<case>-<start>-s<seed>).")
    ] = None,
    publish: Annotated[
        bool, typer.Option(help="Publish to MQTT; --no-publish only writes the manifest, as fast as it can.")
    ] = True,
    max_unacked: Annotated[int, typer.Option(help="QoS-1 messages allowed to wait for their PUBACK.")] = 1000,
) -> None:
    """Publish simulated devices in their vendors' wire formats and write the ground truth.

    The manifest directory holds provisioning.yaml (import it into ingest), messages.jsonl
    (every message with its fault, expected outcome, flags and true values) and run.json.
    """
    from bydata.settings import get_settings
    from simulators.engine import RunOptions
    from simulators.faults import FAULTS, check_exclusive, parse_rates
    from simulators.formats import ELIGIBLE
    from simulators.run import run
    from simulators.timefmt import iso_z

    if list_faults:
        for name, text in FAULTS.items():
            typer.echo(f"{name:15} {text}")
        raise typer.Exit()
    try:
        rates = parse_rates(fault or [], faults)
        check_exclusive(rates, ELIGIBLE)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fault/--faults") from None
    span = parse_span(duration) if duration is not None else None
    backfill = timedelta(days=backfill_days)
    if span is None and backfill_days > 0:
        span = timedelta(0)
    now = datetime.now(UTC).replace(microsecond=0)
    if start is not None:
        begin = parse_time(start)
    elif speed > 1 and span is not None:
        begin = now - span
    else:
        begin = now
    if speed > 1 and span is None:
        console.print(
            "[yellow]warning:[/] --speed above 1 without --duration: payload times run ahead of the "
            "wall clock and ingest will flag them future_time"
        )
    cases = ("air", "parking", "energy") if case is CaseName.all else (case.value,)
    try:
        options = RunOptions(
            cases=cases,
            start=begin,
            seed=seed,
            backfill=backfill,
            duration=span,
            speed=speed,
            spaces=spaces,
            control=control.value,
            episodes=tuple(parse_scenario(s) for s in scenario or []),
            faults=rates,
            topic_prefix=topic_prefix,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    settings = get_settings()
    stamp = begin.strftime("%Y%m%dT%H%M%SZ")
    directory = manifest or settings.data_dir / "runs" / f"{case.value}-{stamp}-s{seed}"
    console.print(f"manifest: {directory}")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    total = None
    if options.end is not None:
        total = (options.end - options.begin).total_seconds()
    with ExitStack() as stack:
        publish_fn = None
        if publish:
            from bydata.services import broker_url
            from ingest.mqtt_address import BrokerAddress
            from simulators.publisher import Publisher

            url = broker or stack.enter_context(broker_url(settings))
            publisher = stack.enter_context(Publisher(url, max_unacked=max_unacked))
            console.print(f"broker:   {BrokerAddress.parse(url).redacted()}")
            publish_fn = publisher.publish
        progress = stack.enter_context(
            Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[clock]}  {task.fields[count]} messages"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )
        )
        task = progress.add_task(f"simulate {case.value}", total=total, clock="", count=0)
        begin_s = options.begin.timestamp()

        def advance(sim: object, msg: object) -> None:
            from simulators.engine import Simulation
            from simulators.model import Message

            assert isinstance(sim, Simulation) and isinstance(msg, Message)
            if msg.seq % 200 == 0:
                progress.update(
                    task,
                    completed=min(total or 0, msg.sent_at.timestamp() - begin_s) if total else None,
                    clock=iso_z(msg.sent_at),
                    count=msg.seq + 1,
                )

        try:
            summary = run(options, directory, publish_fn, pace=publish, progress=advance, stop=stop)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]: the manifest holds what was published")
            summary = None
        if summary is not None:
            progress.update(task, completed=total, count=summary["messages"], clock=summary["simulated_until"])
    if summary is not None:
        outcomes = ", ".join(f"{k} {v}" for k, v in summary["outcomes"].items())
        console.print(f"published {summary['messages']} messages ({outcomes})")
    console.print(f"manifest: {directory}")
