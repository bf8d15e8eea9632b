"""Loading of the data files that live beside this package (read once per process)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def load_yaml(name: str) -> Any:
    """Parse ``schemas/<name>``; cached because these files are facts, not state."""
    text = resources.files("schemas").joinpath(name).read_text(encoding="utf-8")
    return yaml.safe_load(text)
