"""Helpers for the simulator tests: runs written to a temporary directory, without a broker."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from simulators.engine import RunOptions
from simulators.run import run

TUESDAY = datetime(2026, 3, 10, tzinfo=UTC)  # a school day in Stavanger, no public holiday

Simulate = Callable[..., Path]


@pytest.fixture
def simulate(tmp_path: Path) -> Simulate:
    """Run a simulation unpaced and unpublished; returns the manifest directory."""
    counter = iter(range(1000))

    def go(cases: tuple[str, ...], *, name: str | None = None, **kw: Any) -> Path:
        kw.setdefault("start", TUESDAY)
        kw.setdefault("duration", timedelta(hours=1))
        directory = tmp_path / (name or f"run-{next(counter)}")
        run(RunOptions(cases=cases, **kw), directory, None, pace=False)
        return directory

    return go
