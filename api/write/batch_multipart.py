"""The OData multipart/mixed batch format (OData 4.0 Part 1, 11.7), parsed and written: pure, no I/O.

A batch is a ``multipart/mixed`` body whose parts are single requests (``application/http``)
or change sets (a nested ``multipart/mixed`` of requests, applied atomically). Each request
part holds an HTTP request: request line, headers, blank line, body. The answer has the
same shape: a response part per request, a nested multipart per change set that succeeded,
and one error response for a change set that failed.

MIME parsing is the standard library's ``email`` package; only the HTTP message inside a part
(request line, then an RFC 822 header block, which ``email`` parses too) is read here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from http import HTTPStatus

from api.write.batch_types import BatchError, SubRequest

MULTIPART = "multipart/mixed"
_PARSER = BytesParser(policy=policy.HTTP)
_METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")


def parse_multipart(body: bytes, content_type: str, max_requests: int) -> list[SubRequest]:
    """The requests of a multipart batch, in order; change-set members share a ``group``."""
    message = _PARSER.parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        raise BatchError("a multipart batch needs Content-Type: multipart/mixed; boundary=… and parts")
    if message.defects:
        raise BatchError(f"the multipart body is malformed: {message.defects[0]!r}")
    out: list[SubRequest] = []
    for index, part in enumerate(message.iter_parts()):
        kind = part.get_content_type()
        if kind == MULTIPART:
            group = f"changeset-{index}"
            members = list(part.iter_parts())
            if not members:
                raise BatchError(f"part {index + 1}: an empty change set")
            for number, member in enumerate(members):
                out.append(_request(member, f"part {index + 1}.{number + 1}", group))
        else:
            out.append(_request(part, f"part {index + 1}", None))
        if len(out) > max_requests:
            raise BatchError(f"at most {max_requests} requests per batch")
    if not out:
        raise BatchError("the batch holds no requests")
    return out


def _request(part: MIMEPart, where: str, group: str | None) -> SubRequest:
    if part.get_content_type() != "application/http":
        raise BatchError(f"{where}: a request part has Content-Type application/http, not {part.get_content_type()}")
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        raise BatchError(f"{where}: no HTTP request in the part")
    raw = raw.lstrip(b"\r\n")
    line, _, rest = raw.partition(b"\n")
    words = line.decode("latin-1").strip().split()
    if len(words) not in (2, 3) or words[0].upper() not in _METHODS:
        raise BatchError(f"{where}: expected a request line such as 'POST Things HTTP/1.1', got {line[:80]!r}")
    method, url = words[0].lower(), words[1]
    inner = _PARSER.parsebytes(rest)
    content_id = part.get("Content-ID") or inner.get("Content-ID")
    if group is not None and method == "get":
        raise BatchError(f"{where}: a GET cannot be part of a change set")
    payload = inner.get_payload(decode=True)
    body = payload.strip() if isinstance(payload, bytes) else b""
    content_type = (inner.get_content_type() if inner.get("Content-Type") else "application/json").lower()
    return SubRequest(
        id=str(content_id).strip() if content_id else where,
        method=method,
        url=url,
        body=body,
        group=group,
        content_type=content_type,
        content_id=str(content_id).strip() if content_id else None,
    )


@dataclass(slots=True)
class PartResponse:
    """One answer to write into the multipart response."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_id: str | None = None


def _http_part(answer: PartResponse) -> bytes:
    head = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if answer.content_id:
        head.append(f"Content-ID: {answer.content_id}")
    try:
        reason = HTTPStatus(answer.status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {answer.status} {reason}".rstrip()]
    lines += [f"{'-'.join(w.capitalize() for w in name.split('-'))}: {value}" for name, value in answer.headers.items()]
    if answer.content_type and answer.body:
        lines.append(f"Content-Type: {answer.content_type}")
    text = "\r\n".join(head) + "\r\n\r\n" + "\r\n".join(lines) + "\r\n\r\n"
    return text.encode("latin-1") + answer.body + b"\r\n"


def _multipart(parts: Sequence[bytes], boundary: str) -> bytes:
    out = b"".join(b"--" + boundary.encode() + b"\r\n" + part for part in parts)
    return out + b"--" + boundary.encode() + b"--\r\n"


def write_multipart(items: Sequence[PartResponse | Sequence[PartResponse]]) -> tuple[bytes, str]:
    """The response body and its Content-Type; a sequence of answers is a change set's."""
    boundary = f"batchresponse_{uuid.uuid4()}"
    parts: list[bytes] = []
    for item in items:
        if isinstance(item, PartResponse):
            parts.append(_http_part(item))
            continue
        inner = f"changesetresponse_{uuid.uuid4()}"
        nested = _multipart([_http_part(answer) for answer in item], inner)
        parts.append(f"Content-Type: {MULTIPART}; boundary={inner}\r\n\r\n".encode() + nested + b"\r\n")
    return _multipart(parts, boundary), f"{MULTIPART}; boundary={boundary}"
