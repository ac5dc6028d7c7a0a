"""Opaque Relay global IDs: base64url of ``Type:key`` without padding."""

from __future__ import annotations

import base64
import binascii
import functools
import re
import uuid

from resolvers.errors import bad_input

# Python's ints have no bound and accept "1_000", " 7" or "٣"; PostgreSQL's
# bigint ids are plain ASCII digits up to this.
BIGINT_MAX = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


def encode(type_name: str, key: object) -> str:
    raw = f"{type_name}:{key}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@functools.lru_cache(maxsize=65536)
def encode_cached(type_name: str, key: object) -> str:
    """``encode`` for ids on hot list paths (messages): the same rows come back often."""
    return encode(type_name, key)


def decode(global_id: str) -> tuple[str, str] | None:
    """``(type, key)`` or None when the id is not one of ours."""
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode()
    except (binascii.Error, UnicodeError, ValueError):
        return None
    type_name, sep, key = text.partition(":")
    if not sep or not type_name or not key:
        return None
    return type_name, key


def decode_as(global_id: str, type_name: str, *, field: str = "id") -> str:
    """The key of an id that must name a ``type_name``; BAD_USER_INPUT otherwise."""
    decoded = decode(global_id)
    if decoded is None or decoded[0] != type_name:
        raise bad_input(field, f"not a valid {type_name} id")
    return decoded[1]


def decode_uuid(global_id: str, type_name: str, *, field: str = "id") -> uuid.UUID:
    key = decode_as(global_id, type_name, field=field)
    try:
        return uuid.UUID(key)
    except ValueError:
        raise bad_input(field, f"not a valid {type_name} id") from None


def parse_bigint(key: str) -> int:
    """A numeric key PostgreSQL can compare with a bigint id; ValueError otherwise
    (an overflowing number would fail in the query, as a server error)."""
    if not _DIGITS.fullmatch(key) or int(key) > BIGINT_MAX:
        raise ValueError(f"not a bigint key: {key[:40]!r}")
    return int(key)


def decode_bigint(global_id: str, type_name: str, *, field: str = "id") -> int:
    """The numeric key of an id that must name a ``type_name``; BAD_USER_INPUT otherwise."""
    key = decode_as(global_id, type_name, field=field)
    try:
        return parse_bigint(key)
    except ValueError:
        raise bad_input(field, f"not a valid {type_name} id") from None
