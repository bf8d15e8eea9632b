"""Parse the resource path of a SensorThings URL (OGC 18-088, 9.2): pure, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass

from api.sta import entities as em
from api.sta.translate import PathNotFound, PathStep

_SEGMENT = re.compile(r"^([A-Za-z]+)(?:\((\d{1,18})\))?$")


@dataclass(frozen=True, slots=True)
class ResourcePath:
    """Entity-set/navigation steps, then optionally a property (and ``$value``) or ``$ref``."""

    steps: tuple[PathStep, ...]
    property: str | None = None
    value: bool = False
    ref: bool = False
    single: bool = False  # the steps address one entity


def parse_resource_path(text: str) -> ResourcePath:
    """``Things(1)/Datastreams`` etc. (without the ``/v1.1/`` prefix); PathNotFound for what the model lacks."""
    parts = [p for p in text.strip("/").split("/")]
    if not parts or not parts[0]:
        raise PathNotFound("empty resource path")
    steps: list[PathStep] = []
    entity: em.EntityType | None = None
    single = False
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "$ref":
            if not last or not steps:
                raise PathNotFound("$ref ends a path to entities")
            return ResourcePath(tuple(steps), ref=True, single=single)
        match = _SEGMENT.match(part)
        if match is None:
            raise PathNotFound(f"cannot resolve path segment {part!r}")
        name, id_text = match.group(1), match.group(2)
        ident = int(id_text) if id_text is not None else None
        if entity is None:
            entity = em.ENTITY_SETS.get(name)
            if entity is None:
                raise PathNotFound(f"no entity set {name!r}")
            steps.append(PathStep(name, ident))
            single = ident is not None
            continue
        relation = entity.relation(name)
        if relation is not None:
            if not single:
                raise PathNotFound(f"{name}: address one {entity.name} by id before navigating from it")
            if ident is not None and not relation.many:
                raise PathNotFound(f"{name} is a single entity; it takes no id")
            steps.append(PathStep(name, ident))
            entity = em.target_of(relation)
            single = ident is not None or not relation.many
            continue
        if ident is None and single and entity.property(name) is not None:
            rest = parts[index + 1 :]
            if rest == ["$value"]:
                return ResourcePath(tuple(steps), property=name, value=True, single=True)
            if rest:
                raise PathNotFound(f"cannot resolve {'/'.join(rest)!r} after property {name}")
            return ResourcePath(tuple(steps), property=name, single=True)
        raise PathNotFound(f"{entity.name} has no property or navigation property {name!r}")
    return ResourcePath(tuple(steps), single=single)
