"""Unknown devices under the strict and auto policies; quarantine and replay through the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import yaml
from typer.testing import CliRunner

from bydata.cli import app
from bydata.settings import get_settings
from schemas import quality
from store import counters

from . import streams
from .conftest import assert_identity, running_ingest, totals

WAIT = 60.0
UNVERIFIED = quality.flag("unverified_device")


@pytest.fixture
def cli(migrated_db: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Run ``bydata …`` configured like the test's ingest; returns the parsed JSON output."""
    monkeypatch.setenv("BYDATA_DATABASE_URL", migrated_db)
    monkeypatch.setenv("BYDATA_INGEST_TOPIC_PREFIX", topic_prefix + "/")
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return orjson.loads(result.stdout) if "--json" in args and code == 0 else result.output

    yield invoke
    get_settings.cache_clear()


def _unknown_tts_without_model(prefix: str) -> streams.Message:
    m = streams.nwave(prefix, 7)
    body = orjson.loads(m.payload)
    del body["uplink_message"]["version_ids"]
    body["end_device_ids"]["dev_eui"] = "AABBCCDDEEFF0011"
    body["end_device_ids"]["device_id"] = "eui-aabbccddeeff0011"
    return streams.Message(f"{prefix}v3/parking/devices/eui-aabbccddeeff0011/up", orjson.dumps(body), "nwave", 7, 1)


def test_strict_quarantines_unknown_devices_and_replay_stores_them_once(
    migrated_db: str, mqtt_url: str, topic_prefix: str, tmp_path: Path, cli: Any
) -> None:
    from tests.conftest import wait_until

    prefix = topic_prefix + "/"
    known = streams.mixed(prefix, 30)
    malformed = streams.Message(f"{prefix}amsreader/A4:CF:12:F3:77:00", b'{"id": "A4:CF', "amsreader", -1, 0)
    everything = [*known, malformed]
    with running_ingest(migrated_db, mqtt_url, topic_prefix=prefix):  # policy strict, nothing provisioned
        streams.publish(mqtt_url, everything)
        assert wait_until(lambda: totals(migrated_db)[(counters.RECEIVED, "")] >= len(everything), timeout=WAIT)
    t = totals(migrated_db)
    assert t[(counters.QUARANTINED, "unknown_device")] == len(known)
    assert t[(counters.QUARANTINED, "malformed")] == 1
    assert_identity(t)

    listed = cli("quarantine", "list", "--json", "--limit", "100")
    assert len(listed["messages"]) == len(everything)
    first = listed["messages"][0]
    shown = cli("quarantine", "show", str(first["id"]), "--json")
    assert shown["payload"].encode() in {m.payload for m in everything}
    assert shown["reason"] == "unknown_device" and shown["device_id"]

    # the operator imports the devices, then replays
    provisioning = tmp_path / "provisioning.yaml"
    provisioning.write_text(yaml.safe_dump(streams.provisioning()), encoding="utf-8")
    imported = cli("devices", "import", str(provisioning), "--json")
    assert imported["devices_created"] == len(streams.provisioning()["devices"])
    report = cli("quarantine", "replay", "--json")
    assert report["stored"] == len(known) and report["duplicate"] == 0
    assert report["still_failing"] == {"malformed": 1}
    streams.check_exactly_once(migrated_db, known)
    with psycopg.connect(migrated_db) as conn:
        # a message without a payload time is stored at its original receive time
        mismatched = conn.execute(
            "SELECT count(*) FROM quarantine q JOIN datastreams d ON d.device_id = q.device_id"
            " JOIN observations o ON o.datastream_id = d.id AND d.property_key = 'pm10'"
            " WHERE q.topic LIKE %s AND o.phenomenon_time <> q.received_at",
            (f"{prefix}sensor-community/%",),
        ).fetchone()
        assert mismatched == (0,)
        statuses = dict(conn.execute("SELECT status, count(*) FROM quarantine GROUP BY status").fetchall())
    assert statuses == {"replayed": len(known), "open": 1}

    again = cli("quarantine", "replay", "--json")
    assert again["replayed"] == 0 and again["still_failing"] == {"malformed": 1}
    streams.check_exactly_once(migrated_db, known)
    still = cli("quarantine", "list", "--json")["messages"]
    assert [(m["reason"], m["replay_count"]) for m in still] == [("malformed", 2)]
    assert cli("quarantine", "discard", str(still[0]["id"])).strip() == "discarded 1"
    assert cli("quarantine", "list", "--json")["messages"] == []

    stats = cli("ingest", "stats", "--json")
    assert stats["identity"]["holds"] is True
    assert stats["counters"]["replay_stored"] == len(known)


def test_auto_creates_unverified_devices_whose_model_is_known(
    migrated_db: str, mqtt_url: str, topic_prefix: str, cli: Any
) -> None:
    from tests.conftest import wait_until

    prefix = topic_prefix + "/"
    # Nwave via TTS (the network names the model), amsreader (the source names it)
    telling = [streams.nwave(prefix, 1), streams.nwave(prefix, 2), streams.amsreader(prefix, 4)]
    untold = _unknown_tts_without_model(prefix)
    with running_ingest(migrated_db, mqtt_url, topic_prefix=prefix, policy="auto"):
        streams.publish(mqtt_url, [*telling, untold])
        assert wait_until(lambda: totals(migrated_db)[(counters.RECEIVED, "")] >= 4, timeout=WAIT)
    t = totals(migrated_db)
    assert t[(counters.STORED, "")] == 3
    assert t[(counters.QUARANTINED, "unknown_device")] == 1
    assert_identity(t)
    devices = {d["id"]: d for d in cli("devices", "list", "--json")}
    assert set(devices) == {streams.NWAVE[1], streams.NWAVE[2], streams.AMS[4]}
    assert all(d["verified"] is False for d in devices.values())
    with psycopg.connect(migrated_db) as conn:
        flags = [r[0] for r in conn.execute("SELECT quality_flags FROM observations")]
        things = [r[0] for r in conn.execute("SELECT properties FROM things")]
    assert len(flags) == 4 and all(f & UNVERIFIED for f in flags)
    assert all(p["verified"] is False and p["deviceModel"] in ("nwave-nps405", "amsreader-han") for p in things)


def test_strict_is_the_default(migrated_db: str, mqtt_url: str, topic_prefix: str) -> None:
    from tests.conftest import wait_until

    prefix = topic_prefix + "/"
    with running_ingest(migrated_db, mqtt_url, topic_prefix=prefix):
        streams.publish(mqtt_url, [streams.nwave(prefix, 1)])
        assert wait_until(lambda: totals(migrated_db)[(counters.RECEIVED, "")] >= 1, timeout=WAIT)
    assert totals(migrated_db)[(counters.QUARANTINED, "unknown_device")] == 1
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute("SELECT count(*) FROM devices").fetchone() == (0,)
