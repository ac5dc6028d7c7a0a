"""WebP uploads are walked chunk by chunk to their end, like PNG, JPEG and GIF.

A RIFF header whose length field covers the file used to be enough: markup after
(or instead of) the image passed as ``image/webp``. The known-valid images below
are the 1×1 probes browsers' WebP feature detection has decoded for years.
"""

from __future__ import annotations

import base64
import struct

import pytest

from resolvers.image_format import ImageRejected, image_type
from tests.uploads import webp

LOSSY = base64.b64decode("UklGRiIAAABXRUJQVlA4IBYAAAAwAQCdASoBAAEADsD+JaQAA3AAAAAA")
LOSSLESS = base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")
ALPHA = base64.b64decode(
    "UklGRkoAAABXRUJQVlA4WAoAAAAQAAAAAAAAAAAAQUxQSAwAAAARBxAR/Q9ERP8DAABWUDggGAAAABQBAJ0BKgEA"
    "AQAAAP4AAA3AAP7mtQAAAA=="
)
ANIMATED = base64.b64decode(
    "UklGRlIAAABXRUJQVlA4WAoAAAASAAAAAAAAAAAAQU5JTQYAAAD/////AABBTk1GJgAAAAAAAAAAAAAAAAAAAGQA"
    "AABWUDhMDQAAAC8AAAAQBxAREYiI/gcA"
)
HTML = b"<html><script>alert(document.cookie)</script></html>\n"


def riff(body: bytes) -> bytes:
    """A RIFF/WEBP file around ``body`` whose length field matches the file exactly."""
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)


def body(image: bytes) -> bytes:
    return image[12:]


@pytest.mark.parametrize(
    "data",
    [LOSSY, LOSSLESS, ALPHA, ANIMATED, webp()],
    ids=["lossy", "lossless", "lossy+alpha", "animated", "uploads-helper"],
)
def test_a_whole_webp_is_accepted(data: bytes) -> None:
    assert image_type(data) == "image/webp"


def test_extended_metadata_chunks_are_accepted() -> None:
    vp8x = chunk(b"VP8X", b"\x0c" + b"\x00" * 9)  # EXIF and XMP flags
    data = riff(vp8x + body(LOSSLESS) + chunk(b"EXIF", b"II*\x00") + chunk(b"XMP ", b"<x/>"))
    assert image_type(data) == "image/webp"


REFUSED = [
    # The header alone, its length fields covering the markup that follows it.
    pytest.param(riff(chunk(b"VP8L", HTML)), "the WebP image is corrupt", id="header+html"),
    # A whole image, then markup; the RIFF length grown to cover it.
    pytest.param(riff(body(LOSSY) + HTML), "the WebP image", id="lossy+html-in-riff"),
    pytest.param(riff(body(LOSSLESS) + HTML), "the WebP image", id="lossless+html-in-riff"),
    pytest.param(riff(body(ALPHA) + HTML), "the WebP image", id="extended+html-in-riff"),
    # ... or glued on past the RIFF length.
    pytest.param(LOSSY + HTML, "data follows the end of the WebP image", id="lossy+html"),
    pytest.param(LOSSLESS + b"\x00\x00", "data follows the end", id="lossless+2"),
    # The RIFF length lies: more than the file holds.
    pytest.param(
        LOSSY[:4] + struct.pack("<I", len(LOSSY)) + LOSSY[8:], "truncated", id="riff-too-long"
    ),
    # A chunk claims more bytes than are there (RIFF length matching the file).
    pytest.param(riff(body(LOSSY)[:-6]), "the WebP image is truncated", id="vp8-cut"),
    pytest.param(riff(body(ANIMATED)[:-4]), "truncated", id="anmf-cut"),
    pytest.param(riff(b"VP8L\xff\xff\xff\x7f" + HTML), "truncated", id="chunk-size-lies"),
    # The first chunk must be a real bitstream.
    pytest.param(riff(chunk(b"VP8 ", HTML[:20])), "corrupt", id="vp8-without-start-code"),
    pytest.param(riff(chunk(b"VP8L", HTML[:20])), "corrupt", id="vp8l-without-signature"),
    pytest.param(riff(chunk(b"VP8X", b"\x00" * 10)), "corrupt", id="vp8x-without-image"),
    pytest.param(riff(chunk(b"ICCP", b"x" * 8) + body(LOSSY)), "not a png", id="first-not-image"),
    # Hiding the markup inside the walk: unknown chunks, a second image, bad padding.
    pytest.param(
        riff(chunk(b"VP8X", b"\x00" * 10) + chunk(b"HTML", HTML) + body(LOSSY)),
        "unknown chunk",
        id="unknown-chunk",
    ),
    pytest.param(riff(body(LOSSY) + body(LOSSY)), "corrupt", id="two-images"),
    pytest.param(riff(body(LOSSLESS)[:-1] + b"<"), "corrupt", id="padding-not-zero"),
]


@pytest.mark.parametrize(("data", "reason"), REFUSED)
def test_a_webp_that_is_not_one_whole_image_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(ImageRejected, match=reason):
        image_type(data)
