"""Every command of the `bydata` CLI answers --help."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from bydata.cli import app


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in getattr(group, "commands", {}).items():
        found.extend(_commands(command, (*prefix, name)))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def test_expected_commands_exist() -> None:
    assert {("db", "upgrade"), ("db", "info"), ("demo",), ("api",), ("config",), ("schemas", "export")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "bydata")
def test_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_unknown_command_fails() -> None:
    result = CliRunner().invoke(app, ["frobnicate"])
    assert result.exit_code != 0


def test_ingest_in_a_share_group_refuses_the_default_client_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused before anything starts (no database or broker is reached): the message names the setting."""
    from bydata.settings import get_settings

    monkeypatch.delenv("BYDATA_INGEST_CLIENT_ID", raising=False)
    monkeypatch.setenv("BYDATA_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("BYDATA_MQTT_URL", "mqtt://127.0.0.1:1")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["ingest", "--share-group", "city"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert "BYDATA_INGEST_CLIENT_ID" in result.output
