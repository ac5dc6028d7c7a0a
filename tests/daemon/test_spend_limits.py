"""Spend limits in the daemon: a user's limit is never overshot, however many
turns run at once on however many daemons.

Two daemons are built by hand on this module's app (which runs none of its own)
and talk to the fake provider over real HTTP. The billed model has no input
price and USD 50 per million output tokens, and its maximum output is 1000
tokens: the hold of one step is exactly USD 0.05, and the fake reports 1000
output tokens, so a step costs exactly what it held.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette

from daemon import compaction, spending
from daemon.chat_daemon import ChatDaemon, DaemonSettings
from daemon.providers import ModelMessage, ModelRequest, ToolSpec, make_client
from daemon.providers.anthropic_client import DEFAULT_MAX_TOKENS
from daemon.spending import IMAGE_TOKENS_MAX, TOOLS_OVERHEAD_TOKENS, input_token_bound
from daemon.tool_registry import ToolRegistry
from daemon.turn_runner import Turn, TurnSettings, run_turn
from db import spend
from db.costing import ModelPrices
from db.model_resolution import KeySource, ResolvedModel
from db.models import (
    Chat,
    ChatMessage,
    CostChatDay,
    CostUserDay,
    ModelConfig,
    Provider,
    SpendCounter,
    SpendHold,
    User,
)
from db.parts import FilePart, TextPart
from db.raw_sql import fetch
from db.titles import fallback_title
from db.usage_limits import LimitSettings, limit_status, period_start, write_settings
from db.vocabulary import ChatStatus, MessageRole, ProviderKind, UsageLimitPeriod
from events import live_steps
from events.announcer import ChatAnnouncer
from events.channels import WORK_CHANNEL
from resolvers import global_id
from resolvers.accounts import create_user
from tests.conftest import login_token, make_settings
from tests.daemon.fake_llm import (
    TEST_KEY,
    FakeLlm,
    SseReply,
    anthropic_stream,
    openai_stream,
    openai_usage,
    serve,
)
from tests.daemon.live import (
    CREATE_CHAT,
    ECHO,
    INTERRUPT,
    REGENERATE_TITLE,
    chat_uuid,
    eventually,
    read_chat,
    running_app,
)
from tests.harness import PASSWORD, GraphQLClient, scripted_model

LIMIT = 1_000_000  # USD 1.00
TURN_COST = 50_000  # USD 0.05
MAX_OUTPUT = 1000
OUTPUT_PRICE = 50_000_000  # USD 50 per million output tokens: 1000 tokens are USD 0.05
SENT = 50
SETTLE_S = 45.0  # a deadline for a loaded machine; the test takes seconds

DAEMON = DaemonSettings(
    poll_s=0.1,
    heartbeat_s=0.1,
    hold_sweep_s=0.1,
    stale_after_s=30.0,
    max_chats=SENT,  # every chat claimed at once: their holds race
    turn=TurnSettings(coalesce_s=0.02, retry_base_s=0.02, retry_max_s=0.05),
)


def billed_reply(text: str = "Done.") -> SseReply:
    """One step's reply: 1000 output tokens (200 of them reasoning), a cached prompt."""
    usage = openai_usage(900, MAX_OUTPUT, cached=512, reasoning=200)
    return SseReply(openai_stream(text=[text], usage=usage))


@pytest.fixture(scope="module")
async def app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Starlette]:
    """Database and hub only: the daemons are started by each test."""
    settings = make_settings(database_url, tmp_path_factory)
    async with running_app(settings, run_daemon=False) as application:
        yield application


@pytest.fixture(scope="module")
async def served_llm() -> AsyncIterator[FakeLlm]:
    fake = FakeLlm()
    async with serve(fake):
        yield fake


@pytest.fixture
def llm(served_llm: FakeLlm) -> FakeLlm:
    served_llm.reset()
    return served_llm


@dataclass(frozen=True)
class Models:
    billed: ModelConfig  # USD 0.05 a step
    unpriced: ModelConfig
    titled: ModelConfig  # USD 2 / 8 per million tokens, for titles and compaction
    scripted: Provider


@pytest.fixture(scope="module")
async def models(app: Starlette, served_llm: FakeLlm) -> Models:
    provider = await Provider.create(
        kind=ProviderKind.OPENAI,
        display_name="OpenAI",
        base_url=f"{served_llm.url}/v1",
        api_key_ciphertext=app.state.secrets.encrypt(TEST_KEY),
    )

    async def config(model: str, **values: Any) -> ModelConfig:
        return await ModelConfig.create(
            provider=provider, model=model, display_name=model, context_limit=128_000, **values
        )

    return Models(
        billed=await config(
            "gpt-billed",
            max_output_tokens=MAX_OUTPUT,
            input_price_micros=0,
            output_price_micros=OUTPUT_PRICE,
        ),
        unpriced=await config("gpt-unpriced"),
        titled=await config(
            "gpt-titled",
            max_output_tokens=MAX_OUTPUT,
            input_price_micros=2_000_000,
            output_price_micros=8_000_000,
        ),
        scripted=await Provider.get(kind=ProviderKind.SCRIPTED),
    )


@pytest.fixture(autouse=True)
async def limits_on(app: Starlette) -> AsyncIterator[None]:
    await write_settings(LimitSettings(True, UsageLimitPeriod.MONTH, None))
    yield
    await write_settings(LimitSettings(False, UsageLimitPeriod.MONTH, None))


@dataclass(frozen=True)
class Member:
    user: User
    token: str


_members = 0


async def member(gql: GraphQLClient, limit: int | None = LIMIT) -> Member:
    """A member with their own spend limit (``users.spend_limit_micros``)."""
    global _members
    _members += 1
    name = f"spender{_members}_{uuid.uuid4().hex[:6]}"
    user = await create_user(name, PASSWORD)
    user.spend_limit_micros = limit
    await user.save(update_fields=["spend_limit_micros"])
    return Member(user, await login_token(gql, name))


# -- daemons -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def daemons(app: Starlette, count: int = 2) -> AsyncIterator[list[ChatDaemon]]:
    started = [
        ChatDaemon(
            app.state.event_hub,
            app.state.secrets,
            DAEMON,
            tools=ToolRegistry([ECHO]),
            worker_id=uuid.uuid4(),
        )
        for _ in range(count)
    ]
    hub = app.state.event_hub
    listening = hub.channels.get(WORK_CHANNEL, 0)
    for daemon in started:
        await daemon.start()

    async def subscribed() -> bool:  # a title request published now reaches them
        return bool(hub.channels.get(WORK_CHANNEL, 0) >= listening + count)

    await eventually(subscribed)
    try:
        yield started
    finally:
        for daemon in started:
            if daemon._tasks and not all(t.done() for t in daemon._tasks):
                await stop(daemon)


async def stop(daemon: ChatDaemon) -> None:
    """``daemon.stop()``, re-cancelling a loop that swallowed its cancellation."""
    stopper = asyncio.create_task(daemon.stop())
    await asyncio.wait({stopper}, timeout=5)
    while not stopper.done():
        for task in daemon._tasks:
            task.cancel()
        await asyncio.wait({stopper}, timeout=0.5)
    await stopper


def kill(daemon: ChatDaemon) -> None:
    """Die without the shutdown path: no hand-back, no more heartbeats or sweeps."""
    for task in daemon._tasks:
        task.cancel()


async def idle(started: list[ChatDaemon]) -> None:
    """Every turn, title and job of the daemons has ended."""

    async def check() -> bool:
        return not any(d.running or d._jobs for d in started)

    await eventually(check, timeout=SETTLE_S)


async def run_alone(app: Starlette, chat_id: uuid.UUID) -> Chat:
    """Two daemons run the one pending chat to its end; the chat as it ended."""
    async with daemons(app) as started:
        for daemon in started:
            daemon.wake()
        (done,) = await settled([chat_id])
        await idle(started)
    return done


async def settled(chat_ids: list[uuid.UUID]) -> list[Chat]:
    """Wait until no daemon holds any of the chats and none is waiting to run."""

    async def check() -> list[Chat] | None:
        chats = await Chat.filter(id__in=chat_ids)
        done = [
            c
            for c in chats
            if c.status in (ChatStatus.WAITING, ChatStatus.ERROR) and c.worker_id is None
        ]
        return chats if len(done) == len(chat_ids) else None

    found: list[Chat] = await eventually(check, timeout=SETTLE_S, every=0.05)
    return found


async def pending_chat(
    owner: User, model: ModelConfig, text: str, title: str | None = None
) -> Chat:
    """A PENDING chat with one user message, as sendMessage leaves it (the API's
    own refusals are bypassed: this is what the daemon does with it)."""
    chat_id = uuid.uuid4()
    chat = await Chat.create(
        id=chat_id,
        root_id=chat_id,
        owner_id=owner.id,
        title=title or fallback_title([TextPart(text)]),
        status=ChatStatus.PENDING,
        model_config_id=model.id,
        updated_at=datetime.now(UTC),
    )
    await ChatMessage.create(
        chat_id=chat_id,
        role=MessageRole.USER,
        parts=[{"type": "text", "text": text}],
        created_by_id=owner.id,
        model_config_id=model.id,
    )
    return chat


async def month_counter(user: User) -> SpendCounter:
    now = datetime.now(UTC)
    return await SpendCounter.get(
        user_id=user.id,
        period=UsageLimitPeriod.MONTH,
        period_start=period_start(UsageLimitPeriod.MONTH, now),
    )


async def message_costs(user: User) -> int:
    """The SUM of every message cost in the user's chats (titles included)."""
    rows = await fetch(
        "SELECT coalesce(sum(m.total_cost_micros), 0) AS total FROM chat_messages m"
        " JOIN chats c ON c.id = m.chat_id WHERE c.owner_id = $1",
        user.id,
    )
    return int(rows[0]["total"])


async def committed(user: User) -> int:
    """Spent + reserved on the user's counter for this month (0 before any)."""
    rows = await fetch(
        "SELECT spent_micros + reserved_micros AS used FROM spend_counters"
        " WHERE user_id = $1 AND period = 'month' AND period_start = $2",
        user.id,
        period_start(UsageLimitPeriod.MONTH, datetime.now(UTC)),
    )
    return int(rows[0]["used"]) if rows else 0


# -- the overshoot test --------------------------------------------------------------------


@pytest.fixture
async def free_titles(models: Models) -> AsyncIterator[ModelConfig]:
    """A cheap title model that costs nothing: the turns are what the limit buys."""
    config = await ModelConfig.create(
        provider=models.scripted,
        model="gpt-4o-mini",
        display_name="Free titles",
        context_limit=32_000,
        input_price_micros=0,
        output_price_micros=0,
    )
    yield config
    config.deleted, config.enabled = True, False
    await config.save(update_fields=["deleted", "enabled"])


async def test_fifty_turns_at_once_on_two_daemons_never_overshoot(
    app: Starlette, gql: GraphQLClient, llm: FakeLlm, models: Models, free_titles: ModelConfig
) -> None:
    spender = await member(gql)
    llm.push(*(billed_reply() for _ in range(SENT)))
    model_gid = global_id.encode("ModelConfig", models.billed.id)

    async def send(i: int) -> dict[str, Any]:
        text = f"Task {i}: fix the flaky test {uuid.uuid4().hex[:6]}"
        return await gql(CREATE_CHAT, {"text": text, "model": model_gid}, token=spender.token)

    highest = 0
    done = asyncio.Event()

    async def watch() -> None:
        nonlocal highest
        while not done.is_set():
            highest = max(highest, await committed(spender.user))
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    # All fifty are sent before either daemon is up, so both claim at once and
    # every turn's hold races the others' for the last dollar.
    answers = await asyncio.gather(*(send(i) for i in range(SENT)))
    chat_ids: list[uuid.UUID] = []
    refused_at_send = 0
    for answer in answers:
        if answer.get("errors"):
            codes = {e["extensions"]["code"] for e in answer["errors"]}
            assert codes == {"USAGE_LIMIT_EXCEEDED"}, answer
            refused_at_send += 1
        else:
            chat_ids.append(chat_uuid(answer["data"]["createChat"]["chat"]["id"]))
    async with daemons(app) as started:
        chats = await settled(chat_ids)
        await idle(started)
    done.set()
    await watcher

    # spent never exceeds the limit: not on the counter, not in the messages, not in the ledger
    counter = await month_counter(spender.user)
    assert counter.spent_micros == LIMIT
    assert counter.reserved_micros == 0
    assert await message_costs(spender.user) == LIMIT
    days = await CostUserDay.filter(user_id=spender.user.id)
    assert sum(d.cost_micros for d in days) == LIMIT
    assert highest <= LIMIT  # spent + reserved, sampled all along
    assert not await SpendHold.filter(user_id=spender.user.id).exists()

    # exactly the affordable turns ran, each with its output capped to what it held
    ran = [c for c in chats if c.status is ChatStatus.WAITING]
    assert len(ran) == LIMIT // TURN_COST == 20
    assert len(llm.requests) == 20
    assert {r.body["max_completion_tokens"] for r in llm.requests} == {MAX_OUTPUT}
    replies = await ChatMessage.filter(
        chat_id__in=[c.id for c in ran], role=MessageRole.ASSISTANT, deleted=False
    )
    assert sorted(m.total_cost_micros or 0 for m in replies) == [TURN_COST] * 20

    # the rest were refused, at the API or by the hold, and keep the user's message
    stopped = [c for c in chats if c.status is ChatStatus.ERROR]
    assert len(stopped) + refused_at_send == SENT - 20
    for chat in stopped:
        assert chat.last_error is not None
        assert chat.last_error["kind"] == "usage_limit", chat.last_error
        kept = await ChatMessage.filter(chat_id=chat.id, deleted=False)
        assert [m.role for m in kept] == [MessageRole.USER]
    if stopped:
        seen = await read_chat(gql, spender.token, global_id.encode("Chat", stopped[0].id))
        assert seen["status"] == "ERROR"
        assert seen["lastError"]["kind"] == "USAGE_LIMIT"
        assert "usage limit" in seen["lastError"]["message"]
        assert seen["lastError"]["retryable"] is False
    status = await limit_status(spender.user.id)
    assert (status.spent_micros, status.remaining_micros, status.exhausted) == (LIMIT, 0, True)


async def test_a_turn_stopped_by_the_limit_mid_way_keeps_what_it_streamed(
    app: Starlette, gql: GraphQLClient, llm: FakeLlm, models: Models
) -> None:
    """The first step (a tool call) is affordable, the second is not."""
    spender = await member(gql, limit=TURN_COST)
    usage = openai_usage(900, MAX_OUTPUT)
    first = openai_stream(
        text=["Let me check."],
        tool_calls=[("call_1", "echo", ['{"x": 1}'])],
        finish="tool_calls",
        usage=usage,
    )
    llm.push(SseReply(first), billed_reply("never sent"))
    chat = await pending_chat(spender.user, models.billed, "Check x", title="Mid-way")
    done = await run_alone(app, chat.id)

    assert done.status is ChatStatus.ERROR
    assert done.last_error is not None
    assert done.last_error["kind"] == "usage_limit"
    assert len(llm.requests) == 1
    kept = await ChatMessage.filter(chat_id=chat.id, deleted=False).order_by("id")
    assert [m.role for m in kept] == [MessageRole.USER, MessageRole.ASSISTANT, MessageRole.TOOL]
    assert kept[1].parts[0] == {"type": "text", "text": "Let me check."}
    assert kept[1].total_cost_micros == TURN_COST
    assert kept[2].parts[0]["result"] == {"echoed": {"x": 1}}
    assert (await month_counter(spender.user)).spent_micros == TURN_COST


async def test_a_step_interrupted_mid_stream_is_charged_for_what_it_streamed(
    app: Starlette, gql: GraphQLClient, llm: FakeLlm, models: Models
) -> None:
    """The provider bills the tokens it streamed before the user interrupted: the
    step's hold is settled at its input bound and the streamed output, not given
    back for free (else interrupting every turn just before its end would spend
    past any limit)."""
    spender = await member(gql)
    words = [f"word{i} " for i in range(400)]
    usage = openai_usage(900, MAX_OUTPUT)
    llm.push(SseReply(openai_stream(text=words, usage=usage), delay=0.05))
    chat = await pending_chat(spender.user, models.billed, "Talk", title="Interrupted")
    async with daemons(app) as started:
        for daemon in started:
            daemon.wake()

        async def streaming() -> bool:
            step = live_steps.current(chat.id)
            return step is not None and any(p.get("text") for p in step.parts)

        await eventually(streaming, timeout=SETTLE_S)
        await gql.ok(INTERRUPT, {"id": global_id.encode("Chat", chat.id)}, token=spender.token)
        (done,) = await settled([chat.id])
        await idle(started)

    assert done.status is ChatStatus.WAITING
    (kept,) = await ChatMessage.filter(chat_id=chat.id, role=MessageRole.ASSISTANT)
    text = kept.parts[0]["text"]
    assert 0 < len(text) < len("".join(words))
    counter = await month_counter(spender.user)
    assert counter.reserved_micros == 0
    # at least the streamed text (a byte per token at USD 50 per million), at most the hold
    assert len(text.encode()) * OUTPUT_PRICE // 1_000_000 <= counter.spent_micros <= TURN_COST
    assert kept.total_cost_micros == counter.spent_micros


async def test_a_step_interrupted_while_it_is_recorded_still_settles_its_hold(
    app: Starlette,
    gql: GraphQLClient,
    llm: FakeLlm,
    models: Models,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An interrupt that lands after the stream ended, while its message and spend
    are being written: the write finishes (the call was billed). A rolled-back
    settle would leave the hold reserved, renewed by the live worker's heartbeat
    for as long as the daemon runs."""
    spender = await member(gql)
    llm.push(billed_reply())
    chat = await pending_chat(spender.user, models.billed, "Hello", title="Recorded")
    worker = uuid.uuid4()
    await Chat.filter(id=chat.id).update(status=ChatStatus.RUNNING, worker_id=worker)
    entered, go_on = asyncio.Event(), asyncio.Event()
    real_settle = spend.settle

    async def slow_settle(*args: Any) -> None:
        entered.set()
        await go_on.wait()
        await real_settle(*args)

    monkeypatch.setattr(spend, "settle", slow_settle)
    turn = Turn(
        chat_id=chat.id,
        owner_id=spender.user.id,
        model_config_id=models.billed.id,
        worker_id=worker,
        events=ChatAnnouncer(app.state.event_hub),
        secrets=app.state.secrets,
        tools=ToolRegistry([ECHO]),
        settings=DAEMON.turn,
    )
    task = asyncio.create_task(run_turn(turn))
    await asyncio.wait_for(entered.wait(), SETTLE_S)
    turn.stop_reason = "interrupted"
    task.cancel()
    go_on.set()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    async def written() -> bool:
        return not await SpendHold.filter(user_id=spender.user.id).exists()

    try:
        await eventually(written, timeout=SETTLE_S)
    finally:  # released as the daemon would, so later tests' daemons leave it alone
        await Chat.filter(id=chat.id).update(status=ChatStatus.WAITING, worker_id=None)
    counter = await month_counter(spender.user)
    assert (counter.spent_micros, counter.reserved_micros) == (TURN_COST, 0)
    (kept,) = await ChatMessage.filter(chat_id=chat.id, role=MessageRole.ASSISTANT)
    assert kept.total_cost_micros == TURN_COST


async def test_a_compaction_interrupted_while_it_is_stored_still_settles_its_hold(
    app: Starlette, gql: GraphQLClient, models: Models, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for a step: the summary was billed, so an interrupt that lands while it
    is stored does not roll its spend back and leave the hold reserved (compaction
    holds under the turn's worker id, which renews it while the daemon runs)."""
    spender = await member(gql)
    chat = await pending_chat(spender.user, models.billed, "Hello", title="Compacted")
    await Chat.filter(id=chat.id).update(status=ChatStatus.WAITING)  # no daemon runs it
    await ChatMessage.create(
        chat_id=chat.id, role=MessageRole.ASSISTANT, parts=[{"type": "text", "text": "Hi."}]
    )
    model = scripted_model(model_config_id=models.scripted.id, provider_id=models.scripted.id)
    load = compaction.Pressure(
        usage_percent=80.0, threshold=70, context_tokens=800, context_limit=1000
    )
    entered, go_on = asyncio.Event(), asyncio.Event()
    real_settle = spend.settle

    async def slow_settle(*args: Any) -> None:
        entered.set()
        await go_on.wait()
        await real_settle(*args)

    monkeypatch.setattr(spend, "settle", slow_settle)
    client = make_client("scripted", api_key=None, base_url=None)
    payer = spending.Payer(spender.user.id, chat.id, chat.id)
    task = asyncio.create_task(
        compaction.compact(chat.id, model, client, load, None, payer, uuid.uuid4())
    )
    await asyncio.wait_for(entered.wait(), SETTLE_S)
    task.cancel()
    go_on.set()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    async def written() -> bool:
        return not await SpendHold.filter(user_id=spender.user.id).exists()

    await eventually(written, timeout=SETTLE_S)
    counter = await month_counter(spender.user)
    assert counter.reserved_micros == 0
    assert counter.spent_micros > 0
    assert counter.spent_micros == await message_costs(spender.user)


async def test_a_hold_taken_as_its_call_is_cancelled_is_given_back(
    app: Starlette, gql: GraphQLClient, models: Models, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt that lands during the hold's round trip: the hold may be taken
    all the same, and nobody would settle it while the worker renews it."""
    spender = await member(gql)
    taken, go_on = asyncio.Event(), asyncio.Event()
    real_hold = spend.hold

    async def slow_hold(*args: Any, **kwargs: Any) -> spend.Hold:
        held = await real_hold(*args, **kwargs)
        taken.set()
        await go_on.wait()  # the reply is still on its way
        return held

    monkeypatch.setattr(spend, "hold", slow_hold)
    model = ResolvedModel(
        model_config_id=models.billed.id,
        provider_id=models.billed.provider_id,  # type: ignore[attr-defined]
        provider_kind=ProviderKind.OPENAI,
        provider_display_name="OpenAI",
        base_url=None,
        model="gpt-billed",
        display_name="gpt-billed",
        context_limit=128_000,
        compression_threshold=70,
        max_output_tokens=MAX_OUTPUT,
        prices=ModelPrices.of(models.billed),
        key_source=KeySource.NONE,
    )
    request = ModelRequest(
        model="gpt-billed",
        system="",
        messages=[ModelMessage("user", [TextPart("Hello")])],
        max_output_tokens=MAX_OUTPUT,
    )
    payer = spending.Payer(spender.user.id, None, None)
    task = asyncio.create_task(spending.reserve(payer, model, request, uuid.uuid4()))
    await asyncio.wait_for(taken.wait(), SETTLE_S)
    task.cancel()
    go_on.set()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    async def given_back() -> bool:
        return not await SpendHold.filter(user_id=spender.user.id).exists()

    await eventually(given_back, timeout=SETTLE_S)
    assert await committed(spender.user) == 0


async def test_a_stream_cut_and_retried_is_charged_for_both_attempts(
    app: Starlette, gql: GraphQLClient, llm: FakeLlm, models: Models
) -> None:
    """The provider billed the cut attempt's streamed output too: it is settled
    before the retry, which takes a hold of its own (so retries cannot multiply a
    step's cost past the limit)."""
    spender = await member(gql)
    words = [f"word{i} " for i in range(50)]
    cut = SseReply(openai_stream(text=words, usage=openai_usage(900, MAX_OUTPUT)), cut_after=20)
    llm.push(cut, billed_reply())
    chat = await pending_chat(spender.user, models.billed, "Talk", title="Cut")
    done = await run_alone(app, chat.id)
    assert done.status is ChatStatus.WAITING
    assert len(llm.requests) == 2
    counter = await month_counter(spender.user)
    assert counter.reserved_micros == 0
    assert TURN_COST < counter.spent_micros <= 2 * TURN_COST
    assert not await SpendHold.filter(user_id=spender.user.id).exists()


async def test_a_tight_budget_caps_what_the_provider_is_asked_for(
    app: Starlette, gql: GraphQLClient, llm: FakeLlm, models: Models
) -> None:
    """USD 0.03 left buys 600 of the model's 1000 output tokens: the call is sent
    with that maximum, so what it can cost is what was held."""
    spender = await member(gql, limit=30_000)
    llm.push(SseReply(openai_stream(text=["Short."], usage=openai_usage(900, 600))))
    chat = await pending_chat(spender.user, models.billed, "Be brief", title="Tight")
    done = await run_alone(app, chat.id)
    assert done.status is ChatStatus.WAITING
    assert [r.body["max_completion_tokens"] for r in llm.requests] == [600]
    counter = await month_counter(spender.user)
    assert (counter.spent_micros, counter.reserved_micros) == (30_000, 0)


async def test_a_limit_does_not_change_an_anthropic_models_default_output_cap(
    app: Starlette, gql: GraphQLClient, llm: FakeLlm, served_llm: FakeLlm
) -> None:
    """A config without a maximum output is sent the client's default (8192 at
    Anthropic) with a limit as without one: a hold must not raise it to a
    maximum the model refuses."""
    spender = await member(gql)
    provider = await Provider.create(
        kind=ProviderKind.ANTHROPIC,
        display_name="Anthropic",
        base_url=served_llm.url,
        api_key_ciphertext=app.state.secrets.encrypt(TEST_KEY),
    )
    config = await ModelConfig.create(
        provider=provider,
        model="claude-capped",
        display_name="claude-capped",
        context_limit=200_000,
        input_price_micros=3_000_000,
        output_price_micros=15_000_000,
    )
    llm.push(SseReply(anthropic_stream(("text", ["Hi."]))))
    chat = await pending_chat(spender.user, config, "Hello", title="Capped")
    done = await run_alone(app, chat.id)
    assert done.status is ChatStatus.WAITING
    assert [r.body["max_tokens"] for r in llm.requests] == [DEFAULT_MAX_TOKENS]


def test_the_input_bound_covers_text_images_and_tools() -> None:
    text = "héllo wörld " * 100  # non-ASCII: more bytes than characters
    image = FilePart(file_id=str(uuid.uuid4()))
    request = ModelRequest(
        model="m",
        system="Be terse.",
        messages=[ModelMessage("user", [TextPart(text), image])],
    )
    bare = input_token_bound(request)
    assert bare >= len(text.encode()) + len(b"Be terse.") + IMAGE_TOKENS_MAX
    spec = ToolSpec("echo", "Return the arguments.", {"type": "object", "properties": {}})
    with_tool = input_token_bound(replace(request, tools=[spec]))
    assert with_tool >= bare + TOOLS_OVERHEAD_TOKENS + len(spec.description)


# -- holds of a dead daemon ----------------------------------------------------------------


async def test_a_killed_daemons_hold_is_swept_after_it_expires(
    app: Starlette, gql: GraphQLClient, models: Models
) -> None:
    spender = await member(gql)
    prices = ModelPrices.of(models.billed)

    async def hold(worker: ChatDaemon) -> spend.Hold:
        return await spend.hold(
            spender.user.id,
            prices,
            model="gpt-billed",
            input_tokens=100,
            max_output_tokens=MAX_OUTPUT,
            worker_id=worker.worker_id,
            ttl=timedelta(seconds=2),
        )

    async with daemons(app) as (alive, dead):
        kill(dead)
        lost = await hold(dead)  # taken by a call on the dead daemon, never settled
        kept = await hold(alive)
        assert (await limit_status(spender.user.id)).reserved_micros == 2 * TURN_COST

        async def swept() -> bool:
            return not await SpendHold.filter(id=lost.id).exists()

        await eventually(swept, timeout=10)
        status = await limit_status(spender.user.id)
        assert (status.spent_micros, status.reserved_micros) == (0, TURN_COST)
        # the live daemon renews its own on every heartbeat
        renewed = await SpendHold.get(id=kept.id)
        assert renewed.expires_at > datetime.now(UTC) + spend.HOLD_TTL / 2
        await spend.release(kept)
    assert (await limit_status(spender.user.id)).reserved_micros == 0


# -- configuration errors ------------------------------------------------------------------


async def test_an_unpriced_model_under_a_limit_stops_with_a_config_error(
    app: Starlette, gql: GraphQLClient, llm: FakeLlm, models: Models
) -> None:
    spender = await member(gql)
    chat = await pending_chat(spender.user, models.unpriced, "Hello", title="Unpriced")
    done = await run_alone(app, chat.id)
    assert done.status is ChatStatus.ERROR
    assert done.last_error is not None
    assert done.last_error["kind"] == "config"
    message = done.last_error["message"]
    assert "gpt-unpriced" in message
    assert "administrator must set its input and output prices" in message
    assert llm.requests == []  # never sent: an unpriced call is never free
    seen = await read_chat(gql, spender.token, global_id.encode("Chat", chat.id))
    assert seen["lastError"]["kind"] == "CONFIG"
    assert not await SpendCounter.filter(user_id=spender.user.id, spent_micros__gt=0).exists()


# -- titles and compaction are the owner's spend -------------------------------------------


async def test_a_regenerated_titles_cost_is_charged_to_the_chat_owner(
    app: Starlette, gql: GraphQLClient, llm: FakeLlm, models: Models
) -> None:
    owner = await member(gql)
    chat = await pending_chat(owner.user, models.titled, "Why does the fixture fail?", "Old")
    await Chat.filter(id=chat.id).update(status=ChatStatus.WAITING)
    await ChatMessage.create(
        chat_id=chat.id,
        role=MessageRole.ASSISTANT,
        parts=[{"type": "text", "text": "Its table is created after the read."}],
        model_config_id=models.titled.id,
    )
    # 300 prompt tokens at USD 2/M and 6 output tokens at USD 8/M: 648 µ$
    llm.push(
        SseReply(openai_stream(text=["Fixture reads before its table"], usage=openai_usage(300, 6)))
    )
    async with daemons(app) as started:
        data = await gql.ok(
            REGENERATE_TITLE, {"id": global_id.encode("Chat", chat.id)}, token=owner.token
        )
        await idle(started)
    assert data["regenerateChatTitle"]["title"] == "Fixture reads before its table"

    title_call = await ChatMessage.get(chat_id=chat.id, deleted=True)
    assert title_call.total_cost_micros == 648
    assert (title_call.input_price_micros, title_call.output_price_micros) == (2_000_000, 8_000_000)
    day = await CostUserDay.get(user_id=owner.user.id)
    assert (day.cost_micros, day.priced_count, day.input_tokens, day.output_tokens) == (
        648,
        1,
        300,
        6,
    )
    assert (await CostChatDay.get(chat_id=chat.id)).cost_micros == 648
    assert (await month_counter(owner.user)).spent_micros == 648


async def test_compaction_and_the_automatic_title_are_charged_to_the_owner(
    app: Starlette, gql: GraphQLClient, llm: FakeLlm, models: Models
) -> None:
    """A step that fills the context window is summarised at the turn's end; then
    the chat gets its title. Three calls, all the owner's, all on their chat."""
    owner = await member(gql)
    await ModelConfig.filter(id=models.titled.id).update(context_limit=1000)
    try:
        llm.push(
            SseReply(openai_stream(text=["Answer."], usage=openai_usage(900, 10))),  # 90 %
            SseReply(openai_stream(text=["Summary of it all."], usage=openai_usage(950, 40))),
            SseReply(openai_stream(text=["Fixture order"], usage=openai_usage(200, 3))),
        )
        text = "Why does the fixture fail?"
        chat = await pending_chat(owner.user, models.titled, text)
        async with daemons(app) as started:
            for daemon in started:
                daemon.wake()
            await settled([chat.id])
            await idle(started)
    finally:
        await ModelConfig.filter(id=models.titled.id).update(context_limit=128_000)

    assert len(llm.requests) == 3
    charged = await ChatMessage.filter(chat_id=chat.id, total_cost_micros__not_isnull=True)
    # 900×2 + 10×8 = 1880; 950×2 + 40×8 = 2220; 200×2 + 3×8 = 424
    assert sorted(m.total_cost_micros or 0 for m in charged) == [424, 1880, 2220]
    day = await CostUserDay.get(user_id=owner.user.id)
    assert (day.cost_micros, day.priced_count) == (1880 + 2220 + 424, 3)
    assert (await CostChatDay.get(chat_id=chat.id)).cost_micros == 1880 + 2220 + 424
    assert (await month_counter(owner.user)).spent_micros == 1880 + 2220 + 424
    assert (await Chat.get(id=chat.id)).title == "Fixture order"
