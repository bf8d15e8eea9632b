"""A new sensor model of a known envelope is data only: a YAML device model and the provisioning file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import yaml
from typer.testing import CliRunner

from bydata.cli import app
from bydata.settings import get_settings
from ingest.decode import load_models
from store import counters

from . import streams
from .conftest import assert_identity, running_ingest, totals

MODEL = """\
# A CO2 sensor whose network server decodes the payload (TTS payload formatter).
key: acme-air-co2
vendor: Acme
name: Acme Air CO2
case: energy
envelopes: [tts_v3]
codec: null
sensor:
  description: NDIR CO2 and temperature sensor, LoRaWAN.
  encoding_type: text/html
  metadata: https://example.org/acme-air-co2
fields:
  co2_ppm: {property: indoor_co2, unit: "[ppm]"}
  temp_f: {property: indoor_temperature, unit: "[degF]"}
ignore: [battery_pct]
"""


def test_a_new_model_needs_only_data_files(
    migrated_db: str, mqtt_url: str, topic_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import wait_until

    models_dir = tmp_path / "devices"
    models_dir.mkdir()
    (models_dir / "acme-air-co2.yaml").write_text(MODEL, encoding="utf-8")
    provisioning = tmp_path / "provisioning.yaml"
    device = "0004a30b001c0001"
    provisioning.write_text(
        yaml.safe_dump({"devices": [{"id": device, "model": "acme-air-co2", "name": "Room 12"}]}), encoding="utf-8"
    )
    monkeypatch.setenv("BYDATA_DATABASE_URL", migrated_db)
    monkeypatch.setenv("BYDATA_INGEST_DEVICES_DIR", str(models_dir))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["devices", "import", str(provisioning), "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["datastreams_created"] == 2

    prefix = topic_prefix + "/"
    body: dict[str, Any] = {
        "end_device_ids": {"device_id": "room-12", "dev_eui": device.upper()},
        "received_at": "2025-03-04T09:00:00Z",
        "uplink_message": {
            "f_port": 2,
            "frm_payload": "AQID",
            "decoded_payload": {"co2_ppm": 812, "temp_f": 71.6, "battery_pct": 90},
            "received_at": "2025-03-04T09:00:00Z",
        },
    }
    message = streams.Message(f"{prefix}v3/school/devices/room-12/up", orjson.dumps(body), "acme", 0, 2)
    with running_ingest(migrated_db, mqtt_url, topic_prefix=prefix, models=load_models(models_dir)):
        streams.publish(mqtt_url, [message])
        assert wait_until(lambda: totals(migrated_db)[(counters.RECEIVED, "")] >= 1, timeout=60)
    t = totals(migrated_db)
    assert t[(counters.STORED, "")] == 1
    assert_identity(t)
    with psycopg.connect(migrated_db) as conn:
        got = dict(
            conn.execute(
                "SELECT d.property_key, round(o.result_number::numeric, 6) FROM observations o"
                " JOIN datastreams d ON d.id = o.datastream_id"
            ).fetchall()
        )
    assert got == {"indoor_co2": 812, "indoor_temperature": 22}  # 71.6 degF in the vocabulary's Cel
