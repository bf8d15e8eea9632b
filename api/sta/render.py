"""Response bodies of the SensorThings API.

Entities arrive as finished JSON text from the statement (links included); this module
only writes the collection envelope around them (``@iot.count``, ``@iot.nextLink``,
``value``), with orjson, in chunks of about :data:`CHUNK_BYTES`.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

CHUNK_BYTES = 4 * 1024 * 1024  # a body up to this size goes in one piece; larger ones stream in pieces of it


def collection_chunks(rows: Sequence[bytes], *, count: int | None, next_url: str | None) -> list[bytes]:
    """The body of a collection response in chunks of about :data:`CHUNK_BYTES` (at least one
    entity each); ``rows`` are the entities' JSON texts (UTF-8).
    """
    head: dict[str, object] = {}
    if count is not None:
        head["@iot.count"] = count
    if next_url is not None:
        head["@iot.nextLink"] = next_url
    chunks: list[bytes] = []
    start, size = 0, 0
    for end, row in enumerate(rows):
        size += len(row) + 1
        if size >= CHUNK_BYTES:
            chunks.append(b",".join(rows[start : end + 1]))
            start, size = end + 1, 0
    if start < len(rows) or not chunks:
        chunks.append(b",".join(rows[start:]))
    opening = orjson.dumps(head)[:-1] + (b',"value":[' if head else b'"value":[')
    chunks[0] = opening + chunks[0]
    for i in range(1, len(chunks)):
        chunks[i] = b"," + chunks[i]
    chunks[-1] += b"]}"
    return chunks
