"""Several workers on one PostgreSQL: claims, heartbeats, stale recovery, hand-back.

The daemons here are built by hand (the app runs without its own) so a test can
start two, kill one without its shutdown path, or stop one mid-turn. Chats are
inserted directly as PENDING with one user message, then the daemons are woken.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.applications import Starlette

from daemon.chat_daemon import ChatDaemon, DaemonSettings
from daemon.turn_runner import TurnSettings
from db.model_resolution import default_model_config
from db.models import Chat, ChatMessage, User
from db.parts import TextPart
from db.secret_box import SecretBox
from db.titles import fallback_title
from db.vocabulary import ChatStatus, MessageRole
from events import live_steps
from events.hub import EventHub
from events.wire import as_json
from resolvers.accounts import create_user
from tests.conftest import make_settings
from tests.daemon.live import chat_settled, eventually, messages_of, running_app, stored_text
from tests.harness import PASSWORD

FAST_TURN = TurnSettings(coalesce_s=0.02, retry_base_s=0.02, retry_max_s=0.05)


@pytest.fixture(scope="module")
async def app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Starlette]:
    """Database and hub only: every daemon in this module is started by its test."""
    settings = make_settings(database_url, tmp_path_factory)
    async with running_app(settings, run_daemon=False) as application:
        yield application


@pytest.fixture(scope="module")
async def owner(app: Starlette) -> User:
    return await create_user("owner", PASSWORD)


def settings(**values: Any) -> DaemonSettings:
    base: dict[str, Any] = {"poll_s": 0.1, "heartbeat_s": 0.2, "stale_after_s": 30.0}
    return DaemonSettings(**{**base, **values, "turn": values.get("turn", FAST_TURN)})


@contextlib.asynccontextmanager
async def daemons(app: Starlette, *configs: DaemonSettings) -> AsyncIterator[list[ChatDaemon]]:
    hub: EventHub = app.state.event_hub
    secrets: SecretBox = app.state.secrets
    started = [ChatDaemon(hub, secrets, config, worker_id=uuid.uuid4()) for config in configs]
    for daemon in started:
        await daemon.start()
    try:
        yield started
    finally:
        for daemon in started:
            if daemon._tasks and not all(t.done() for t in daemon._tasks):
                await stop(daemon)


async def stop(daemon: ChatDaemon) -> None:
    """``daemon.stop()``, re-cancelling a loop that swallowed its cancellation (see
    test_stop_right_after_a_wake_stops_every_loop) so no other test hangs on it."""
    stopper = asyncio.create_task(daemon.stop())
    await asyncio.wait({stopper}, timeout=5)
    while not stopper.done():
        for task in daemon._tasks:
            task.cancel()
        await asyncio.wait({stopper}, timeout=0.5)
    await stopper


def record_claims(
    daemon: ChatDaemon,
    into: list[tuple[uuid.UUID, uuid.UUID]],
    running: list[int] | None = None,
) -> None:
    """Note every chat ``daemon`` starts (and how many it then runs at once)."""
    start: Callable[[Any], None] = daemon._start_turn

    def recording(row: Any) -> None:
        into.append((row["id"], daemon.worker_id))
        start(row)
        if running is not None:
            running.append(len(daemon.running))

    daemon._start_turn = recording  # type: ignore[method-assign]


async def pending_chats(owner: User, texts: list[str]) -> list[uuid.UUID]:
    """PENDING chats with one user message each, as sendMessage would leave them."""
    config = await default_model_config()
    assert config is not None
    now = datetime.now(UTC)
    chats = [
        Chat(
            id=uuid.uuid4(),
            owner_id=owner.id,
            title=fallback_title([TextPart(text)]),
            status=ChatStatus.PENDING,
            model_config_id=config.id,
            updated_at=now,
        )
        for text in texts
    ]
    for chat in chats:
        chat.root_id = chat.id
    await Chat.bulk_create(chats)
    await ChatMessage.bulk_create(
        [
            ChatMessage(
                chat_id=chat.id,
                role=MessageRole.USER,
                parts=[{"type": "text", "text": text}],
                created_by_id=owner.id,
                model_config_id=config.id,
            )
            for chat, text in zip(chats, texts, strict=True)
        ]
    )
    return [chat.id for chat in chats]


def kill(daemon: ChatDaemon) -> list[asyncio.Task[Any]]:
    """Die without the shutdown path: no hand-back, no heartbeat, nothing persisted."""
    tasks: list[asyncio.Task[Any]] = list(daemon._tasks)
    for task in daemon._tasks:
        task.cancel()
    for running in list(daemon.running.values()):
        running.turn.stop_reason = "lost"
        running.task.cancel()
        tasks.append(running.task)
    return tasks


# -- 6. two daemons never run one chat twice -------------------------------------------


async def test_two_daemons_never_run_one_chat_twice(app: Starlette, owner: User) -> None:
    ids = await pending_chats(
        owner, [f"chat number {i} {uuid.uuid4().hex[:6]}" for i in range(200)]
    )
    claims: list[tuple[uuid.UUID, uuid.UUID]] = []
    at_once: list[int] = []
    async with daemons(app, settings(max_chats=8), settings(max_chats=8)) as (first, second):
        record_claims(first, claims, at_once)
        record_claims(second, claims, at_once)
        first.wake()
        second.wake()

        async def all_waiting() -> bool:
            left = await Chat.filter(id__in=ids).exclude(status=ChatStatus.WAITING).count()
            return left == 0

        await eventually(all_waiting, timeout=40, every=0.1)

    claimed = [chat_id for chat_id, _ in claims]
    assert sorted(claimed) == sorted(ids)  # each chat claimed exactly once
    workers = {worker for _, worker in claims}
    assert workers == {first.worker_id, second.worker_id}  # both took a share
    assert 1 < max(at_once) <= 8  # concurrent turns, within each daemon's capacity
    replies = await ChatMessage.filter(
        chat_id__in=ids, role=MessageRole.ASSISTANT, deleted=False
    ).values_list("chat_id", flat=True)
    # exactly one visible reply per chat (the title's cost is a soft-deleted row)
    assert sorted(replies) == sorted(ids)
    rows = await Chat.filter(id__in=ids)
    assert all(row.worker_id is None and row.last_error is None for row in rows)


# -- 7. a killed daemon's chat is finished by the other --------------------------------


async def test_a_killed_daemons_chat_is_finished_by_another_once(
    app: Starlette, owner: User
) -> None:
    reply = f"alpha beta gamma delta epsilon zeta eta theta {uuid.uuid4().hex[:6]}"
    async with daemons(app, settings(stale_after_s=1.0)) as (doomed,):
        [chat_id] = await pending_chats(owner, [f"/slow 100\n/reply {reply}"])
        doomed.wake()

        async def streaming() -> bool:
            step = live_steps.current(chat_id)
            return step is not None and bool(step.parts)

        await eventually(streaming)
        assert (await Chat.get(id=chat_id)).worker_id == doomed.worker_id
        await asyncio.gather(*kill(doomed), return_exceptions=True)
    row = await Chat.get(id=chat_id)
    assert (row.status, row.worker_id) == (ChatStatus.RUNNING, doomed.worker_id)  # orphaned
    assert not await messages_of(chat_id, MessageRole.ASSISTANT)

    async with daemons(app, settings(stale_after_s=1.0)) as (survivor,):
        claims: list[tuple[uuid.UUID, uuid.UUID]] = []
        record_claims(survivor, claims)
        await chat_settled(chat_id, timeout=15)
    assert claims == [(chat_id, survivor.worker_id)]
    replies = await messages_of(chat_id, MessageRole.ASSISTANT)
    assert [stored_text(r.parts) for r in replies] == [reply]


# -- heartbeats and shutdown -----------------------------------------------------------


async def test_a_heartbeat_that_finds_the_chat_taken_cancels_the_run(
    app: Starlette, owner: User
) -> None:
    async with daemons(app, settings()) as (daemon,):
        [chat_id] = await pending_chats(owner, [f"/slow 100\n/reply {'x ' * 30}done"])
        daemon.wake()

        async def streaming() -> bool:
            step = live_steps.current(chat_id)
            return step is not None and bool(step.parts)

        await eventually(streaming)
        usurper = uuid.uuid4()
        # Taken over silently (no event): only the heartbeat can notice.
        await Chat.filter(id=chat_id).update(worker_id=usurper)

        async def stopped() -> bool:
            return chat_id not in daemon.running

        await eventually(stopped, timeout=3)
        row = await Chat.get(id=chat_id)
        assert (row.status, row.worker_id) == (ChatStatus.RUNNING, usurper)  # left to its owner
        assert not await messages_of(chat_id, MessageRole.ASSISTANT)
        await Chat.filter(id=chat_id).update(status=ChatStatus.WAITING, worker_id=None)


async def test_shutdown_hands_running_chats_back_and_another_worker_reruns_them(
    app: Starlette, owner: User
) -> None:
    reply = f"handed back then finished {uuid.uuid4().hex[:6]}"
    events: list[dict[str, Any]] = []
    hub: EventHub = app.state.event_hub
    async with daemons(app, settings()) as (leaving,):
        [chat_id] = await pending_chats(owner, [f"/slow 80\n/reply {reply}"])
        async with hub.subscribe(f"chat:{chat_id}") as subscription:
            leaving.wake()

            async def streaming() -> bool:
                step = live_steps.current(chat_id)
                return step is not None and bool(step.parts)

            await eventually(streaming)
            await stop(leaving)
            row = await Chat.get(id=chat_id)
            assert (row.status, row.worker_id) == (ChatStatus.PENDING, None)
            assert not await messages_of(chat_id, MessageRole.ASSISTANT)  # the step reruns
            while not (events and events[-1].get("status") == "pending"):
                events.append(as_json(await asyncio.wait_for(subscription.get(), 5)))

    async with daemons(app, settings()) as (_,):
        await chat_settled(chat_id)
    replies = await messages_of(chat_id, MessageRole.ASSISTANT)
    assert [stored_text(r.parts) for r in replies] == [reply]


async def test_stale_recovery_puts_an_orphaned_chat_back_to_pending(
    app: Starlette, owner: User
) -> None:
    [chat_id] = await pending_chats(owner, [f"orphan {uuid.uuid4().hex[:6]}"])
    ghost = uuid.uuid4()
    await Chat.filter(id=chat_id).update(
        status=ChatStatus.RUNNING, worker_id=ghost, heartbeat_at=datetime(2020, 1, 1, tzinfo=UTC)
    )
    async with daemons(app, settings(stale_after_s=0.5)) as (daemon,):
        claims: list[tuple[uuid.UUID, uuid.UUID]] = []
        record_claims(daemon, claims)
        await chat_settled(chat_id)
    assert claims == [(chat_id, daemon.worker_id)]
    assert len(await messages_of(chat_id, MessageRole.ASSISTANT)) == 1


# -- retries exhausted -----------------------------------------------------------------


async def test_exhausted_retries_end_in_error_with_a_structured_last_error(
    app: Starlette, owner: User
) -> None:
    hub: EventHub = app.state.event_hub
    turn = TurnSettings(coalesce_s=0.02, retry_base_s=0.01, retry_max_s=0.02, retry_attempts=4)
    [chat_id] = await pending_chats(owner, [f"/fail rate_limit\n{uuid.uuid4().hex}"])
    events: list[dict[str, Any]] = []
    async with (
        hub.subscribe(f"chat:{chat_id}") as subscription,
        daemons(app, settings(turn=turn)) as (daemon,),
    ):
        daemon.wake()
        while not (events and events[-1].get("status") == "error"):
            events.append(as_json(await asyncio.wait_for(subscription.get(), 5)))
    retries = [e for e in events if e["kind"] == "retry"]
    assert [r["attempt"] for r in retries] == [1, 2, 3]  # 4 attempts, 3 waits
    assert [r["delayMs"] for r in retries] == [10, 20, 20]  # doubling, capped
    failed = [e for e in events if e["kind"] == "error"]
    assert len(failed) == 1
    assert failed[0]["error"]["kind"] == "rate_limit"
    row = await Chat.get(id=chat_id)
    assert row.status is ChatStatus.ERROR
    assert row.worker_id is None
    assert row.last_error == failed[0]["error"]
    assert row.last_error["statusCode"] == 429
    assert row.last_error["message"]
    assert not await messages_of(chat_id, MessageRole.ASSISTANT)


# -- interrupt, then a new message at once ---------------------------------------------


async def test_a_chat_reclaimed_while_the_interrupted_turn_cleans_up_stays_tracked(
    app: Starlette, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interrupted turn's cleanup must not drop the newer turn's ``running`` entry
    (and with it its watcher, its heartbeat and the daemon's capacity count)."""
    from daemon import turn_runner
    from events.announcer import ChatAnnouncer

    events = ChatAnnouncer(app.state.event_hub)
    original = turn_runner._persist
    new_turns: list[asyncio.Task[None]] = []
    # No heartbeat during the test: only the events and the poll drive the daemon.
    async with daemons(app, settings(heartbeat_s=30.0)) as (daemon,):

        async def slow_partial_write(turn: Any, role: Any, parts: Any, **usage: Any) -> Any:
            if turn.stop_reason == "interrupted":
                # A busy database: the partial write takes a while, and meanwhile the
                # daemon's poll claims the chat again for the user's next message.
                async def reclaimed() -> bool:
                    running = daemon.running.get(turn.chat_id)
                    return running is not None and running.turn is not turn

                await eventually(reclaimed, timeout=5)
                new_turns.append(daemon.running[turn.chat_id].task)
            return await original(turn, role, parts, **usage)

        monkeypatch.setattr(turn_runner, "_persist", slow_partial_write)
        [chat_id] = await pending_chats(owner, [f"/slow 100\n/reply {'y ' * 30}end"])
        daemon.wake()

        async def streaming() -> bool:
            step = live_steps.current(chat_id)
            return step is not None and bool(step.parts)

        await eventually(streaming)
        first = daemon.running[chat_id]
        interrupted = first.task
        # interruptChat: WAITING, announced, and seen by the turn's watcher.
        await Chat.filter(id=chat_id).update(status=ChatStatus.WAITING, worker_id=None)
        await events.status(owner.id, chat_id, "waiting")

        async def stopping() -> bool:
            return first.turn.stop_reason == "interrupted"

        await eventually(stopping)
        # sendMessage's write commits; the poll claims it before its announcement.
        await ChatMessage.create(
            chat_id=chat_id,
            role=MessageRole.USER,
            parts=[{"type": "text", "text": f"/slow 100\n/reply {'z ' * 30}end"}],
            created_by_id=owner.id,
        )
        await Chat.filter(id=chat_id).update(status=ChatStatus.PENDING)
        daemon.wake()
        await asyncio.wait_for(asyncio.gather(interrupted, return_exceptions=True), 5)
        assert new_turns
        assert not new_turns[0].done()
        tracked = daemon.running.get(chat_id)
        # The new turn must still be tracked (heartbeat, interrupt watch, capacity)...
        assert tracked is not None
        assert tracked.task is new_turns[0]
        # ...so interrupting it stops it.
        await Chat.filter(id=chat_id).update(status=ChatStatus.WAITING, worker_id=None)
        await events.status(owner.id, chat_id, "waiting")
        await asyncio.wait_for(asyncio.gather(new_turns[0], return_exceptions=True), 1.5)


# -- the automatic title after a turn ---------------------------------------------------


async def test_a_heartbeat_during_the_automatic_title_does_not_cancel_it(
    app: Starlette, owner: User
) -> None:
    """The automatic title runs after the turn left ``running``: a heartbeat in
    between must not cancel it (the chat is no longer this worker's)."""
    # The title request quotes the first message, so /slow paces it too (~0.3 s),
    # several heartbeats long.
    topic = f"name this chat {uuid.uuid4().hex[:6]}"
    async with daemons(app, settings(heartbeat_s=0.05)) as (daemon,):
        [chat_id] = await pending_chats(owner, [f"/slow 50\n{topic}"])
        daemon.wake()
        await chat_settled(chat_id)

        async def titled() -> bool:
            return chat_id not in daemon.running

        await eventually(titled, timeout=5)  # the task (turn, then title) is over
    row = await Chat.get(id=chat_id)
    assert row.title == f"You said: {topic}"


async def test_the_automatic_title_keeps_no_bidi_override(app: Starlette, owner: User) -> None:
    """The model's title is cleaned like a typed one: the scripted model echoes
    the message, override included, and the stored title has none."""
    topic = f"open \u202egnp.exe {uuid.uuid4().hex[:6]}"
    async with daemons(app, settings()) as (daemon,):
        [chat_id] = await pending_chats(owner, [topic])
        daemon.wake()
        await chat_settled(chat_id)

        async def titled() -> bool:
            return chat_id not in daemon.running

        await eventually(titled, timeout=5)
    row = await Chat.get(id=chat_id)
    assert row.title == f"You said: {topic.replace(chr(0x202E), '')}"


# -- a claim that overtakes the API's announcement -------------------------------------


async def test_a_late_pending_announcement_does_not_cancel_the_claimed_turn(
    app: Starlette, owner: User
) -> None:
    """createChat/sendMessage announce PENDING after their commit; a claim can
    overtake that announcement, which must not then cancel the claimed turn."""
    from events.announcer import ChatAnnouncer

    events = ChatAnnouncer(app.state.event_hub)
    reply = f"claimed before the announcement {uuid.uuid4().hex[:6]}"
    async with daemons(app, settings()) as (daemon,):
        # sendMessage: the PENDING row is committed...
        [chat_id] = await pending_chats(owner, [f"/slow 40\n/reply {reply}"])
        daemon.wake()  # ...a wake (the poll, or another chat's) claims it at once...

        async def streaming() -> bool:
            step = live_steps.current(chat_id)
            return step is not None and bool(step.parts)

        await eventually(streaming)
        # ...and only then does the API's announcement of that PENDING arrive.
        await events.status(owner.id, chat_id, "pending")
        await chat_settled(chat_id, timeout=5)
    replies = await messages_of(chat_id, MessageRole.ASSISTANT)
    assert [stored_text(r.parts) for r in replies] == [reply]


# -- cancellation that must not be swallowed (asyncio.wait_for on Python 3.11) ----------


async def test_stop_right_after_a_wake_stops_every_loop(app: Starlette, owner: User) -> None:
    daemon = ChatDaemon(app.state.event_hub, app.state.secrets, settings())
    await daemon.start()
    await asyncio.sleep(0.05)  # the claim loop waits for a wake (or the poll)
    daemon.wake()
    stopper = asyncio.create_task(daemon.stop())
    await asyncio.wait({stopper}, timeout=3)
    loops = {task.get_name(): task.done() for task in daemon._tasks}
    while not stopper.done():  # (clean up a loop that survived its cancellation)
        for task in daemon._tasks:
            task.cancel()
        await asyncio.wait({stopper}, timeout=0.5)
    assert all(loops.values()), loops


async def test_a_watcher_cancelled_while_subscribing_leaves_nothing_behind(
    app: Starlette, owner: User
) -> None:
    from daemon.chat_daemon import _Running
    from daemon.turn_runner import Turn

    hub: EventHub = app.state.event_hub
    daemon = ChatDaemon(hub, app.state.secrets, settings())
    survivors: list[int] = []
    for ticks in range(8):  # cancel at each point of its start-up in turn
        turn = Turn(
            chat_id=uuid.uuid4(),
            owner_id=owner.id,
            model_config_id=None,
            worker_id=daemon.worker_id,
            events=daemon.events,
            secrets=app.state.secrets,
            tools=daemon.tools,
        )
        idle: asyncio.Task[None] = asyncio.create_task(asyncio.sleep(0))
        watcher = asyncio.create_task(daemon._watch(_Running(turn=turn, task=idle)))
        for _ in range(ticks):
            await asyncio.sleep(0)
        watcher.cancel()
        await asyncio.wait({watcher}, timeout=0.5)
        if not watcher.done() or f"chat:{turn.chat_id}" in hub.channels:
            survivors.append(ticks)
        while not watcher.done():  # (clean up)
            watcher.cancel()
            await asyncio.wait({watcher}, timeout=0.5)
    assert survivors == []


# -- an interrupt announced after the chat was claimed again ----------------------------


async def test_an_interrupt_announced_after_a_reclaim_still_stops_the_old_run(
    app: Starlette, owner: User
) -> None:
    from events.announcer import ChatAnnouncer

    events = ChatAnnouncer(app.state.event_hub)
    # The new run outlasts what is left of the old one.
    second = " ".join(f"s{i}" for i in range(30)) + f" {uuid.uuid4().hex[:6]}"
    async with daemons(app, settings(heartbeat_s=30.0)) as (daemon,):
        [chat_id] = await pending_chats(owner, [f"/slow 60\n/reply {'y ' * 20}end"])
        daemon.wake()

        async def streaming() -> bool:
            step = live_steps.current(chat_id)
            return step is not None and bool(step.parts)

        await eventually(streaming)
        first = daemon.running[chat_id]
        # interruptChat commits, then sendMessage commits, and the daemon claims the chat
        # again, all before the interrupt's announcement reaches the first run's watcher.
        await Chat.filter(id=chat_id).update(status=ChatStatus.WAITING, worker_id=None)
        await ChatMessage.create(
            chat_id=chat_id,
            role=MessageRole.USER,
            parts=[{"type": "text", "text": f"/slow 60\n/reply {second}"}],
            created_by_id=owner.id,
        )
        await Chat.filter(id=chat_id).update(status=ChatStatus.PENDING)
        daemon.wake()

        async def reclaimed() -> bool:
            running = daemon.running.get(chat_id)
            return running is not None and running is not first

        await eventually(reclaimed)
        await events.status(owner.id, chat_id, "waiting")
        await events.status(owner.id, chat_id, "pending")
        await asyncio.wait_for(asyncio.gather(first.task, return_exceptions=True), 10)

        async def idle() -> bool:
            return not daemon.running

        await eventually(idle)
        await chat_settled(chat_id)
    texts = [stored_text(r.parts) for r in await messages_of(chat_id, MessageRole.ASSISTANT)]
    assert f"{'y ' * 20}end" not in texts  # the interrupted run did not finish...
    assert texts[-1] == second  # ...and the new message got its reply
    assert first.turn.stop_reason == "interrupted"
