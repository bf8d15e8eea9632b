"""Translate SensorThings requests into SQL: a pure function of syntax tree, entity metadata and server features.

Output is ``psycopg.sql`` with named placeholders and a parameter dict; no value is ever
written into SQL text, and identifiers come only from :mod:`api.sta.entities`.

Shapes of the SQL (``a0`` is the requested entity set, ``x1``... are expansions):

* a page: ``SELECT concat(...) FROM (SELECT a0.* FROM t a0 WHERE scope AND filter
  ORDER BY ... LIMIT top+1 OFFSET skip) a0 LEFT JOIN LATERAL (...) x1 ON true ORDER BY ...``
  (``concat`` writes each entity's JSON text):
  the page is cut first, then each expansion runs once per row of the page, as a
  ``LATERAL`` subquery with its own ``ORDER BY ... LIMIT`` (never ``DISTINCT ON``);
* a navigation path (``Things(1)/Datastreams(2)/Observations``) becomes nested
  ``IN (SELECT id ...)`` sets ending in an indexable ``a0.datastream_id IN (...)``;
* a filter path through navigation properties (``Datastream/ObservedProperty/name``)
  becomes ``EXISTS (SELECT 1 FROM datastreams b1, observed_properties b2 WHERE ...)``
  around the predicate that uses it ("any" semantics for to-many relations).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from psycopg import sql

from api.sta import entities as em
from api.sta import links
from api.sta.entities import EntityType, Property, Relation
from api.sta.expressions import (
    ExprBuilder,
    ExprContext,
    Limits,
    NotImplementedQuery,
    Params,
    ServerFeatures,
)
from api.sta.odata import ast
from api.sta.odata.parser import QueryError

# --------------------------------------------------------------------------------------
# Output plans: what each level of the response holds (properties, links, expansions).


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
    """One statement and its parameters; each row's column ``e`` is one entity's finished JSON text."""

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
    pinned: frozenset[str] = frozenset()  # columns with one value on every addressed row


class PathNotFound(LookupError):
    """A resource path naming something the model does not have (HTTP 404)."""


def scope_of(steps: Sequence[PathStep], params: Params) -> Scope:
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
    pinned: frozenset[str] = frozenset()
    previous_id = steps[0].id is not None
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
        pinned = frozenset({column}) if relation.join is em.Join.FK_THERE and previous_id else frozenset()
        entity = em.target_of(relation)
        condition = sql.SQL("a0.{} IN ({})").format(sql.Identifier(column), source)
        single = step.id is not None or not relation.many
        if step.id is not None:
            id_param = params.add(step.id, "bigint")
            condition = sql.SQL("{} AND a0.id = {}").format(condition, id_param)
        ids = sql.SQL("SELECT a0.id FROM {} a0 WHERE {}").format(sql.Identifier(entity.table), condition)
        previous_id = step.id is not None
    return Scope(entity, condition, single, pinned)


# --------------------------------------------------------------------------------------
# Statements


def _check_top(value: int | None, limits: Limits) -> int:
    if value is None:
        return limits.default_top
    return min(value, limits.max_top)


def _weight(plan: Plan) -> int:
    """Entities one row of ``plan`` builds at most: itself and its expansions, nested."""
    return 1 + sum((e.top if e.relation.many else 1) * _weight(e.plan) for e in plan.expands.values())


def _least_weight(plan: Plan) -> int:
    """:func:`_weight` with every expanded collection cut to one entity (or none, for $top=0)."""
    return 1 + sum((min(e.top, 1) if e.relation.many else 1) * _least_weight(e.plan) for e in plan.expands.values())


def fit_budget(plan: Plan, top: int, limits: Limits, *, single: bool = False) -> int:
    """Cut pages until ``top`` rows of ``plan`` build at most ``limits.max_entities`` entities.

    Each level's ``$top`` is capped on its own, so ``$top=10000&$expand=Observations($top=10000)``
    would build 10^8 entities. Server-driven paging lets any page be shorter than its ``$top``
    as long as it has a next link, so the outermost pages are cut first (the response's own page,
    then expanded collections, level by level, in request order), each to the largest size that
    fits: a client that follows the next links gets everything. Mutates the plan's expansions and
    returns the page size. When one entity's expansions exceed the budget even with one entity
    per expanded collection, nothing can be cut: that is a 400.
    """
    budget = limits.max_entities
    if (1 if single else min(top, 1)) * _least_weight(plan) > budget:
        raise QueryError(
            f"this $expand builds at least {_least_weight(plan)} entities for each {plan.entity.name}, "
            f"and one response holds at most {budget}: expand fewer collections or levels",
            parameter="$expand",
        )
    if not single:
        weight = _weight(plan)
        if top * weight <= budget:
            return top
        if weight <= budget:
            return budget // weight
        top = 1
    # one entity alone is over the budget: cut its expanded collections, outermost level first
    frontier: list[tuple[int, Plan]] = [(1, plan)]
    while frontier:  # each level once; ends within the expansion depth
        following: list[tuple[int, Plan]] = []
        for times, level in frontier:
            for e in level.expands.values():
                if e.relation.many and e.top > 1 and _weight(plan) > budget:
                    each = times * _weight(e.plan)
                    room = budget - (_weight(plan) - e.top * each)
                    e.top = max(1, min(e.top, room // each))
                following.append((times * (e.top if e.relation.many else 1), e.plan))
        frontier = following
    return top


class _JsonText:
    """Pieces of one JSON text: constants (adjacent ones merged) and SQL expressions of type text.

    Constants holding a value (the base URL of links, a request's options in a nextLink) are
    bound as parameters, and so is any run of constants they are merged into; the others,
    keys and punctuation from the entity model, are literals.
    """

    def __init__(self, b: ExprBuilder) -> None:
        self.b = b
        self.parts: list[tuple[str, bool] | sql.Composable] = []

    def const(self, text: str, *, bound: bool = False) -> None:
        if self.parts and isinstance(last := self.parts[-1], tuple):
            self.parts[-1] = (last[0] + text, last[1] or bound)
        else:
            self.parts.append((text, bound))

    def value(self, expr: sql.Composable) -> None:
        self.parts.append(expr)

    def compose(self) -> sql.Composable:
        args: list[sql.Composable] = []
        for part in self.parts:
            if isinstance(part, tuple):
                args.append(self.b.params.add(part[0], "text") if part[1] else sql.Literal(part[0]))
            else:
                args.append(part)
        while len(args) > MAX_FUNCTION_ARGS:  # concat takes at most 100 arguments: nest
            args = [
                sql.SQL("concat({})").format(sql.SQL(", ").join(args[i : i + MAX_FUNCTION_ARGS]))
                for i in range(0, len(args), MAX_FUNCTION_ARGS)
            ]
        return sql.SQL("concat({})").format(sql.SQL(", ").join(args))


MAX_FUNCTION_ARGS = 100  # PostgreSQL's FUNC_MAX_ARGS


class Translator:
    """Turns (resource path, query options) into :class:`Query` objects for one server.

    ``base_url`` (absolute, ending in the version, e.g. ``https://city.example/v1.1``) is
    bound as a parameter: the statement builds every self, navigation and next link itself,
    so each row arrives as the finished JSON text of one entity.
    """

    def __init__(self, features: ServerFeatures, limits: Limits | None = None) -> None:
        self.features = features
        self.limits = limits or Limits()

    def _builder(self) -> ExprBuilder:
        return ExprBuilder(self.features, self.limits)

    # ---- public entry points ------------------------------------------------------------
    def collection(self, steps: Sequence[PathStep], options: ast.QueryOptions, base_url: str) -> Query:
        """A page of a collection: ``top + 1`` rows are asked for, the extra one means "more"."""
        b = self._builder()
        scope = scope_of(steps, b.params)
        plan = self._plan(scope.entity, options, b)
        top = fit_budget(plan, _check_top(options.top, self.limits), self.limits)
        skip = options.skip or 0
        where = self._where(b, scope.entity, "a0", scope.condition, options.filter)
        order = self._order(b, scope.entity, "a0", options.orderby, scope.pinned)
        statement = self._page_statement(
            b, plan=plan, entity=scope.entity, where=where, order=order, limit=top + 1, skip=skip, base_url=base_url
        )
        count = None
        if options.count:
            count = sql.SQL("SELECT count(*) FROM {} a0 WHERE {}").format(sql.Identifier(scope.entity.table), where)
        return Query(statement, b.params.values, plan, top, skip, count)

    def refs(self, steps: Sequence[PathStep], options: ast.QueryOptions, base_url: str) -> Query:
        """``$ref``: the same rows as :meth:`collection`, each only its ``@iot.selfLink``."""
        bare = ast.QueryOptions(
            filter=options.filter, orderby=options.orderby, top=options.top, skip=options.skip, count=options.count,
            select=(ast.SelectItem(("@iot.selfLink",)),), raw=options.raw,
        )  # fmt: skip
        if options.expand or options.select is not None:
            raise QueryError("$ref takes no $select or $expand", parameter="$ref")
        return self.collection(steps, bare, base_url)

    def entity(self, steps: Sequence[PathStep], options: ast.QueryOptions, base_url: str) -> Query:
        b = self._builder()
        scope = scope_of(steps, b.params)
        plan = self._plan(scope.entity, options, b)
        fit_budget(plan, 1, self.limits, single=True)
        where = self._where(b, scope.entity, "a0", scope.condition, None)
        order = self._order(b, scope.entity, "a0", (), scope.pinned)
        statement = self._page_statement(
            b, plan=plan, entity=scope.entity, where=where, order=order, limit=2, skip=0, base_url=base_url
        )
        return Query(statement, b.params.values, plan, 1, 0)

    def property(self, steps: Sequence[PathStep], name: str) -> Query:
        b = self._builder()
        scope = scope_of(steps, b.params)
        prop = scope.entity.property(name)
        if prop is None:
            raise PathNotFound(f"{scope.entity.name} has no property {name!r}")
        plan = Plan(scope.entity, [prop], include_id=False, include_self_link=False)
        where = self._where(b, scope.entity, "a0", scope.condition, None)
        order = self._order(b, scope.entity, "a0", (), scope.pinned)
        statement = self._page_statement(
            b, plan=plan, entity=scope.entity, where=where, order=order, limit=2, skip=0, base_url=""
        )
        return Query(statement, b.params.values, plan, 1, 0)

    def exists(self, steps: Sequence[PathStep]) -> Query:
        """Whether the entity a path addresses exists (for 404s on empty collections)."""
        b = self._builder()
        scope = scope_of(steps, b.params)
        where = self._where(b, scope.entity, "a0", scope.condition, None)
        statement = sql.SQL("SELECT 1 FROM {} a0 WHERE {} LIMIT 1").format(sql.Identifier(scope.entity.table), where)
        return Query(statement, b.params.values, Plan(scope.entity, []), 1, 0)

    def filter_sql(self, entity: EntityType, expr: ast.Expr) -> tuple[sql.Composable, dict[str, Any]]:
        """Only the condition of a ``$filter`` on alias ``a0`` (table tests; later extensions reuse it)."""
        b = self._builder()
        return self._boolean_filter(b, entity, "a0", expr), b.params.values

    def order_sql(self, entity: EntityType, items: Sequence[ast.OrderItem]) -> tuple[sql.Composable, dict[str, Any]]:
        b = self._builder()
        return sql.SQL(", ").join(self._order(b, entity, "a0", items, frozenset())), b.params.values

    # ---- pieces ---------------------------------------------------------------------------
    def _boolean_filter(self, b: ExprBuilder, entity: EntityType, alias: str, expr: ast.Expr) -> sql.Composable:
        b.parameter = "$filter"
        try:
            return b.boolean(expr, entity, alias)
        except QueryError as exc:
            exc.parameter = exc.parameter or "$filter"
            raise

    def _where(
        self, b: ExprBuilder, entity: EntityType, alias: str, condition: sql.Composable | None, expr: ast.Expr | None
    ) -> sql.Composable:
        parts: list[sql.Composable] = []
        if condition is not None:
            parts.append(condition)
        if expr is not None:
            parts.append(self._boolean_filter(b, entity, alias, expr))
        return sql.SQL(" AND ").join(parts) if parts else sql.SQL("TRUE")

    def _order(
        self,
        b: ExprBuilder,
        entity: EntityType,
        alias: str,
        items: Sequence[ast.OrderItem],
        pinned: frozenset[str],
    ) -> list[sql.Composable]:
        """Sort keys: the requested ones, then the entity's default order until the order is total.

        ``pinned`` columns have one value for all rows (e.g. ``datastream_id`` under
        ``Datastreams(1)/Observations``): they count towards a unique key. Observations have
        no unique key but their id (several may share a Datastream and phenomenonTime), so
        their time order ends with ``id``; the (datastream_id, phenomenon_time, …) index still
        gives the time order, and ties are sorted on top of it, in the last requested direction.
        """
        keys: list[sql.Composable] = []
        seen: set[str] = set(pinned)

        def total() -> bool:
            return any(set(key) <= seen for key in entity.unique_keys)

        for item in items:
            ctx = ExprContext(b)
            try:
                x = b.value(item.expr, entity, alias, ctx)
            except QueryError as exc:
                exc.parameter = "$orderby"
                raise
            if any(h.relation.many for h in ctx.hops):
                raise QueryError("cannot order by a property of a to-many navigation", parameter="$orderby")
            direction = sql.SQL(" DESC" if item.descending else "")
            if x.type == "geoliteral":
                raise QueryError("cannot order by a literal geometry", parameter="$orderby", column=x.column)
            # JSON values and geometries order by their jsonb (PostgreSQL's total order on jsonb)
            if x.type == "result":
                for column in ("result_number", "result_boolean", "result_text"):
                    keys.append(sql.SQL("{}{}").format(em.col(x.alias, column), direction))
                continue
            # time objects order by their start: what the (datastream_id, phenomenon_time, …) index serves
            keys.append(sql.SQL("{}{}").format(ctx.wrap_scalar(x.expr), direction))
            if isinstance(item.expr, ast.Path) and not ctx.hops:
                if x.prop is not None and not em.is_span(entity, x.prop):
                    seen.add(x.prop.column)
                elif item.expr.names in (("id",), ("@iot.id",)):
                    seen.add("id")
        # Ties follow the last requested direction: `phenomenonTime desc` puts the newest of two
        # Observations at one time (a revised reading) first, as "latest" readers expect.
        reverse = bool(items) and items[-1].descending
        for column, descending in entity.default_order:
            if total():
                break
            if column not in seen:
                desc = descending != reverse
                keys.append(sql.SQL("{}{}").format(em.col(alias, column), sql.SQL(" DESC" if desc else "")))
                seen.add(column)
        return keys

    def _plan(self, entity: EntityType, options: ast.QueryOptions, b: ExprBuilder, depth: int = 0) -> Plan:
        # An expanded entity (depth > 0) is shown inline without navigation links, as in 18-088's
        # $expand example; a $select naming navigation properties brings theirs.
        plan = Plan(entity, list(entity.properties.values()), nav_links=list(entity.relations) if depth == 0 else [])
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
            order = list(entity.properties)
            plan.properties.sort(key=lambda p: order.index(p.name))
        for expand in options.expand:
            self._add_expand(plan, expand.path, expand.options, b, depth)
        return plan

    def _add_expand(
        self, plan: Plan, path: tuple[str, ...], options: ast.QueryOptions, b: ExprBuilder, depth: int
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

    def _object(
        self, b: ExprBuilder, plan: Plan, alias: str, laterals: list[sql.Composable], base_url: str
    ) -> sql.Composable:
        """The finished JSON text of one row (links included); adds a LATERAL join per expansion.

        The text is the one ``json_build_object`` writes (``{"key" : value, ...}``), put together
        with one ``concat``: constant pieces (keys, the base URL of links) are escaped here once,
        values are JSON text already (:func:`em.render_property`), so the database neither looks
        up types per value nor parses or re-escapes anything.
        """
        a = sql.Identifier(alias)
        text = _JsonText(b)
        self_link = f"{base_url}/{plan.entity.set_name}("
        first = True

        def key(name: str) -> None:
            nonlocal first
            text.const(("{" if first else ", ") + '"' + em.json_string_body(name) + '" : ')
            first = False

        def link(suffix: str) -> None:  # "<base>/<Set>(<id>)<suffix>"
            text.const('"' + em.json_string_body(self_link), bound=True)
            text.value(sql.SQL("{}.id").format(a))
            text.const(em.json_string_body(")" + suffix) + '"')

        if plan.include_id:
            key("@iot.id")
            text.value(sql.SQL("{}.id").format(a))
        if plan.include_self_link:
            key("@iot.selfLink")
            link("")
        for prop in plan.properties:
            key(prop.name)
            text.value(em.render_property(plan.entity, prop, alias))
        for nav in plan.nav_links:
            key(f"{nav}@iot.navigationLink")
            link(f"/{nav}")
        paged: list[tuple[str, Expansion, str]] = []
        for name, expansion in plan.expands.items():
            x = b.new_alias("x")
            laterals.append(self._expansion(b, expansion, alias, x, base_url))
            if expansion.count:
                key(name + "@iot.count")
                text.value(sql.SQL("{}.n").format(sql.Identifier(x)))
            key(name)
            if expansion.relation.many:
                text.value(sql.SQL("{}.v").format(sql.Identifier(x)))
            else:
                text.value(sql.SQL("coalesce({}.v, 'null')").format(sql.Identifier(x)))
            if expansion.relation.many and expansion.top > 0:
                paged.append((name, expansion, x))
        if first:
            text.const("{")
        # a truncated expanded collection gets "<Nav>@iot.nextLink" (and only then: never a null
        # link) after the other members; concat leaves out the NULL of a collection with no more
        for name, expansion, x in paged:
            query = links.page_query(expansion.raw, expansion.top, expansion.skip + expansion.top)
            nxt = _JsonText(b)
            nxt.const(", " + orjson.dumps(f"{name}@iot.nextLink").decode() + ": ")
            nxt.const('"' + em.json_string_body(self_link), bound=True)
            nxt.value(sql.SQL("{}.id").format(a))
            nxt.const(em.json_string_body(f")/{name}?{query}") + '"', bound=True)
            text.value(sql.SQL("CASE WHEN {}.more THEN {} END").format(sql.Identifier(x), nxt.compose()))
        text.const("}")
        return text.compose()

    def _expansion(
        self, b: ExprBuilder, expansion: Expansion, parent_alias: str, x: str, base_url: str
    ) -> sql.Composable:
        relation = expansion.relation
        target = em.target_of(relation)
        a = b.new_alias("a")
        link = em.relation_condition(relation, parent_alias, a)
        where = self._where(b, target, a, link, expansion.filter)
        inner: list[sql.Composable] = []
        if not relation.many:
            obj = self._object(b, expansion.plan, a, inner, base_url)
            return sql.SQL("LEFT JOIN LATERAL (SELECT {} AS v FROM {} {} {} WHERE {} LIMIT 1) {} ON true").format(
                obj, sql.Identifier(target.table), sql.Identifier(a), sql.SQL(" ").join(inner), where, sql.Identifier(x)
            )
        pinned = frozenset({relation.column}) if relation.join is em.Join.FK_THERE else frozenset()
        order = sql.SQL(", ").join(self._order(b, target, a, expansion.orderby, pinned))
        obj = self._object(b, expansion.plan, a, inner, base_url)
        top = b.params.add(expansion.top, "bigint")
        page = sql.SQL(
            "SELECT {a}.*, row_number() OVER (ORDER BY {o}) AS sta_rn FROM"
            " (SELECT {a}.* FROM {t} {a} WHERE {w} ORDER BY {o} LIMIT {top} + 1 OFFSET {off}) {a}"
        ).format(
            a=sql.Identifier(a), t=sql.Identifier(target.table), w=where, o=order, top=top,
            off=b.params.add(expansion.skip, "bigint"),
        )  # fmt: skip
        count: sql.Composable = sql.SQL("")
        if expansion.count:
            c = b.new_alias("c")
            cwhere = self._where(b, target, c, em.relation_condition(relation, parent_alias, c), expansion.filter)
            count = sql.SQL(", (SELECT count(*) FROM {} {} WHERE {}) AS n").format(
                sql.Identifier(target.table), sql.Identifier(c), cwhere
            )
        # the array as json_agg writes it: "[" elements joined by ", " "]"
        return sql.SQL(
            "LEFT JOIN LATERAL (SELECT '[' || coalesce(string_agg({obj}, ', ' ORDER BY {o})"
            " FILTER (WHERE {a}.sta_rn <= {top}), '') || ']' AS v, count(*) > {top} AS more{count}"
            " FROM ({page}) {a} {inner}) {x} ON true"
        ).format(
            obj=obj, o=order, a=sql.Identifier(a), top=top, count=count, page=page,
            inner=sql.SQL(" ").join(inner), x=sql.Identifier(x),
        )  # fmt: skip

    def _page_statement(
        self,
        b: ExprBuilder,
        *,
        plan: Plan,
        entity: EntityType,
        where: sql.Composable,
        order: list[sql.Composable],
        limit: int,
        skip: int,
        base_url: str,
    ) -> sql.Composed:
        laterals: list[sql.Composable] = []
        obj = self._object(b, plan, "a0", laterals, base_url)
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
    "fit_budget",
    "scope_of",
]
