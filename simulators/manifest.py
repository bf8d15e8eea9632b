"""The ground-truth manifest of a run, written as the run goes (5,000 spaces never sit in memory).

A run directory holds:

``provisioning.yaml``
    The devices and sites in exactly the ``schemas.provisioning.Provisioning`` format: the file
    ingest imports (a municipality writes the same file for real devices).
``messages.jsonl``
    One line per published message, in publish order::

        {"seq": 0, "sent_at": "…Z", "topic": "…", "case": "parking", "device_id": "…",
         "model": "nwave-nps405", "kind": "state", "fault": null, "outcome": "stored",
         "reason": null, "flags": [], "sha256": "…",
         "truth": [{"property": "parking_occupancy", "phenomenon_time": "…Z",
                    "phenomenon_time_end": null, "value": true, "flags": []}]}

    ``outcome`` is ``stored`` | ``duplicate`` | ``quarantined`` (under the strict provisioning
    policy); ``reason`` is an ``ingest.types`` quarantine reason; ``flags`` (message) is the
    union of the truth values' expected quality flags (names from ``schemas/quality.yaml``),
    set for stored messages only. ``truth`` lists the values the message carries, vocabulary
    key and canonical unit; ``phenomenon_time`` is null where the payload has no time (ingest
    uses its receive time), ``phenomenon_time_end`` is set for interval values (NILU hours).
    Quarantined and duplicate messages list their values too, but they must not be stored.
``run.json``
    Options, seed, and counts (messages by outcome, case and fault; eligible and injected per
    fault), written when the run ends (``complete: false`` if it was interrupted).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson
import yaml

from schemas.provisioning import Provisioning
from simulators.model import Message
from simulators.timefmt import iso_z


def message_line(msg: Message) -> dict[str, Any]:
    out = msg.out
    truth = [
        {
            "property": t.property,
            "phenomenon_time": iso_z(t.time) if t.time is not None else None,
            "phenomenon_time_end": iso_z(t.time_end) if t.time_end is not None else None,
            "value": t.value,
            "flags": list(flags),
        }
        for t, flags in zip(out.truth, msg.flags or [()] * len(out.truth), strict=True)
    ]
    union = sorted({f for flags in msg.flags for f in flags})
    return {
        "seq": msg.seq,
        "sent_at": iso_z(msg.sent_at),
        "topic": out.topic,
        "case": msg.case,
        "device_id": out.device_id,
        "model": msg.model,
        "kind": msg.kind,
        "fault": out.fault,
        "outcome": out.outcome,
        "reason": out.reason,
        "flags": union,
        "sha256": hashlib.sha256(out.payload).hexdigest(),
        "truth": truth,
    }


class ManifestWriter:
    def __init__(self, directory: Path, provisioning: Provisioning) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        data = provisioning.model_dump(mode="json", exclude_none=True, exclude_defaults=False)
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: 5,000 devices in a blink
        text = yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True)
        (directory / "provisioning.yaml").write_text(text, encoding="utf-8")
        self._lines: IO[bytes] = (directory / "messages.jsonl").open("wb")
        self.count = 0

    def write(self, msg: Message) -> None:
        self._lines.write(orjson.dumps(message_line(msg)))
        self._lines.write(b"\n")
        self.count += 1

    def finish(self, run: dict[str, Any]) -> None:
        self._lines.close()
        text = orjson.dumps(run, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        (self.directory / "run.json").write_bytes(text + b"\n")

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._lines.closed:
            self._lines.close()


def read_messages(directory: Path) -> list[dict[str, Any]]:
    """All lines of a run's ``messages.jsonl`` (for tests and small runs)."""
    with (directory / "messages.jsonl").open("rb") as f:
        return [orjson.loads(line) for line in f]


def read_provisioning(directory: Path) -> Provisioning:
    return Provisioning.model_validate(yaml.safe_load((directory / "provisioning.yaml").read_text(encoding="utf-8")))
