"""AI request logs: one row per model call through the AI gateway, and the queries
that page them (``aiRequestLogs``) and list the clients seen (``aiClients``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, cast

import strawberry

from db import models
from resolvers import ai_request_logs
from resolvers.pagination import PageArgs
from schema.connection import Edge, PageInfo, connection_of
from schema.info import Info
from schema.message import Usage, _usage
from schema.node import Node, global_id_field, row_is
from schema.user import User

if TYPE_CHECKING:
    from schema.chat import Chat


def _log_usage(root: models.AiRequestLog) -> Usage | None:
    return _usage(root)  # type: ignore[arg-type]


@strawberry.type(
    description="One model call through the AI gateway: who, which client, which model, "
    "how it went and what it cost. Bodies are never stored here."
)
class AiRequestLog(Node):
    id: strawberry.ID = global_id_field("AiRequestLog")
    client: str = strawberry.field(
        description="Detected from the User-Agent and client headers: CLAUDE_CODE, CODEX, "
        "CURSOR, COPILOT, ZED, AIDER, CLINE, ROO_CODE, KILO_CODE, OPENCODE, CONTINUE, GOOSE, "
        'ANTHROPIC_SDK, OPENAI_SDK, or "Unknown".'
    )
    user_agent: str | None = strawberry.field(description="The raw User-Agent (bounded).")
    session_id: str | None = strawberry.field(
        description="The client's own session id where it sends one (never a user id)."
    )
    provider: str
    model: str
    endpoint: str = strawberry.field(
        description="chat.completions, responses, messages or messages.count_tokens."
    )
    stream: bool
    status: int = strawberry.field(description="The upstream HTTP status (502/504: no answer).")
    usage: Usage | None = strawberry.field(resolver=_log_usage)
    cost_micros: int | None = strawberry.field(description="Null: unpriced, or nothing billed.")
    started_at: datetime
    duration_ms: int
    time_to_first_token_ms: int | None
    is_type_of = row_is(models.AiRequestLog)

    @strawberry.field
    async def user(self, root: models.AiRequestLog, info: Info) -> User:
        return cast(User, await ai_request_logs.log_user(info.context, root))

    @strawberry.field(description="Set for the daemon's own requests (yours only); null otherwise.")
    async def chat(
        self, root: models.AiRequestLog, info: Info
    ) -> Annotated[Chat, strawberry.lazy("schema.chat")] | None:
        return cast("Chat | None", await ai_request_logs.log_chat(info.context, root))


@strawberry.type
class AiRequestLogConnection:
    edges: list[Edge[AiRequestLog]]
    nodes: list[AiRequestLog]
    page_info: PageInfo
    result: strawberry.Private[ai_request_logs.LogPage]

    @strawberry.field(description="Rows matching the filter (all pages).")
    async def total_count(self) -> int:
        return await self.result.total_count()


@strawberry.input
class AiRequestLogFilter:
    clients: list[str] | None = None
    provider: str | None = None
    model: str | None = None
    user_id: strawberry.ID | None = None
    from_: datetime | None = strawberry.field(name="from", default=None)
    to: datetime | None = None


@strawberry.type
class AiRequestLogQueries:
    @strawberry.field(
        description="AI gateway requests, newest first: your own, or everyone's with "
        "VIEW_REQUEST_LOGS (filtering on another user without it finds nothing)."
    )
    async def ai_request_logs(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: AiRequestLogFilter | None = None,
    ) -> AiRequestLogConnection:
        given = None
        if filter is not None:
            given = ai_request_logs.LogFilterInput(
                clients=filter.clients,
                provider=filter.provider,
                model=filter.model,
                user_id=filter.user_id,
                started_from=filter.from_,
                started_to=filter.to,
            )
        result = await ai_request_logs.ai_request_logs_page(
            info.context, PageArgs(first=first, after=after), given
        )
        wrapped = connection_of(result.page)
        return AiRequestLogConnection(
            edges=wrapped.edges,
            nodes=wrapped.nodes,
            page_info=wrapped.page_info,
            result=result,
        )

    @strawberry.field(
        description="The distinct clients seen in the request logs you may read (for a filter)."
    )
    async def ai_clients(self, info: Info) -> list[str]:
        return await ai_request_logs.ai_clients(info.context)
