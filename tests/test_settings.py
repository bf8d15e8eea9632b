"""Settings: one class, BYDATA_ prefix, .env, secrets hidden, documented in the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from bydata.settings import Settings, settings_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_environment_and_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYDATA_DATABASE_URL", "postgresql://u:hunter2@db/bydata")
    monkeypatch.setenv("BYDATA_API_PORT", "9090")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.api_port == 9090
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value().endswith("@db/bydata")
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())


def test_unset_urls_mean_embedded_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BYDATA_DATABASE_URL", raising=False)
    monkeypatch.delenv("BYDATA_MQTT_URL", raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url is None
    assert settings.mqtt_url is None


def test_dotenv_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BYDATA_MQTT_URL", raising=False)
    env = tmp_path / ".env"
    env.write_text("BYDATA_MQTT_URL=mqtt://broker:1883\nBYDATA_LOG_LEVEL=DEBUG\n", encoding="utf-8")
    settings = Settings(_env_file=env)  # type: ignore[call-arg]
    assert settings.mqtt_url is not None and settings.mqtt_url.get_secret_value() == "mqtt://broker:1883"
    assert settings.log_level == "DEBUG"


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYDATA_API_PORT", "70000")
    with pytest.raises(ValueError, match="api_port"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_base_url() -> None:
    assert Settings(api_host="127.0.0.1", api_port=8080, public_url=None).base_url() == "http://127.0.0.1:8080"
    assert Settings(public_url="https://data.bodo.kommune.no/").base_url() == "https://data.bodo.kommune.no"


def test_readme_configuration_table_is_current() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert settings_markdown() in readme, "README's configuration table is stale: paste `bydata config` output"
    for name in Settings.model_fields:
        assert f"`BYDATA_{name.upper()}`" in readme


def test_no_other_code_reads_the_environment() -> None:
    offenders = []
    for package in ("bydata", "schemas", "store", "ingest", "api", "simulators"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if "os.environ" in text or "os.getenv" in text:
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
