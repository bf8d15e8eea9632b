"""Fixtures for the pure ingest tests: payload files, the shipped sources and models."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from ingest.decode import load_models
from ingest.sources import SourceSet, load_sources
from ingest.types import RawMessage
from schemas.device_models import DeviceModel
from tests.ingest.ingest_testdata import PAYLOADS, RECEIVED


@pytest.fixture(scope="session")
def sources() -> SourceSet:
    return load_sources()


@pytest.fixture(scope="session")
def models() -> dict[str, DeviceModel]:
    return load_models()


@pytest.fixture
def raw_file() -> Callable[..., RawMessage]:
    """``raw_file(topic, "tts_v3/x.json", received_at=...)``: a RawMessage with a stored payload."""

    def make(topic: str, name: str, received_at: datetime = RECEIVED) -> RawMessage:
        return RawMessage(topic, (PAYLOADS / name).read_bytes(), received_at)

    return make
