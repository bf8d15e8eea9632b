"""SensorThings expressions as SQL: property values, ``$filter`` and ``$orderby`` terms (pure).

Every operator and built-in function of OGC 18-088 (9.3.3.5) maps to ``psycopg.sql`` with
bound parameters. Paths through navigation properties become ``EXISTS`` (in predicates) or
scalar subqueries (in sort keys) over hops recorded by an :class:`ExprContext`; geometry
uses PostGIS when the server has it, and point columns with planar formulas when not.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
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
    max_entities: int = 100_000  # one response, expanded entities included


class Params:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any, cast: str | None = None) -> sql.Composable:
        name = f"p{len(self.values)}"
        self.values[name] = value
        placeholder: sql.Composable = sql.Placeholder(name)
        if cast:
            placeholder = sql.SQL("{}::{}").format(placeholder, sql.SQL(cast))
        return placeholder


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
    literal: str | None = None  # the text of a string literal (a quoted time may stand for a time)
    is_id: bool = False
    constant: bool = False  # a literal or now(): never null, so a comparison with it needs no null rule
    offset: int | None = None  # a date-time literal's UTC offset in minutes (stored times are UTC)
    closed_end: bool = False  # time_object: the end is a reading's own time (a Datastream's span), not past it


@dataclass(slots=True)
class _Hop:
    relation: Relation
    source_alias: str
    alias: str


class ExprContext:
    """Translation state of one predicate (or one order key): the navigation hops it needed."""

    def __init__(self, builder: ExprBuilder) -> None:
        self.b = builder
        self.hops: list[_Hop] = []

    def hop(self, relation: Relation, source_alias: str) -> str:
        for h in self.hops:
            if h.source_alias == source_alias and h.relation is relation:
                return h.alias
        alias = self.b.new_alias("b")
        self.hops.append(_Hop(relation, source_alias, alias))
        return alias

    def wrap_exists(self, predicate: sql.Composable, hops: list[_Hop] | None = None) -> sql.Composable:
        hops = self.hops if hops is None else hops
        if not hops:
            return predicate
        tables = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(em.target_of(h.relation).table), sql.Identifier(h.alias))
            for h in hops
        )
        conds = [em.relation_condition(h.relation, h.source_alias, h.alias) for h in hops]
        return sql.SQL("EXISTS (SELECT 1 FROM {} WHERE {} AND ({}))").format(
            tables, sql.SQL(" AND ").join(conds), predicate
        )

    def wrap_null_test(self, predicate: sql.Composable) -> sql.Composable:
        """A null test through navigation, as through outer joins: the related value is null, or the
        path breaks off at some step (``Datastreams/Observations/id eq null``: a Thing without
        Datastreams, or with a Datastream without Observations)."""
        ways = [self.wrap_exists(predicate)]
        for k, hop in enumerate(self.hops):
            if k and hop.source_alias != self.hops[k - 1].alias:
                break  # not one chain: only the whole of it and its first steps are told apart
            ways.append(self.wrap_exists(sql.SQL("NOT {}").format(self.wrap_exists(sql.SQL("TRUE"), [hop])),
                                         self.hops[:k]))  # fmt: skip
        return sql.SQL("({})").format(sql.SQL(" OR ").join(ways))

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


def _is_null_test(node: ast.Expr) -> bool:
    """``x eq null`` (or ``ge``/``le``, which mean ``eq`` with a null), either way round."""
    if not isinstance(node, ast.Binary) or node.op not in ("eq", "ge", "le"):
        return False
    return any(isinstance(side, ast.Literal) and side.kind == "null" for side in (node.left, node.right))


def _err(message: str, column: int, cls: type[QueryError] = QueryError) -> QueryError:
    return cls(message, parameter=None, column=column)


class ExprBuilder:
    """Builds one statement: owns the parameters and the alias counter."""

    def __init__(self, features: ServerFeatures, limits: Limits) -> None:
        self.features = features
        self.limits = limits
        self.params = Params()
        self._aliases = 0
        self.parameter = "$filter"
        # OData's comparisons are two-valued (null eq null, null ne 'a'; gt with a null is false).
        # At the top of a $filter, SQL's NULL and false both drop the row, so plain SQL comparisons
        # serve (and keep their indexes) except ne; under not, and where a comparison is a value,
        # NULL would not mean false: there every comparison is written two-valued.
        self.exact = False

    def new_alias(self, prefix: str) -> str:
        self._aliases += 1
        return f"{prefix}{self._aliases}"

    # ---- literals -------------------------------------------------------------------
    def literal(self, lit: ast.Literal) -> Typed:
        v = lit.value
        if lit.kind == "null":
            return Typed(sql.SQL("NULL"), "null", column=lit.column)
        if lit.kind == "string":
            return Typed(self.params.add(v, "text"), "string", column=lit.column, literal=str(v), constant=True)
        if lit.kind == "int":
            return Typed(self.params.add(v, "bigint"), "int", column=lit.column, constant=True)
        if lit.kind == "float":
            return Typed(self.params.add(v, "double precision"), "number", column=lit.column, constant=True)
        if lit.kind == "bool":
            return Typed(self.params.add(v, "boolean"), "bool", column=lit.column, constant=True)
        if lit.kind == "datetime":
            delta = v.utcoffset() if isinstance(v, datetime) else None
            offset = int(delta.total_seconds() // 60) if delta is not None else 0
            return Typed(self.params.add(v, "timestamptz"), "datetime", column=lit.column, constant=True, offset=offset)
        if lit.kind == "date":
            return Typed(self.params.add(v, "date"), "date", column=lit.column, constant=True)
        if lit.kind == "time":
            return Typed(self.params.add(v, "time"), "time", column=lit.column, constant=True)
        if lit.kind == "duration":
            return Typed(self.params.add(v, "interval"), "duration", column=lit.column, constant=True)
        raise _err(f"unsupported literal {lit.kind}", lit.column)

    # ---- paths ----------------------------------------------------------------------------
    def path(self, p: ast.Path, entity: EntityType, alias: str, ctx: ExprContext) -> Typed:
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
            return Typed(em.col(alias, "id"), "int", column=p.column, is_id=True)
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
                if isinstance(key, int):  # #> for an index: `scalar -> 0` would give the scalar itself
                    expr = sql.SQL("({} #> ARRAY[{}::text])").format(expr, self.params.add(key, "integer"))
                else:
                    expr = sql.SQL("({} -> {})").format(expr, self.params.add(key, "text"))
            return Typed(expr, "json", alias=alias, column=p.column)
        c = em.col(alias, prop.column)
        if em.is_span(entity, prop):
            first, last = em.datastream_span(alias)
            return Typed(first, "time_object", end=last, alias=alias, prop=prop, column=p.column, closed_end=True)
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
            closed = entity is em.DATASTREAM  # resultTime: the span of its Observations' result times
            return Typed(c, "time_object", end=end, alias=alias, prop=prop, column=p.column, closed_end=closed)
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
            if want == "string":  # its text: a number or boolean as its JSON text, as the suites compare it
                n, b, t, j = (em.col(x.alias, c) for c in em.RESULT_COLUMNS)
                # an integer too large for a double keeps its digits in result_json (body.result_columns)
                exact = sql.SQL("CASE WHEN jsonb_typeof({j}) = 'number' THEN {j} #>> '{{}}' END").format(j=j)
                text = sql.SQL("coalesce({}, {}, {}::text, {}::text)").format(t, exact, n, b)
                return Typed(text, want, column=x.column)
            column = {"number": "result_number", "bool": "result_boolean"}.get(want)
            if column is None:
                raise _err(f"result cannot be used as {_HUMAN_TYPE.get(want, want)}", x.column)
            return Typed(em.col(x.alias, column), want, column=x.column)
        if x.type == "json":
            if want == "datetime":
                raise _err("comparing a JSON value with a time is not supported; compare with a string", x.column)
            if want == "string":  # the text of any scalar: '5' is the text of 5, 'true' of true
                expr = sql.SQL(
                    "(CASE WHEN jsonb_typeof({j}) IN ('string', 'number', 'boolean') THEN {j} #>> '{{}}' END)"
                ).format(j=x.expr)
                return Typed(expr, want, column=x.column)
            jtype = {"number": "number", "bool": "boolean"}[want]
            cast = {"number": "double precision", "bool": "boolean"}[want]
            expr = sql.SQL("(CASE WHEN jsonb_typeof({j}) = {t} THEN ({j} #>> '{{}}')::{c} END)").format(
                j=x.expr, t=sql.Literal(jtype), c=sql.SQL(cast)
            )
            return Typed(expr, want, column=x.column)
        if want == "datetime" and x.type == "time_object":
            return Typed(x.expr, "datetime", column=x.column)
        if want == "datetime" and x.type == "date":  # midnight UTC: date -> timestamp ignores the session zone
            return Typed(
                sql.SQL("(({})::timestamp AT TIME ZONE 'UTC')").format(x.expr),
                "datetime",
                column=x.column,
                constant=x.constant,
            )
        if x.type == "null":
            return Typed(sql.SQL("NULL::{}").format(sql.SQL(_SQL_TYPE[want])), want, column=x.column)
        raise _err(f"expected {_HUMAN_TYPE.get(want, want)}, found {_HUMAN_TYPE.get(x.type, x.type)}", x.column)

    # ---- expressions -------------------------------------------------------------------------
    @contextmanager
    def _two_valued(self) -> Iterator[None]:
        saved, self.exact = self.exact, True
        try:
            yield
        finally:
            self.exact = saved

    def value(self, node: ast.Expr, entity: EntityType, alias: str, ctx: ExprContext) -> Typed:
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
            with self._two_valued():
                return Typed(self.boolean(node, entity, alias, ctx), "bool", column=node.column)
        if isinstance(node, ast.Binary):
            if node.op in _ARITH:
                return self.arith(node, entity, alias, ctx)
            with self._two_valued():
                return Typed(self.boolean(node, entity, alias, ctx), "bool", column=node.column)
        return self.call(node, entity, alias, ctx)

    def arith(self, node: ast.Binary, entity: EntityType, alias: str, ctx: ExprContext) -> Typed:
        left = self.value(node.left, entity, alias, ctx)
        right = self.value(node.right, entity, alias, ctx)
        if node.op in ("add", "sub") and left.type == right.type == "duration":
            return Typed(sql.SQL("({} {} {})").format(left.expr, sql.SQL(_ARITH[node.op]), right.expr), "duration",
                         column=node.column)  # fmt: skip
        if node.op in ("add", "sub") and right.type == "duration":
            base = self.as_type(left, "datetime")
            # in UTC wall time: timestamptz +- interval would count days in the session's zone
            return Typed(
                sql.SQL("((({} AT TIME ZONE 'UTC') {} {}) AT TIME ZONE 'UTC')").format(
                    base.expr, sql.SQL(_ARITH[node.op]), right.expr
                ),
                "datetime",
                column=node.column,
                constant=base.constant and right.constant,  # now() sub duration'P1D' is never null
            )
        if node.op == "sub" and {left.type, right.type} <= {"datetime", "time_object", "date"}:
            # OData: DateTimeOffset sub DateTimeOffset and Date sub Date are a Duration
            a, b = self.as_type(left, "datetime"), self.as_type(right, "datetime")
            return Typed(sql.SQL("({} - {})").format(a.expr, b.expr), "duration", column=node.column)
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
        self, node: ast.Expr, entity: EntityType, alias: str, outer: ExprContext | None = None
    ) -> sql.Composable:
        """A boolean expression; each predicate gets its own navigation hops, wrapped in EXISTS."""
        if isinstance(node, ast.Binary) and node.op in ("and", "or"):
            left = self.boolean(node.left, entity, alias, outer)
            right = self.boolean(node.right, entity, alias, outer)
            return sql.SQL("({} {} {})").format(left, sql.SQL(node.op.upper()), right)
        if isinstance(node, ast.Unary) and node.op == "not":
            with self._two_valued():
                return sql.SQL("(NOT {})").format(self.boolean(node.operand, entity, alias, outer))
        ctx = outer or ExprContext(self)
        predicate = self.predicate(node, entity, alias, ctx)
        if outer is not None:
            return predicate
        if ctx.hops and _is_null_test(node):
            return ctx.wrap_null_test(predicate)
        return ctx.wrap_exists(predicate)

    def predicate(self, node: ast.Expr, entity: EntityType, alias: str, ctx: ExprContext) -> sql.Composable:
        if isinstance(node, ast.Binary) and node.op in _CMP:
            return self.compare(node, entity, alias, ctx)
        if isinstance(node, ast.Binary | ast.Unary) and node.op in ("and", "or", "not"):
            return self.boolean(node, entity, alias, ctx)
        x = self.value(node, entity, alias, ctx)
        # a JSON value is a truth value only when it is a boolean: anything else is null (no truth
        # value), so it is left out with and without `not`
        return self.as_type(x, "bool").expr

    def compare(self, node: ast.Binary, entity: EntityType, alias: str, ctx: ExprContext) -> sql.Composable:
        left = self.value(node.left, entity, alias, ctx)
        right = self.value(node.right, entity, alias, ctx)
        op = node.op
        for a, b in ((left, right), (right, left)):
            if b.type == "null":
                # OData: null is equal to itself only; gt and lt with a null are false; ge and le
                # are true when both sides are null (null equals null), so they mean eq here
                if op in ("gt", "lt"):
                    return sql.SQL("FALSE")
                op = "eq" if op in ("ge", "le") else op
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
            compared = self._compare_time(op, left, right)
            return sql.SQL("coalesce({}, false)").format(compared) if self.exact and op != "ne" else compared
        return self._two_valued_compare(op, left, right)

    def _two_valued_compare(self, op: str, left: Typed, right: Typed) -> sql.Composable:
        """``left op right`` as OData means it when either side may be null (see :attr:`exact`)."""
        a, b = left.expr, right.expr
        one_constant = left.constant or right.constant  # then both are never null together
        if op == "ne":
            return sql.SQL("({} IS DISTINCT FROM {})").format(a, b)
        if op == "eq":
            if one_constant and not self.exact:
                return sql.SQL("({} = {})").format(a, b)
            return sql.SQL("({} IS NOT DISTINCT FROM {})").format(a, b)
        plain = sql.SQL("({} {} {})").format(a, sql.SQL(_CMP[op]), b)
        if not self.exact and (op in ("gt", "lt") or one_constant):
            return plain
        both_null = sql.SQL("false") if op in ("gt", "lt") else sql.SQL("({} IS NULL AND {} IS NULL)").format(a, b)
        return sql.SQL("coalesce({}, {})").format(plain, both_null)

    def _unify(self, left: Typed, right: Typed, column: int) -> tuple[Typed, Typed]:
        """Bring both sides of a comparison to one comparable type."""
        types = {left.type, right.type}
        timeish = {"datetime", "time_object", "date"}
        if left.type in timeish or right.type in timeish:
            sides = [left, right]
            for i, (a, b) in enumerate(((left, right), (right, left))):
                if a.type in ("datetime", "time_object") and b.type == "string":
                    sides[1 - i] = self._quoted_time(b)
            left, right = sides
            if left.type == right.type == "date":
                return left, right
            out = []
            for x in (left, right):
                out.append(x if x.type == "time_object" else self.as_type(x, "datetime"))
            return out[0], out[1]
        if types <= {"json"}:
            return left, right
        for i, (a, b) in enumerate(((left, right), (right, left))):
            if a.is_id and b.type == "string" and (b.literal or "").isdigit():  # id eq '7'
                quoted = Typed(self.params.add(int(b.literal or "0"), "bigint"), "int", column=b.column, constant=True)
                return (a, quoted) if i == 0 else (quoted, a)
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

    def _quoted_time(self, x: Typed) -> Typed:
        """A quoted ISO 8601 date-time compared with a time (clients send '2015-03-02T00:00:00.000Z')."""
        text = (x.literal or "").strip()
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            value = None
        if value is None or value.tzinfo is None or "T" not in text.upper():
            raise _err("compare times with a date-time with zone, such as 2024-01-01T00:00:00Z", x.column)
        return Typed(self.params.add(value, "timestamptz"), "datetime", column=x.column, constant=True)

    def _compare_time(self, op: str, left: Typed, right: Typed) -> sql.Composable:
        """Time objects, with intervals half-open (start inclusive, end exclusive; an instant is both):

        * ``a lt b``: a ends no later than b starts, and starts before it (an hour 10:00/11:00 is
          before 11:00); ``a gt b`` is ``b lt a``;
        * ``a le b``: a starts and ends no later than b does; ``a ge b`` is ``b le a``;
        * ``eq``: the same instant, or the same interval.

        With an instant on one side these reduce to plain comparisons of the other side's bounds.
        A Datastream's phenomenonTime and resultTime span the times of its Observations and are read
        as closed: they end with the last one's end, included (a Datastream whose last reading is at
        X is not before X; one whose last reading is the hour 11:00/12:00 is not before 12:00 either).
        """
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
        instant = right.type != "time_object"
        if op == "gt":
            if instant:
                return sql.SQL("({} > {})").format(start, other_start)
            before = sql.SQL("<" if right.closed_end else "<=")
            return sql.SQL("({os} < {s} AND {oe} {b} {s})").format(s=start, os=other_start, oe=other_end, b=before)
        if op == "ge":
            if instant:
                return sql.SQL("({} >= {})").format(start, other_start)
            return sql.SQL("({os} <= {s} AND {oe} <= {e})").format(s=start, e=end, os=other_start, oe=other_end)
        if op == "lt":  # the start bound comes first so the (datastream, time) index serves it
            before = sql.SQL("<" if left.closed_end else "<=")
            return sql.SQL("({s} < {os} AND {e} {b} {os})").format(s=start, e=end, os=other_start, b=before)
        if op == "le":
            return sql.SQL("({s} <= {os} AND {e} <= {oe})").format(s=start, e=end, os=other_start, oe=other_end)
        same = sql.SQL("({} = {} AND {} = {})").format(start, other_start, end, other_end)
        return same if op == "eq" else sql.SQL("(NOT coalesce({}, false))").format(same)

    # ---- functions --------------------------------------------------------------------------
    def call(self, node: ast.Call, entity: EntityType, alias: str, ctx: ExprContext) -> Typed:
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


def _string_fn(
    templates: str | tuple[str, ...], out: str, n: tuple[int, ...], kinds: tuple[str, ...]
) -> Callable[..., Typed]:
    """A function of strings (and numbers); one template per accepted arity, in ``n`` order."""
    variants = (templates,) if isinstance(templates, str) else templates

    def handler(b: ExprBuilder, node: ast.Call, args: list[Typed]) -> Typed:
        _arity(node, args, *n)
        coerced = [b.as_type(a, kinds[min(i, len(kinds) - 1)]).expr for i, a in enumerate(args)]
        variant = variants[n.index(len(args))]
        return Typed(sql.SQL(variant).format(*coerced), out, column=node.column)

    return handler


def _time_part(template: str, out: str) -> Callable[..., Typed]:
    def handler(b: ExprBuilder, node: ast.Call, args: list[Typed]) -> Typed:
        _arity(node, args, 1)
        x = args[0]
        if x.type == "date" and node.name not in ("year", "month", "day", "date"):
            raise _err(f"{node.name}() needs a date-time, not a date", node.column)
        ts = b.as_type(x, "datetime")  # a date becomes midnight UTC, whatever the session's zone
        # the components of a date-time literal are those of its own offset (10:00+01:00 has hour 10)
        zone = b.params.add(timedelta(minutes=ts.offset), "interval") if ts.offset else sql.SQL("'UTC'")
        return Typed(sql.SQL(template).format(ts.expr, zone), out, column=node.column)

    return handler


def _now(b: ExprBuilder, node: ast.Call, args: list[Typed]) -> Typed:
    _arity(node, args, 0)
    return Typed(sql.SQL("now()"), "datetime", column=node.column, constant=True)


_INFINITY = {"-infinity": sql.SQL("'-infinity'::timestamptz"), "infinity": sql.SQL("'infinity'::timestamptz")}


def _minmax(which: str) -> Callable[..., Typed]:
    def handler(b: ExprBuilder, node: ast.Call, args: list[Typed]) -> Typed:
        _arity(node, args, 0, 1)
        if not args:
            return Typed(_INFINITY[which], "datetime", column=node.column, constant=True)
        x = args[0]
        if x.type != "time_object":
            return b.as_type(x, "datetime")
        if which == "-infinity":
            return Typed(x.expr, "datetime", column=node.column)
        end = sql.SQL("coalesce({}, {})").format(x.end, x.expr) if x.end is not None else x.expr
        return Typed(end, "datetime", column=node.column)

    return handler


def _totaloffset(b: ExprBuilder, node: ast.Call, args: list[Typed]) -> Typed:
    _arity(node, args, 1)
    x = b.as_type(args[0], "datetime")
    if x.offset is not None:  # a date-time literal keeps the offset it was written with
        return Typed(b.params.add(x.offset, "bigint"), "int", column=node.column, constant=True)
    # Stored times (and now()) are normalised to UTC, so their offset is 0 (NULL stays NULL).
    return Typed(sql.SQL("(CASE WHEN {} IS NULL THEN NULL ELSE 0 END)").format(x.expr), "int", column=node.column)


_DE9IM = re.compile(r"[TF*012]{9}", re.IGNORECASE)


def _geo_function(b: ExprBuilder, node: ast.Call, args: list[Typed]) -> Typed:
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
        # a DE-9IM pattern literal, checked here: PostGIS reports a malformed one as an internal error
        if pattern.type != "string" or pattern.literal is None or not _DE9IM.fullmatch(pattern.literal):
            raise _err(
                "st_relate() takes a DE-9IM pattern as third argument: 9 of T F * 0 1 2, such as 'T*F**F***'",
                pattern.column,
            )
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


def _geo_without_postgis(b: ExprBuilder, node: ast.Call, args: list[Typed]) -> Typed:
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


def _point_in_polygon(b: ExprBuilder, point: tuple[sql.Composable, sql.Composable], shape: ast.Shape) -> sql.Composable:
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
    def handler(b: ExprBuilder, node: ast.Call, args: list[Typed]) -> Typed:
        _arity(node, args, 1)
        x = b.as_type(args[0], "number")
        return Typed(sql.SQL(template).format(x.expr), x.type, column=node.column)

    return handler


_UTC = "(({0}) AT TIME ZONE {1})"  # {1}: 'UTC', or a literal's own offset
_FUNCTIONS: dict[str, Callable[..., Typed]] = {
    # string
    "substringof": _string_fn("(strpos({1}, {0}) > 0)", "bool", (2,), ("string",)),
    "contains": _string_fn("(strpos({0}, {1}) > 0)", "bool", (2,), ("string",)),
    "endswith": _string_fn("(right({0}, char_length({1})) = {1})", "bool", (2,), ("string",)),
    "startswith": _string_fn("(left({0}, char_length({1})) = {1})", "bool", (2,), ("string",)),
    "length": _string_fn("char_length({0})", "int", (1,), ("string",)),
    "indexof": _string_fn("(strpos({0}, {1}) - 1)", "int", (2,), ("string",)),
    "substring": _string_fn(
        (
            "substr({0}, greatest({1}, 0)::integer + 1)",
            "substr({0}, greatest({1}, 0)::integer + 1, greatest({2}, 0)::integer)",
        ),
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
        "(extract(second FROM " + _UTC + ") - floor(extract(second FROM " + _UTC + ")))::double precision",
        "number",
    ),
    "date": _time_part(_UTC + "::date", "date"),
    "time": _time_part(_UTC + "::time", "time"),
    "totaloffsetminutes": _totaloffset,
    "now": _now,
    "mindatetime": _minmax("-infinity"),
    "maxdatetime": _minmax("infinity"),
    # math
    "round": _round("round(({})::numeric)::double precision"),  # halves away from zero
    "floor": _round("floor({})"),
    "ceiling": _round("ceil({})"),
}
