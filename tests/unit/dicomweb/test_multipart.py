"""multipart/related: what STOW-RS clients send and WADO-RS answers."""

from __future__ import annotations

import pytest

from csss_fhir.dicomweb.multipart import build_related, parse_related
from csss_fhir.errors import InvalidInputError, UnsupportedMediaError

ITEMS = [b"first\r\n\r\nwith a blank line", b"--not-the-boundary", b""]


def test_what_is_built_parses_back():
    body, content_type = build_related(ITEMS)
    assert [p.data for p in parse_related(body, content_type)] == ITEMS
    assert {p.content_type for p in parse_related(body, content_type)} == {"application/dicom"}


def test_a_preamble_parts_without_headers_and_quoted_boundaries_are_read():
    body = (b"preamble\r\n--b1\r\n\r\nbare part\r\n--b1\r\nContent-Type: application/dicom"
            b"\r\n\r\nsecond\r\n--b1--\r\nepilogue")
    parts = parse_related(body, 'multipart/related; type="application/dicom"; boundary="b1"')
    assert [(p.content_type, p.data) for p in parts] == [
        ("application/dicom", b"bare part"), ("application/dicom", b"second")]


@pytest.mark.parametrize("content_type, error", [
    ("application/dicom", UnsupportedMediaError),
    ('multipart/related; type="application/dicom+json"; boundary=b1', UnsupportedMediaError),
    ('multipart/related; type="application/dicom"', InvalidInputError),
])
def test_other_media_types_and_missing_boundaries_are_refused(content_type, error):
    with pytest.raises(error):
        parse_related(b"--b1\r\n\r\nx\r\n--b1--", content_type)


def test_a_body_cut_short_is_refused():
    body, content_type = build_related([b"x" * 100])
    with pytest.raises(InvalidInputError, match="cut short"):
        parse_related(body[:60], content_type)
