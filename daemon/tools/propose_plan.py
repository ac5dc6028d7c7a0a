"""``propose_plan``: hand the user the plan file the agent wrote.

The file's content becomes a chat file linked to the chat (so it survives the
workspace, and downloads like any upload); in plan mode the turn ends here
and the user decides what happens next.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from pydantic import Field
from tortoise.transactions import in_transaction

from daemon.tool_registry import Tool, ToolArgs, ToolError
from daemon.tools.paths import display_path, read_resolved, require_regular_file, resolve_path
from daemon.tools.turn_context import AgentTurn, WorkspacePath
from db.chat_files import link_files, store_file
from db.models import Chat

PLAN_MAX_BYTES = 32 * 1024
PLAN_TYPE = "text/markdown"

DESCRIPTION = (
    "Present your plan to the user: give the absolute path of the Markdown plan "
    "file you wrote (in plan mode, the chat's plan file). At most 32 KiB. In plan "
    "mode your turn ends here."
)


class ProposePlanArgs(ToolArgs):
    path: WorkspacePath = Field(description="Absolute path ending in .md.")


def _read(real: Any, shown: str) -> bytes:
    require_regular_file(real, shown)
    size = real.stat().st_size
    if size == 0:
        raise ToolError(f"{shown} is empty; write the plan first")
    if size > PLAN_MAX_BYTES:
        raise ToolError(f"{shown} is {size} bytes; a plan may be at most {PLAN_MAX_BYTES}")
    data: bytes = read_resolved(real, shown, PLAN_MAX_BYTES)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise ToolError(f"{shown} is not UTF-8 text") from None
    return data


async def propose_plan(args: ProposePlanArgs, turn: AgentTurn) -> dict[str, Any]:
    raw = args.path
    if not raw.lower().endswith(".md"):
        raise ToolError("the plan must be a Markdown file whose path ends in .md")
    if not os.path.isabs(raw):
        raise ToolError(f"give the plan file's absolute path (for example {turn.plan_path})")
    real = resolve_path(turn, raw)
    shown = display_path(turn, real)
    data = await asyncio.to_thread(_read, real, shown)
    meta, _ = await store_file(turn.owner_id, real.name, PLAN_TYPE, data)
    async with in_transaction() as conn:
        await Chat.filter(id=turn.chat_id).using_db(conn).select_for_update().first()
        warnings = await link_files(conn, turn.chat_id, [meta.id])
    result: dict[str, Any] = {
        "ok": True,
        "path": shown,
        "kind": "plan",
        "fileId": str(meta.id),
        "fileUrl": f"/files/{meta.id}",
        "mediaType": PLAN_TYPE,
    }
    if warnings:
        result["warnings"] = warnings
    return result


TOOL = Tool.declare("propose_plan", DESCRIPTION, ProposePlanArgs, propose_plan, timeout_s=30.0)
