"""Parse SensorThings query options (OData 4 syntax) into :mod:`api.sta.odata.ast` trees.

The grammar is ``odata.lark`` (LALR, so parsing is linear and errors name a column).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, time
from functools import cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from api.sta.odata import ast

SYSTEM_OPTIONS = ("$filter", "$orderby", "$select", "$expand", "$top", "$skip", "$count", "$resultFormat")
MAX_TEXT = 20_000  # longer query options are refused before parsing
MAX_DEPTH = 8  # $expand nesting


class QueryError(ValueError):
    """A query option that cannot be served: says which, what is wrong and where (1-based column)."""

    def __init__(self, message: str, *, parameter: str | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.parameter = parameter
        self.column = column

    def __str__(self) -> str:
        where = ""
        if self.parameter:
            where = f"{self.parameter}"
            if self.column is not None:
                where += f" at column {self.column}"
            where += ": "
        return where + self.message


@cache
def _parser() -> Lark:
    grammar = resources.files("api.sta.odata").joinpath("odata.lark").read_text(encoding="utf-8")
    return Lark(
        grammar,
        parser="lalr",
        start=["filter", "orderby", "select", "expand"],
        propagate_positions=True,
        maybe_placeholders=True,
    )


_WKT = r"""
start: SRID? shape
SRID: /SRID=\d+;/i
?shape: point | linestring | polygon | multipoint | multilinestring | multipolygon
point: "POINT"i _Z? "(" coord ")"
linestring: "LINESTRING"i _Z? coords
polygon: "POLYGON"i _Z? rings
multipoint: "MULTIPOINT"i _Z? "(" (mp_item ("," mp_item)*) ")"
mp_item: coord | "(" coord ")"
multilinestring: "MULTILINESTRING"i _Z? "(" coords ("," coords)* ")"
multipolygon: "MULTIPOLYGON"i _Z? "(" rings ("," rings)* ")"
rings: "(" coords ("," coords)* ")"
coords: "(" coord ("," coord)* ")"
coord: NUM NUM NUM?
_Z: /Z(?=\s*\()/i
NUM: /[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/
%import common.WS
%ignore WS
"""


@cache
def _wkt_parser() -> Lark:
    return Lark(_WKT, parser="lalr")


class _WktTransformer(Transformer[Token, Any]):
    def coord(self, items: list[Token]) -> tuple[float, ...]:
        return tuple(float(t) for t in items)

    def coords(self, items: list[Any]) -> tuple[Any, ...]:
        return tuple(items)

    def rings(self, items: list[Any]) -> tuple[Any, ...]:
        for ring in items:
            if len(ring) < 4 or ring[0][:2] != ring[-1][:2]:
                raise ValueError("a polygon ring needs at least 4 positions and must end where it starts")
        return tuple(items)

    def mp_item(self, items: list[Any]) -> Any:
        return items[0]

    def point(self, items: list[Any]) -> ast.Shape:
        return ast.Shape("Point", items[0])

    def linestring(self, items: list[Any]) -> ast.Shape:
        if len(items[0]) < 2:
            raise ValueError("a line string needs at least 2 positions")
        return ast.Shape("LineString", items[0])

    def polygon(self, items: list[Any]) -> ast.Shape:
        return ast.Shape("Polygon", items[0])

    def multipoint(self, items: list[Any]) -> ast.Shape:
        return ast.Shape("MultiPoint", tuple(items))

    def multilinestring(self, items: list[Any]) -> ast.Shape:
        return ast.Shape("MultiLineString", tuple(items))

    def multipolygon(self, items: list[Any]) -> ast.Shape:
        return ast.Shape("MultiPolygon", tuple(items))

    def start(self, items: list[Any]) -> ast.Shape:
        srid = items[0]
        if srid is not None and str(srid).upper() != "SRID=4326;":
            raise ValueError("only SRID 4326 (WGS 84 longitude/latitude) is served")
        return items[-1]  # type: ignore[no-any-return]


def parse_wkt(text: str) -> ast.Shape:
    """Parse Well-Known Text; ValueError with the column on anything malformed."""
    try:
        tree = _wkt_parser().parse(text)
        if len(tree.children) == 1:
            tree.children.insert(0, None)  # type: ignore[arg-type]
        return _WktTransformer().transform(tree)  # type: ignore[no-any-return]
    except VisitError as exc:
        raise ValueError(str(exc.orig_exc)) from exc
    except UnexpectedInput as exc:
        raise ValueError(f"malformed WKT at column {exc.column}") from exc


_DURATION = re.compile(r"^-?P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")


def _column(meta_or_token: Any) -> int:
    column = getattr(meta_or_token, "column", None)
    return int(column) if column is not None else 1


def datetime_literal(text: str) -> datetime:
    """The value of a ``DATETIME`` token (a date-time with zone)."""
    try:
        return datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError as exc:
        raise QueryError(f"invalid date-time {text}") from exc


@v_args(meta=True)
class _Builder(Transformer[Token, Any]):
    def __init__(self, text: str, parameter: str, depth: int = 0) -> None:
        super().__init__()
        self.text = text
        self.parameter = parameter
        self.depth = depth

    # --- literals -----------------------------------------------------------
    def string(self, meta: Any, items: list[Token]) -> ast.Literal:
        return ast.Literal(items[0][1:-1].replace("''", "'"), "string", _column(items[0]))

    def number(self, meta: Any, items: list[Token]) -> ast.Literal:
        token = items[0]
        text = str(token).rstrip("dDfFmMlL")
        if re.fullmatch(r"\d+", text) and token[-1:] not in ("d", "D", "f", "F", "m", "M"):
            value = int(text)
            if value > 2**63 - 1:
                raise QueryError("integer literal out of range", parameter=self.parameter, column=_column(token))
            return ast.Literal(value, "int", _column(token))
        return ast.Literal(float(text), "float", _column(token))

    def datetime(self, meta: Any, items: list[Token]) -> ast.Literal:
        token = items[0]
        try:
            value = datetime_literal(str(token))
        except QueryError as exc:
            exc.parameter, exc.column = self.parameter, _column(token)
            raise
        return ast.Literal(value, "datetime", _column(token))

    def date(self, meta: Any, items: list[Token]) -> ast.Literal:
        token = items[0]
        try:
            value = date.fromisoformat(str(token))
        except ValueError as exc:
            raise QueryError(f"invalid date {token!s}", parameter=self.parameter, column=_column(token)) from exc
        return ast.Literal(value, "date", _column(token))

    def timeofday(self, meta: Any, items: list[Token]) -> ast.Literal:
        token = items[0]
        try:
            value = time.fromisoformat(str(token))
        except ValueError as exc:
            raise QueryError(f"invalid time {token!s}", parameter=self.parameter, column=_column(token)) from exc
        return ast.Literal(value, "time", _column(token))

    def duration(self, meta: Any, items: list[Token]) -> ast.Literal:
        token = items[0]
        body = str(token)[str(token).index("'") + 1 : -1]
        if not _DURATION.match(body.upper()):
            raise QueryError(f"invalid ISO 8601 duration {body!r}", parameter=self.parameter, column=_column(token))
        return ast.Literal(body.upper(), "duration", _column(token))

    def geo(self, meta: Any, items: list[Token]) -> ast.GeoLiteral:
        token = items[0]
        start = str(token).index("'") + 1
        try:
            shape = parse_wkt(str(token)[start:-1])
        except ValueError as exc:
            raise QueryError(
                f"invalid geography literal: {exc}", parameter=self.parameter, column=_column(token)
            ) from exc
        return ast.GeoLiteral(shape, _column(token))

    def true(self, meta: Any, items: list[Token]) -> ast.Literal:
        return ast.Literal(True, "bool", _column(items[0]))

    def false(self, meta: Any, items: list[Token]) -> ast.Literal:
        return ast.Literal(False, "bool", _column(items[0]))

    def null(self, meta: Any, items: list[Token]) -> ast.Literal:
        return ast.Literal(None, "null", _column(items[0]))

    # --- expressions ----------------------------------------------------------
    def segment(self, meta: Any, items: list[Token]) -> ast.Segment:
        return ast.Segment(str(items[0]), tuple(int(i) for i in items[1:]))

    def path(self, meta: Any, items: list[ast.Segment]) -> ast.Path:
        return ast.Path(tuple(items), _column(meta))

    def call(self, meta: Any, items: list[Any]) -> ast.Call:
        name, *args = items
        return ast.Call(str(name).lower(), tuple(a for a in args if a is not None), _column(name))

    def logical(self, meta: Any, items: list[Any]) -> ast.Binary:
        left, op, right = items
        return ast.Binary(str(op).lower(), left, right, _column(op))

    compare = logical
    arith = logical

    def not_(self, meta: Any, items: list[Any]) -> ast.Unary:
        return ast.Unary("not", items[1], _column(items[0]))

    def negate(self, meta: Any, items: list[Any]) -> ast.Expr:
        operand = items[0]
        if isinstance(operand, ast.Literal) and operand.kind in ("int", "float"):
            return ast.Literal(-operand.value, operand.kind, _column(meta))  # type: ignore[operator]
        return ast.Unary("-", operand, _column(meta))

    def filter(self, meta: Any, items: list[Any]) -> ast.Expr:
        return items[0]  # type: ignore[no-any-return]

    # --- $orderby / $select / $expand ----------------------------------------------
    def order_item(self, meta: Any, items: list[Any]) -> ast.OrderItem:
        expr, direction = items
        return ast.OrderItem(expr, direction is not None and str(direction).lower() == "desc")

    def orderby(self, meta: Any, items: list[ast.OrderItem]) -> tuple[ast.OrderItem, ...]:
        return tuple(items)

    def select_item(self, meta: Any, items: list[Token]) -> ast.SelectItem:
        return ast.SelectItem(tuple(str(t) for t in items))

    def select_all(self, meta: Any, items: list[Token]) -> ast.SelectItem:
        return ast.SelectItem(())

    def select(self, meta: Any, items: list[ast.SelectItem]) -> tuple[ast.SelectItem, ...]:
        return tuple(items)

    def expand_item(self, meta: Any, items: list[Any]) -> ast.ExpandItem:
        names = [str(t) for t in items if isinstance(t, Token)]
        options = [o for o in items if isinstance(o, tuple)]
        values: dict[str, Any] = {}
        raw: dict[str, str] = {}
        for name, value, text in options:
            if name in values:
                raise QueryError(f"{name} given twice in one $expand item", parameter=self.parameter)
            values[name] = value
            raw[name] = text
        query = ast.QueryOptions(
            filter=values.get("$filter"),
            orderby=values.get("$orderby", ()),
            select=values.get("$select"),
            expand=values.get("$expand", ()),
            top=values.get("$top"),
            skip=values.get("$skip"),
            count=values.get("$count"),
            raw=raw,
        )
        return ast.ExpandItem(tuple(names), query)

    def expand(self, meta: Any, items: list[ast.ExpandItem]) -> tuple[ast.ExpandItem, ...]:
        return tuple(items)

    def _opt(self, name: str, meta: Any, value: Any) -> tuple[str, Any, str]:
        text = self.text[meta.start_pos : meta.end_pos]
        return name, value, text.split("=", 1)[1].strip()

    def opt_filter(self, meta: Any, items: list[Any]) -> tuple[str, Any, str]:
        return self._opt("$filter", meta, items[1])

    def opt_orderby(self, meta: Any, items: list[Any]) -> tuple[str, Any, str]:
        return self._opt("$orderby", meta, items[1])

    def opt_select(self, meta: Any, items: list[Any]) -> tuple[str, Any, str]:
        return self._opt("$select", meta, items[1])

    def opt_expand(self, meta: Any, items: list[Any]) -> tuple[str, Any, str]:
        return self._opt("$expand", meta, items[1])

    def opt_top(self, meta: Any, items: list[Any]) -> tuple[str, Any, str]:
        return self._opt("$top", meta, int(items[1]))

    def opt_skip(self, meta: Any, items: list[Any]) -> tuple[str, Any, str]:
        return self._opt("$skip", meta, int(items[1]))

    def opt_count(self, meta: Any, items: list[Any]) -> tuple[str, Any, str]:
        return self._opt("$count", meta, str(items[1]).lower() == "true")


_HUMAN = {
    "RPAR": "')'",
    "LPAR": "'('",
    "COMMA": "','",
    "SLASH": "'/'",
    "CMP": "a comparison (eq ne gt ge lt le)",
    "ADDOP": "add/sub",
    "MULOP": "mul/div/mod",
    "AND": "and",
    "OR": "or",
    "NAME": "a property or function name",
    "STRING": "a string literal",
    "$END": "end of text",
    "SEMICOLON": "';'",
    "EQUAL": "'='",
    "ASC": "asc",
    "DESC": "desc",
    "LSQB": "'['",
    "RSQB": "']'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "INT": "a number",
    "NUMBER": "a number",
}


_NOT_IN_FILTER = {"asc", "desc", "';'"}


def _describe(exc: UnexpectedInput, text: str, start: str) -> str:
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        return f"unexpected character {text[pos : pos + 1]!r}"
    if isinstance(exc, UnexpectedEOF):
        return "unexpected end of text"
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        found = "end of text" if token.type == "$END" else repr(str(token))
        expected = sorted({_HUMAN.get(t, t.lower()) for t in exc.expected if not t.startswith("__")})
        if start == "filter":
            expected = [e for e in expected if e not in _NOT_IN_FILTER]
        hint = f"; expected {', '.join(expected[:8])}" if expected else ""
        return f"unexpected {found}{hint}"
    return "syntax error"


def _parse(text: str, start: str, parameter: str) -> Any:
    if len(text) > MAX_TEXT:
        raise QueryError(f"longer than {MAX_TEXT} characters", parameter=parameter)
    if not text.strip():
        raise QueryError("empty value", parameter=parameter)
    try:
        tree: Tree[Token] = _parser().parse(text, start=start)
    except UnexpectedInput as exc:
        column = exc.column if isinstance(exc.column, int) and exc.column > 0 else len(text) + 1
        if isinstance(exc, UnexpectedToken) and exc.token.type == "$END":
            column = len(text) + 1
        raise QueryError(_describe(exc, text, start), parameter=parameter, column=column) from exc
    try:
        return _Builder(text, parameter).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, QueryError):
            raise exc.orig_exc from exc
        raise QueryError(str(exc.orig_exc), parameter=parameter) from exc


def parse_filter(text: str) -> ast.Expr:
    return _parse(text, "filter", "$filter")  # type: ignore[no-any-return]


def parse_orderby(text: str) -> tuple[ast.OrderItem, ...]:
    return _parse(text, "orderby", "$orderby")  # type: ignore[no-any-return]


def parse_select(text: str) -> tuple[ast.SelectItem, ...]:
    return _parse(text, "select", "$select")  # type: ignore[no-any-return]


def parse_expand(text: str) -> tuple[ast.ExpandItem, ...]:
    items: tuple[ast.ExpandItem, ...] = _parse(text, "expand", "$expand")
    _check_depth(items, 1)
    return items


def _check_depth(items: tuple[ast.ExpandItem, ...], depth: int) -> None:
    for item in items:
        if depth + len(item.path) - 1 > MAX_DEPTH:
            raise QueryError(f"nested deeper than {MAX_DEPTH} levels", parameter="$expand")
        _check_depth(item.options.expand, depth + len(item.path))


def _non_negative(name: str, text: str) -> int:
    if not re.fullmatch(r"\d{1,12}", text.strip()):
        raise QueryError(f"must be a non-negative integer, not {text!r}", parameter=name)
    return int(text)


_CANONICAL = {name.lower(): name for name in SYSTEM_OPTIONS}


def canonical_option(name: str) -> str:
    """A system query option's name as the standard spells it, matched in any case.

    OData 4.01 (URL Conventions, 5) has services take system query option names case-insensitively;
    clients write ``$orderBy`` (the FROST test suite does) and ``$TOP``. Other names come back unchanged.
    """
    return _CANONICAL.get(name.lower(), name) if name.startswith("$") else name


def parse_query_options(params: Iterable[tuple[str, str]]) -> ast.QueryOptions:
    """The system query options of a request (``$``-prefixed, in any case; other parameters are ignored)."""
    seen: dict[str, str] = {}
    for given, value in params:
        if not given.startswith("$"):
            continue
        name = canonical_option(given)
        if name not in SYSTEM_OPTIONS:
            known = ", ".join(SYSTEM_OPTIONS)
            raise QueryError(f"unknown system query option (known: {known})", parameter=name)
        if name in seen:
            raise QueryError("given more than once", parameter=name)
        seen[name] = value
    count: bool | None = None
    if "$count" in seen:
        text = seen["$count"].strip().lower()
        if text not in ("true", "false"):
            raise QueryError(f"must be true or false, not {seen['$count']!r}", parameter="$count")
        count = text == "true"
    return ast.QueryOptions(
        filter=parse_filter(seen["$filter"]) if "$filter" in seen else None,
        orderby=parse_orderby(seen["$orderby"]) if "$orderby" in seen else (),
        select=parse_select(seen["$select"]) if "$select" in seen else None,
        expand=parse_expand(seen["$expand"]) if "$expand" in seen else (),
        top=_non_negative("$top", seen["$top"]) if "$top" in seen else None,
        skip=_non_negative("$skip", seen["$skip"]) if "$skip" in seen else None,
        count=count,
        result_format=seen.get("$resultFormat"),
        raw=dict(seen),
    )
