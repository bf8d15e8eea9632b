"""MQTT sources as data (``schemas/sources.yaml``): topic filter -> envelope, zone, model, windows.

The file is validated once with pydantic; what the hot path sees is a frozen
:class:`Source` with precompiled topic regexes, so matching a topic costs a few regex
matches and no validation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, timedelta, timezone, tzinfo
from functools import cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ingest.types import NoSource
from schemas._data import load_yaml
from schemas.device_models import Envelope

_PLACEHOLDER = re.compile(r"^\{([a-z_][a-z0-9_]*)\}$")
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


class TopicFilterError(ValueError):
    """A topic filter that MQTT (or Bydata's ``{name}`` levels) does not allow."""


def parse_timezone(text: str) -> tzinfo:
    """``UTC``, an IANA zone (``Europe/Oslo``) or a fixed offset (``+01:00``)."""
    if text in ("UTC", "Z"):
        return UTC
    offset = _OFFSET.match(text)
    if offset:
        sign = -1 if offset.group(1) == "-" else 1
        delta = timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3)))
        return timezone(sign * delta)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {text!r}") from exc


def compile_filter(topic_filter: str) -> tuple[str, re.Pattern[str]]:
    """Turn a filter with optional ``{name}`` levels into (MQTT filter, regex with named groups).

    MQTT rules (3.1.1 §4.7, 5.0 §4.7): ``+`` is one whole level (possibly empty), ``#`` is
    the last level and also matches its parent, and filters starting with a wildcard do
    not match topics starting with ``$``.
    """
    if not topic_filter:
        raise TopicFilterError("empty topic filter")
    levels = topic_filter.split("/")
    mqtt_levels: list[str] = []
    pattern = ""
    names: set[str] = set()
    for i, level in enumerate(levels):
        sep = "" if i == 0 else "/"
        placeholder = _PLACEHOLDER.match(level)
        if level == "#":
            if i != len(levels) - 1:
                raise TopicFilterError(f"{topic_filter!r}: '#' must be the last level")
            mqtt_levels.append("#")
            pattern += "(?:/.*)?" if i else ".*"
        elif level == "+":
            mqtt_levels.append("+")
            pattern += sep + "[^/]*"
        elif placeholder:
            name = placeholder.group(1)
            if name in names:
                raise TopicFilterError(f"{topic_filter!r}: level {{{name}}} appears twice")
            names.add(name)
            mqtt_levels.append("+")
            pattern += sep + f"(?P<{name}>[^/]*)"
        else:
            if any(c in level for c in "+#{}"):
                raise TopicFilterError(
                    f"{topic_filter!r}: wildcards and {{name}} must fill a whole level, not part of {level!r}"
                )
            mqtt_levels.append(level)
            pattern += sep + re.escape(level)
    if levels[0] in ("+", "#") or _PLACEHOLDER.match(levels[0]):
        pattern = "(?!\\$)" + pattern
    return "/".join(mqtt_levels), re.compile(pattern + "$", re.DOTALL)


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic matching (``{name}`` levels count as ``+``)."""
    return compile_filter(topic_filter)[1].match(topic) is not None


@dataclass(frozen=True, slots=True)
class PlausibilityWindow:
    """How far a phenomenon time may lie from the receive time before it is flagged.

    The default window is data (``defaults`` of ``schemas/sources.yaml``): :func:`default_window`.
    """

    max_future_s: float
    max_late_s: float
    max_future: timedelta = field(init=False, repr=False, compare=False)
    max_late: timedelta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_future", timedelta(seconds=self.max_future_s))
        object.__setattr__(self, "max_late", timedelta(seconds=self.max_late_s))


class _Defaults(BaseModel):
    """A sources file's ``defaults``; what it leaves out comes from the shipped file's."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    timezone: str | None = None
    max_future_s: float | None = Field(default=None, ge=0)
    max_late_s: float | None = Field(default=None, gt=0)


@dataclass(frozen=True, slots=True)
class SourceDefaults:
    """The complete defaults of the shipped ``schemas/sources.yaml`` (every field given there)."""

    timezone: str
    window: PlausibilityWindow


@cache
def shipped_defaults() -> SourceDefaults:
    """``defaults`` of the shipped sources file: the one place for the default zone and window."""
    spec = _Defaults.model_validate(load_yaml("sources.yaml").get("defaults") or {})
    if spec.timezone is None or spec.max_future_s is None or spec.max_late_s is None:
        raise ValueError("schemas/sources.yaml: defaults must give timezone, max_future_s and max_late_s")
    return SourceDefaults(spec.timezone, PlausibilityWindow(spec.max_future_s, spec.max_late_s))


def default_window() -> PlausibilityWindow:
    """The plausibility window of a source that sets none (``schemas/sources.yaml`` defaults)."""
    return shipped_defaults().window


@dataclass(frozen=True, slots=True)
class Source:
    """One configured source, ready for the hot path."""

    name: str
    envelope: Envelope
    topics: tuple[str, ...]
    timezone: tzinfo = UTC
    device_model: str | None = None
    device_id_from: Literal["payload", "topic"] = "payload"
    window: PlausibilityWindow = field(default_factory=default_window)
    _patterns: tuple[re.Pattern[str], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self._patterns:
            object.__setattr__(self, "_patterns", tuple(compile_filter(t)[1] for t in self.topics))

    @property
    def filters(self) -> tuple[str, ...]:
        """The plain MQTT filters to subscribe to (``{name}`` levels become ``+``)."""
        return tuple(compile_filter(t)[0] for t in self.topics)

    def topic_vars(self, topic: str) -> dict[str, str] | None:
        """Values of the ``{name}`` levels if ``topic`` matches one of this source's filters."""
        for pattern in self._patterns:
            m = pattern.match(topic)
            if m is not None:
                return m.groupdict()
        return None

    def topic_device_id(self, topic: str) -> str | None:
        found = self.topic_vars(topic)
        if not found:
            return None
        return found.get("device_id") or None


class _SourceSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    envelope: Envelope
    topics: tuple[str, ...] = Field(min_length=1)
    timezone: str | None = None
    device_model: str | None = None
    device_id_from: Literal["payload", "topic"] = "payload"
    max_future_s: float | None = Field(default=None, ge=0)
    max_late_s: float | None = Field(default=None, gt=0)

    @field_validator("topics")
    @classmethod
    def _filters(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for topic in value:
            compile_filter(topic)
        return value

    @model_validator(mode="after")
    def _topic_id(self) -> _SourceSpec:
        if self.device_id_from == "topic" and not all("{device_id}" in t for t in self.topics):
            raise ValueError(f"source {self.name}: device_id_from: topic needs a {{device_id}} level in every topic")
        return self


class _SourcesFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: Literal[1]
    defaults: _Defaults = _Defaults()
    sources: tuple[_SourceSpec, ...]

    @model_validator(mode="after")
    def _unique(self) -> _SourcesFile:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate source names: {dupes}")
        return self


class SourceSet:
    """The configured sources, in file order; :meth:`match` finds the one for a topic."""

    _CACHE_SIZE = 200_000

    def __init__(self, sources: tuple[Source, ...]) -> None:
        self.sources = sources
        self._by_name = {s.name: s for s in sources}
        self._by_topic: dict[str, Source] = {}  # topics repeat per device: remember the answer

    def __iter__(self) -> Iterator[Source]:
        return iter(self.sources)

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, name: str) -> Source:
        return self._by_name[name]

    def match(self, topic: str) -> Source:
        """The first source whose filter matches ``topic``; :class:`NoSource` otherwise."""
        found = self._by_topic.get(topic)
        if found is not None:
            return found
        for source in self.sources:
            for pattern in source._patterns:
                if pattern.match(topic) is not None:
                    if len(self._by_topic) >= self._CACHE_SIZE:
                        self._by_topic.clear()
                    self._by_topic[topic] = source
                    return source
        raise NoSource(f"topic {topic!r} matches no configured source")

    def filters(self) -> list[str]:
        """Every MQTT filter to subscribe to, without duplicates, in file order."""
        seen: dict[str, None] = {}
        for source in self.sources:
            for f in source.filters:
                seen.setdefault(f, None)
        return list(seen)

    def check_models(self, models: Mapping[str, Any]) -> None:
        """Fail at start-up if a source names a device model that is not loaded."""
        for source in self.sources:
            if source.device_model is not None and source.device_model not in models:
                raise ValueError(f"source {source.name}: unknown device model {source.device_model!r}")


def sources_from_data(data: Any) -> SourceSet:
    """Build a :class:`SourceSet` from the parsed YAML document."""
    spec = _SourcesFile.model_validate(data)
    d, shipped = spec.defaults, shipped_defaults()
    default_zone = d.timezone or shipped.timezone
    default_future = shipped.window.max_future_s if d.max_future_s is None else d.max_future_s
    default_late = shipped.window.max_late_s if d.max_late_s is None else d.max_late_s
    built: list[Source] = []
    for s in spec.sources:
        try:
            zone = parse_timezone(s.timezone or default_zone)
        except ValueError as exc:
            raise ValueError(f"source {s.name}: {exc}") from exc
        window = PlausibilityWindow(
            max_future_s=default_future if s.max_future_s is None else s.max_future_s,
            max_late_s=default_late if s.max_late_s is None else s.max_late_s,
        )
        built.append(
            Source(
                name=s.name,
                envelope=s.envelope,
                topics=s.topics,
                timezone=zone,
                device_model=s.device_model,
                device_id_from=s.device_id_from,
                window=window,
            )
        )
    return SourceSet(tuple(built))


def load_sources(path: Path | None = None) -> SourceSet:
    """Read ``path`` (default: the shipped ``schemas/sources.yaml``)."""
    data = load_yaml("sources.yaml") if path is None else yaml.safe_load(path.read_text(encoding="utf-8"))
    return sources_from_data(data)
