"""The Relay ``Node`` interface and the global-id field every node type uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry

from resolvers import global_id


@strawberry.interface(description="An object with an opaque, globally unique id.")
class Node:
    id: strawberry.ID


def global_id_field(type_name: str, key: str = "id") -> Any:
    """A resolver field encoding ``root.<key>`` as the type's global id."""

    def resolve(root: Any) -> strawberry.ID:
        return global_id.encode_cached(type_name, getattr(root, key))  # type: ignore[return-value]

    return strawberry.field(resolver=resolve, description="Opaque global id.")


def row_is(model: type | tuple[type, ...]) -> Callable[..., bool]:
    """``is_type_of`` for a type that describes rows of ``model``."""

    def is_type_of(cls: type, obj: Any, info: Any) -> bool:
        return isinstance(obj, model)

    return classmethod(is_type_of)  # type: ignore[return-value]
