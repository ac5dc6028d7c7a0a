"""Scalars of our own: ``BigInt`` for money and token totals.

GraphQL's ``Int`` is 32-bit; micro-dollar sums pass 2³¹ at $2 147. ``BigInt`` is a
64-bit integer sent as a JSON number (exact up to 2⁵³ in JavaScript clients).
Input outside the signed 64-bit range, or not an integer, is refused.
"""

from __future__ import annotations

from typing import Any, NewType

import strawberry
from graphql import IntValueNode, ValueNode

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def _int64(value: Any) -> int:
    number: int
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.lstrip("-").isdigit() and len(value) <= 20:
        number = int(value)
    else:
        raise ValueError("BigInt must be an integer")
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError("BigInt must fit in 64 bits")
    return number


def _literal(node: ValueNode, _variables: dict[str, Any] | None = None) -> int:
    if not isinstance(node, IntValueNode):
        raise ValueError("BigInt must be an integer")
    return _int64(int(node.value))


BigInt = strawberry.scalar(
    NewType("BigInt", int),
    description="A 64-bit integer as a JSON number (exact up to 2^53): money and token totals.",
    serialize=int,
    parse_value=_int64,
    parse_literal=_literal,
)
