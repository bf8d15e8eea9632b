"""The requests of a batch, whichever format carried them (JSON or multipart)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class BatchError(ValueError):
    """The batch as a whole cannot be read (a 400 for the batch; no request of it runs)."""


@dataclass(frozen=True, slots=True)
class SubRequest:
    """One request of a batch. ``group``: the change set it belongs to (None: on its own).

    ``body`` is the JSON value (JSON format) or the raw bytes of the part (multipart);
    ``content_id`` is what ``$<content_id>`` references of later requests name.
    """

    id: str
    method: str
    url: str
    body: Any
    group: str | None
    content_type: str
    content_id: str | None = None
