"""Translate SensorThings requests into SQL: a pure function of syntax tree, entity metadata and server features.

Output is ``psycopg.sql`` with named placeholders and a parameter dict; no value is ever
written into SQL text, and identifiers come only from :mod:`api.sta.entities`.

Shapes of the SQL (``a0`` is the requested entity set, ``x1``... are expansions):

* a page: ``SELECT json_build_object(...) FROM (SELECT a0.* FROM t a0 WHERE scope AND filter
  ORDER BY ... LIMIT top+1 OFFSET skip) a0 LEFT JOIN LATERAL (...) x1 ON true ORDER BY ...``:
  the page is cut first, then each expansion runs once per row of the page, as a
  ``LATERAL`` subquery with its own ``ORDER BY ... LIMIT`` (never ``DISTINCT ON``);
* a navigation path (``Things(1)/Datastreams(2)/Observations``) becomes nested
  ``IN (SELECT id ...)`` sets ending in an indexable ``a0.datastream_id IN (...)``;
* a filter path through navigation properties (``Datastream/ObservedProperty/name``)
  becomes ``EXISTS (SELECT 1 FROM datastreams b1, observed_properties b2 WHERE ...)``
  around the predicate that uses it ("any" semantics for to-many relations).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from api.sta import entities as em
from api.sta.entities import EntityType, Property, PropType, Relation
from api.sta.odata import ast
from api.sta.odata.parser import QueryError


class NotImplementedQuery(QueryError):
    """Valid by the standard but not served by this server (HTTP 501)."""


@dataclass(frozen=True, slots=True)
class ServerFeatures:
    """What the translator may use on the connected server."""

    postgis: bool = False


@dataclass(frozen=True, slots=True)
class Limits:
    default_top: int = 100
    max_top: int = 10_000


# --------------------------------------------------------------------------------------
# Output plans: what each level of the response holds; read by the renderer.


@dataclass(slots=True)
class Plan:
    entity: EntityType
    properties: list[Property]
    include_id: bool = True
    include_self_link: bool = True
    nav_links: list[str] = field(default_factory=list)
    expands: dict[str, Expansion] = field(default_factory=dict)


@dataclass(slots=True)
class Expansion:
    relation: Relation
    plan: Plan
    top: int = 0  # to-many: page size
    skip: int = 0
    count: bool = False
    filter: ast.Expr | None = None
    orderby: tuple[ast.OrderItem, ...] = ()
    raw: dict[str, str] = field(default_factory=dict)  # the level's options, for its next link


@dataclass(frozen=True, slots=True)
class Query:
    """One statement and its parameters; ``plan`` tells how to render the json column ``e``."""

    statement: sql.Composed
    params: dict[str, Any]
    plan: Plan
    top: int = 0
    skip: int = 0
    count_statement: sql.Composed | None = None


# --------------------------------------------------------------------------------------
# Resource paths


@dataclass(frozen=True, slots=True)
class PathStep:
    """One resource-path segment: an entity set or a navigation property, with an optional id."""

    name: str
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Scope:
    """The rows a resource path addresses: entity type plus a condition on alias ``a0``."""

    entity: EntityType
    condition: sql.Composable | None
    single: bool  # the path ends in an id or a to-one navigation


class _Params:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any, cast: str | None = None) -> sql.Composable:
        name = f"p{len(self.values)}"
        self.values[name] = value
        placeholder: sql.Composable = sql.Placeholder(name)
        if cast:
            placeholder = sql.SQL("{}::{}").format(placeholder, sql.SQL(cast))
        return placeholder


class PathNotFound(LookupError):
    """A resource path naming something the model does not have (HTTP 404)."""


def scope_of(steps: Sequence[PathStep], params: _Params) -> Scope:
    """Resolve entity-set and navigation steps to the addressed rows."""
    if not steps:
        raise PathNotFound("empty path")
    first = em.ENTITY_SETS.get(steps[0].name)
    if first is None:
        raise PathNotFound(f"no entity set {steps[0].name!r}")
    entity = first
    ids: sql.Composable | None = None
    condition: sql.Composable | None = None
    single = steps[0].id is not None
    if steps[0].id is not None:
        ids = params.add(steps[0].id, "bigint")
        condition = sql.SQL("a0.id = {}").format(ids)
    for step in steps[1:]:
        relation = entity.relation(step.name)
        if relation is None:
            raise PathNotFound(f"{entity.name} has no navigation property {step.name!r}")
        if ids is None:
            raise QueryError(
                f"navigating from a collection ({entity.set_name}) needs an id first, "
                f"e.g. {entity.set_name}(1)/{step.name}"
            )
        if step.id is not None and not relation.many:
            raise PathNotFound(f"{step.name} is a single entity; it takes no id")
        column, source = em.related_ids(entity, relation, ids)
        entity = em.target_of(relation)
        condition = sql.SQL("a0.{} IN ({})").format(sql.Identifier(column), source)
        single = step.id is not None or not relation.many
        if step.id is not None:
            id_param = params.add(step.id, "bigint")
            condition = sql.SQL("{} AND a0.id = {}").format(condition, id_param)
        ids = sql.SQL("SELECT a0.id FROM {} a0 WHERE {}").format(sql.Identifier(entity.table), condition)
    return Scope(entity, condition, single)


# --------------------------------------------------------------------------------------
# Property rendering


def _fmt_time(expr: sql.Composable) -> sql.Composable:
    """ISO 8601 in UTC with ``Z`` (independent of the session's time zone)."""
    return sql.SQL("((to_json(({}) AT TIME ZONE 'UTC') #>> '{{}}') || 'Z')").format(expr)


def _datastream_span(alias: str) -> tuple[sql.Composable, sql.Composable]:
    """First and last phenomenon time of a Datastream's Observations: two probes of the primary key."""
    a = sql.Identifier(alias)
    first = sql.SQL(
        "(SELECT o.phenomenon_time FROM observations o"
        " WHERE o.datastream_id = {}.id ORDER BY o.phenomenon_time LIMIT 1)"
    ).format(a)
    last = sql.SQL(
        "(SELECT coalesce(o.phenomenon_time_end, o.phenomenon_time) FROM observations o"
        " WHERE o.datastream_id = {}.id ORDER BY o.phenomenon_time DESC LIMIT 1)"
    ).format(a)
    return first, last


def _is_span(entity: EntityType, prop: Property) -> bool:
    return entity.name == "Datastream" and prop.name == "phenomenonTime"


def render_property(entity: EntityType, prop: Property, alias: str) -> sql.Composable:
    """The SQL value of ``prop`` as it appears in the response JSON."""
    c = em.col(alias, prop.column)
    if _is_span(entity, prop):
        first, last = _datastream_span(alias)
        return sql.SQL(
            "(SELECT CASE WHEN s.f IS NULL THEN NULL ELSE {} || '/' || {} END FROM (SELECT {} AS f, {} AS l) s)"
        ).format(_fmt_time(sql.SQL("s.f")), _fmt_time(sql.SQL("s.l")), first, last)
    if prop.type is PropType.DATETIME:
        return _fmt_time(c)
    if prop.type is PropType.TIME_OBJECT:
        end = em.col(alias, prop.end_column or "")
        return sql.SQL("CASE WHEN {e} IS NULL THEN {s} ELSE {s} || '/' || {ef} END").format(
            e=end, s=_fmt_time(c), ef=_fmt_time(end)
        )
    if prop.type is PropType.INTERVAL:
        end = em.col(alias, prop.end_column or "")
        return sql.SQL("CASE WHEN {s0} IS NULL THEN NULL ELSE {s} || '/' || {e} END").format(
            s0=c, s=_fmt_time(c), e=_fmt_time(sql.SQL("coalesce({}, {})").format(end, c))
        )
    if prop.type is PropType.RESULT:
        n, b, t, j = (em.col(alias, x) for x in em.RESULT_COLUMNS)
        return sql.SQL("coalesce(to_json({}), to_json({}), to_json({}), {}::json)").format(n, b, t, j)
    return c


# --------------------------------------------------------------------------------------
# Expressions ($filter, $orderby)


@dataclass(slots=True)
class Typed:
    """A translated expression and its type.

    ``type``: string, number, int, bool, datetime, date, time, duration, null, json (a jsonb
    value of unknown type), result (Observation.result), time_object (start + end),
    geometry (a stored shape), geoliteral.
    """

    expr: sql.Composable
    type: str
    end: sql.Composable | None = None  # time_object: end (NULL for instants)
    alias: str = ""
    prop: Property | None = None
    shape: ast.Shape | None = None
    column: int = 1


@dataclass(slots=True)
class _Hop:
    relation: Relation
    source_alias: str
    alias: str


class _ExprContext:
    """Translation state of one predicate (or one order key): the navigation hops it needed."""

    def __init__(self, builder: _Builder) -> None:
        self.b = builder
        self.hops: list[_Hop] = []

    def hop(self, relation: Relation, source_alias: str) -> str:
        for h in self.hops:
            if h.source_alias == source_alias and h.relation is relation:
                return h.alias
        alias = self.b.new_alias("b")
        self.hops.append(_Hop(relation, source_alias, alias))
        return alias

    def wrap_exists(self, predicate: sql.Composable) -> sql.Composable:
        if not self.hops:
            return predicate
        tables = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(em.target_of(h.relation).table), sql.Identifier(h.alias))
            for h in self.hops
        )
        conds = [em.relation_condition(h.relation, h.source_alias, h.alias) for h in self.hops]
        return sql.SQL("EXISTS (SELECT 1 FROM {} WHERE {} AND ({}))").format(
            tables, sql.SQL(" AND ").join(conds), predicate
        )

    def wrap_scalar(self, value: sql.Composable) -> sql.Composable:
        if not self.hops:
            return value
        tables = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(em.target_of(h.relation).table), sql.Identifier(h.alias))
            for h in self.hops
        )
        conds = [em.relation_condition(h.relation, h.source_alias, h.alias) for h in self.hops]
        return sql.SQL("(SELECT {} FROM {} WHERE {} LIMIT 1)").format(value, tables, sql.SQL(" AND ").join(conds))


_CMP = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_ARITH = {"add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%"}
_NUMERIC = ("number", "int")
_BOOL_FUNCTIONS = {
    "substringof", "contains", "endswith", "startswith", "geo.intersects", "st_equals", "st_disjoint",
    "st_touches", "st_within", "st_overlaps", "st_crosses", "st_intersects", "st_contains", "st_relate",
}  # fmt: skip


def _err(message: str, column: int, cls: type[QueryError] = QueryError) -> QueryError:
    return cls(message, parameter=None, column=column)


class _Builder:
    """Builds one statement: owns the parameters and the alias counter."""

    def __init__(self, features: ServerFeatures, limits: Limits) -> None:
        self.features = features
        self.limits = limits
        self.params = _Params()
        self._aliases = 0
        self.parameter = "$filter"

    def new_alias(self, prefix: str) -> str:
        self._aliases += 1
        return f"{prefix}{self._aliases}"

    # ---- literals -------------------------------------------------------------------
    def literal(self, lit: ast.Literal) -> Typed:
        v = lit.value
        if lit.kind == "null":
            return Typed(sql.SQL("NULL"), "null", column=lit.column)
        if lit.kind == "string":
            return Typed(self.params.add(v, "text"), "string", column=lit.column)
        if lit.kind == "int":
            return Typed(self.params.add(v, "bigint"), "int", column=lit.column)
        if lit.kind == "float":
            return Typed(self.params.add(v, "double precision"), "number", column=lit.column)
        if lit.kind == "bool":
            return Typed(self.params.add(v, "boolean"), "bool", column=lit.column)
        if lit.kind == "datetime":
            return Typed(self.params.add(v, "timestamptz"), "datetime", column=lit.column)
        if lit.kind == "date":
            return Typed(self.params.add(v, "date"), "date", column=lit.column)
        if lit.kind == "time":
            return Typed(self.params.add(v, "time"), "time", column=lit.column)
        if lit.kind == "duration":
            return Typed(self.params.add(v, "interval"), "duration", column=lit.column)
        raise _err(f"unsupported literal {lit.kind}", lit.column)

    # ---- paths ----------------------------------------------------------------------------
    def path(self, p: ast.Path, entity: EntityType, alias: str, ctx: _ExprContext) -> Typed:
        segments = list(p.segments)
        while segments:
            seg = segments[0]
            relation = entity.relation(seg.name)
            if relation is None:
                break
            if seg.indexes:
                raise _err(f"{seg.name} is a navigation property; it takes no index", p.column)
            if len(segments) == 1:
                raise _err(f"{seg.name} is a navigation property; name one of its properties", p.column)
            alias = ctx.hop(relation, alias)
            entity = em.target_of(relation)
            segments.pop(0)
        seg = segments[0]
        rest = segments[1:]
        if seg.name in ("id", "@iot.id"):
            if rest or seg.indexes:
                raise _err("id has no sub-properties", p.column)
            return Typed(em.col(alias, "id"), "int", column=p.column)
        prop = entity.property(seg.name)
        if prop is None:
            raise _err(f"{entity.name} has no property or navigation property {seg.name!r}", p.column)
        keys: list[str | int] = list(seg.indexes)
        for s in rest:
            keys.append(s.name)
            keys.extend(s.indexes)
        if keys:
            if prop.type not in (PropType.JSON, PropType.ANY, PropType.RESULT, PropType.GEOMETRY):
                raise _err(f"{prop.name} is not an object; it has no sub-property {keys[0]!r}", p.column)
            column = "result_json" if prop.type is PropType.RESULT else prop.column
            expr: sql.Composable = em.col(alias, column)
            for key in keys:
                expr = sql.SQL("({} -> {})").format(
                    expr, self.params.add(key, "integer" if isinstance(key, int) else "text")
                )
            return Typed(expr, "json", alias=alias, column=p.column)
        c = em.col(alias, prop.column)
        if _is_span(entity, prop):
            first, last = _datastream_span(alias)
            return Typed(first, "time_object", end=last, alias=alias, prop=prop, column=p.column)
        t = prop.type
        if t is PropType.STRING:
            return Typed(c, "string", alias=alias, prop=prop, column=p.column)
        if t in (PropType.JSON, PropType.ANY):
            return Typed(c, "json", alias=alias, prop=prop, column=p.column)
        if t is PropType.DATETIME:
            return Typed(c, "datetime", alias=alias, prop=prop, column=p.column)
        if t in (PropType.TIME_OBJECT, PropType.INTERVAL):
            end = em.col(alias, prop.end_column or "")
            if t is PropType.INTERVAL:
                end = sql.SQL("coalesce({}, {})").format(end, c)
            return Typed(c, "time_object", end=end, alias=alias, prop=prop, column=p.column)
        if t is PropType.RESULT:
            return Typed(c, "result", alias=alias, prop=prop, column=p.column)
        return Typed(em.col(alias, prop.column), "geometry", alias=alias, prop=prop, column=p.column)

    # ---- coercions --------------------------------------------------------------------------
    def as_type(self, x: Typed, want: str) -> Typed:
        """Coerce ``x`` to ``want`` (string, number, bool, datetime) or raise a 400."""
        if want == "number" and x.type in _NUMERIC:
            return x
        if x.type == want:
            return x
        if x.type == "result":
            column = {"number": "result_number", "string": "result_text", "bool": "result_boolean"}.get(want)
            if column is None:
                raise _err(f"result cannot be used as {want}", x.column)
            return Typed(em.col(x.alias, column), want, column=x.column)
        if x.type == "json":
            jtype = {"number": "number", "string": "string", "bool": "boolean", "datetime": "string"}[want]
            cast = {"number": "double precision", "string": "text", "bool": "boolean", "datetime": "text"}[want]
            expr = sql.SQL("(CASE WHEN jsonb_typeof({j}) = {t} THEN ({j} #>> '{{}}')::{c} END)").format(
                j=x.expr, t=sql.Literal(jtype), c=sql.SQL(cast)
            )
            if want == "datetime":
                raise _err("comparing a JSON value with a time is not supported; compare with a string", x.column)
            return Typed(expr, want, column=x.column)
        if want == "datetime" and x.type == "time_object":
            return Typed(x.expr, "datetime", column=x.column)
        if want == "datetime" and x.type == "date":
            return Typed(sql.SQL("({} AT TIME ZONE 'UTC')").format(x.expr), "datetime", column=x.column)
        if x.type == "null":
            return Typed(sql.SQL("NULL::{}").format(sql.SQL(_SQL_TYPE[want])), want, column=x.column)
        raise _err(f"expected {_HUMAN_TYPE.get(want, want)}, found {_HUMAN_TYPE.get(x.type, x.type)}", x.column)

    # ---- expressions -------------------------------------------------------------------------
    def value(self, node: ast.Expr, entity: EntityType, alias: str, ctx: _ExprContext) -> Typed:
        if isinstance(node, ast.Literal):
            return self.literal(node)
        if isinstance(node, ast.GeoLiteral):
            return Typed(sql.SQL("NULL"), "geoliteral", shape=node.shape, column=node.column)
        if isinstance(node, ast.Path):
            return self.path(node, entity, alias, ctx)
        if isinstance(node, ast.Unary):
            if node.op == "-":
                x = self.as_type(self.value(node.operand, entity, alias, ctx), "number")
                return Typed(sql.SQL("(- {})").format(x.expr), x.type, column=node.column)
            return Typed(self.boolean(node, entity, alias, ctx), "bool", column=node.column)
        if isinstance(node, ast.Binary):
            if node.op in _ARITH:
                return self.arith(node, entity, alias, ctx)
            return Typed(self.boolean(node, entity, alias, ctx), "bool", column=node.column)
        return self.call(node, entity, alias, ctx)

    def arith(self, node: ast.Binary, entity: EntityType, alias: str, ctx: _ExprContext) -> Typed:
        left = self.value(node.left, entity, alias, ctx)
        right = self.value(node.right, entity, alias, ctx)
        if node.op in ("add", "sub") and right.type == "duration":
            base = self.as_type(left, "datetime")
            return Typed(
                sql.SQL("({} {} {})").format(base.expr, sql.SQL(_ARITH[node.op]), right.expr),
                "datetime",
                column=node.column,
            )
        if node.op == "sub" and {left.type, right.type} <= {"datetime", "time_object", "date"}:
            raise _err("subtracting times is not supported", node.column, NotImplementedQuery)
        lnum = self.as_type(left, "number")
        rnum = self.as_type(right, "number")
        out = "int" if lnum.type == rnum.type == "int" else "number"
        if node.op == "div":
            expr = sql.SQL("({} / NULLIF({}, 0))").format(lnum.expr, rnum.expr)
        elif node.op == "mod":
            expr = sql.SQL("(mod(({})::numeric, NULLIF(({})::numeric, 0))::{})").format(
                lnum.expr, rnum.expr, sql.SQL("bigint" if out == "int" else "double precision")
            )
        else:
            expr = sql.SQL("({} {} {})").format(lnum.expr, sql.SQL(_ARITH[node.op]), rnum.expr)
        return Typed(expr, out, column=node.column)

    # ---- boolean structure ---------------------------------------------------------------------
    def boolean(
        self, node: ast.Expr, entity: EntityType, alias: str, outer: _ExprContext | None = None
    ) -> sql.Composable:
        """A boolean expression; each predicate gets its own navigation hops, wrapped in EXISTS."""
        if isinstance(node, ast.Binary) and node.op in ("and", "or"):
            left = self.boolean(node.left, entity, alias, outer)
            right = self.boolean(node.right, entity, alias, outer)
            return sql.SQL("({} {} {})").format(left, sql.SQL(node.op.upper()), right)
        if isinstance(node, ast.Unary) and node.op == "not":
            return sql.SQL("(NOT {})").format(self.boolean(node.operand, entity, alias, outer))
        ctx = outer or _ExprContext(self)
        predicate = self.predicate(node, entity, alias, ctx)
        return predicate if outer is not None else ctx.wrap_exists(predicate)

    def predicate(self, node: ast.Expr, entity: EntityType, alias: str, ctx: _ExprContext) -> sql.Composable:
        if isinstance(node, ast.Binary) and node.op in _CMP:
            return self.compare(node, entity, alias, ctx)
        if isinstance(node, ast.Binary | ast.Unary) and node.op in ("and", "or", "not"):
            return self.boolean(node, entity, alias, ctx)
        x = self.value(node, entity, alias, ctx)
        if x.type == "json":
            return sql.SQL("({} = 'true'::jsonb)").format(x.expr)
        return self.as_type(x, "bool").expr

    def compare(self, node: ast.Binary, entity: EntityType, alias: str, ctx: _ExprContext) -> sql.Composable:
        left = self.value(node.left, entity, alias, ctx)
        right = self.value(node.right, entity, alias, ctx)
        op = node.op
        for a, b in ((left, right), (right, left)):
            if b.type == "null":
                if op not in ("eq", "ne"):
                    raise _err("null can only be compared with eq or ne", b.column)
                if a.type == "null":
                    return sql.SQL("TRUE" if op == "eq" else "FALSE")
                if a.type == "result":
                    n, bo, t, j = (em.col(a.alias, x) for x in em.RESULT_COLUMNS)
                    empty = sql.SQL(
                        "({} IS NULL AND {} IS NULL AND {} IS NULL AND coalesce({} = 'null'::jsonb, true))"
                    ).format(n, bo, t, j)
                    return empty if op == "eq" else sql.SQL("(NOT {})").format(empty)
                if a.type == "json":
                    return sql.SQL("coalesce({} {} 'null'::jsonb, {})").format(
                        a.expr, sql.SQL("=" if op == "eq" else "<>"), sql.SQL("true" if op == "eq" else "false")
                    )
                return sql.SQL("({} IS {}NULL)").format(a.expr, sql.SQL("" if op == "eq" else "NOT "))
        for x in (left, right):
            if x.type in ("geometry", "geoliteral"):
                raise _err("geometries cannot be compared; use geo.* or st_* functions", x.column)
        left, right = self._unify(left, right, node.column)
        if left.type == "time_object" or right.type == "time_object":
            return self._compare_time(op, left, right)
        return sql.SQL("({} {} {})").format(left.expr, sql.SQL(_CMP[op]), right.expr)

    def _unify(self, left: Typed, right: Typed, column: int) -> tuple[Typed, Typed]:
        """Bring both sides of a comparison to one comparable type."""
        types = {left.type, right.type}
        timeish = {"datetime", "time_object", "date"}
        if left.type in timeish or right.type in timeish:
            for a, b in ((left, right), (right, left)):
                if a.type in ("datetime", "time_object") and b.type == "string":
                    raise _err("compare times with a date-time literal such as 2024-01-01T00:00:00Z", b.column)
            if left.type == right.type == "date":
                return left, right
            out = []
            for x in (left, right):
                out.append(x if x.type == "time_object" else self.as_type(x, "datetime"))
            return out[0], out[1]
        if types <= {"json"}:
            return left, right
        if "json" in types or "result" in types:
            other = right if left.type in ("json", "result") else left
            want = "number" if other.type in ("json", "result", "number", "int") else other.type
            if want not in ("number", "string", "bool"):
                raise _err(f"a JSON value or result cannot be compared with {_HUMAN_TYPE.get(want, want)}", column)
            return self.as_type(left, want), self.as_type(right, want)
        if left.type in _NUMERIC and right.type in _NUMERIC:
            return left, right
        if left.type == right.type:
            return left, right
        raise _err(
            f"cannot compare {_HUMAN_TYPE.get(left.type, left.type)} with {_HUMAN_TYPE.get(right.type, right.type)}",
            column,
        )

    def _compare_time(self, op: str, left: Typed, right: Typed) -> sql.Composable:
        """Time objects: an interval is before X when it ends before X, after X when it starts after X."""
        if left.type != "time_object":
            left, right = right, left
            op = {"gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}.get(op, op)
        start = left.expr
        end = sql.SQL("coalesce({}, {})").format(left.end, start) if left.end is not None else start
        other_start = right.expr
        other_end = (
            sql.SQL("coalesce({}, {})").format(right.end, right.expr)
            if right.type == "time_object" and right.end is not None
            else right.expr
        )
        if op == "gt":
            return sql.SQL("({} > {})").format(start, other_end)
        if op == "ge":
            return sql.SQL("({} >= {})").format(start, other_end)
        if op == "lt":  # the start bound repeats the end bound so the primary key serves it
            return sql.SQL("({s} < {o} AND {e} < {o})").format(s=start, e=end, o=other_start)
        if op == "le":
            return sql.SQL("({s} <= {o} AND {e} <= {o})").format(s=start, e=end, o=other_start)
        same = sql.SQL("({} = {} AND {} = {})").format(start, other_start, end, other_end)
        return same if op == "eq" else sql.SQL("(NOT coalesce({}, false))").format(same)

    # ---- functions --------------------------------------------------------------------------
    def call(self, node: ast.Call, entity: EntityType, alias: str, ctx: _ExprContext) -> Typed:
        name = node.name
        handler = _FUNCTIONS.get(name)
        if handler is None:
            if name.startswith(("geo.", "st_")):
                handler = _geo_function
            else:
                raise _err(f"unknown function {name}()", node.column)
        return handler(self, node, [self.value(a, entity, alias, ctx) for a in node.args])

    # ---- geometry -----------------------------------------------------------------------------
    def geometry(self, x: Typed) -> sql.Composable:
        """A PostGIS geometry for a stored shape or a literal."""
        if x.type == "geoliteral" and x.shape is not None:
            return sql.SQL("ST_GeomFromText({}, 4326)").format(self.params.add(x.shape.wkt(), "text"))
        if x.type == "geometry" and x.prop is not None and x.prop.geometry is not None:
            g = x.prop.geometry
            if g.geom_column:
                return em.col(x.alias, g.geom_column)
            return sql.SQL("{}({})").format(sql.Identifier(g.geom_function or "geojson_geometry"), x.expr)
        if x.type == "json":
            return sql.SQL("geojson_geometry({})").format(x.expr)
        raise _err(f"expected a geometry, found {_HUMAN_TYPE.get(x.type, x.type)}", x.column)

    def point(self, x: Typed, name: str) -> tuple[sql.Composable, sql.Composable] | ast.Shape:
        """Without PostGIS: (lon, lat) columns of a stored point, or the literal's shape."""
        if x.type == "geoliteral" and x.shape is not None:
            return x.shape
        if x.type == "geometry" and x.prop is not None and x.prop.geometry is not None:
            g = x.prop.geometry
            if g.lon_column and g.lat_column:
                return em.col(x.alias, g.lon_column), em.col(x.alias, g.lat_column)
        raise _err(
            f"{name}() on {x.prop.name if x.prop else 'this value'} needs PostGIS, which this server lacks "
            "(without it, Location.location and FeatureOfInterest.feature points are served)",
            x.column,
            NotImplementedQuery,
        )


_SQL_TYPE = {"string": "text", "number": "double precision", "bool": "boolean", "datetime": "timestamptz"}
_HUMAN_TYPE = {
    "string": "a string",
    "number": "a number",
    "int": "a number",
    "bool": "a boolean",
    "datetime": "a date-time",
    "date": "a date",
    "time": "a time of day",
    "duration": "a duration",
    "json": "a JSON value",
    "result": "a result",
    "time_object": "a time",
    "geometry": "a geometry",
    "geoliteral": "a geometry",
    "null": "null",
}


def _arity(node: ast.Call, args: list[Typed], *counts: int) -> None:
    if len(args) not in counts:
        want = " or ".join(str(c) for c in counts)
        raise _err(f"{node.name}() takes {want} argument(s), got {len(args)}", node.column)


def _string_fn(template: str, out: str, n: tuple[int, ...], kinds: tuple[str, ...]) -> Callable[..., Typed]:
    def handler(b: _Builder, node: ast.Call, args: list[Typed]) -> Typed:
        _arity(node, args, *n)
        coerced = [b.as_type(a, kinds[min(i, len(kinds) - 1)]).expr for i, a in enumerate(args)]
        variant = template.split("|")[len(args) - min(n)] if "|" in template else template
        return Typed(sql.SQL(variant).format(*coerced), out, column=node.column)

    return handler


def _time_part(template: str, out: str) -> Callable[..., Typed]:
    def handler(b: _Builder, node: ast.Call, args: list[Typed]) -> Typed:
        _arity(node, args, 1)
        x = args[0]
        if x.type == "date" and node.name not in ("year", "month", "day", "date"):
            raise _err(f"{node.name}() needs a date-time, not a date", node.column)
        ts = x.expr if x.type == "date" else b.as_type(x, "datetime").expr
        return Typed(sql.SQL(template).format(ts), out, column=node.column)

    return handler


def _now(b: _Builder, node: ast.Call, args: list[Typed]) -> Typed:
    _arity(node, args, 0)
    return Typed(sql.SQL("now()"), "datetime", column=node.column)


def _minmax(which: str) -> Callable[..., Typed]:
    def handler(b: _Builder, node: ast.Call, args: list[Typed]) -> Typed:
        _arity(node, args, 0, 1)
        if not args:
            return Typed(sql.SQL(f"'{which}'::timestamptz"), "datetime", column=node.column)
        x = args[0]
        if x.type != "time_object":
            return b.as_type(x, "datetime")
        if which == "-infinity":
            return Typed(x.expr, "datetime", column=node.column)
        end = sql.SQL("coalesce({}, {})").format(x.end, x.expr) if x.end is not None else x.expr
        return Typed(end, "datetime", column=node.column)

    return handler


def _totaloffset(b: _Builder, node: ast.Call, args: list[Typed]) -> Typed:
    _arity(node, args, 1)
    ts = b.as_type(args[0], "datetime").expr
    # Times are stored normalised to UTC, so every offset is 0 (NULL stays NULL).
    return Typed(sql.SQL("(CASE WHEN {} IS NULL THEN NULL ELSE 0 END)").format(ts), "int", column=node.column)


def _geo_function(b: _Builder, node: ast.Call, args: list[Typed]) -> Typed:
    name = node.name
    binary = {
        "geo.intersects": "ST_Intersects", "st_intersects": "ST_Intersects", "st_equals": "ST_Equals",
        "st_disjoint": "ST_Disjoint", "st_touches": "ST_Touches", "st_within": "ST_Within",
        "st_overlaps": "ST_Overlaps", "st_crosses": "ST_Crosses", "st_contains": "ST_Contains",
    }  # fmt: skip
    if name == "geo.length":
        _arity(node, args, 1)
        if not b.features.postgis:
            raise _err("geo.length() needs PostGIS, which this server lacks", node.column, NotImplementedQuery)
        return Typed(sql.SQL("ST_Length({})").format(b.geometry(args[0])), "number", column=node.column)
    if name == "st_relate":
        _arity(node, args, 3)
        pattern = args[2]
        if pattern.type != "string":
            raise _err("st_relate() takes a DE-9IM pattern string as third argument", pattern.column)
        if not b.features.postgis:
            raise _err("st_relate() needs PostGIS, which this server lacks", node.column, NotImplementedQuery)
        return Typed(
            sql.SQL("ST_Relate({}, {}, {})").format(b.geometry(args[0]), b.geometry(args[1]), pattern.expr),
            "bool",
            column=node.column,
        )
    if name != "geo.distance" and name not in binary:
        raise _err(f"unknown function {name}()", node.column)
    _arity(node, args, 2)
    for x in args:
        if x.type not in ("geometry", "geoliteral", "json"):
            raise _err(f"{name}() takes geometries, found {_HUMAN_TYPE.get(x.type, x.type)}", x.column)
    if b.features.postgis:
        g1, g2 = b.geometry(args[0]), b.geometry(args[1])
        if name == "geo.distance":
            return Typed(sql.SQL("ST_Distance({}, {})").format(g1, g2), "number", column=node.column)
        return Typed(sql.SQL("{}({}, {})").format(sql.SQL(binary[name]), g1, g2), "bool", column=node.column)
    return _geo_without_postgis(b, node, args)


def _geo_without_postgis(b: _Builder, node: ast.Call, args: list[Typed]) -> Typed:
    """Points against points and polygons, planar in degrees like PostGIS geometry(4326)."""
    name = node.name
    p1, p2 = b.point(args[0], name), b.point(args[1], name)

    def needs_postgis() -> QueryError:
        return _err(
            f"{name}() with these shapes needs PostGIS, which this server lacks", node.column, NotImplementedQuery
        )

    def xy(p: tuple[sql.Composable, sql.Composable] | ast.Shape) -> tuple[sql.Composable, sql.Composable] | None:
        if isinstance(p, tuple):
            return p
        if p.kind == "Point":
            c = p.coordinates
            return b.params.add(float(c[0]), "double precision"), b.params.add(float(c[1]), "double precision")  # type: ignore[arg-type]
        return None

    a, c = xy(p1), xy(p2)
    if name == "geo.distance":
        if a is None or c is None:
            raise needs_postgis()
        expr = sql.SQL("sqrt(power({} - {}, 2) + power({} - {}, 2))").format(a[0], c[0], a[1], c[1])
        return Typed(expr, "number", column=node.column)
    if a is not None and c is not None:
        equal = sql.SQL("({} = {} AND {} = {})").format(a[0], c[0], a[1], c[1])
        if name in ("geo.intersects", "st_intersects", "st_equals", "st_within", "st_contains"):
            return Typed(equal, "bool", column=node.column)
        if name == "st_disjoint":
            return Typed(sql.SQL("(NOT {})").format(equal), "bool", column=node.column)
        if name in ("st_touches", "st_overlaps", "st_crosses"):  # never true for two points
            return Typed(
                sql.SQL("({} IS NOT NULL AND {} IS NOT NULL AND FALSE)").format(a[0], c[0]), "bool", column=node.column
            )
        raise needs_postgis()
    # one point, one polygon
    if a is not None and isinstance(p2, ast.Shape) and p2.kind in ("Polygon", "MultiPolygon"):
        point, polygon, point_first = a, p2, True
    elif c is not None and isinstance(p1, ast.Shape) and p1.kind in ("Polygon", "MultiPolygon"):
        point, polygon, point_first = c, p1, False
    else:
        raise needs_postgis()
    inside = _point_in_polygon(b, point, polygon)
    if name in ("geo.intersects", "st_intersects"):
        return Typed(inside, "bool", column=node.column)
    if name == "st_disjoint":
        return Typed(sql.SQL("(NOT {})").format(inside), "bool", column=node.column)
    if (name == "st_within" and point_first) or (name == "st_contains" and not point_first):
        return Typed(inside, "bool", column=node.column)
    if name in ("st_within", "st_contains", "st_equals"):  # a polygon is never within (or equal to) a point
        return Typed(sql.SQL("({} IS NOT NULL AND FALSE)").format(point[0]), "bool", column=node.column)
    raise needs_postgis()


def _point_in_polygon(b: _Builder, point: tuple[sql.Composable, sql.Composable], shape: ast.Shape) -> sql.Composable:
    """Even-odd ray casting over the literal's edges, behind a bounding-box test (no PostGIS)."""
    px, py = point
    rings = shape.rings()
    xs = [x for ring in rings for x, _ in ring]
    ys = [y for ring in rings for _, y in ring]

    def num(v: float) -> sql.Composable:
        if not math.isfinite(v):
            raise _err("coordinates must be finite", 1)
        return b.params.add(v, "double precision")

    terms: list[sql.Composable] = []
    for ring in rings:
        for (x1, y1), (x2, y2) in itertools.pairwise(ring):
            if y1 == y2:
                continue  # a horizontal edge never crosses the ray
            slope = (x2 - x1) / (y2 - y1)
            terms.append(
                sql.SQL(
                    "(CASE WHEN {py} >= {lo} AND {py} < {hi} AND {px} < {x1} + ({py} - {y1}) * {k} THEN 1 ELSE 0 END)"
                ).format(py=py, px=px, lo=num(min(y1, y2)), hi=num(max(y1, y2)), x1=num(x1), y1=num(y1), k=num(slope))
            )
    crossings = sql.SQL(" + ").join(terms) if terms else sql.SQL("0")
    return sql.SQL("({px} BETWEEN {x0} AND {x1} AND {py} BETWEEN {y0} AND {y1} AND mod({c}, 2) = 1)").format(
        px=px, py=py, x0=num(min(xs)), x1=num(max(xs)), y0=num(min(ys)), y1=num(max(ys)), c=crossings
    )


def _round(template: str) -> Callable[..., Typed]:
    def handler(b: _Builder, node: ast.Call, args: list[Typed]) -> Typed:
        _arity(node, args, 1)
        x = b.as_type(args[0], "number")
        return Typed(sql.SQL(template).format(x.expr), x.type, column=node.column)

    return handler


_UTC = "(({}) AT TIME ZONE 'UTC')"
_FUNCTIONS: dict[str, Callable[..., Typed]] = {
    # string
    "substringof": _string_fn("(strpos({1}, {0}) > 0)", "bool", (2,), ("string",)),
    "contains": _string_fn("(strpos({0}, {1}) > 0)", "bool", (2,), ("string",)),
    "endswith": _string_fn("(right({0}, char_length({1})) = {1})", "bool", (2,), ("string",)),
    "startswith": _string_fn("(left({0}, char_length({1})) = {1})", "bool", (2,), ("string",)),
    "length": _string_fn("char_length({0})", "int", (1,), ("string",)),
    "indexof": _string_fn("(strpos({0}, {1}) - 1)", "int", (2,), ("string",)),
    "substring": _string_fn(
        "substr({0}, greatest({1}, 0)::integer + 1)"
        "|substr({0}, greatest({1}, 0)::integer + 1, greatest({2}, 0)::integer)",
        "string",
        (2, 3),
        ("string", "number"),
    ),
    "tolower": _string_fn("lower({0})", "string", (1,), ("string",)),
    "toupper": _string_fn("upper({0})", "string", (1,), ("string",)),
    "trim": _string_fn("btrim({0})", "string", (1,), ("string",)),
    "concat": _string_fn("({0} || {1})", "string", (2,), ("string",)),
    # date and time (UTC)
    "year": _time_part("extract(year FROM " + _UTC + ")::integer", "int"),
    "month": _time_part("extract(month FROM " + _UTC + ")::integer", "int"),
    "day": _time_part("extract(day FROM " + _UTC + ")::integer", "int"),
    "hour": _time_part("extract(hour FROM " + _UTC + ")::integer", "int"),
    "minute": _time_part("extract(minute FROM " + _UTC + ")::integer", "int"),
    "second": _time_part("floor(extract(second FROM " + _UTC + "))::integer", "int"),
    "fractionalseconds": _time_part(
        "(extract(second FROM "
        + _UTC
        + ") - floor(extract(second FROM "
        + _UTC.replace("{}", "{0}")
        + ")))::double precision",
        "number",
    ),
    "date": _time_part(_UTC + "::date", "date"),
    "time": _time_part(_UTC + "::time", "time"),
    "totaloffsetminutes": _totaloffset,
    "now": _now,
    "mindatetime": _minmax("-infinity"),
    "maxdatetime": _minmax("infinity"),
    # math
    "round": _round("round({})"),
    "floor": _round("floor({})"),
    "ceiling": _round("ceil({})"),
}


# --------------------------------------------------------------------------------------
# Statements


def _check_top(value: int | None, limits: Limits) -> int:
    if value is None:
        return limits.default_top
    return min(value, limits.max_top)


class Translator:
    """Turns (scope, query options) into :class:`Query` objects for one server."""

    def __init__(self, features: ServerFeatures, limits: Limits | None = None) -> None:
        self.features = features
        self.limits = limits or Limits()

    def _builder(self) -> _Builder:
        return _Builder(self.features, self.limits)

    # ---- public entry points ------------------------------------------------------------
    def collection(self, steps: Sequence[PathStep], options: ast.QueryOptions) -> Query:
        b = self._builder()
        scope = scope_of(steps, b.params)
        plan = self._plan(scope.entity, options, b)
        top = _check_top(options.top, self.limits)
        skip = options.skip or 0
        where = self._where(b, scope.entity, "a0", scope.condition, options.filter)
        order = self._order(b, scope.entity, "a0", options.orderby)
        statement = self._page_statement(
            b, plan=plan, entity=scope.entity, where=where, order=order, limit=top + 1, skip=skip
        )
        count = None
        if options.count:
            count = sql.SQL("SELECT count(*) FROM {} a0 WHERE {}").format(sql.Identifier(scope.entity.table), where)
        return Query(statement, b.params.values, plan, top, skip, count)

    def entity(self, steps: Sequence[PathStep], options: ast.QueryOptions) -> Query:
        b = self._builder()
        scope = scope_of(steps, b.params)
        plan = self._plan(scope.entity, options, b)
        where = self._where(b, scope.entity, "a0", scope.condition, None)
        order = self._order(b, scope.entity, "a0", ())
        statement = self._page_statement(b, plan=plan, entity=scope.entity, where=where, order=order, limit=2, skip=0)
        return Query(statement, b.params.values, plan, 1, 0)

    def property(self, steps: Sequence[PathStep], name: str) -> Query:
        b = self._builder()
        scope = scope_of(steps, b.params)
        prop = scope.entity.property(name)
        if prop is None:
            raise PathNotFound(f"{scope.entity.name} has no property {name!r}")
        plan = Plan(scope.entity, [prop], include_id=False, include_self_link=False)
        where = self._where(b, scope.entity, "a0", scope.condition, None)
        order = self._order(b, scope.entity, "a0", ())
        statement = self._page_statement(b, plan=plan, entity=scope.entity, where=where, order=order, limit=2, skip=0)
        return Query(statement, b.params.values, plan, 1, 0)

    def exists(self, steps: Sequence[PathStep]) -> Query:
        """Whether the entity a path addresses exists (for 404s on empty collections)."""
        b = self._builder()
        scope = scope_of(steps, b.params)
        where = self._where(b, scope.entity, "a0", scope.condition, None)
        statement = sql.SQL("SELECT 1 FROM {} a0 WHERE {} LIMIT 1").format(sql.Identifier(scope.entity.table), where)
        return Query(statement, b.params.values, Plan(scope.entity, []), 1, 0)

    def filter_sql(self, entity: EntityType, expr: ast.Expr) -> tuple[sql.Composable, dict[str, Any]]:
        """Only the condition of a ``$filter`` on alias ``a0`` (for table tests and later extensions)."""
        b = self._builder()
        return self._boolean_filter(b, entity, "a0", expr), b.params.values

    def order_sql(self, entity: EntityType, items: Sequence[ast.OrderItem]) -> tuple[sql.Composable, dict[str, Any]]:
        b = self._builder()
        return sql.SQL(", ").join(self._order(b, entity, "a0", items)), b.params.values

    # ---- pieces ---------------------------------------------------------------------------
    def _boolean_filter(self, b: _Builder, entity: EntityType, alias: str, expr: ast.Expr) -> sql.Composable:
        b.parameter = "$filter"
        try:
            return b.boolean(expr, entity, alias)
        except QueryError as exc:
            exc.parameter = exc.parameter or "$filter"
            raise

    def _where(
        self, b: _Builder, entity: EntityType, alias: str, condition: sql.Composable | None, expr: ast.Expr | None
    ) -> sql.Composable:
        parts: list[sql.Composable] = []
        if condition is not None:
            parts.append(condition)
        if expr is not None:
            parts.append(self._boolean_filter(b, entity, alias, expr))
        return sql.SQL(" AND ").join(parts) if parts else sql.SQL("TRUE")

    def _order(
        self, b: _Builder, entity: EntityType, alias: str, items: Sequence[ast.OrderItem]
    ) -> list[sql.Composable]:
        keys: list[sql.Composable] = []
        seen_columns: set[str] = set()
        for item in items:
            ctx = _ExprContext(b)
            try:
                x = b.value(item.expr, entity, alias, ctx)
            except QueryError as exc:
                exc.parameter = "$orderby"
                raise
            if any(h.relation.many for h in ctx.hops):
                raise QueryError("cannot order by a property of a to-many navigation", parameter="$orderby")
            direction = sql.SQL(" DESC" if item.descending else "")
            if x.type in ("geometry", "geoliteral"):
                raise QueryError("cannot order by a geometry", parameter="$orderby", column=x.column)
            if x.type == "result":
                for column in ("result_number", "result_boolean", "result_text"):
                    keys.append(sql.SQL("{}{}").format(em.col(x.alias, column), direction))
                continue
            # time objects order by their start: what the (datastream_id, phenomenon_time) key serves
            keys.append(sql.SQL("{}{}").format(ctx.wrap_scalar(x.expr), direction))
            if isinstance(item.expr, ast.Path) and not ctx.hops and x.prop is not None:
                seen_columns.add(x.prop.column)
            elif isinstance(item.expr, ast.Path) and item.expr.names in (("id",), ("@iot.id",)):
                seen_columns.add("id")
        for column, descending in entity.default_order:
            if column not in seen_columns:
                keys.append(sql.SQL("{}{}").format(em.col(alias, column), sql.SQL(" DESC" if descending else "")))
        return keys

    def _plan(self, entity: EntityType, options: ast.QueryOptions, b: _Builder, depth: int = 0) -> Plan:
        plan = Plan(entity, list(entity.properties.values()), nav_links=list(entity.relations))
        if options.select is not None and not any(item.path == () for item in options.select):
            plan.properties, plan.nav_links = [], []
            plan.include_id = plan.include_self_link = False
            for item in options.select:
                if len(item.path) != 1:
                    raise QueryError(
                        f"cannot select {'/'.join(item.path)}: select properties of this entity", parameter="$select"
                    )
                name = item.path[0]
                if name in ("id", "@iot.id"):
                    plan.include_id = True
                elif name in ("@iot.selfLink", "selfLink"):
                    plan.include_self_link = True
                elif (prop := entity.property(name)) is not None:
                    if prop not in plan.properties:
                        plan.properties.append(prop)
                elif name in entity.relations:
                    if name not in plan.nav_links:
                        plan.nav_links.append(name)
                else:
                    raise QueryError(f"{entity.name} has no property {name!r}", parameter="$select")
        for expand in options.expand:
            self._add_expand(plan, expand.path, expand.options, b, depth)
        return plan

    def _add_expand(
        self, plan: Plan, path: tuple[str, ...], options: ast.QueryOptions, b: _Builder, depth: int
    ) -> None:
        name, rest = path[0], path[1:]
        relation = plan.entity.relation(name)
        if relation is None:
            raise QueryError(f"{plan.entity.name} has no navigation property {name!r}", parameter="$expand")
        target = em.target_of(relation)
        level_options = options if not rest else ast.QueryOptions()
        existing = plan.expands.get(name)
        if existing is None:
            existing = Expansion(
                relation,
                self._plan(target, level_options, b, depth + 1),
                top=_check_top(level_options.top, self.limits) if relation.many else 1,
                skip=level_options.skip or 0,
                count=bool(level_options.count),
                filter=level_options.filter,
                orderby=level_options.orderby,
                raw=dict(level_options.raw),
            )
            plan.expands[name] = existing
        elif not rest and level_options.raw:
            raise QueryError(f"{name} is expanded twice with options", parameter="$expand")
        if rest:
            self._add_expand(existing.plan, rest, options, b, depth + 1)

    def _object(self, b: _Builder, plan: Plan, alias: str, laterals: list[sql.Composable]) -> sql.Composable:
        """``json_build_object`` of one row, adding a LATERAL join for each expansion."""
        items: list[sql.Composable] = [sql.SQL("'@iot.id', {}").format(em.col(alias, "id"))]
        for prop in plan.properties:
            items.append(sql.SQL("{}, {}").format(sql.Literal(prop.name), render_property(plan.entity, prop, alias)))
        for name, expansion in plan.expands.items():
            x = b.new_alias("x")
            laterals.append(self._expansion(b, expansion, alias, x))
            items.append(sql.SQL("{}, {}.v").format(sql.Literal(name), sql.Identifier(x)))
            if expansion.count:
                items.append(sql.SQL("{}, {}.n").format(sql.Literal(name + "@iot.count"), sql.Identifier(x)))
        # json_build_object takes at most 100 arguments; nest when wider
        if len(items) > 50:
            raise QueryError("too many properties and expansions on one level", parameter="$expand")
        return sql.SQL("json_build_object({})").format(sql.SQL(", ").join(items))

    def _expansion(self, b: _Builder, expansion: Expansion, parent_alias: str, x: str) -> sql.Composable:
        relation = expansion.relation
        target = em.target_of(relation)
        a = b.new_alias("a")
        link = em.relation_condition(relation, parent_alias, a)
        filt = expansion.filter
        where = self._where(b, target, a, link, filt)
        if not relation.many:
            inner: list[sql.Composable] = []
            obj = self._object(b, expansion.plan, a, inner)
            return sql.SQL("LEFT JOIN LATERAL (SELECT {} AS v FROM {} {} {} WHERE {} LIMIT 1) {} ON true").format(
                obj, sql.Identifier(target.table), sql.Identifier(a), sql.SQL(" ").join(inner), where, sql.Identifier(x)
            )
        order = self._order(b, target, a, expansion.orderby)
        inner = []
        obj = self._object(b, expansion.plan, a, inner)
        page = sql.SQL("SELECT {a}.* FROM {t} {a} WHERE {w} ORDER BY {o} LIMIT {lim} OFFSET {off}").format(
            a=sql.Identifier(a),
            t=sql.Identifier(target.table),
            w=where,
            o=sql.SQL(", ").join(order),
            lim=b.params.add(expansion.top + 1, "bigint"),
            off=b.params.add(expansion.skip, "bigint"),
        )
        count: sql.Composable = sql.SQL("")
        if expansion.count:
            c = b.new_alias("c")
            cwhere = self._where(b, target, c, em.relation_condition(relation, parent_alias, c), filt)
            count = sql.SQL(", (SELECT count(*) FROM {} {} WHERE {}) AS n").format(
                sql.Identifier(target.table), sql.Identifier(c), cwhere
            )
        return sql.SQL(
            "LEFT JOIN LATERAL (SELECT coalesce(json_agg({obj} ORDER BY {o}), '[]'::json) AS v{count}"
            " FROM ({page}) {a} {inner}) {x} ON true"
        ).format(
            obj=obj,
            o=sql.SQL(", ").join(order),
            count=count,
            page=page,
            a=sql.Identifier(a),
            inner=sql.SQL(" ").join(inner),
            x=sql.Identifier(x),
        )

    def _page_statement(
        self,
        b: _Builder,
        *,
        plan: Plan,
        entity: EntityType,
        where: sql.Composable,
        order: list[sql.Composable],
        limit: int,
        skip: int,
    ) -> sql.Composed:
        laterals: list[sql.Composable] = []
        obj = self._object(b, plan, "a0", laterals)
        order_sql = sql.SQL(", ").join(order)
        page = sql.SQL("SELECT a0.* FROM {t} a0 WHERE {w} ORDER BY {o} LIMIT {lim} OFFSET {off}").format(
            t=sql.Identifier(entity.table),
            w=where,
            o=order_sql,
            lim=b.params.add(limit, "bigint"),
            off=b.params.add(skip, "bigint"),
        )
        return sql.SQL("SELECT {obj} AS e FROM ({page}) a0 {laterals} ORDER BY {o}").format(
            obj=obj, page=page, laterals=sql.SQL(" ").join(laterals), o=order_sql
        )


__all__ = [
    "Expansion",
    "Limits",
    "NotImplementedQuery",
    "PathNotFound",
    "PathStep",
    "Plan",
    "Query",
    "Scope",
    "ServerFeatures",
    "Translator",
    "render_property",
    "scope_of",
]
