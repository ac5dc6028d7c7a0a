"""Deciding what an uploaded image really is, from its bytes alone.

``filetype`` names the format from the magic numbers; that alone accepts a
truncated image or one with a second file glued on (a polyglot: a GIF that is
also a script, a PNG followed by a zip). So each allowed format's container is
walked to its end marker, which must be the last byte. Pixel data is never
decoded: this is about what the bytes are, not whether they look right.
"""

from __future__ import annotations

import struct
import zlib

import filetype  # type: ignore[import-untyped]

from db.vocabulary import CHAT_FILE_TYPES


class ImageRejected(ValueError):
    """The bytes are not one whole image of an allowed type; the message says why."""


def sniff(data: bytes) -> str | None:
    """The MIME type the magic numbers claim (SVG and text have none, hence None)."""
    kind = filetype.guess(data[:8192])
    return None if kind is None else str(kind.mime)


def _png(data: bytes) -> None:
    view = memoryview(data)
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise ImageRejected("the PNG is truncated")
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(view[pos + 4 : end - 4]) != crc:
            raise ImageRejected(f"the PNG chunk {kind!r} is corrupt")
        if kind == b"IEND":
            if end != len(data):
                raise ImageRejected("data follows the end of the PNG")
            return
        pos = end
    raise ImageRejected("the PNG is truncated")


def _scan_end(data: bytes, pos: int) -> int:
    """Where a scan's entropy-coded data ends: the first marker that is not a
    stuffed 0xFF00, a restart marker or a fill byte. (Searching for the last
    FFD9 instead would accept anything glued on that ends in FFD9.)"""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            raise ImageRejected("the JPEG is truncated")
        following = data[pos + 1]
        if following == 0xFF:
            pos += 1
        elif following == 0x00 or 0xD0 <= following <= 0xD7:
            pos += 2
        else:
            return pos


def _jpeg(data: bytes) -> None:
    pos = 2
    while True:
        if pos + 2 > len(data):
            raise ImageRejected("the JPEG is truncated")
        if data[pos] != 0xFF:
            raise ImageRejected("the JPEG is corrupt")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            if pos + 2 != len(data):
                raise ImageRejected("data follows the end of the JPEG")
            return
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        if pos + 4 > len(data):
            raise ImageRejected("the JPEG is truncated")
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if length < 2:
            raise ImageRejected("the JPEG is corrupt")
        pos += 2 + length
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next marker
            pos = _scan_end(data, pos)


def _sub_blocks(data: bytes, pos: int) -> int:
    while True:
        if pos >= len(data):
            raise ImageRejected("the GIF is truncated")
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos


def _gif(data: bytes) -> None:
    if len(data) < 13:
        raise ImageRejected("the GIF is truncated")
    flags = data[10]
    pos = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:
            if pos + 1 != len(data):
                raise ImageRejected("data follows the end of the GIF")
            return
        if block == 0x21:  # extension: label, then sub-blocks
            pos = _sub_blocks(data, pos + 2)
        elif block == 0x2C:  # image: descriptor, local colours, LZW size, sub-blocks
            if pos + 10 > len(data):
                raise ImageRejected("the GIF is truncated")
            local = data[pos + 9]
            pos += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0)
            pos = _sub_blocks(data, pos + 1)
        else:
            raise ImageRejected("the GIF is corrupt")
    raise ImageRejected("the GIF is truncated")


# What may follow VP8X in an extended WebP; anything else is refused rather than skipped,
# so no unknown chunk can carry a payload past the walk.
_WEBP_EXTENDED = frozenset({b"ICCP", b"ANIM", b"ANMF", b"ALPH", b"VP8 ", b"VP8L", b"EXIF", b"XMP "})
_WEBP_FRAME = frozenset({b"ALPH", b"VP8 ", b"VP8L"})


def _webp_chunks(data: bytes, pos: int, end: int) -> list[tuple[bytes, int, int]]:
    """The chunks from ``pos`` to ``end`` as (kind, payload start, payload end). Each must
    fit, odd sizes are followed by their zero padding byte, and the last one must end
    exactly at ``end``."""
    chunks: list[tuple[bytes, int, int]] = []
    while pos < end:
        if pos + 8 > end:
            raise ImageRejected("the WebP image is truncated")
        kind = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        pos = body + size + (size & 1)
        if pos > end:
            raise ImageRejected("the WebP image is truncated")
        if size & 1 and data[pos - 1] != 0:
            raise ImageRejected("the WebP image is corrupt")
        chunks.append((kind, body, body + size))
    return chunks


def _webp_bitstream(data: bytes, kind: bytes, start: int, end: int) -> None:
    """A VP8 key frame (start code 9d 01 2a) or a VP8L stream (signature 0x2f, version 0)."""
    size = end - start
    if kind == b"VP8L":
        valid = size >= 5 and data[start] == 0x2F and data[start + 4] >> 5 == 0
    else:
        tag = int.from_bytes(data[start : start + 3], "little")
        valid = (
            size >= 10
            and data[start + 3 : start + 6] == b"\x9d\x01\x2a"
            and tag & 1 == 0  # a key frame
            and tag >> 5 <= size - 10  # whose first partition fits
        )
    if not valid:
        raise ImageRejected("the WebP image is corrupt")


def _webp_frame(data: bytes, chunks: list[tuple[bytes, int, int]]) -> None:
    """One image: an optional ALPH before VP8, or a lone VP8L (unknown chunks refused)."""
    kinds = [kind for kind, _, _ in chunks]
    if kinds not in ([b"VP8 "], [b"ALPH", b"VP8 "], [b"VP8L"]):
        raise ImageRejected("the WebP image is corrupt")
    kind, start, end = chunks[-1]
    _webp_bitstream(data, kind, start, end)


def _webp(data: bytes) -> None:
    if len(data) < 20:
        raise ImageRejected("the WebP image is truncated")
    (size,) = struct.unpack_from("<I", data, 4)
    if size + 8 > len(data):
        raise ImageRejected("the WebP image is truncated")
    if size + 8 < len(data):
        raise ImageRejected("data follows the end of the WebP image")
    chunks = _webp_chunks(data, 12, len(data))
    first = chunks[0][0]
    if first in (b"VP8 ", b"VP8L"):  # simple format: exactly one image chunk
        _webp_frame(data, chunks)
        return
    if first != b"VP8X" or chunks[0][2] - chunks[0][1] != 10:
        raise ImageRejected("the WebP image is corrupt")
    rest = chunks[1:]
    if any(kind not in _WEBP_EXTENDED for kind, _, _ in rest):
        raise ImageRejected("the WebP image has an unknown chunk")
    frames = [chunk for chunk in rest if chunk[0] == b"ANMF"]
    if frames:
        if any(kind in _WEBP_FRAME for kind, _, _ in rest):
            raise ImageRejected("the WebP image is corrupt")
        for _, start, end in frames:
            if end - start < 16:
                raise ImageRejected("the WebP image is truncated")
            _webp_frame(data, _webp_chunks(data, start + 16, end))
    else:
        _webp_frame(data, [chunk for chunk in rest if chunk[0] in _WEBP_FRAME])


_WALKERS = {"image/png": _png, "image/jpeg": _jpeg, "image/gif": _gif, "image/webp": _webp}


def image_type(data: bytes) -> str:
    """The allowed image type ``data`` is, whole; ImageRejected says why not."""
    if not data:
        raise ImageRejected("the file is empty")
    head = data[:1024].lstrip().lower()
    if head.startswith((b"<?xml", b"<svg", b"<!doctype", b"<html")) or b"<svg" in head:
        raise ImageRejected("SVG and other markup are not allowed; upload png, jpeg, gif or webp")
    mime = sniff(data)
    if mime not in CHAT_FILE_TYPES:
        found = f" ({mime})" if mime else ""
        raise ImageRejected(f"the bytes are not a png, jpeg, gif or webp image{found}")
    _WALKERS[mime](data)
    return mime
