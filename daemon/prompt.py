"""Building the model request for a chat from what is stored.

System text, in this order (pieces joined by a blank line, empty ones left out):

1. the deployment prompt: ``[built-in default?, admin's custom prompt?]``
   (``db.system_prompt``; the default alone when the setting can't be read);
2. the chat's own system messages (model-only rows written at creation from
   ``createChat``'s ``systemPrompt``), then, for a delegated chat, the
   sub-agent note: both say what this chat is, so they follow the deployment
   prompt directly;
3. the workspace's context files (``AGENTS.md`` and equivalents, one delimited
   ``<workspace-context-files>`` section, ``daemon.context_files``);
4. the owner's personal instructions, as ``<user-instructions>``;
5. the mode overlay: explore, or plan mode's text with the plan file followed by
   the admin's plan-mode instructions.

``system_prompt`` returns the text with what it took from the workspace
(``SystemPrompt.context_files``, for debug logging); ``for_turn`` does the same
for a running turn; ``system_text`` returns just the text.

History: the messages the model may see (visibility model or both, not
deleted), starting at the latest compaction summary when there is one, with
attached files' bytes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, cast

from daemon.context_files import ContextFiles, read_context_files
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


@dataclass(frozen=True)
class SystemPrompt:
    text: str
    context_files: ContextFiles = field(default_factory=ContextFiles)


async def system_prompt(
    chat_id: uuid.UUID,
    owner_id: uuid.UUID,
    policy: ToolPolicy | None = None,
    plan_file: str | None = None,
    *,
    workspace_dir: Path | None = None,
    workspace_id: uuid.UUID | None = None,
) -> SystemPrompt:
    """The system text in the module's documented order; the context files are
    read from ``workspace_dir`` (none without one)."""
    pieces = [await deployment_system_prompt()]
    pieces.extend(await _chat_system_messages(chat_id))
    if policy is not None and not policy.is_root:
        pieces.append(SUB_AGENT)
    context = await read_context_files(workspace_dir, workspace_id)
    pieces.append(context.text)
    pieces.append(await user_instructions(owner_id) or "")
    if policy is not None and policy.explore:
        pieces.append(EXPLORE)
    elif policy is not None and policy.plan_mode:
        pieces.append(PLANNING.format(plan=plan_file or "(create a workspace first)"))
        pieces.append((await plan_mode_instructions()).strip())
    return SystemPrompt("\n\n".join(p for p in pieces if p), context)


class PromptTurn(Protocol):
    """What ``for_turn`` reads of a running turn (``daemon.turn.Turn``)."""

    chat_id: uuid.UUID
    owner_id: uuid.UUID
    policy: ToolPolicy
    plan_path: str | None
    workspace_dir: Path | None
    workspace_id: uuid.UUID | None


async def for_turn(turn: PromptTurn) -> SystemPrompt:
    """The turn's system prompt, context files read from its workspace now."""
    return await system_prompt(
        turn.chat_id,
        turn.owner_id,
        turn.policy,
        turn.plan_path,
        workspace_dir=turn.workspace_dir,
        workspace_id=turn.workspace_id,
    )


async def system_text(
    chat_id: uuid.UUID,
    owner_id: uuid.UUID,
    policy: ToolPolicy | None = None,
    plan_file: str | None = None,
    *,
    workspace_dir: Path | None = None,
    workspace_id: uuid.UUID | None = None,
) -> str:
    built = await system_prompt(
        chat_id,
        owner_id,
        policy,
        plan_file,
        workspace_dir=workspace_dir,
        workspace_id=workspace_id,
    )
    return built.text


async def _chat_system_messages(chat_id: uuid.UUID) -> list[str]:
    rows = await ChatMessage.filter(
        chat_id=chat_id, role=MessageRole.SYSTEM, deleted=False
    ).order_by("id")
    texts = (
        " ".join(p.text for p in parts_from_json(row.parts) if isinstance(p, TextPart)).strip()
        for row in rows
    )
    return [text for text in texts if text]


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
