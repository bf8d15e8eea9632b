"""Shared constants of the pure ingest tests (payload directory, a fixed receive time)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

PAYLOADS = Path(__file__).parent / "payloads"
RECEIVED = datetime(2025, 3, 4, 9, 0, 30, tzinfo=UTC)
