"""The command line: clear errors for bad input, the fault list, durations and times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from bydata.cli import app
from bydata.cli_simulate import parse_scenario, parse_span, parse_time
from simulators.faults import FAULTS

runner = CliRunner()


def test_bad_fault_spec_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", "parking", "--no-publish", "--fault", "gremlins=0.1"])
    assert result.exit_code == 2
    assert "NAME=RATE" in result.output


def test_rates_that_cannot_share_one_draw_are_refused(tmp_path: Path) -> None:
    args = ["simulate", "parking", "--no-publish", "--faults", "0.3", "--manifest", str(tmp_path / "m")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "sum to" in result.output
    assert not (tmp_path / "m").exists()


def test_list_faults() -> None:
    result = runner.invoke(app, ["simulate", "air", "--list-faults"])
    assert result.exit_code == 0
    assert all(name in result.output for name in FAULTS)


def test_backfill_only_run_writes_its_manifest(tmp_path: Path) -> None:
    args = ["simulate", "air", "--no-publish", "--backfill-days", "0.25", "--start", "2026-03-10T12:00:00Z"]
    result = runner.invoke(app, [*args, "--manifest", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m" / "messages.jsonl").stat().st_size > 1000
    assert str(tmp_path / "m") in result.output


def test_parsers() -> None:
    assert parse_span("90") == timedelta(seconds=90)
    assert parse_span("30m") == timedelta(minutes=30)
    assert parse_span("6h") == timedelta(hours=6)
    assert parse_span("2d") == timedelta(days=2)
    assert parse_time("2026-03-04T07:00:00Z") == datetime(2026, 3, 4, 7, tzinfo=UTC)
    assert parse_time("2026-03-04T08:00:00+01:00") == datetime(2026, 3, 4, 7, tzinfo=UTC)
    assert parse_scenario("episode@2026-03-04T07:00") == datetime(2026, 3, 4, 7, tzinfo=UTC)
    for bad in ("soon", "5 weeks"):
        with pytest.raises(typer.BadParameter):
            parse_span(bad)
    with pytest.raises(typer.BadParameter):
        parse_scenario("smog@2026-03-04")
