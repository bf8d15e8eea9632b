"""Ingest benchmark: Bydata end to end against the receive limit and the store limit, in one run.

Runs against the local Mosquitto (``BYDATA_TEST_MQTT_URL``) and PostgreSQL/TimescaleDB
(``BYDATA_TEST_DATABASE_URL``; each run gets a scratch database, dropped afterwards) and
prints JSON. The workload is the simulators' own output for the three cases (Bodø air,
Kristiansund parking, Rennesøy energy), without faults, generated once and published by a
separate publisher process at QoS 1:

- ``receive_limit``: a bare paho subscriber (QoS 1, acknowledging on receipt) that only
  counts, while the publisher runs and draining a queue filled before: what one Python MQTT
  client can take here; and two of them draining on a shared subscription (the bound for two
  workers);
- ``store_limit``: binary ``COPY`` of the very rows ingest stored, in batches of 5,000, into
  the same (emptied) ``observations`` table;
- ``end_to_end``: ``bydata ingest`` worker processes (one, then two on a shared
  subscription), from the first publish to the last committed row, with the ratios to
  the two limits, a check that nothing was lost or doubled, and each worker's RSS over
  the run.

    python bench/ingest.py [--messages 60000] [--workers 1 2] [--soak 600]

``--soak SECONDS`` adds a long run at ``--soak-rate`` messages/s of new readings (the
simulators run on past the workload, so every message is stored, not absorbed as a
duplicate) with each worker's RSS over time, to see whether memory stays flat.
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

COPY_BATCH = 5000
CASES = ("air", "parking", "energy")
WORKLOAD_START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # a Monday: school day, rush hours
COLUMNS = (
    "datastream_id, phenomenon_time, phenomenon_time_end, result_time, received_at, result_number,"
    " result_boolean, result_text, result_json, quality_flags, parameters"
)


# -- helper processes ---------------------------------------------------------------------------


def _paho_client(url: str, client_id: str = "", inflight: int = 1000) -> Any:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from ingest.mqtt_address import BrokerAddress

    address = BrokerAddress.parse(url)
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if address.v5 else mqtt.MQTTv311,
    )
    if address.username:
        c.username_pw_set(address.username, address.password)
    c.max_inflight_messages_set(inflight)
    c.connect(address.host, address.port)
    return c


def _publish(url: str, stream: Iterable[tuple[str, bytes, int]], prefix: str, seconds: float, rate: float) -> None:
    """Publish ``(topic, payload, observations)`` at QoS 1 as fast as the broker acknowledges
    (at most 1,000 in flight), or at ``rate`` messages/s; until the stream ends or, if
    ``seconds`` is given, that many seconds have passed. Prints what it sent as JSON.

    One thread drives paho's loop by hand: a threaded paho publisher is 2-3 times slower here
    (the GIL and a wake-up per packet), and the publisher must not be what is measured.
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from ingest.mqtt_address import BrokerAddress

    inflight = 1000
    address = BrokerAddress.parse(url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    if address.username:
        c.username_pw_set(address.username, address.password)
    c.max_inflight_messages_set(inflight)
    c.connect(address.host, address.port)
    acked = [0]

    def on_publish(*_: Any) -> None:
        acked[0] += 1

    c.on_publish = on_publish
    started = time.time()
    sent = observations = 0
    deadline = started + seconds if seconds else None
    for topic, payload, count in stream:
        info = c.publish(prefix + topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise SystemExit(f"publisher: publish failed: {mqtt.error_string(info.rc)}")
        sent += 1
        observations += count
        if sent % 50 == 0:
            c.loop(timeout=0)
            if rate:
                ahead = started + sent / rate - time.time()
                if ahead > 0:
                    c.loop(timeout=ahead)
            if deadline is not None and time.time() >= deadline:
                break
        while sent - acked[0] >= inflight:
            c.loop(timeout=0.01)
    for _ in range(60000):
        if acked[0] >= sent:
            break
        c.loop(timeout=0.01)
    ended = time.time()
    c.disconnect()
    report = {"sent": sent, "acked": acked[0], "observations": observations, "started": started, "ended": ended}
    print(orjson.dumps(report).decode(), flush=True)


def publisher_main(url: str, file: str, prefix: str) -> None:
    """Publish the workload file once."""
    with open(file, "rb") as f:
        messages: list[tuple[str, bytes]] = pickle.load(f)
    _publish(url, ((t, p, 0) for t, p in messages), prefix, 0.0, 0.0)


def soak_publisher_main(url: str, prefix: str, seconds: float, rate: float, *, spaces: int, seed: int) -> None:
    """Publish new readings for ``seconds``: the simulators' cases run on from the workload's end.

    Every message carries readings not sent before (new times), so the worker stores all of
    them, as a real deployment does; a stream repeating one pass would after its first pass
    measure only the duplicate path.
    """
    _publish(url, fresh_stream(spaces, seed), prefix, seconds, rate)


def fresh_stream(spaces: int, seed: int) -> Iterator[tuple[str, bytes, int]]:
    """The three cases without faults, simulated on without end from after the workload's hours."""
    from ingest.sources import load_sources
    from ingest.types import NoSource
    from simulators.engine import RunOptions, Simulation

    sources = load_sources()
    # generate() simulates back from WORKLOAD_START plus at most a few days; start a year on
    sim = Simulation(
        RunOptions(cases=CASES, start=WORKLOAD_START + timedelta(days=365), duration=None, spaces=spaces, seed=seed)
    )
    for m in sim.messages():
        try:
            sources.match(m.out.topic)
        except NoSource:
            continue
        yield m.out.topic, m.out.payload, len(m.out.truth)


def subscriber_main(url: str, topic: str, expected: int, client_id: str) -> None:
    """A bare paho subscriber: QoS 1, acknowledge on receipt, count, nothing else.

    ``expected`` 0: subscribe on a persistent session and leave (the broker then queues for it);
    below 0: count until one second passes without a message (one of a shared group, whose
    share is not known in advance).
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from ingest.mqtt_address import BrokerAddress

    state = {"n": 0, "first": 0.0, "last": 0.0, "connected": 0.0}
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        now = time.time()
        if state["n"] == 0:
            state["first"] = now
        state["n"] += 1
        state["last"] = now
        if state["n"] == expected:
            done.set()

    address = BrokerAddress.parse(url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.on_message = on_message
    c.on_subscribe = lambda *_: subscribed.set()
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 300
    state["connected"] = time.time()
    c.connect(address.host, address.port, clean_start=False, properties=props)
    c.subscribe(topic, qos=1)
    c.loop_start()
    subscribed.wait(30)
    print("ready", flush=True)
    if expected > 0:
        done.wait(600)
    elif expected < 0:
        deadline = time.time() + 600
        while time.time() < deadline and (state["n"] == 0 or time.time() - state["last"] < 1.0):
            time.sleep(0.05)
    c.disconnect()
    c.loop_stop()
    print(orjson.dumps(state).decode(), flush=True)


# -- orchestration ------------------------------------------------------------------------------


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f'{name} is not set: eval "$(deploy/services.sh)" first')
    return value


@contextmanager
def scratch_database(server_url: str, provisioning: Any) -> Any:
    from store.migrations import upgrade
    from store.provisioning import import_provisioning

    name = f"bydata_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    url = make_conninfo("", **params)
    try:
        with psycopg.connect(url) as conn:
            upgrade(conn)
            import_provisioning(conn, provisioning)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _cpu_s(pid: int) -> float | None:
    """CPU time (user + system) the process has used so far, seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_CHILDREN: list[subprocess.Popen[str]] = []


def _python(*args: str, env: dict[str, str] | None = None, stdout: Any = subprocess.PIPE) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=stdout,
        stderr=subprocess.DEVNULL if stdout is subprocess.PIPE else subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    _CHILDREN.append(proc)
    return proc


def _stop_children() -> None:
    for proc in _CHILDREN:
        _stop(proc)


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def generate(messages: int, spaces: int, seed: int) -> tuple[list[tuple[str, bytes]], int, Any, Counter[str]]:
    """The simulators' three cases, no faults, enough simulated hours for ``messages`` messages.

    Messages on a topic no configured source subscribes to never reach ingest; they are left
    out of the workload and counted (``by_model["unsubscribed:<model>"]``).
    """
    from ingest.sources import load_sources
    from ingest.types import NoSource
    from simulators.engine import RunOptions, Simulation

    sources = load_sources()

    start = WORKLOAD_START
    per_hour = None
    hours = 6.0
    while True:
        sim = Simulation(
            RunOptions(
                cases=CASES,
                start=start + timedelta(hours=hours),
                backfill=timedelta(hours=hours),
                duration=timedelta(0),
                spaces=spaces,
                seed=seed,
            )
        )
        out: list[tuple[str, bytes]] = []
        observations = 0
        models: Counter[str] = Counter()
        for m in sim.messages():
            try:
                sources.match(m.out.topic)
            except NoSource:
                models[f"unsubscribed:{m.model}"] += 1
                continue
            out.append((m.out.topic, m.out.payload))
            observations += len(m.out.truth)
            models[m.model] += 1
            if len(out) >= messages:
                return out, observations, sim.provisioning(), models
        per_hour = len(out) / hours
        hours = messages / per_hour * 1.05 + 1


def measure_receive_limit(mqtt_url: str, file: str, n: int) -> dict[str, Any]:
    """Bare subscribers: one while the publisher runs; one, then two sharing, draining a filled queue."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}/"
    sub = _python(__file__, "--subscriber", mqtt_url, prefix + "#", str(n), f"bench-bare-{uuid.uuid4().hex[:6]}")
    assert sub.stdout is not None
    if sub.stdout.readline().strip() != "ready":
        raise SystemExit("bare subscriber did not start")
    pub = _python(__file__, "--publisher", mqtt_url, file, prefix)
    pub_out, _ = pub.communicate(timeout=900)
    sub_out, _ = sub.communicate(timeout=900)
    p, s = orjson.loads(pub_out.strip().splitlines()[-1]), orjson.loads(sub_out.strip().splitlines()[-1])
    if s["n"] < n:
        raise SystemExit(f"bare subscriber got {s['n']} of {n} messages")
    return {
        "messages": n,
        "messages_per_s": round((s["n"] - 1) / (s["last"] - s["first"]), 1),
        "publisher_messages_per_s": round(p["sent"] / (p["ended"] - p["started"]), 1),
        # the same, draining a queue filled before; then two on a shared subscription, the bound
        # for two workers
        "drain_messages_per_s": _drain_rate(mqtt_url, file, n, subscribers=1),
        "drain_two_shared_messages_per_s": _drain_rate(mqtt_url, file, n, subscribers=2),
    }


def _drain_rate(mqtt_url: str, file: str, n: int, *, subscribers: int) -> float:
    """Messages/s bare subscribers take from a queue: subscribe on persistent sessions, leave, publish, come back.

    More than one share the subscription (``$share``); each then counts until the queue is quiet.
    """
    prefix = f"bench-{uuid.uuid4().hex[:8]}/"
    ids = [f"bench-drain-{uuid.uuid4().hex[:6]}" for _ in range(subscribers)]
    topic = prefix + "#" if subscribers == 1 else f"$share/bench/{prefix}#"
    expected = str(n) if subscribers == 1 else "-1"
    for client_id in ids:
        _python(__file__, "--subscriber", mqtt_url, topic, "0", client_id).communicate(timeout=60)
    _python(__file__, "--publisher", mqtt_url, file, prefix).communicate(timeout=900)
    subs = [_python(__file__, "--subscriber", mqtt_url, topic, expected, client_id) for client_id in ids]
    states = [orjson.loads(sub.communicate(timeout=900)[0].strip().splitlines()[-1]) for sub in subs]
    got: int = sum(x["n"] for x in states)
    if got != n:
        raise SystemExit(f"{subscribers} draining bare subscriber(s) got {got} of {n} messages")
    span: float = max(x["last"] for x in states) - min(x["connected"] for x in states)
    return round(got / span, 1)


def _start_workers(envs: list[dict[str, str]], log_dir: Path, tag: str) -> tuple[list[subprocess.Popen[str]], float]:
    """Start ``bydata ingest`` processes; returns them and when the last one had subscribed."""
    procs = []
    logs = []
    for i, env in enumerate(envs):
        log_file = log_dir / f"worker-{tag}-{i}.log"
        logs.append(log_file)
        procs.append(_python("-m", "bydata.cli", "ingest", env=env, stdout=log_file.open("w")))
    for log_file in logs:
        for _ in range(1200):
            if "is subscribed" in log_file.read_text():
                break
            time.sleep(0.05)
        else:
            raise SystemExit(f"worker did not subscribe: {log_file.read_text()[-2000:]}")
    return procs, time.time()


def run_end_to_end(
    db_url: str,
    mqtt_url: str,
    file: str,
    n: int,
    expected_observations: int,
    *,
    workers: int,
    fanout: bool,
    drain: bool = False,
    soak_s: float = 0.0,
    soak_rate: float = 0.0,
    spaces: int = 200,
    seed: int = 1,
    log_dir: Path,
) -> dict[str, Any]:
    """Publish to ``workers`` ingest processes and time until every message is committed.

    ``drain``: the workers subscribe and stop, the publisher fills the broker's queue for
    their sessions, and the time runs from their return (subscribed) to the last commit.
    ``soak_s``: instead of the workload, ``soak_s`` seconds of new readings at ``soak_rate``
    messages/s (:func:`fresh_stream`), with the workers' RSS over time.
    """
    from store import counters

    prefix = f"bench-{uuid.uuid4().hex[:8]}/"
    group = f"bench{uuid.uuid4().hex[:6]}" if workers > 1 else ""
    envs = []
    for i in range(workers):
        env = {
            "BYDATA_DATABASE_URL": db_url,
            "BYDATA_MQTT_URL": mqtt_url,
            "BYDATA_INGEST_CLIENT_ID": f"bench-{i}-{uuid.uuid4().hex[:6]}",
            "BYDATA_INGEST_TOPIC_PREFIX": prefix,
            "BYDATA_INGEST_METRICS_PORT": "0",
            "BYDATA_INGEST_SESSION_EXPIRY_S": "300",
            "BYDATA_INGEST_FANOUT": "true" if fanout else "false",
            "BYDATA_LOG_LEVEL": "INFO",
        }
        if group:
            env["BYDATA_INGEST_SHARE_GROUP"] = group
            # bulk workers leave the SensorThings create topics alone (see the setting's description)
            env["BYDATA_INGEST_STA_CREATES"] = "false"
        envs.append(env)
    tag = f"{workers}{'-drain' if drain else ''}{'-soak' if soak_s else ''}{'' if fanout else '-nofanout'}"
    procs, subscribed_at = _start_workers(envs, log_dir, tag)
    published: dict[str, Any] | None = None
    try:
        if drain:
            for proc in procs:
                _stop(proc)
            filler = _python(__file__, "--publisher", mqtt_url, file, prefix)
            pub_out, _ = filler.communicate(timeout=900)
            published = orjson.loads(pub_out.strip().splitlines()[-1])
            procs, subscribed_at = _start_workers(envs, log_dir, tag + "-again")
        rss: list[list[float]] = [[round(_rss_mb(p.pid) or 0, 1)] for p in procs]
        cpu_start = [_cpu_s(p.pid) or 0.0 for p in procs]
        sampled_from = time.time()
        received = 0
        # soak: (seconds, messages committed, RSS of each worker) every 10 s
        timeline: list[dict[str, Any]] = []
        stop_sampling = threading.Event()

        def sample() -> None:
            k = 0
            while not stop_sampling.wait(0.5):
                values = [_rss_mb(proc.pid) for proc in procs]
                for series, value in zip(rss, values, strict=True):
                    if value is not None:
                        series.append(round(value, 1))
                k += 1
                if soak_s and k % 20 == 0:
                    timeline.append(
                        {
                            "t_s": round(time.time() - sampled_from),
                            "received": received,
                            "rss_mb": [None if v is None else round(v, 1) for v in values],
                        }
                    )

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        if drain:
            pub = None
        elif soak_s:
            pub = _python(
                __file__, "--soak-publisher", mqtt_url, prefix, str(soak_s), str(soak_rate), str(spaces), str(seed)
            )
        else:
            pub = _python(__file__, "--publisher", mqtt_url, file, prefix)
        with psycopg.connect(db_url, autocommit=True) as conn:
            target = published["sent"] if published else n
            done_at = None
            last_say = time.time()
            last_change, last_received = time.time(), -1
            for _ in range(int((soak_s + 1200) / 0.05)):
                received = counters.totals(conn)[(counters.RECEIVED, "")]
                if received != last_received:
                    last_change, last_received = time.time(), received
                elif published is not None and time.time() - last_change > 30:
                    say(f"stalled at {received} of {target} messages")
                    done_at = last_change
                    break
                if time.time() - last_say > 5:
                    say(f"received {received} of {target if published is not None or not soak_s else '(publishing)'}")
                    last_say = time.time()
                if published is None and pub is not None and pub.poll() is not None:
                    assert pub.stdout is not None
                    published = orjson.loads(pub.stdout.read().strip().splitlines()[-1])
                    target = published["sent"]
                if published is not None and received >= target:
                    done_at = time.time()
                    break
                time.sleep(0.05)
            if done_at is None or published is None:
                raise SystemExit("end to end run did not finish")
            cpu_used = sum((_cpu_s(p.pid) or 0.0) - c for p, c in zip(procs, cpu_start, strict=True))
            t = counters.totals(conn)
            stored_rows = conn.execute("SELECT count(*) FROM observations").fetchone()
        stop_sampling.set()
        sampler.join(2)
    finally:
        for proc in procs:
            _stop(proc)
    elapsed = done_at - (subscribed_at if drain else published["started"])
    observations = t[(counters.OBSERVATIONS_STORED, "")]
    result: dict[str, Any] = {
        "workers": workers,
        "fanout": fanout,
        "mode": "drain" if drain else ("soak" if soak_s else "concurrent"),
        "messages": published["sent"],
        "seconds": round(elapsed, 2),
        "messages_per_s": round(published["sent"] / elapsed, 1),
        "observations_per_s": round((observations + t[(counters.OBSERVATIONS_DUPLICATE, "")]) / elapsed, 1),
        "observations_stored": observations,
        "publisher_messages_per_s": round(published["sent"] / (published["ended"] - published["started"]), 1),
        "rss_mb": [{"start": r[0], "peak": max(r), "end": r[-1], "samples": len(r)} for r in rss],
        # CPU the worker processes used per message, from subscribed to the last commit: what a
        # message costs, which the shared machine's load changes far less than the rates
        "worker_cpu_us_per_message": round(cpu_used / published["sent"] * 1e6, 1),
    }
    if soak_s:
        expected = published["observations"]
        result["observations_expected"] = expected
        result["observations_in_table"] = stored_rows[0] if stored_rows else None
        result["nothing_lost_or_doubled"] = (
            t[(counters.RECEIVED, "")] == published["sent"]
            and t[(counters.STORED, "")] == published["sent"]
            and stored_rows is not None
            and stored_rows[0] == expected
        )
        result["rss_over_time"] = timeline
        after_warmup = [r[min(len(r) - 1, 120) :] for r in rss]  # from 60 s on (one sample per 0.5 s)
        result["rss_growth_after_60s_mb"] = [round(r[-1] - r[0], 1) for r in after_warmup]
        result["rss_range_after_60s_mb"] = [[min(r), max(r)] for r in after_warmup]
    else:
        result["lost_messages"] = n - t[(counters.RECEIVED, "")] if t[(counters.RECEIVED, "")] < n else 0
        result["observations_expected"] = expected_observations
        result["observations_in_table"] = stored_rows[0] if stored_rows else None
        result["nothing_lost_or_doubled"] = (
            t[(counters.RECEIVED, "")] == n
            and t[(counters.STORED, "")] == n
            and stored_rows is not None
            and stored_rows[0] == expected_observations
        )
    return result


def measure_store_limit(db_url: str) -> dict[str, Any]:
    """Binary COPY of the rows ingest stored, back into the same (emptied) table, 5,000 per transaction."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(sql.SQL("SELECT {} FROM observations ORDER BY id").format(sql.SQL(COLUMNS))).fetchall()
        conn.execute("TRUNCATE observations")
        conn.commit()
        types = [
            "int8", "timestamptz", "timestamptz", "timestamptz", "timestamptz", "float8", "bool", "text", "jsonb",
            "int4", "jsonb",
        ]  # fmt: skip
        from psycopg.types.json import Jsonb

        prepared = [
            (*r[:8], Jsonb(r[8]) if r[8] is not None else None, r[9], Jsonb(r[10]) if r[10] else None) for r in rows
        ]
        started = time.perf_counter()
        for i in range(0, len(prepared), COPY_BATCH):
            with conn.cursor().copy(
                sql.SQL("COPY observations ({}) FROM STDIN (FORMAT BINARY)").format(sql.SQL(COLUMNS))
            ) as copy:
                copy.set_types(types)
                for row in prepared[i : i + COPY_BATCH]:
                    copy.write_row(row)
            conn.commit()
        elapsed = time.perf_counter() - started
    return {"rows": len(rows), "rows_per_s": round(len(rows) / elapsed, 1), "batch": COPY_BATCH}


def measure_stages(db_url: str, messages: list[tuple[str, bytes]]) -> dict[str, Any]:
    """Where a worker's time goes, in this process: decode+normalise alone, then the writer alone."""
    from ingest.decode import load_models
    from ingest.process import Processor
    from ingest.registry import Registry
    from ingest.sources import load_sources
    from ingest.types import RawMessage
    from store.observations import ObservationWriter

    models = load_models()
    registry = Registry(db_url, models)
    registry.refresh()
    processor = Processor(load_sources(), registry, models)
    now = datetime.now(UTC)
    raws = [RawMessage(t, p, now + timedelta(microseconds=i)) for i, (t, p) in enumerate(messages)]
    started = time.perf_counter()
    processed = [processor.process(r) for r in raws]
    decode_s = time.perf_counter() - started
    incoming = [m for m in processed if m is not None]
    observations = sum(len(m.observations) for m in incoming)
    with psycopg.connect(db_url) as conn:
        conn.execute("TRUNCATE observations")
        conn.commit()
    writer = ObservationWriter.connect(db_url, "bench-stages")
    started = time.perf_counter()
    batch: list[Any] = []
    count = 0
    for m in incoming:
        batch.append(m)
        count += len(m.observations)
        if len(batch) >= 2000 or count >= 10000:
            writer.write(batch)
            batch, count = [], 0
    if batch:
        writer.write(batch)
    write_s = time.perf_counter() - started
    writer.close()
    registry.close()
    return {
        "decode_normalise_messages_per_s": round(len(raws) / decode_s, 1),
        "decode_normalise_observations_per_s": round(observations / decode_s, 1),
        "writer_observations_per_s": round(observations / write_s, 1),
        "writer_messages_per_s": round(len(incoming) / write_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=60000, help="Messages in the workload.")
    parser.add_argument("--spaces", type=int, default=200, help="Parking spaces simulated.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="End-to-end runs with these counts.")
    parser.add_argument("--no-fanout", action="store_true", help="Also run one worker without live fan-out.")
    parser.add_argument("--soak", type=float, default=0.0, help="Seconds of an extra memory run (one worker).")
    parser.add_argument(
        "--soak-rate", type=float, default=3000.0, help="Messages/s of the memory run (below what ingest takes)."
    )
    args = parser.parse_args()

    db_server = _env("BYDATA_TEST_DATABASE_URL")
    mqtt_url = _env("BYDATA_TEST_MQTT_URL")
    started = time.perf_counter()
    messages, observations, provisioning, models = generate(args.messages, args.spaces, args.seed)
    payload_bytes = sum(len(p) for _, p in messages)
    report: dict[str, Any] = {
        "benchmark": "ingest",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "workload": {
            "source": "simulators, cases air+parking+energy, no faults",
            "messages": len(messages),
            "observations": observations,
            "observations_per_message": round(observations / len(messages), 3),
            "bytes_per_message": round(payload_bytes / len(messages), 1),
            "by_model": dict(models.most_common()),
            "generated_in_s": round(time.perf_counter() - started, 1),
        },
    }
    with tempfile.TemporaryDirectory(prefix="bydata-bench-") as tmp:
        file = str(Path(tmp) / "messages.pickle")
        with open(file, "wb") as f:
            pickle.dump(messages, f)
        with psycopg.connect(db_server) as conn:
            report["machine"]["postgres"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        say(f"workload: {len(messages)} messages, {observations} observations; measuring the receive limit")
        report["receive_limit"] = measure_receive_limit(mqtt_url, file, len(messages))
        say(f"receive limit: {report['receive_limit']}")
        # what the MQTT path alone allows in observations/s, before any decoding or storing
        per_message = observations / len(messages)
        report["receive_limit"]["observations_per_s_at_best"] = round(
            per_message
            * max(
                report["receive_limit"]["drain_messages_per_s"],
                report["receive_limit"]["drain_two_shared_messages_per_s"],
            ),
            1,
        )
        # concurrent (the publisher shares the cores) and draining a filled queue (it does not)
        runs = [(w, True, False) for w in args.workers] + [(w, True, True) for w in args.workers]
        if args.no_fanout:
            runs.append((1, False, False))
        report["end_to_end"] = []
        for workers, fanout, drain in runs:
            say(f"end to end: {workers} worker(s), fan-out {fanout}, {'drain' if drain else 'concurrent'}")
            with scratch_database(db_server, provisioning) as db_url:
                result = run_end_to_end(
                    db_url, mqtt_url, file, len(messages), observations, workers=workers, fanout=fanout,
                    drain=drain, log_dir=Path(tmp),
                )  # fmt: skip
                if "store_limit" not in report:
                    report["store_limit"] = measure_store_limit(db_url)
                    report["stages"] = measure_stages(db_url, messages)
            receive = report["receive_limit"]["drain_messages_per_s" if drain else "messages_per_s"]
            result["ratio_to_receive_limit"] = round(result["messages_per_s"] / receive, 3)
            if drain and workers == 2:
                shared = report["receive_limit"]["drain_two_shared_messages_per_s"]
                result["ratio_to_two_shared_receive_limit"] = round(result["messages_per_s"] / shared, 3)
            store = report["store_limit"]["rows_per_s"]
            result["ratio_to_store_limit"] = round(result["observations_per_s"] / store, 3)
            report["end_to_end"].append(result)
        if args.soak:
            with scratch_database(db_server, provisioning) as db_url:
                report["soak"] = run_end_to_end(
                    db_url, mqtt_url, file, len(messages), observations, workers=1, fanout=True, soak_s=args.soak,
                    soak_rate=args.soak_rate, spaces=args.spaces, seed=args.seed, log_dir=Path(tmp),
                )  # fmt: skip
    one = next(
        (r for r in report["end_to_end"] if r["workers"] == 1 and r["fanout"] and r["mode"] == "concurrent"), None
    )
    two = next((r for r in report["end_to_end"] if r["workers"] == 2 and r["mode"] == "concurrent"), None)
    one_drain = next((r for r in report["end_to_end"] if r["workers"] == 1 and r["mode"] == "drain"), None)
    two_drain = next((r for r in report["end_to_end"] if r["workers"] == 2 and r["mode"] == "drain"), None)
    report["targets"] = {
        "end_to_end_at_least_half_of_receive_limit": one is not None and one["ratio_to_receive_limit"] >= 0.5,
        "at_least_50000_observations_per_s": max(r["observations_per_s"] for r in report["end_to_end"]) >= 50000,
        "second_worker_adds_throughput": (
            one is not None and two is not None and two["messages_per_s"] > one["messages_per_s"]
        ),
        "second_worker_adds_throughput_draining": (
            one_drain is not None
            and two_drain is not None
            and two_drain["messages_per_s"] > one_drain["messages_per_s"]
        ),
        "nothing_lost_or_doubled": all(r.get("nothing_lost_or_doubled") for r in report["end_to_end"]),
    }
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--publisher":
        publisher_main(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) > 1 and sys.argv[1] == "--soak-publisher":
        soak_publisher_main(
            sys.argv[2],
            sys.argv[3],
            float(sys.argv[4]),
            float(sys.argv[5]),
            spaces=int(sys.argv[6]),
            seed=int(sys.argv[7]),
        )
    elif len(sys.argv) > 1 and sys.argv[1] == "--subscriber":
        subscriber_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        try:
            main()
        finally:
            _stop_children()
