"""URLs of the SensorThings API: query strings of next links (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import quote

_SAFE = "$(),;=/:'*@!"


def query_string(items: Sequence[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='$')}={quote(v, safe=_SAFE)}" for k, v in items)


def page_query(options: Mapping[str, str], top: int, skip: int) -> str:
    """The query string asking for the page at ``skip`` with the same options."""
    items = [(k, v) for k, v in options.items() if k not in ("$top", "$skip")]
    items += [("$top", str(top)), ("$skip", str(skip))]
    return query_string(items)


def next_link(url: str, options: Mapping[str, str], top: int, skip: int) -> str:
    return f"{url}?{page_query(options, top, skip)}"
