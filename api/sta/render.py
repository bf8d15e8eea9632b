"""Response bodies of the SensorThings API.

Entities arrive as finished JSON text from the statement (links included); this module
only writes the collection envelope around them (``@iot.count``, ``@iot.nextLink``,
``value``), with orjson, a chunk of entities at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import orjson

CHUNK = 500  # entities per streamed chunk


def collection_chunks(rows: Sequence[bytes], *, count: int | None, next_url: str | None) -> Iterator[bytes]:
    """The body of a collection response; ``rows`` are the entities' JSON texts (UTF-8)."""
    head: dict[str, object] = {}
    if count is not None:
        head["@iot.count"] = count
    if next_url is not None:
        head["@iot.nextLink"] = next_url
    yield orjson.dumps(head)[:-1] + (b',"value":[' if head else b'"value":[')
    for start in range(0, len(rows), CHUNK):
        yield (b"," if start else b"") + b",".join(rows[start : start + CHUNK])
    yield b"]}"
