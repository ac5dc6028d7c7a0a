"""``node`` and ``nodes``: fetch any object by its global id."""

from __future__ import annotations

from typing import cast

import strawberry

from resolvers import nodes
from schema.info import Info
from schema.node import Node


@strawberry.type
class NodeQueries:
    @strawberry.field(description="Any object by global id; null when absent or not yours.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return cast(Node | None, await nodes.node(info.context, id))

    @strawberry.field(description="Objects by global id, in order; null where absent or not yours.")
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        return cast(list[Node | None], await nodes.nodes(info.context, list(ids)))
