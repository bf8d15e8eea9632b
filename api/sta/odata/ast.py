"""The syntax tree of SensorThings query options: what the parser yields and the translator reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Literal as TypingLiteral

LiteralKind = TypingLiteral["string", "int", "float", "bool", "null", "datetime", "date", "time", "duration"]


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | int | float | bool | datetime | date | time | None
    kind: LiteralKind
    column: int


@dataclass(frozen=True, slots=True)
class Shape:
    """A parsed WKT geometry: ``kind`` as in GeoJSON, coordinates nested as GeoJSON nests them."""

    kind: str  # Point, LineString, Polygon, MultiPoint, MultiLineString, MultiPolygon
    coordinates: tuple[object, ...]

    def wkt(self) -> str:
        def pt(p: object) -> str:
            return " ".join(repr(float(c)) for c in p)  # type: ignore[attr-defined]

        def seq(items: object, depth: int) -> str:
            if depth == 0:
                return pt(items)
            return "(" + ", ".join(seq(i, depth - 1) for i in items) + ")"  # type: ignore[attr-defined]

        depth = {"Point": 0, "LineString": 1, "MultiPoint": 1, "Polygon": 2, "MultiLineString": 2, "MultiPolygon": 3}
        body = seq(self.coordinates, depth[self.kind])
        return f"{self.kind.upper()}({body})" if self.kind == "Point" else f"{self.kind.upper()}{body}"

    def rings(self) -> list[list[tuple[float, float]]]:
        """Every ring of a Polygon/MultiPolygon as (x, y) lists."""
        polygons = [self.coordinates] if self.kind == "Polygon" else list(self.coordinates)
        out: list[list[tuple[float, float]]] = []
        for polygon in polygons:
            for ring in polygon:  # type: ignore[attr-defined]
                out.append([(float(p[0]), float(p[1])) for p in ring])
        return out


@dataclass(frozen=True, slots=True)
class GeoLiteral:
    shape: Shape
    column: int


@dataclass(frozen=True, slots=True)
class Segment:
    name: str
    indexes: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Path:
    segments: tuple[Segment, ...]
    column: int

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.segments)

    def text(self) -> str:
        return "/".join(s.name + "".join(f"[{i}]" for i in s.indexes) for s in self.segments)


@dataclass(frozen=True, slots=True)
class Call:
    name: str  # lower case
    args: tuple[Expr, ...]
    column: int


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "not" or "-"
    operand: Expr
    column: int


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # eq ne gt ge lt le and or add sub mul div mod (lower case)
    left: Expr
    right: Expr
    column: int


Expr = Literal | GeoLiteral | Path | Call | Unary | Binary


@dataclass(frozen=True, slots=True)
class OrderItem:
    expr: Expr
    descending: bool


@dataclass(frozen=True, slots=True)
class SelectItem:
    path: tuple[str, ...]  # () means "*"


@dataclass(frozen=True, slots=True)
class ExpandItem:
    path: tuple[str, ...]
    options: QueryOptions


@dataclass(frozen=True, slots=True)
class QueryOptions:
    """The system query options of one request, or of one ``$expand`` level."""

    filter: Expr | None = None
    orderby: tuple[OrderItem, ...] = ()
    select: tuple[SelectItem, ...] | None = None
    expand: tuple[ExpandItem, ...] = ()
    top: int | None = None
    skip: int | None = None
    count: bool | None = None
    result_format: str | None = None
    raw: dict[str, str] = field(default_factory=dict, compare=False)  # original texts, for next links
