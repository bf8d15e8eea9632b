"""Carry out write plans inside one transaction: create (deep insert), update, delete.

The standard's side effects live here, each once:

* an Observation without a FeatureOfInterest gets the one made from its Thing's Location
  (created the first time, reused after: ``features_of_interest.location_id``);
* setting a Thing's Locations (on create, by PATCH/PUT, or by creating a Location linked to the
  Thing) replaces where the Thing is and records a HistoricalLocation; creating a HistoricalLocation
  with the Thing's latest time puts the Thing at its Locations;
* deleting a Location deletes its HistoricalLocations; the other cascades of OGC 18-088 table 25
  are the foreign keys' ``ON DELETE CASCADE`` (from a Datastream to its Observations, a statement
  trigger that does the same: migration 0006);
* a Datastream's phenomenonTime, resultTime and observedArea follow its Observations
  (``store.datastream_spans``: widened once per request in :meth:`Writer.finish`, recomputed
  where a deleted or changed Observation was on a bound).

Observations meet no uniqueness rule here (OGC 18-088 has none): any number may share a
Datastream and phenomenonTime. Only ingest's own ``dedup_key`` is unique per Datastream and
time (migration 0005); the API never sets it, and an update that moves an ingested
Observation to another Datastream or time clears it, so no write through the API can clash.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from api.sta import entities as em
from api.write.body import Link, NewEntity, Update, result_columns
from api.write.normalise import NotNormalisable, WriteNormaliser
from store import datastream_spans
from store import sta_write as store

# An Observation update touching these columns is normalised again; NORMALISED are what that sets.
RENORMALISE = frozenset({*em.RESULT_COLUMNS, "phenomenon_time", "phenomenon_time_end", "result_time", "datastream_id"})
NORMALISED = frozenset({*em.RESULT_COLUMNS, "phenomenon_time", "phenomenon_time_end", "quality_flags"})


class WriteError(Exception):
    """A write the data cannot take: ``code`` 400 (bad link, missing FoI …), 404 or 409."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class Changes:
    """What a request changed, for notifications after commit: (entity type, id) in order."""

    created: list[tuple[em.EntityType, int]] = field(default_factory=list)
    updated: list[tuple[em.EntityType, int, frozenset[str]]] = field(default_factory=list)
    deleted: list[tuple[em.EntityType, int]] = field(default_factory=list)


class Writer:
    """One request's writes on ``conn`` (inside the caller's transaction)."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        *,
        now: datetime | None = None,
    ) -> None:
        self.conn = conn
        self.now = now or datetime.now(UTC)
        self.changes = Changes()
        self.normaliser = WriteNormaliser(conn)
        # (datastream, phenomenon time, end, result time, feature) of Observations stored so far
        self._stored: list[tuple[int, datetime, datetime | None, datetime | None, int | None]] = []

    def finish(self) -> None:
        """Bring the Datastreams of this request's Observations up to date (before COMMIT)."""
        if self._stored:
            ds, pt, pe, rt, foi = zip(*self._stored, strict=True)
            datastream_spans.widen(self.conn, ds, pt, pe, rt, features=foi)
            self._stored.clear()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: on failure its rows and what it noted are both undone."""
        mark = len(self._stored), len(self.changes.created), len(self.changes.updated), len(self.changes.deleted)
        try:
            with self.conn.transaction():
                yield
        except BaseException:
            del self._stored[mark[0] :]
            del self.changes.created[mark[1] :]
            del self.changes.updated[mark[2] :]
            del self.changes.deleted[mark[3] :]
            raise

    def _stored_observation(self, ident: int) -> None:
        row = store.observation_columns(self.conn, ident)
        if row is not None:
            self._stored.append(
                (
                    row["datastream_id"],
                    row["phenomenon_time"],
                    row["phenomenon_time_end"],
                    row["result_time"],
                    row["feature_of_interest_id"],
                )
            )

    def _shrink(self, row: dict[str, Any]) -> None:
        datastream_spans.shrink(
            self.conn, row["datastream_id"], row["phenomenon_time"], row["phenomenon_time_end"], row["result_time"]
        )

    # ---- create --------------------------------------------------------------------------

    def _resolve(self, item: Link | NewEntity, preset: dict[str, Any] | None = None) -> int:
        if isinstance(item, Link):
            if not store.exists(self.conn, item.entity.table, item.id):
                raise WriteError(400, f"no {item.entity.name} with @iot.id {item.id} to link to")
            return item.id
        return self.create(item, preset or {})

    def create(self, new: NewEntity, preset: dict[str, Any] | None = None, *, via: em.Relation | None = None) -> int:
        """Insert ``new`` with its related entities; ``preset`` holds columns fixed by the path."""
        entity = new.entity
        columns = dict(new.columns)
        columns.update(preset or {})
        later: list[tuple[em.Relation, list[Link | NewEntity]]] = []
        for name, items in new.relations.items():
            relation = entity.relations[name]
            if relation.join is em.Join.FK_HERE:
                columns[relation.column] = self._resolve(items[0])
            else:
                later.append((relation, items))
        for relation in entity.relations.values():
            if relation.required and relation.join is em.Join.FK_HERE and columns.get(relation.column) is None:
                raise WriteError(400, f"{new.where or entity.name}: a new {entity.name} must link a {relation.target}")
        if entity is em.OBSERVATION:
            self._prepare_observation(columns, new.where)
        try:
            with self.conn.transaction():
                ident = store.insert_row(self.conn, entity.table, columns)
        except psycopg.errors.UniqueViolation as exc:
            raise WriteError(409, self._conflict(entity, columns)) from exc
        self.changes.created.append((entity, ident))
        if entity is em.OBSERVATION:
            self._stored.append(
                (
                    columns["datastream_id"],
                    columns["phenomenon_time"],
                    columns.get("phenomenon_time_end"),
                    columns.get("result_time"),
                    columns.get("feature_of_interest_id"),
                )
            )
        for relation, items in later:
            self._attach(entity, ident, relation, items)
        if entity is em.HISTORICAL_LOCATION and (thing := store.follow_latest_historical_location(self.conn, ident)):
            self.changes.updated.append((em.THING, thing, frozenset({"Locations"})))
        return ident

    def _conflict(self, entity: em.EntityType, columns: dict[str, Any]) -> str:
        return f"this {entity.name} conflicts with an existing one"

    def _attach(self, entity: em.EntityType, ident: int, relation: em.Relation, items: list[Link | NewEntity]) -> None:
        target = em.target_of(relation)
        if relation.join is em.Join.FK_THERE:
            for item in items:
                if isinstance(item, Link):
                    if not store.update_row(self.conn, target.table, item.id, {relation.column: ident}):
                        raise WriteError(400, f"no {target.name} with @iot.id {item.id} to link to")
                    self.changes.updated.append((target, item.id, frozenset({relation.inverse or ""})))
                else:
                    self.create(item, {relation.column: ident}, via=relation)
            return
        ids = [self._resolve(item) for item in items]
        self.link(entity, ident, relation, ids)

    def link(self, entity: em.EntityType, ident: int, relation: em.Relation, ids: list[int]) -> None:
        """Many-to-many links; a Thing's Locations move the Thing (and are recorded in its history)."""
        if entity is em.THING and relation.name == "Locations":
            if ids:
                self._move_thing(ident, ids)
            return
        if entity is em.LOCATION and relation.name == "Things":
            for thing in ids:
                self._move_thing(thing, [ident])
            return
        for other in ids:
            store.add_link(self.conn, relation.link_table, (relation.link_source, relation.link_target), (ident, other))

    def _move_thing(self, thing: int, locations: list[int]) -> None:
        historical = store.set_thing_locations(self.conn, thing, locations, self.now)
        self.changes.created.append((em.HISTORICAL_LOCATION, historical))

    def _normalise(self, columns: dict[str, Any], where: str) -> bool:
        try:
            return self.normaliser.apply(columns, self.now)
        except NotNormalisable as exc:
            raise WriteError(400, f"{where + '.' if where else ''}result: {exc}") from None

    def _prepare_observation(self, columns: dict[str, Any], where: str) -> None:
        if not store.exists(self.conn, em.DATASTREAM.table, columns["datastream_id"]):
            raise WriteError(400, f"no Datastream with @iot.id {columns['datastream_id']}")
        self._normalise(columns, where)
        if columns.get("phenomenon_time") is None:
            columns["phenomenon_time"] = self.now  # 18-088: the server's time when the client gives none
            columns.setdefault("phenomenon_time_end", None)
        datastream = columns["datastream_id"]
        if columns.get("feature_of_interest_id") is None:
            found = store.feature_from_thing_location(self.conn, datastream)
            if found is None:
                raise WriteError(
                    400,
                    f"{where or 'Observation'}: no FeatureOfInterest given and the Thing of Datastream {datastream}"
                    " has no Location to make one from",
                )
            feature, created = found
            if created:  # announced on v1.1/FeaturesOfInterest like a feature the client sent
                self.changes.created.append((em.FEATURE_OF_INTEREST, feature))
            columns["feature_of_interest_id"] = feature
        columns.setdefault("received_at", self.now)

    # ---- update --------------------------------------------------------------------------

    def update(self, update: Update, ident: int) -> None:
        entity = update.entity
        columns = dict(update.columns)
        before = store.observation_columns(self.conn, ident) if entity is em.OBSERVATION else None
        if entity is em.OBSERVATION and before is None:
            raise WriteError(404, f"no Observation with id {ident}")
        later: list[tuple[em.Relation, list[Link]]] = []
        for name, items in update.relations.items():
            relation = entity.relations[name]
            if relation.join is em.Join.FK_HERE:
                if len(items) != 1:
                    raise WriteError(400, f"{name} takes exactly one link")
                columns[relation.column] = self._resolve(items[0])
            else:
                later.append((relation, items))
        if before is not None:
            if "phenomenon_time" in columns and columns["phenomenon_time"] is None:
                raise WriteError(400, "phenomenonTime: an Observation keeps a phenomenonTime")
            if RENORMALISE & columns.keys():
                # judged again as a whole, with what it keeps; received_at stays the first receipt
                merged = {**before, **columns}
                if self._normalise(merged, ""):
                    columns = {k: v for k, v in merged.items() if k in columns or k in NORMALISED}
            if any(k in columns and columns[k] != before[k] for k in ("datastream_id", "phenomenon_time")):
                # moved: no longer the reading ingest received there (and never in the way of another)
                columns["dedup_key"] = None
        try:
            with self.conn.transaction():
                if entity is em.OBSERVATION:
                    changed = store.update_observation(self.conn, ident, columns)
                else:
                    changed = store.update_row(self.conn, entity.table, ident, columns)
        except psycopg.errors.UniqueViolation as exc:
            merged = {**(before or {}), **columns}
            raise WriteError(409, self._conflict(entity, merged)) from exc
        if not changed:
            raise WriteError(404, f"no {entity.name} with id {ident}")
        for relation, items in later:
            self._attach(entity, ident, relation, list(items))
        if before is not None:
            self._shrink(before)
            self._stored_observation(ident)
        self.changes.updated.append((entity, ident, update.given | frozenset(update.relations)))

    # ---- delete --------------------------------------------------------------------------

    def delete(self, entity: em.EntityType, ident: int) -> None:
        before = store.observation_columns(self.conn, ident) if entity is em.OBSERVATION else None
        if entity is em.LOCATION:
            store.delete_historical_locations_of_location(self.conn, ident)
        if not store.delete_row(self.conn, entity.table, ident):
            raise WriteError(404, f"no {entity.name} with id {ident}")
        if before is not None:
            self._shrink(before)
        self.changes.deleted.append((entity, ident))


__all__ = ["Changes", "Link", "NewEntity", "Update", "WriteError", "Writer", "result_columns"]
