"""multipart/related bodies (RFC 2387), as STOW-RS sends and WADO-RS answers (PS3.18 8.6.1.2).

Werkzeug parses only multipart/form-data; a related body is split here on its boundary, with
the whole body already in memory (its size is capped by the request limit).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from werkzeug.http import parse_options_header

from csss_fhir.errors import InvalidInputError, UnsupportedMediaError

DICOM = "application/dicom"


@dataclass(frozen=True)
class Part:
    content_type: str
    data: bytes


def parse_related(body: bytes, content_type: str | None) -> list[Part]:
    """The parts of a multipart/related body whose root type is application/dicom.

    Raises:
        UnsupportedMediaError: not multipart/related, or another type than application/dicom.
        InvalidInputError: no boundary, or the body is not split by it.
    """
    mimetype, options = parse_options_header(content_type or "")
    if mimetype != "multipart/related":
        raise UnsupportedMediaError(
            f"Content-Type {mimetype or '(none)'}: STOW-RS takes multipart/related; "
            f'type="{DICOM}" with one DICOM Part 10 instance per part')
    root_type = options.get("type", DICOM)
    if root_type != DICOM:
        raise UnsupportedMediaError(
            f'multipart/related; type="{root_type}" is not supported; send type="{DICOM}" '
            "(DICOM Part 10 files; the JSON/XML metadata + bulk data form is not accepted)")
    boundary = options.get("boundary")
    if not boundary:
        raise InvalidInputError("the Content-Type has no boundary parameter")
    delimiter = b"--" + boundary.encode("latin-1")
    separator = b"\r\n" + delimiter
    start = body.find(delimiter)
    if start < 0 or (start > 0 and body[start - 2:start] != b"\r\n"):
        raise InvalidInputError("the body does not start with its multipart boundary")
    parts: list[Part] = []
    cursor = start + len(delimiter)
    while body[cursor:cursor + 2] != b"--":
        line_end = body.find(b"\r\n", cursor)  # skip transport padding after the boundary
        end = body.find(separator, line_end)
        if line_end < 0 or end < 0:
            raise InvalidInputError(
                "the multipart body ends without its closing boundary; it was cut short")
        parts.append(_part(body[line_end + 2:end], root_type))
        cursor = end + len(separator)
    return parts


def _part(raw: bytes, default_type: str) -> Part:
    head, found, data = raw.partition(b"\r\n\r\n")
    if raw.startswith(b"\r\n"):  # no header lines at all
        return Part(default_type, raw[2:])
    if not found:
        raise InvalidInputError("a multipart part has no blank line between headers and body")
    content_type = default_type
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-type":
            content_type = parse_options_header(value.strip())[0] or default_type
    return Part(content_type, data)


def build_related(items: list[bytes], part_type: str = DICOM,
                  transfer_syntax: str | None = None) -> tuple[bytes, str]:
    """A multipart/related body of `items` and its Content-Type header value."""
    boundary = uuid.uuid4().hex
    header = f"Content-Type: {part_type}"
    if transfer_syntax:
        header += f"; transfer-syntax={transfer_syntax}"
    chunks = []
    for item in items:
        chunks += [f"--{boundary}\r\n{header}\r\n\r\n".encode(), item, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f'multipart/related; type="{part_type}"; boundary={boundary}'
