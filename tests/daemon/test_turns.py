"""One turn, run directly with ``run_turn`` on a claimed chat (no daemon loop).

What is written per step and per tool result, what is only published, how tool
failures and provider failures end, and that database writes grow with steps,
never with tokens (P5).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.applications import Starlette

from daemon.providers import ToolSpec
from daemon.tool_registry import Tool, ToolRegistry
from daemon.turn_runner import Turn, TurnSettings, run_turn
from db.model_resolution import default_model_config
from db.models import AiRequestLog, Chat, ChatMessage, ModelConfig, User
from db.vocabulary import ChatStatus, MessageRole
from events import live_steps
from events.announcer import ChatAnnouncer
from events.channels import chat_channel
from events.hub import EventHub
from events.payloads import WorkAvailable
from events.wire import as_json
from resolvers.accounts import create_user
from tests.conftest import make_settings
from tests.daemon.live import messages_of, running_app, stored_text
from tests.harness import PASSWORD, counted_queries

_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


async def count_tool(args: dict[str, Any], turn: Any) -> Any:
    return {"count": len(args)}


async def failing_tool(args: dict[str, Any], turn: Any) -> Any:
    raise ValueError("the disk is on fire")


async def sleepy_tool(args: dict[str, Any], turn: Any) -> Any:
    await asyncio.sleep(5)
    return "too late"


def spec(name: str) -> ToolSpec:
    return ToolSpec(name, f"The {name} tool.", {"type": "object", "properties": {}})


TOOLS = ToolRegistry(
    [
        Tool(spec("count"), count_tool),
        Tool(spec("explode"), failing_tool),
        Tool(spec("sleepy"), sleepy_tool, timeout_s=0.05),
    ]
)
FAST = TurnSettings(coalesce_s=0.02, retry_base_s=0.01, retry_max_s=0.02)


@pytest.fixture(scope="module")
async def app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Starlette]:
    settings = make_settings(database_url, tmp_path_factory)
    async with running_app(settings, run_daemon=False) as application:
        yield application


@pytest.fixture(scope="module")
async def owner(app: Starlette) -> User:
    return await create_user("turner", PASSWORD)


async def claimed_chat(
    owner: User, text: str, worker: uuid.UUID, *, model: ModelConfig | None = None
) -> Chat:
    """A chat as a worker holds it after claiming: RUNNING, its worker id, one message."""
    config = model or await default_model_config()
    assert config is not None
    chat_id = uuid.uuid4()
    now = datetime.now(UTC)
    chat = await Chat.create(
        id=chat_id,
        owner_id=owner.id,
        root_id=chat_id,
        title="Renamed by hand",  # not the fallback: no automatic title in these turns
        status=ChatStatus.RUNNING,
        worker_id=worker,
        started_at=now,
        heartbeat_at=now,
        model_config_id=config.id,
        updated_at=now,
    )
    await ChatMessage.create(
        chat_id=chat_id,
        role=MessageRole.USER,
        parts=[{"type": "text", "text": text}],
        created_by_id=owner.id,
        model_config_id=config.id,
    )
    return chat


def turn_for(app: Starlette, chat: Chat, settings: TurnSettings = FAST) -> Turn:
    return Turn(
        chat_id=chat.id,
        owner_id=chat.owner_id,  # type: ignore[attr-defined]
        model_config_id=chat.model_config_id,
        worker_id=chat.worker_id,  # type: ignore[arg-type]
        events=ChatAnnouncer(app.state.event_hub),
        secrets=app.state.secrets,
        tools=TOOLS,
        settings=settings,
    )


@contextlib.asynccontextmanager
async def published(app: Starlette, chat_id: uuid.UUID) -> AsyncIterator[list[dict[str, Any]]]:
    """Everything published on the chat's channel while the block runs."""
    hub: EventHub = app.state.event_hub
    seen: list[dict[str, Any]] = []
    async with hub.subscribe(chat_channel(chat_id)) as subscription:
        yield seen
        end = WorkAvailable(uuid.uuid4())  # off its channel: every stream ignores it
        await hub.publish(chat_channel(chat_id), end)
        while True:
            event = await asyncio.wait_for(subscription.get(), 5)
            if event == end:
                break
            seen.append(as_json(event))


# -- 8. P5: writes grow with steps, not tokens -----------------------------------------


async def turn_writes(app: Starlette, owner: User, words: int) -> tuple[list[str], int, list[Any]]:
    """A two-step turn (a reply of ``words`` words and a tool call, then the tool's
    summary): the SQL writes it sent, how many statements in all, what it published."""
    reply = " ".join(f"t{i}" for i in range(words))
    chat = await claimed_chat(owner, f"/slow 1\n/reply {reply}\n/tool count {{}}", uuid.uuid4())
    async with published(app, chat.id) as events:
        with counted_queries() as sent:
            await run_turn(turn_for(app, chat))
    assert [m.role for m in await messages_of(chat.id)] == [
        MessageRole.USER,
        MessageRole.ASSISTANT,
        MessageRole.TOOL,
        MessageRole.ASSISTANT,
    ]
    first = (await messages_of(chat.id, MessageRole.ASSISTANT))[0]
    assert stored_text(first.parts) == reply
    assert (await Chat.get(id=chat.id)).status is ChatStatus.WAITING
    return [q for q in sent if _WRITE.match(q)], len(sent), events


async def test_database_writes_grow_with_steps_not_tokens(app: Starlette, owner: User) -> None:
    small_writes, small_total, small_events = await turn_writes(app, owner, 18)
    large_writes, large_total, large_events = await turn_writes(app, owner, 1998)

    assert len(small_writes) == len(large_writes), (small_writes, large_writes)
    assert small_total == large_total  # reads do not grow with tokens either
    inserts = [q for q in large_writes if q.lstrip().upper().startswith("INSERT")]
    # two assistant steps and one tool result, and each step's request-log row
    assert len(inserts) == 5
    # The large turn really streamed: many coalesced deltas went out live...
    large_deltas = [e for e in large_events if e["kind"] == "part"]
    small_deltas = [e for e in small_events if e["kind"] == "part"]
    assert len(large_deltas) > 10 * max(1, len(small_deltas) // 2)
    assert len(large_deltas) < 1998  # ...coalesced, not one per token
    end = next(i for i, e in enumerate(large_events) if e["kind"] == "message")
    first_step = [e for e in large_events[:end] if e["kind"] == "part"]
    streamed = "".join(e["part"].get("text", "") for e in first_step if e["partIndex"] == 0)
    assert streamed.split() == [f"t{i}" for i in range(1998)]


async def test_each_model_call_is_in_the_request_logs_with_its_chat(
    app: Starlette, owner: User
) -> None:
    chat = await claimed_chat(owner, "/reply one two three\n/tool count {}", uuid.uuid4())
    await run_turn(turn_for(app, chat))
    steps = await ChatMessage.filter(chat_id=chat.id, role=MessageRole.ASSISTANT).order_by("id")
    logs = await AiRequestLog.filter(chat_id=chat.id).order_by("id")
    assert len(logs) == len(steps) == 2
    for step, log in zip(steps, logs, strict=True):
        assert (log.client, log.endpoint, log.stream, log.status) == (
            "AGENTGQL",
            "stream",
            True,
            200,
        )
        assert log.user_id == owner.id  # type: ignore[attr-defined]
        assert (log.input_tokens, log.output_tokens) == (step.input_tokens, step.output_tokens)
        assert log.cost_micros == step.total_cost_micros
        assert log.duration_ms == step.runtime_ms


# -- tools ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "error"),
    [
        ("/tool nope {}", "unknown tool 'nope'"),
        ("/tool explode {}", "ValueError: the disk is on fire"),
        ("/tool sleepy {}", "sleepy timed out after 0.05s"),
    ],
    ids=["unknown", "raises", "times-out"],
)
async def test_a_failing_tool_is_a_result_the_model_reads_not_a_failed_turn(
    app: Starlette, owner: User, script: str, error: str
) -> None:
    chat = await claimed_chat(owner, f"{script}\n{uuid.uuid4().hex}", uuid.uuid4())
    await run_turn(turn_for(app, chat))
    rows = await messages_of(chat.id)
    assert [r.role for r in rows] == [
        MessageRole.USER,
        MessageRole.ASSISTANT,
        MessageRole.TOOL,
        MessageRole.ASSISTANT,
    ]
    [result] = rows[2].parts
    assert result["type"] == "tool-result"
    assert result["isError"] is True
    assert result["result"] == {"error": error}
    assert stored_text(rows[3].parts).startswith(f"Tool {result['toolName']} failed:")
    row = await Chat.get(id=chat.id)
    assert row.status is ChatStatus.WAITING
    assert row.last_error is None


# -- provider failures ------------------------------------------------------------------


async def test_a_dropped_stream_is_retried_from_the_start_of_the_step(
    app: Starlette, owner: User
) -> None:
    words = f"the whole reply once {uuid.uuid4().hex[:6]}"
    chat = await claimed_chat(owner, f"/slow 10\n/cut 3 1\n{words}", uuid.uuid4())
    async with published(app, chat.id) as events:
        await run_turn(turn_for(app, chat))
    retries = [e for e in events if e["kind"] == "retry"]
    assert [r["attempt"] for r in retries] == [1]
    assert retries[0]["error"]["kind"] == "generic"
    assert retries[0]["error"]["retryable"]
    replies = await messages_of(chat.id, MessageRole.ASSISTANT)
    assert [stored_text(r.parts) for r in replies] == [f"You said: {words}"]
    kinds = [e["kind"] for e in events]
    # The cut attempt's words went out live before the retry was announced.
    assert kinds.index("part") < kinds.index("retry") < kinds.index("message")
    assert live_steps.current(chat.id) is None


async def test_an_unusable_model_ends_in_error_with_config(app: Starlette, owner: User) -> None:
    config = await default_model_config()
    assert config is not None
    disabled = await ModelConfig.create(
        provider_id=config.provider_id,  # type: ignore[attr-defined]
        model="scripted-off",
        display_name="Switched off",
        context_limit=1000,
        enabled=False,
    )
    chat = await claimed_chat(owner, "hello", uuid.uuid4(), model=disabled)
    async with published(app, chat.id) as events:
        await run_turn(turn_for(app, chat))
    row = await Chat.get(id=chat.id)
    assert row.status is ChatStatus.ERROR
    assert row.worker_id is None
    assert row.last_error["kind"] == "config"
    assert row.last_error["retryable"] is False
    assert [e["error"] for e in events if e["kind"] == "error"] == [row.last_error]
    assert [e["status"] for e in events if e["kind"] == "status"] == ["running", "error"]


async def test_a_turn_whose_chat_was_taken_over_writes_nothing(app: Starlette, owner: User) -> None:
    chat = await claimed_chat(owner, f"/slow 20\nsome words here {uuid.uuid4().hex}", uuid.uuid4())
    turn = turn_for(app, chat)
    task = asyncio.create_task(run_turn(turn))
    other = uuid.uuid4()
    await Chat.filter(id=chat.id).update(worker_id=other)  # another worker owns it now
    await task
    assert not await messages_of(chat.id, MessageRole.ASSISTANT)
    row = await Chat.get(id=chat.id)
    assert (row.status, row.worker_id) == (ChatStatus.RUNNING, other)  # its owner decides
