"""Deployment files: the compose file against the Compose Specification, and the broker limits."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return data


def _check_jsonschema() -> str:
    exe = shutil.which("check-jsonschema") or str(Path(__import__("sys").executable).parent / "check-jsonschema")
    return exe


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    result = subprocess.run(
        [_check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_catches_a_broken_file(tmp_path: Path) -> None:
    broken = _compose()
    broken["services"]["api"]["depends_on"]["migrate"]["condition"] = "whenever"
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    result = subprocess.run(
        [_check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0


def test_services_have_healthchecks_and_wait_for_each_other() -> None:
    services = _compose()["services"]
    assert services["timescaledb"]["image"].startswith("timescale/timescaledb:")
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto:2")
    for name in ("timescaledb", "mosquitto", "api", "ingest"):
        assert "healthcheck" in services[name], name
    assert services["migrate"]["command"] == ["db", "upgrade"]
    for name in ("api", "ingest"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["mosquitto"]["condition"] == "service_healthy"
    assert services["ingest"]["command"] == ["ingest"]


def test_every_file_the_compose_file_mounts_is_in_the_repository() -> None:
    """A bind mount of a missing file makes Docker create a directory there, and the service fails obscurely."""
    for name, service in _compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repository"


def test_ingest_settings_in_the_compose_file_are_settings() -> None:
    """Every BYDATA_ variable the services set is one the settings class reads (no silent typos)."""
    from bydata.settings import Settings

    known = {f"BYDATA_{name.upper()}" for name in Settings.model_fields}
    for name, service in _compose()["services"].items():
        for key in service.get("environment") or {}:
            if key.startswith("BYDATA_") and key != "BYDATA_MQTT_PASSWORD":
                assert key in known, f"{name}: {key} is not a setting"


def test_no_secrets_in_the_compose_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert "${POSTGRES_PASSWORD:?" in text
    for service in _compose()["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if "PASSWORD" in key:
                assert str(value).startswith("${"), f"{key} is hard-coded"


def test_broker_limits_do_not_drop_messages_under_load() -> None:
    conf = dict(
        line.split(None, 1)
        for line in (ROOT / "deploy/mosquitto/mosquitto.conf").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert int(conf["max_queued_messages"]) >= 100_000
    assert int(conf["max_inflight_messages"]) > 20
    assert conf["allow_anonymous"].strip() == "false"
