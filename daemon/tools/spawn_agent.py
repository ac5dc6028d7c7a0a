"""``spawn_agent`` and ``spawn_explore_agent``: delegate a task to a child chat.

The child is an ordinary chat with a parent and the family's root, in the
same workspace, running on its own (PENDING now, claimed by any daemon).
Explore children are read-only and cannot spawn (the tool policy reads their
mode). An explore child's model: the admin's explore override when it is a
usable model, else this turn's model, else the default.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints
from tortoise.transactions import in_transaction

from daemon.tool_registry import Tool, ToolArgs
from daemon.tools.turn_context import AgentTurn
from db.chat_config import explore_model_override
from db.models import Chat, ChatMessage, ModelConfig
from db.parts import Part, TextPart, parts_to_json
from db.titles import fallback_title, normalize_title
from db.vocabulary import TEXT_PART_MAX, ChatMode, ChatStatus, MessageRole

log = logging.getLogger(__name__)


class SpawnArgs(ToolArgs):
    prompt: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TEXT_PART_MAX)
    ] = Field(description="The complete task, self-contained.")
    # Longer titles are cut by normalize_title; this only bounds the input.
    title: str = Field("", max_length=1000, description="A short title for the child chat.")


SPAWN_DESCRIPTION = (
    "Start a sub-agent chat in this workspace for a self-contained task; it runs on its "
    "own with the same tools (it cannot spawn further agents)."
)
EXPLORE_DESCRIPTION = (
    "Start a read-only explore sub-agent to investigate the workspace and report back; "
    "it can read files and run commands but not change anything."
)


async def explore_model(current: uuid.UUID | None) -> uuid.UUID | None:
    """The override when set and usable; otherwise this turn's model (or the default)."""
    override, malformed = await explore_model_override()
    if override is not None:
        usable = await ModelConfig.filter(id=override, enabled=True, deleted=False).exists()
        if usable:
            return override
        log.warning("the explore model override %s is unavailable; using the chat's", override)
    elif malformed:
        log.warning("the explore model override is malformed; using the chat's model")
    return current


async def spawn(args: SpawnArgs, turn: AgentTurn, explore: bool) -> dict[str, Any]:
    parts: list[Part] = [TextPart(args.prompt)]
    title = normalize_title(args.title)
    model = await explore_model(turn.model_config_id) if explore else turn.model_config_id
    child_id = uuid.uuid4()
    async with in_transaction() as conn:
        await Chat.create(
            id=child_id,
            owner_id=turn.owner_id,
            parent_id=turn.chat_id,
            root_id=turn.root_id or turn.chat_id,
            workspace_id=turn.workspace_id,
            model_config_id=model,
            title=title or fallback_title(parts),
            status=ChatStatus.PENDING,
            mode=ChatMode.EXPLORE if explore else None,
            plan_mode=False,
            updated_at=datetime.now(UTC),
            using_db=conn,
        )
        message = await ChatMessage.create(
            chat_id=child_id,
            role=MessageRole.USER,
            parts=parts_to_json(parts),
            created_by_id=turn.owner_id,
            model_config_id=model,
            using_db=conn,
        )
    if turn.events is not None:
        await turn.events.message(child_id, message.id)
        await turn.events.status(turn.owner_id, child_id, ChatStatus.PENDING)
    return {
        "chatId": str(child_id),
        "mode": "explore" if explore else "general",
        "status": ChatStatus.PENDING.value,
    }


async def _spawn_agent(args: SpawnArgs, turn: AgentTurn) -> dict[str, Any]:
    return await spawn(args, turn, explore=False)


async def _spawn_explore_agent(args: SpawnArgs, turn: AgentTurn) -> dict[str, Any]:
    return await spawn(args, turn, explore=True)


SPAWN_TOOL = Tool.declare("spawn_agent", SPAWN_DESCRIPTION, SpawnArgs, _spawn_agent, timeout_s=30.0)
EXPLORE_TOOL = Tool.declare(
    "spawn_explore_agent", EXPLORE_DESCRIPTION, SpawnArgs, _spawn_explore_agent, timeout_s=30.0
)
