"""Topics of the SensorThings MQTT extension (OGC 18-088, 14.2.1): pure, no I/O.

A client subscribes to a resource path under ``v1.1/`` and receives what is created or
changed there, as the entity's JSON (the same document as a GET):

* an entity set, ``v1.1/Things``: each Thing created, and each Thing changed;
* a navigation collection, ``v1.1/Datastreams(1)/Observations``: each member created or changed;
* one entity, ``v1.1/Things(1)``, or a navigation to one, ``v1.1/Datastreams(1)/Thing``: each change;
* a property, ``v1.1/Things(1)/name``: ``{"name": <value>}`` when it changes;
* any of these with ``?$select=name,description``: the selected properties only; a change is
  sent when one of them changed.

:func:`fixed_topics` lists the topics of a change that need no knowledge of subscriptions
(sent to any broker); :func:`parse_subscription` reads a subscribed topic filter, for the
topics that can only be served when the broker tells Bydata what is subscribed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl

from api.sta import entities as em
from api.sta.odata import ast
from api.sta.odata.parser import QueryError, parse_query_options
from api.sta.resource_path import ResourcePath, parse_resource_path
from api.sta.translate import PathNotFound

VERSION = "v1.1"

# Collections that are never published without a subscriber asking for them: Observations
# under a FeatureOfInterest share the filter ``v1.1/+/Observations`` that MQTT creates use, and
# ingest would take each notification there for a create it cannot place.
UNPUBLISHED_COLLECTIONS = frozenset({("FeatureOfInterest", "Observations")})


class Kind(StrEnum):
    CREATED = "created"
    UPDATED = "updated"


@dataclass(frozen=True, slots=True)
class Change:
    """One entity created or changed by a committed write; ``properties``: what an update changed."""

    kind: Kind
    entity: em.EntityType
    id: int
    properties: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Member:
    """The changed entity belongs to ``{set_name}({id})/{relation}`` (a navigation collection)."""

    set_name: str
    id: int
    relation: str


@dataclass(frozen=True, slots=True)
class Message:
    """What to publish: the entity (``property`` None) or ``{property: value}`` on ``topic``."""

    topic: str
    property: str | None = None


def collections_of(entity: em.EntityType) -> list[tuple[em.Relation, em.Relation]]:
    """``(relation, inverse)`` pairs where the inverse is a collection the entity can belong to."""
    out = []
    for relation in entity.relations.values():
        if relation.inverse is None or relation.join is em.Join.FK_THERE:
            continue
        inverse = em.target_of(relation).relations[relation.inverse]
        if inverse.many and (relation.target, inverse.name) not in UNPUBLISHED_COLLECTIONS:
            out.append((relation, inverse))
    return out


def changed_properties(change: Change) -> list[str]:
    """The entity's properties an update changed, in the entity's order."""
    return [name for name in change.entity.properties if name in change.properties]


def fixed_topics(change: Change, members: Sequence[Member]) -> list[Message]:
    """The messages of a change on topics that need no knowledge of subscriptions."""
    set_topic = f"{VERSION}/{change.entity.set_name}"
    messages = [Message(set_topic)]
    if change.kind is Kind.UPDATED:
        entity_topic = f"{set_topic}({change.id})"
        messages.append(Message(entity_topic))
        messages += [Message(f"{entity_topic}/{name}", name) for name in changed_properties(change)]
    messages += [Message(f"{VERSION}/{m.set_name}({m.id})/{m.relation}") for m in members]
    return messages


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscribed topic filter that names one resource path (no wildcards)."""

    topic: str  # as subscribed, without the deployment's prefix
    path: ResourcePath
    entity: em.EntityType  # what the path addresses (the owner of the property, for a property path)
    select: tuple[str, ...] | None  # $select names; None: the whole entity
    options: ast.QueryOptions


def parse_subscription(topic: str, prefix: str = "") -> Subscription | None:
    """A topic filter as a :class:`Subscription`; None for wildcards and for what is not a resource path."""
    if prefix:
        if not topic.startswith(prefix):
            return None
        topic = topic[len(prefix) :]
    if "+" in topic or "#" in topic or not topic.startswith(VERSION + "/"):
        return None
    text, _, query = topic[len(VERSION) + 1 :].partition("?")
    try:
        path = parse_resource_path(text)
        items = parse_qsl(query, keep_blank_values=True)
        if any(name != "$select" for name, _ in items):
            return None
        options = parse_query_options(items)
    except (PathNotFound, QueryError, ValueError):
        return None
    if path.ref or path.value:
        return None
    entity = em.ENTITY_SETS[path.steps[0].name]
    for step in path.steps[1:]:
        entity = em.target_of(entity.relations[step.name])
    select = None
    if options.select is not None:
        select = tuple("/".join(item.path) for item in options.select)
    return Subscription(topic, path, entity, select, options)


def wanted(subscription: Subscription, change: Change) -> bool:
    """Whether ``change`` may concern ``subscription`` (membership is checked against the data after this)."""
    if subscription.entity is not change.entity:
        return False
    if subscription.path.property is not None:
        return change.kind is Kind.UPDATED and subscription.path.property in change.properties
    if subscription.path.single and change.kind is not Kind.UPDATED:
        return False  # one entity's topic tells changes; creation is told on collections
    if subscription.select is not None and change.kind is Kind.UPDATED:
        return any(name in change.properties for name in subscription.select)
    return True


def project(entity: Mapping[str, object], name: str) -> dict[str, object]:
    """``{name: value}`` of a property message."""
    return {name: entity.get(name)}
