"""The collection envelope around the entities' JSON texts, in chunks of about CHUNK_BYTES (pure)."""

from __future__ import annotations

import orjson
import pytest

from api.sta import render

ROWS = [orjson.dumps({"@iot.id": i, "name": "Bodø " + "x" * (i % 7)}) for i in range(1, 40)]


@pytest.mark.parametrize(
    ("count", "next_url"), [(None, None), (39, None), (None, "http://x/v1.1/Things?$top=39&$skip=39"), (0, "n")]
)
@pytest.mark.parametrize("chunk_bytes", [1, 64, 300, 10**9])
def test_chunks_join_to_the_envelope(
    monkeypatch: pytest.MonkeyPatch, chunk_bytes: int, count: int | None, next_url: str | None
) -> None:
    monkeypatch.setattr(render, "CHUNK_BYTES", chunk_bytes)
    chunks = render.collection_chunks(ROWS, count=count, next_url=next_url)
    body = orjson.loads(b"".join(chunks))
    expected: dict[str, object] = {}
    if count is not None:
        expected["@iot.count"] = count
    if next_url is not None:
        expected["@iot.nextLink"] = next_url
    expected["value"] = [orjson.loads(r) for r in ROWS]
    assert body == expected
    # every chunk but the last reaches the size; each holds at least one entity
    assert all(len(c) >= chunk_bytes for c in chunks[:-1])
    assert len(chunks) <= len(ROWS)
    if chunk_bytes == 1:
        assert len(chunks) == len(ROWS)
    if chunk_bytes == 10**9:
        assert len(chunks) == 1


def test_an_empty_page_is_one_chunk() -> None:
    assert render.collection_chunks([], count=None, next_url=None) == [b'{"value":[]}']
    assert render.collection_chunks([], count=0, next_url=None) == [b'{"@iot.count":0,"value":[]}']
