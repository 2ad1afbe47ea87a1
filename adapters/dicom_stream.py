"""The element stream of a DICOM Part 10 file, walked before pydicom builds anything.

pydicom reads a file in one go: it inflates a deflated data set in full, and it parses nested
sequences recursively. A small hostile file therefore costs a worker gigabytes (a 0.41 MB
deflate bomb) or its stack (20,000 nested sequences). This module looks at the raw bytes
first, with bounded memory and no recursion:

- `file_meta` reads the group 0002 elements (always Explicit VR Little Endian) for the
  transfer syntax and where the data set starts;
- `inflate` inflates a Deflated Explicit VR Little Endian data set with a cap on its output;
- `outline` walks the data set's elements and refuses sequences nested deeper than a limit,
  and tells a complete stream from one that stops inside an element (a truncated file).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from pydicom.datadict import dictionary_VR
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

from csss_fhir.errors import PayloadTooLargeError, UnprocessableContentError

# pydicom, and our own copy-and-strip, walk nested data sets recursively (about four Python
# frames a level). Image objects nest their macros a few levels deep; 32 leaves ample room for
# structured content while staying far below the interpreter's recursion limit.
MAX_SEQUENCE_DEPTH = 32

_CHUNK = 1 << 20
_PREAMBLE = 132  # 128-byte preamble + "DICM"
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xE000, 0xE00D, 0xE0DD
_PIXEL_DATA = 0x7FE00010
# Explicit VR: these VRs have 2 reserved bytes and a 4-byte length (PS3.5 7.1.2).
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                       b"UR", b"UT", b"UV"})


class InflatedTooLargeError(PayloadTooLargeError):
    """A deflated data set inflates past the limit (a decompression bomb)."""


class NestedTooDeepError(UnprocessableContentError):
    """Sequences nest deeper than `MAX_SEQUENCE_DEPTH`."""


@dataclass(frozen=True)
class FileMeta:
    transfer_syntax: str
    data_set_offset: int  # where the data set starts, after group 0002


@dataclass(frozen=True)
class Outline:
    complete: bool  # False: the bytes stop inside an element or an open sequence (truncated)
    depth: int  # the deepest sequence nesting found


def file_meta(data: bytes) -> FileMeta:
    """The transfer syntax and data-set offset, from the group 0002 elements after "DICM".

    A file whose meta group is cut short yields what was read; pydicom judges it later.
    """
    position, transfer_syntax = _PREAMBLE, ""
    while position + 8 <= len(data):
        group, element = struct.unpack_from("<HH", data, position)
        if group != 0x0002:
            break
        vr = data[position + 4:position + 6]
        if vr in _LONG_VRS:
            (length,) = struct.unpack_from("<I", data, position + 8)
            start = position + 12
        else:
            (length,) = struct.unpack_from("<H", data, position + 6)
            start = position + 8
        if element == 0x0010:
            transfer_syntax = data[start:start + length].rstrip(b"\x00 ").decode("ascii",
                                                                                "replace")
        position = start + length
    return FileMeta(transfer_syntax=transfer_syntax, data_set_offset=min(position, len(data)))


def inflate(deflated: bytes, *, limit: int) -> bytes:
    """Inflate a raw-deflate data set (PS3.5 A.5), refusing output past `limit` bytes.

    A first pass counts the output a megabyte at a time and keeps none of it, so that a bomb
    is refused for the cost of a buffer; only a data set within the limit is inflated whole.

    Raises:
        InflatedTooLargeError: the data set inflates past `limit` (413).
        zlib.error: the stream is not valid deflate data, or ends early.
    """
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    size, pending = 0, deflated
    while not inflater.eof:
        chunk = inflater.decompress(pending, _CHUNK)
        pending = inflater.unconsumed_tail
        size += len(chunk)
        if size > limit:
            raise InflatedTooLargeError(
                f"the Deflated Explicit VR Little Endian data set ({len(deflated):,} bytes) "
                f"inflates to more than {limit:,} bytes, more than any image we accept needs; "
                "send the image uncompressed or with JPEG or JPEG 2000 compression")
        if not chunk and not pending and not inflater.eof:
            raise zlib.error("the deflate stream ends before its last block")
    return zlib.decompress(deflated, -zlib.MAX_WBITS, max(size, 1))


def outline(data: bytes, offset: int, transfer_syntax: str) -> Outline:
    """Walk the data set's elements from `offset` without building them.

    Raises:
        NestedTooDeepError: sequences nest deeper than `MAX_SEQUENCE_DEPTH` (422).
    """
    implicit = transfer_syntax == ImplicitVRLittleEndian
    if offset + 6 <= len(data):
        # pydicom, too, believes the first element over the transfer syntax: a file that says
        # explicit but starts without a VR is read as implicit (and vice versa).
        implicit = not data[offset + 4:offset + 6].isalpha()
    order = ">" if transfer_syntax == ExplicitVRBigEndian else "<"
    # Open containers, innermost last: (kind, end offset or None if undefined length, implicit).
    # kind: "sequence" (its items are data sets), "item" (a data set), "fragments"
    # (encapsulated pixel data: its items are raw bytes).
    stack: list[tuple[str, int | None, bool]] = []
    depth = deepest = 0
    position = offset
    size = len(data)
    while True:
        while stack and stack[-1][1] is not None and position >= stack[-1][1]:
            if stack.pop()[0] == "sequence":
                depth -= 1
        if position == size:
            return Outline(complete=not stack, depth=deepest)
        if position + 8 > size:
            return Outline(complete=False, depth=deepest)
        group, element = struct.unpack_from(order + "HH", data, position)
        in_implicit = stack[-1][2] if stack else implicit
        if group == 0xFFFE:  # item and delimiters: a 4-byte length and no VR, in every syntax
            (length,) = struct.unpack_from(order + "I", data, position + 4)
            position += 8
            kind = stack[-1][0] if stack else None
            if element == _ITEM and kind == "fragments":
                position += length if length != _UNDEFINED else 0
            elif element == _ITEM and kind == "sequence":
                end = None if length == _UNDEFINED else position + length
                stack.append(("item", end, in_implicit))
            elif element in (_ITEM_END, _SEQUENCE_END) and stack and stack[-1][1] is None:
                if stack.pop()[0] == "sequence":
                    depth -= 1
            # anything else is malformed; pydicom decides what to make of it
            continue
        tag = group << 16 | element
        if in_implicit:
            vr = _implicit_vr(tag)
            (length,) = struct.unpack_from(order + "I", data, position + 4)
            position += 8
        else:
            vr = data[position + 4:position + 6]
            if vr in _LONG_VRS:
                if position + 12 > size:
                    return Outline(complete=False, depth=deepest)
                (length,) = struct.unpack_from(order + "I", data, position + 8)
                position += 12
            else:
                (length,) = struct.unpack_from(order + "H", data, position + 6)
                position += 8
        if length == _UNDEFINED and tag == _PIXEL_DATA:
            stack.append(("fragments", None, in_implicit))
        elif vr == b"SQ" or length == _UNDEFINED:
            # An undefined-length UN is a sequence encoded in Implicit VR (PS3.5 6.2.2).
            end = None if length == _UNDEFINED else position + length
            stack.append(("sequence", end, in_implicit or vr == b"UN"))
            depth += 1
            deepest = max(deepest, depth)
            if depth > MAX_SEQUENCE_DEPTH:
                raise NestedTooDeepError(
                    f"the DICOM file nests sequences more than {MAX_SEQUENCE_DEPTH} deep (at "
                    f"tag ({group:04X},{element:04X})); no image needs that. Send the image "
                    "without such nested content")
        else:
            position += length
            if position > size:
                return Outline(complete=False, depth=deepest)


def _implicit_vr(tag: int) -> bytes | None:
    try:
        return dictionary_VR(tag).encode("ascii")
    except KeyError:  # private or unknown: read as bytes (unless its length is undefined)
        return None


def is_deflated(transfer_syntax: str) -> bool:
    return transfer_syntax == DeflatedExplicitVRLittleEndian
