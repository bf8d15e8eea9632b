"""Conformance: SensorThings 1.1 batch requests (OGC 18-088, 11.2, req/batch-request/batch-request).

Both formats the standard takes: OData 4.01 JSON batch and OData 4.0 multipart/mixed; requests run
in order, change sets are atomic, ``$<id>`` references reach entities created earlier.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.write.batch import BatchError, parse_batch
from api.write.batch_multipart import parse_multipart
from tests.api.test_create_update_delete import BASE, get

SENSOR = {"name": "DS18B20", "description": "air temperature", "encodingType": "application/pdf", "metadata": "x"}


@pytest.fixture
def client(migrated_db: str) -> Iterator[TestClient]:
    with TestClient(create_app(migrated_db, pool_min=1, pool_max=3, public_url=BASE), base_url=BASE) as c:
        yield c


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "requests"),
        ({"requests": [{"method": "fetch", "url": "Things"}]}, "method"),
        ({"requests": [{"method": "get"}]}, "url"),
        ({"requests": [{"id": "a", "method": "get", "url": "Things"}, {"id": "a", "method": "get", "url": "x"}]},
         "twice"),
        ({"requests": [{"method": "post", "url": "Things", "atomicityGroup": "g"},
                       {"method": "get", "url": "Things"},
                       {"method": "post", "url": "Things", "atomicityGroup": "g"}]}, "adjacent"),
        ({"requests": [{"method": "get", "url": "Things", "atomicityGroup": "g"}]}, "GET"),
    ],
)  # fmt: skip
def test_refused_batches(payload: Any, message: str) -> None:
    with pytest.raises(BatchError, match=message):
        parse_batch(payload)


def test_batch_runs_in_order_and_references_created_entities(client: TestClient) -> None:
    batch = {
        "requests": [
            {"id": "t", "atomicityGroup": "g1", "method": "post", "url": "Things",
             "body": {"name": "thing", "description": "d"}},
            {"id": "s", "atomicityGroup": "g1", "method": "post", "url": "Sensors", "body": SENSOR},
            {"id": "p", "atomicityGroup": "g1", "method": "post", "url": "ObservedProperties",
             "body": {"name": "T", "definition": "urn:t", "description": "d"}},
            {"id": "d", "atomicityGroup": "g1", "method": "post", "url": "Things($t)/Datastreams",
             "body": {"name": "ds", "description": "d", "observationType": "OM_Measurement",
                      "unitOfMeasurement": {"name": "C"}, "Sensor": {"@iot.id": "$s"},
                      "ObservedProperty": {"@iot.id": "$p"}}},
            {"id": "q", "method": "get", "url": "Things?$expand=Datastreams"},
            {"id": "u", "method": "patch", "url": f"{BASE}/v1.1/Things(999999)", "body": {"name": "x"}},
        ]
    }  # fmt: skip
    response = client.post("/v1.1/$batch", json=batch)
    assert response.status_code == 200, response.text
    answers = {r["id"]: r for r in response.json()["responses"]}
    assert [r["id"] for r in response.json()["responses"]] == ["t", "s", "p", "d", "q", "u"]
    assert answers["t"]["status"] == 201 and answers["t"]["headers"]["location"].startswith(BASE + "/v1.1/Things(")
    assert answers["d"]["status"] == 201
    thing_id = answers["t"]["body"]["@iot.id"]
    assert get(client, f"Datastreams({answers['d']['body']['@iot.id']})/Thing")["@iot.id"] == thing_id
    listed = answers["q"]["body"]["value"]
    assert listed[0]["Datastreams"][0]["name"] == "ds"
    assert answers["u"]["status"] == 404 and answers["u"]["body"]["type"] == "not_found"


def test_a_failing_change_set_applies_nothing(client: TestClient) -> None:
    batch = {
        "requests": [
            {"id": "1", "atomicityGroup": "g", "method": "post", "url": "Sensors", "body": SENSOR},
            {"id": "2", "atomicityGroup": "g", "method": "post", "url": "Sensors", "body": {"name": "no metadata"}},
            {"id": "3", "method": "post", "url": "Sensors", "body": {**SENSOR, "name": "outside"}},
        ]
    }
    response = client.post("/v1.1/$batch", json=batch)
    assert response.status_code == 200
    statuses = [r["status"] for r in response.json()["responses"]]
    assert statuses == [424, 400, 201]
    assert [s["name"] for s in get(client, "Sensors")["value"]] == ["outside"]


def test_other_media_types_are_415(client: TestClient) -> None:
    response = client.post("/v1.1/$batch", content=b"x", headers={"content-type": "text/plain"})
    assert response.status_code == 415 and "multipart/mixed" in response.json()["message"]


# ---- multipart/mixed ------------------------------------------------------------------------------


def http_part(request: str, body: Any = None, content_id: str | None = None, newline: str = "\r\n") -> str:
    head = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        head.append(f"Content-ID: {content_id}")
    lines = [request, "Host: sta.test"]
    if body is not None:
        lines.append("Content-Type: application/json")
    text = newline.join(head) + newline * 2 + newline.join(lines) + newline * 2
    return text + (orjson.dumps(body).decode() if body is not None else "") + newline


def multipart(parts: list[str], boundary: str, newline: str = "\r\n") -> str:
    return "".join(f"--{boundary}{newline}{part}" for part in parts) + f"--{boundary}--{newline}"


def change_set(parts: list[str], boundary: str, newline: str = "\r\n") -> str:
    return f"Content-Type: multipart/mixed; boundary={boundary}{newline}{newline}" + multipart(parts, boundary, newline)


def send(client: TestClient, body: str, boundary: str = "batch_1") -> list[Any]:
    """POST a multipart batch; its parts as (status, headers, JSON body) or a list of them (change sets)."""
    response = client.post(
        "/v1.1/$batch", content=body.encode(), headers={"content-type": f"multipart/mixed; boundary={boundary}"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("multipart/mixed; boundary=")
    parsed = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + response.headers["content-type"].encode() + b"\r\n\r\n" + response.content
    )
    return [_answer(part) for part in parsed.iter_parts()]


def _answer(part: Any) -> Any:
    if part.get_content_type() == "multipart/mixed":
        return [_answer(p) for p in part.iter_parts()]
    assert part.get_content_type() == "application/http"
    raw = part.get_payload(decode=True)
    status_line, _, rest = raw.partition(b"\r\n")
    inner = BytesParser(policy=policy.HTTP).parsebytes(rest)
    payload = inner.get_payload(decode=True).strip()
    body = orjson.loads(payload) if payload else None
    return int(status_line.split()[1]), dict(inner.items()), part.get("Content-ID"), body


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_multipart_batch_with_a_change_set_and_references(client: TestClient, newline: str) -> None:
    location = {"name": "Rennesøy", "description": "school", "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [5.8, 59.1]}}  # fmt: skip
    body = multipart(
        [
            http_part("GET Things?$count=true&$top=0 HTTP/1.1", newline=newline),
            change_set(
                [
                    http_part("POST Things HTTP/1.1", {"name": "school", "description": "d"}, "1", newline),
                    http_part("POST $1/Locations HTTP/1.1", location, "2", newline),
                    http_part("PATCH $1 HTTP/1.1", {"description": "changed"}, "3", newline),
                ],
                "changeset_a",
                newline,
            ),
            http_part(f"GET {BASE}/v1.1/Things?$expand=Locations HTTP/1.1", newline=newline),
        ],
        "batch_1",
        newline,
    )
    counted, changes, listed = send(client, body)
    assert counted[0] == 200 and counted[3]["@iot.count"] == 0
    (s1, h1, id1, thing), (s2, h2, id2, place), (s3, _, _, patched) = changes
    assert (s1, s2, s3) == (201, 201, 200) and (id1, id2) == ("1", "2")
    assert h1["Location"] == thing["@iot.selfLink"] and h2["Location"] == place["@iot.selfLink"]
    assert patched["description"] == "changed"
    assert listed[3]["value"][0]["Locations"][0]["@iot.id"] == place["@iot.id"]
    assert get(client, f"Things({thing['@iot.id']})/HistoricalLocations")["value"]  # the move was recorded


def test_multipart_change_set_that_fails_answers_once_and_applies_nothing(client: TestClient) -> None:
    body = multipart(
        [
            change_set(
                [
                    http_part("POST Sensors HTTP/1.1", SENSOR, "1"),
                    http_part("POST Sensors HTTP/1.1", {k: v for k, v in SENSOR.items() if k != "metadata"}, "2"),
                ],
                "cs",
            ),
            http_part("POST Sensors HTTP/1.1", {**SENSOR, "name": "after"}),
        ],
        "b",
    )
    failed, after = send(client, body, "b")
    status, _, content_id, error = failed  # one response for the change set: the failing request's
    assert (status, content_id, error["type"], error["parameter"]) == (400, "2", "bad_request", "metadata")
    assert after[0] == 201
    assert [s["name"] for s in get(client, "Sensors")["value"]] == ["after"]


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (
            "--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n",
            "multipart/mixed; boundary=b",
            "application/http",
        ),
        (multipart([change_set([http_part("GET Things HTTP/1.1")], "c")], "b"), "multipart/mixed; boundary=b", "GET"),
        (multipart([http_part("FETCH Things HTTP/1.1")], "b"), "multipart/mixed; boundary=b", "request line"),
        ("no parts at all", "multipart/mixed; boundary=b", "parts"),
    ],
)
def test_malformed_multipart_batches_are_400(client: TestClient, body: str, content_type: str, message: str) -> None:
    response = client.post("/v1.1/$batch", content=body.encode(), headers={"content-type": content_type})
    assert response.status_code == 400 and message in response.json()["message"], response.text


def test_parse_multipart_reads_methods_urls_and_bodies() -> None:
    body = multipart(
        [http_part("DELETE Things(1) HTTP/1.1"), http_part("PUT Things(2) HTTP/1.1", {"name": "x"}, "7")], "b"
    )
    first, second = parse_multipart(body.encode(), "multipart/mixed; boundary=b", 10)
    assert (first.method, first.url, first.body, first.group) == ("delete", "Things(1)", b"", None)
    assert (second.method, second.content_id, orjson.loads(second.body)) == ("put", "7", {"name": "x"})
