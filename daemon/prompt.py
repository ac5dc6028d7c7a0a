"""Building the model request for a chat from what is stored.

System text: the deployment prompt, the chat's own system messages (model-only
rows written at creation), then the owner's personal instructions. History: the
messages the model may see (visibility model or both, not deleted), starting at
the latest compaction summary when there is one, with attached files' bytes.
"""

from __future__ import annotations

import uuid
from typing import Literal, cast

from daemon.providers import InlineFile, ModelMessage
from daemon.tool_policy import ToolPolicy
from db.chat_config import plan_mode_instructions
from db.chat_files import file_blobs, part_file_ids
from db.models import ChatMessage
from db.parts import TextPart, parts_from_json
from db.system_prompt import deployment_system_prompt, user_instructions
from db.vocabulary import MessageRole, Visibility

SUB_AGENT = (
    "You are running as a delegated sub-agent chat. Do the task you were given, "
    "then reply with what you found or did: your final message is the result."
)
EXPLORE = (
    "You are in explore mode: read files and run read-only commands to answer the "
    "question. You cannot change files or start other agents."
)
PLANNING = (
    "You are in plan mode: explore the workspace, write your plan to the plan file "
    "{plan}, then call propose_plan with that path. Do not implement anything yet; "
    "ask the user with ask_user_question when a decision is theirs."
)


async def system_text(
    chat_id: uuid.UUID,
    owner_id: uuid.UUID,
    policy: ToolPolicy | None = None,
    plan_file: str | None = None,
) -> str:
    """Deployment prompt, chat system messages, sub-agent note, personal
    instructions, then the mode overlay (Part B §4.9 order)."""
    pieces = [await deployment_system_prompt()]
    rows = await ChatMessage.filter(
        chat_id=chat_id, role=MessageRole.SYSTEM, deleted=False
    ).order_by("id")
    for row in rows:
        text = " ".join(p.text for p in parts_from_json(row.parts) if isinstance(p, TextPart))
        if text.strip():
            pieces.append(text.strip())
    if policy is not None and not policy.is_root:
        pieces.append(SUB_AGENT)
    personal = await user_instructions(owner_id)
    if personal:
        pieces.append(personal)
    if policy is not None and policy.explore:
        pieces.append(EXPLORE)
    elif policy is not None and policy.plan_mode:
        pieces.append(PLANNING.format(plan=plan_file or "(create a workspace first)"))
        extra = await plan_mode_instructions()
        if extra.strip():
            pieces.append(extra.strip())
    return "\n\n".join(p for p in pieces if p)


async def history(
    chat_id: uuid.UUID, files: dict[uuid.UUID, InlineFile] | None = None
) -> list[ModelMessage]:
    """``files`` caches attachments across the steps of one turn (files are
    immutable, so bytes read once stay right)."""
    visible = ChatMessage.filter(chat_id=chat_id, deleted=False).exclude(visibility=Visibility.USER)
    summary = await visible.filter(compressed=True, role=MessageRole.USER).order_by("-id").first()
    rows = visible.exclude(role=MessageRole.SYSTEM).order_by("id")
    if summary is not None:
        rows = rows.filter(id__gte=summary.id)
    messages: list[ModelMessage] = []
    for row in await rows:
        role = cast(Literal["user", "assistant", "tool"], row.role.value)
        messages.append(ModelMessage(role=role, parts=parts_from_json(row.parts)))
    await _attach_files(messages, {} if files is None else files)
    return messages


async def _attach_files(messages: list[ModelMessage], cache: dict[uuid.UUID, InlineFile]) -> None:
    """Read attached files' bytes now, at dispatch: the rows keep only ids."""
    wanted = part_file_ids(p for m in messages if m.role == "user" for p in m.parts)
    missing = [key for key in wanted if key not in cache]
    if missing:
        for key, blob in (await file_blobs(missing)).items():
            cache[key] = InlineFile(blob.meta.name, blob.meta.mime_type, blob.data)
    for message in messages:
        for key in part_file_ids(message.parts):
            if key in cache:
                message.files[str(key)] = cache[key]
