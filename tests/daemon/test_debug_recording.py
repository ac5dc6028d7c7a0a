"""Debug recording of turns, run directly with ``run_turn`` on a claimed chat.

What a logged turn writes (a run, a step per model call with its request,
reply, usage and attempts), that secrets never reach the rows, that a cancelled
turn's run ends INTERRUPTED, and what it costs: nothing with logging off, one
statement per step with it on.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette

from daemon import compaction, spending
from daemon.debug_recorder import close_stale
from daemon.providers import ToolSpec, make_client
from daemon.titles import regenerate_title
from daemon.tool_registry import Tool, ToolRegistry
from daemon.turn_runner import Turn, TurnSettings, run_turn
from db import debug_runs
from db.model_resolution import default_model_config, resolve_model
from db.models import Chat, ChatMessage, DebugRun, DebugRunKind, DebugStatus, DebugStep, User
from db.raw_sql import fetch
from db.retention import purge_expired
from db.vocabulary import ChatMode, ChatStatus, MessageRole
from events.announcer import ChatAnnouncer
from events.channels import chat_channel
from events.payloads import PartDelta
from resolvers.accounts import create_user
from tests.conftest import make_settings
from tests.daemon.live import messages_of, running_app
from tests.harness import PASSWORD, counted_queries

PROVIDER_KEY = "sk-ant-api03-Zx8Qw2Lk5Vn9Rt4Yp7Hs1Jd6Fg3Mb0Ce"
BEARER = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtZSJ9.Q2x4Vb9Nm3Lk7Jh5Gf1Ds8Az"
OWN_TOKEN = "agq_Hq3Zr8Vx2Lm9Kt5Wb7Yn1Pd4Fs6Jc0Ge"
SECRETS = (PROVIDER_KEY, "eyJhbGciOiJIUzI1NiJ9", OWN_TOKEN)
_WRITE = re.compile(r"\b(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


async def count_tool(args: dict[str, Any], turn: Any) -> Any:
    return {"count": len(args)}


async def leak_tool(args: dict[str, Any], turn: Any) -> Any:
    """A tool whose output carries what a careless command prints."""
    return {
        "stdout": f"ANTHROPIC_API_KEY={PROVIDER_KEY}\nnext line",
        "headers": {"Authorization": BEARER, "x-ratelimit-remaining-tokens": 99},
        "note": f"your token is {OWN_TOKEN} keep it safe",
    }


def spec(name: str) -> ToolSpec:
    return ToolSpec(name, f"The {name} tool.", {"type": "object", "properties": {}})


TOOLS = ToolRegistry([Tool(spec("count"), count_tool), Tool(spec("leak"), leak_tool)])
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
    return await create_user("recorded", PASSWORD)


async def claimed_chat(
    owner: User, text: str, *, logged: bool | None = True, mode: ChatMode | None = None
) -> Chat:
    """A chat as a worker holds it after claiming, with its override set."""
    config = await default_model_config()
    assert config is not None
    chat_id, now = uuid.uuid4(), datetime.now(UTC)
    chat = await Chat.create(
        id=chat_id,
        owner_id=owner.id,
        root_id=chat_id,
        title="Named",
        status=ChatStatus.RUNNING,
        worker_id=uuid.uuid4(),
        started_at=now,
        heartbeat_at=now,
        model_config_id=config.id,
        updated_at=now,
        mode=mode,
        debug_logging_override=logged,
    )
    await ChatMessage.create(
        chat_id=chat_id,
        role=MessageRole.USER,
        parts=[{"type": "text", "text": text}],
        created_by_id=owner.id,
    )
    return chat


def turn_for(app: Starlette, chat: Chat) -> Turn:
    return Turn(
        chat_id=chat.id,
        owner_id=chat.owner_id,  # type: ignore[attr-defined]
        model_config_id=chat.model_config_id,
        worker_id=chat.worker_id,  # type: ignore[arg-type]
        events=ChatAnnouncer(app.state.event_hub),
        secrets=app.state.secrets,
        tools=TOOLS,
        settings=FAST,
        started_at=chat.started_at,
    )


async def the_run(chat: Chat) -> tuple[DebugRun, list[DebugStep]]:
    [run] = await DebugRun.filter(chat_id=chat.id)
    steps = await DebugStep.filter(run_id=run.id).order_by("step_index")
    return run, list(steps)


async def test_a_logged_turn_with_a_tool_call_records_each_step_and_its_usage(
    app: Starlette, owner: User
) -> None:
    chat = await claimed_chat(owner, f"/tool count {{}}\n{uuid.uuid4().hex}")
    await run_turn(turn_for(app, chat))

    run, steps = await the_run(chat)
    assert (run.kind, run.status, run.step_count) == (
        DebugRunKind.CHAT_TURN,
        DebugStatus.COMPLETED,
        2,
    )
    assert (run.provider, run.root_chat_id, run.finished_at is not None) == (
        "scripted",
        chat.id,
        True,
    )
    first, second = steps
    assert [s.operation for s in steps] == ["stream", "stream"]
    assert [s.status for s in steps] == [DebugStatus.COMPLETED] * 2
    assert [len(s.attempts) for s in steps] == [1, 1]
    # The request: system prompt first, the history as message parts, the tools.
    roles = [m["role"] for m in first.request["messages"]]
    assert roles == ["system", "user"]
    assert {t["name"] for t in first.request["tools"]} == {"count", "leak"}
    assert first.request["tools"][0]["inputSchema"] == {"type": "object", "properties": {}}
    assert first.response["finishReason"] == "tool_calls"
    assert [c["toolName"] for c in first.response["toolCalls"]] == ["count"]
    assert [m["role"] for m in second.request["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
    ]
    assert second.response["finishReason"] == "stop"
    assert second.response["parts"][0]["text"].startswith("Tool count returned")
    # Usage per step is the step message's; the run's is their sum.
    replies = await messages_of(chat.id, MessageRole.ASSISTANT)
    for step, message in zip(steps, replies, strict=True):
        assert step.usage["input_tokens"] == message.input_tokens
        assert step.usage["output_tokens"] == message.output_tokens
    assert run.usage["input_tokens"] == sum(m.input_tokens or 0 for m in replies)
    assert run.usage["output_tokens"] == sum(m.output_tokens or 0 for m in replies)


async def test_secrets_in_tool_output_and_messages_never_reach_the_debug_tables(
    app: Starlette, owner: User
) -> None:
    chat = await claimed_chat(owner, f"/tool leak {{}}\nmy key is {PROVIDER_KEY}")
    await run_turn(turn_for(app, chat))

    # The conversation itself keeps what the tool returned (it is the chat's content)...
    stored = str([m.parts for m in await messages_of(chat.id)])
    assert PROVIDER_KEY in stored
    # ...but not one raw debug row does: requests, replies, attempts, errors, runs.
    rows = await fetch(
        "SELECT s.request::text || s.response::text || s.attempts::text"
        " || coalesce(s.error::text, '') || row_to_json(r)::text AS raw"
        " FROM chat_debug_steps s JOIN chat_debug_runs r ON r.id = s.run_id"
        " WHERE r.chat_id = $1",
        chat.id,
    )
    assert len(rows) == 2
    for row in rows:
        for secret in SECRETS:
            assert secret not in row["raw"]
        assert "Bearer" not in row["raw"] or "Bearer [REDACTED]" in row["raw"]
    _, steps = await the_run(chat)
    result = steps[1].request["messages"][-1]["parts"][0]["result"]
    assert result["headers"] == {
        "Authorization": "[REDACTED]",
        "x-ratelimit-remaining-tokens": 99,  # rate-limit counters are kept
    }
    assert result["stdout"] == "ANTHROPIC_API_KEY=[REDACTED]\nnext line"


async def test_an_interrupted_turn_ends_its_run_interrupted(app: Starlette, owner: User) -> None:
    chat = await claimed_chat(owner, f"/slow 200\nfour words take long {uuid.uuid4().hex}")
    turn = turn_for(app, chat)
    async with app.state.event_hub.subscribe(chat_channel(chat.id)) as events:
        task = asyncio.create_task(run_turn(turn))
        # The model is streaming its first words: the step is under way.
        while not isinstance(await events.get(timeout=10), PartDelta):
            pass
    turn.stop_reason = "interrupted"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    run, [step] = await the_run(chat)
    assert run.status is DebugStatus.INTERRUPTED
    assert run.finished_at is not None
    assert step.status is DebugStatus.INTERRUPTED
    assert step.attempts[0]["status"] == "INTERRUPTED"


async def test_a_failed_turn_ends_its_run_with_the_error(app: Starlette, owner: User) -> None:
    chat = await claimed_chat(owner, f"/fail auth\n{uuid.uuid4().hex}")
    await run_turn(turn_for(app, chat))

    run, [step] = await the_run(chat)
    assert run.status is DebugStatus.ERROR
    assert run.error["kind"] == "auth"
    assert step.error["kind"] == "auth"


async def test_a_retried_call_is_one_step_with_each_attempt(app: Starlette, owner: User) -> None:
    chat = await claimed_chat(owner, f"/fail overloaded 2\nthird time lucky {uuid.uuid4().hex}")
    await run_turn(turn_for(app, chat))

    run, [step] = await the_run(chat)
    assert run.status is DebugStatus.COMPLETED
    assert [a["status"] for a in step.attempts] == ["ERROR", "ERROR", "COMPLETED"]
    assert [a["error"]["kind"] for a in step.attempts[:2]] == ["overloaded", "overloaded"]
    assert step.attempts[2]["error"] is None


async def test_an_explore_child_is_recorded_as_explore(app: Starlette, owner: User) -> None:
    chat = await claimed_chat(owner, f"look around {uuid.uuid4().hex}", mode=ChatMode.EXPLORE)
    await run_turn(turn_for(app, chat))
    run, _ = await the_run(chat)
    assert run.kind is DebugRunKind.EXPLORE


# -- what it costs ------------------------------------------------------------------------


async def writes_of_a_turn(app: Starlette, owner: User, text: str, logged: bool) -> list[str]:
    chat = await claimed_chat(owner, f"{text}\n{uuid.uuid4().hex}", logged=logged)
    with counted_queries() as sent:
        await run_turn(turn_for(app, chat))
    assert (await Chat.get(id=chat.id)).status is ChatStatus.WAITING
    return [q for q in sent if _WRITE.search(q)]


async def test_with_logging_off_nothing_is_written(app: Starlette, owner: User) -> None:
    chat = await claimed_chat(owner, f"/tool count {{}}\n{uuid.uuid4().hex}", logged=False)
    with counted_queries() as sent:
        await run_turn(turn_for(app, chat))
    assert [q for q in sent if "chat_debug" in q] == []
    assert await DebugRun.filter(chat_id=chat.id).count() == 0


@pytest.mark.parametrize(("script", "steps"), [("plain words", 1), ("/tool count {}", 2)])
async def test_a_logged_turn_costs_one_statement_per_step_plus_its_run(
    app: Starlette, owner: User, script: str, steps: int
) -> None:
    plain = await writes_of_a_turn(app, owner, script, logged=False)
    logged = await writes_of_a_turn(app, owner, script, logged=True)
    debug = [q for q in logged if "chat_debug" in q]
    assert len(logged) - len(plain) == len(debug)  # nothing else changed
    # One statement per step (the step and the run's totals together), plus the
    # run opening and closing.
    step_writes = [q for q in debug if "chat_debug_steps" in q]
    assert len(step_writes) == steps
    assert len(debug) == steps + 2


# -- abandoned runs and retention --------------------------------------------------------


async def test_runs_nothing_records_any_more_are_closed_interrupted(
    app: Starlette, owner: User
) -> None:
    chat = await claimed_chat(owner, "never run")
    target = await debug_runs.target(chat.id)
    assert target is not None
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    dead_worker, live_worker = uuid.uuid4(), chat.worker_id
    for worker in (dead_worker, live_worker):
        await debug_runs.open_run(
            debug_runs.NewRun(
                uuid.uuid4(),
                target,
                DebugRunKind.CHAT_TURN,
                "scripted",
                "m",
                None,
                worker,
                long_ago,
            )
        )
    assert await close_stale(None, stale_after_s=60) >= 1
    statuses = {r.worker_id: r.status for r in await DebugRun.filter(chat_id=chat.id)}
    # The chat is still held by the live worker: its run is not abandoned.
    assert statuses == {dead_worker: DebugStatus.INTERRUPTED, live_worker: DebugStatus.IN_PROGRESS}


async def test_retention_deletes_only_runs_older_than_the_period_with_their_steps(
    app: Starlette, owner: User
) -> None:
    chat = await claimed_chat(owner, "kept forever")
    target = await debug_runs.target(chat.id)
    assert target is not None
    now = datetime.now(UTC)
    ages = {40: uuid.uuid4(), 20: uuid.uuid4(), 0: uuid.uuid4()}
    for days, run_id in ages.items():
        at = now - timedelta(days=days)
        await debug_runs.open_run(
            debug_runs.NewRun(
                id=run_id,
                target=target,
                kind=DebugRunKind.CHAT_TURN,
                provider="scripted",
                model="m",
                model_config_id=None,
                worker_id=None,
                started_at=at,
            )
        )
        step = debug_runs.StepRecord(
            index=0,
            operation="stream",
            status=DebugStatus.COMPLETED,
            attempts=[],
            started_at=at,
            duration_ms=1,
            usage=None,
            request={"model": "m", "messages": [], "tools": [], "options": {}},
            response=None,
            error=None,
        )
        await debug_runs.write_step(run_id, step, None, None)

    await debug_runs.write_settings(debug_runs.DebugLoggingSettings(retention_days=30))
    first = await purge_expired(now=now, batch=1)  # batches of one: the loop drains
    await debug_runs.write_settings(debug_runs.DebugLoggingSettings(retention_days=10))
    second = await purge_expired(now=now)
    await debug_runs.write_settings(debug_runs.DebugLoggingSettings())

    assert (first.debug_runs, second.debug_runs) == (1, 1)
    left = {r.id for r in await DebugRun.filter(chat_id=chat.id)}
    assert left == {ages[0]}
    assert await DebugStep.filter(run_id__in=list(ages.values())).count() == 1
    assert await ChatMessage.filter(chat_id=chat.id).count() == 1  # messages are not debug rows


# -- titles and compaction ---------------------------------------------------------------


async def test_a_title_generation_is_a_run_of_one_generate_step(
    app: Starlette, owner: User
) -> None:
    chat = await claimed_chat(owner, f"name this chat {uuid.uuid4().hex}")
    await Chat.filter(id=chat.id).update(status=ChatStatus.WAITING, worker_id=None)
    title = await regenerate_title(chat.id, app.state.secrets, None)
    assert title

    run, [step] = await the_run(chat)
    assert (run.kind, run.status) == (DebugRunKind.TITLE_GENERATION, DebugStatus.COMPLETED)
    assert step.operation == "generate"
    assert step.response["parts"][0]["text"].startswith("You said:")
    assert step.usage is not None


async def test_a_compaction_is_a_run_of_its_own(app: Starlette, owner: User) -> None:
    chat = await claimed_chat(owner, f"a long conversation {uuid.uuid4().hex}")
    model = await resolve_model(chat.model_config_id, owner.id, app.state.secrets)
    load = compaction.Pressure(
        usage_percent=80.0, threshold=70, context_tokens=800, context_limit=1000
    )
    payer = spending.Payer(owner.id, chat.id, chat.id)
    client = make_client("scripted", api_key=None, base_url=None)
    assert await compaction.compact(chat.id, model, client, load, None, payer)

    run, [step] = await the_run(chat)
    assert (run.kind, run.status) == (DebugRunKind.COMPACTION, DebugStatus.COMPLETED)
    assert step.operation == "generate"
    assert step.request["messages"][0]["parts"][0]["text"] == compaction.INSTRUCTION
