"""The worker loop: claim pending chats, run their turns, notice interrupts.

Wakes on the ``work`` channel (a chat became PENDING anywhere) and polls as a
fallback; heartbeats its running chats and cancels a turn whose chat it no
longer owns; puts chats whose worker died back to PENDING; on shutdown hands
its own running chats back so another worker resumes them.

An interrupt is a status: the API marks a running chat INTERRUPTING, this worker
cancels the run, and only once it has stopped is the chat WAITING.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from daemon import claims
from daemon.debug_recorder import close_stale
from daemon.periodic import every
from daemon.titles import auto_title, regenerate_title
from daemon.tool_registry import ToolRegistry
from daemon.tools import ProcessTable, agent_tools
from daemon.turn_endings import promote_released, settle_interrupted
from daemon.turn_runner import Turn, TurnSettings, run_turn
from daemon.workspace_services import WorkspaceServices
from db import spend
from db.raw_sql import fetch
from db.retention import purge_expired
from db.secret_box import SecretBox
from db.vocabulary import ChatStatus
from events.announcer import ChatAnnouncer
from events.channels import WORK_CHANNEL, chat_channel
from events.hub import EventHub
from events.payloads import GitRefreshRequested, StatusChanged, TitleRequested

log = logging.getLogger(__name__)

_OWNER_SQL = "SELECT worker_id, status, started_at FROM chats WHERE id = $1"


@dataclass
class DaemonSettings:
    poll_s: float = 1.0
    heartbeat_s: float = 30.0
    # Holds of dead workers (no renewal for ``spend.HOLD_TTL``) go back this often.
    hold_sweep_s: float = 60.0
    stale_after_s: float = 300.0
    max_chats: int = 10
    purge_interval_s: float = 600.0
    turn: TurnSettings = field(default_factory=TurnSettings)


@dataclass(eq=False)
class _Running:
    turn: Turn
    task: asyncio.Task[None]
    watcher: asyncio.Task[None] | None = None


class ChatDaemon:
    def __init__(
        self,
        hub: EventHub,
        secrets: SecretBox,
        settings: DaemonSettings | None = None,
        tools: ToolRegistry | None = None,
        worker_id: uuid.UUID | None = None,
        workspaces: WorkspaceServices | None = None,
    ) -> None:
        self.hub = hub
        self.events = ChatAnnouncer(hub)
        self.secrets = secrets
        self.settings = settings or DaemonSettings()
        self.workspaces = workspaces
        processes = workspaces.processes if workspaces is not None else ProcessTable()
        self.tools = tools or ToolRegistry(agent_tools(processes))
        self.worker_id = worker_id or uuid.uuid4()
        self.running: dict[uuid.UUID, _Running] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._jobs: set[asyncio.Task[None]] = set()
        # Every live run, including an interrupted one still unwinding after the
        # chat was claimed again (``running`` holds only the newest per chat).
        self._runs: set[_Running] = set()

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="daemon-claim"),
            asyncio.create_task(self._heartbeat_loop(), name="daemon-heartbeat"),
            asyncio.create_task(self._stale_loop(), name="daemon-stale"),
            asyncio.create_task(self._listen_for_work(), name="daemon-wake"),
            asyncio.create_task(
                every(self.settings.purge_interval_s, purge_expired, "retention purge"),
                name="daemon-purge",
            ),
            asyncio.create_task(
                every(self.settings.hold_sweep_s, spend.sweep, "spend hold sweep"),
                name="daemon-hold-sweep",
            ),
        ]
        if self.workspaces is not None:
            await self.workspaces.start()
        self.wake()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for running in list(self._runs):
            running.turn.stop_reason = "lost"  # handed back: the next worker reruns the step
            running.task.cancel()
        for running in list(self._runs):
            with contextlib.suppress(asyncio.CancelledError):
                await running.task
        for row in await claims.hand_back(self.worker_id):
            await self._released(row)
        if self.workspaces is not None:
            await self.workspaces.stop()

    def wake(self) -> None:
        self._wake.set()

    # -- loops -------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
            # cancellation that lands as the wake completes, and stop() would hang.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                free = self.settings.max_chats - len(self.running)
                for row in await claims.claim(self.worker_id, free):
                    self._start_turn(row)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("claiming chats failed")

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            try:
                await self._heartbeat()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("heartbeat failed")

    async def _heartbeat(self) -> None:
        ids = list(self.running)
        owned = await claims.heartbeat(self.worker_id, ids)
        # This worker lives: its holds stay. After the chats' beat, and on its own,
        # so a slow or failed renewal never makes a running chat look stale.
        try:
            await spend.renew(self.worker_id)
        except Exception:
            log.warning("renewing spend holds failed", exc_info=True)
        for chat_id, status in owned.items():
            if status == ChatStatus.INTERRUPTING:  # the announcement may have been missed
                self._stop(chat_id, "interrupted")
        lost = [chat_id for chat_id in ids if chat_id not in owned]
        if not lost:
            return
        rows = await fetch("SELECT id, status FROM chats WHERE id = ANY($1::uuid[])", lost)
        statuses = {r["id"]: r["status"] for r in rows}
        for chat_id in lost:
            self._stop(chat_id, "interrupted" if statuses.get(chat_id) == "waiting" else "lost")

    async def _stale_loop(self) -> None:
        stale_after = timedelta(seconds=self.settings.stale_after_s)
        while True:
            try:
                for row in await claims.recover_stale(stale_after):
                    log.warning("recovered a stale chat", extra={"chat_id": str(row["id"])})
                    await self._released(row)
                # Debug runs of dead workers (a crash, a restart) end INTERRUPTED.
                await close_stale(self.events, self.settings.stale_after_s)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stale recovery failed")
            await asyncio.sleep(max(self.settings.stale_after_s / 5, 0.05))

    async def _listen_for_work(self) -> None:
        """Wake on the work channel; the poll covers any gap (e.g. a reconnect)."""
        while True:
            try:
                async with self.hub.subscribe(WORK_CHANNEL) as subscription:
                    async for event in subscription:
                        match event:
                            case TitleRequested(chat_id=chat_id):
                                self._job(self._title_job(chat_id))
                            case GitRefreshRequested():
                                if self.workspaces is not None:
                                    self._job(self.workspaces.handle(event))
                            case _:  # work, or a resync: look now
                                self.wake()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("work channel lost; polling until it is back", exc_info=True)
                await asyncio.sleep(self.settings.poll_s)

    def _job(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    # -- turns -------------------------------------------------------------------

    def _start_turn(self, row: Any) -> None:
        turn = Turn(
            chat_id=row["id"],
            owner_id=row["owner_id"],
            model_config_id=row["model_config_id"],
            worker_id=self.worker_id,
            events=self.events,
            secrets=self.secrets,
            tools=self.tools,
            settings=self.settings.turn,
            started_at=row["started_at"],
            backend=self.workspaces.backend if self.workspaces is not None else None,
        )
        task = asyncio.create_task(self._run(turn), name=f"turn-{turn.chat_id}")
        running = _Running(turn=turn, task=task)
        running.watcher = asyncio.create_task(self._watch(running))
        self._runs.add(running)
        task.add_done_callback(lambda _: self._runs.discard(running))
        self.running[turn.chat_id] = running

    async def _run(self, turn: Turn) -> None:
        try:
            if await run_turn(turn):
                # The chat is released (finished), so heartbeats leave this alone.
                await auto_title(turn.chat_id, self.secrets, self.events)
        except asyncio.CancelledError:
            log.info("turn stopped", extra={"chat_id": str(turn.chat_id), "why": turn.stop_reason})
            if turn.stop_reason == "interrupted":
                await asyncio.shield(settle_interrupted(turn))
        finally:
            if self.workspaces is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(
                        self.workspaces.turn_ended(turn.chat_id, turn.workspace_id)
                    )
            running = self.running.get(turn.chat_id)
            if running is not None and running.turn is turn:  # not a newer turn's entry
                del self.running[turn.chat_id]
                if running.watcher is not None:
                    running.watcher.cancel()
            self.wake()  # a slot is free, and the chat may have a queued message

    async def _watch(self, running: _Running) -> None:
        """Cancel the run as soon as its chat is interrupted, edited or taken over."""
        turn = running.turn
        mine = str(self.worker_id)
        try:
            async with self.hub.subscribe(chat_channel(turn.chat_id)) as subscription:
                # An interrupt announced before we listened is in the row already.
                await self._check_run(running, None)
                async for event in subscription:
                    if isinstance(event, StatusChanged) and event.worker_id != mine:
                        await self._check_run(running, event.status)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("interrupt watch lost; the heartbeat still guards", exc_info=True)

    async def _check_run(self, running: _Running, announced: str | None) -> None:
        """Stop the run if its chat is being interrupted or is no longer its own.

        Announcements arrive after their commit and may be older than our claim
        (the API's PENDING): the row says who owns the chat and what it is doing."""
        turn = running.turn
        rows = await fetch(_OWNER_SQL, turn.chat_id)
        if (
            rows
            and rows[0]["worker_id"] == self.worker_id
            and rows[0]["started_at"] == turn.started_at
        ):
            if rows[0]["status"] == ChatStatus.INTERRUPTING:
                self._stop_run(running, "interrupted")
            return  # otherwise still this run's chat
        if announced is None or announced == ChatStatus.INTERRUPTING:
            # The run released the chat itself (an interrupt came too late), or it
            # changed hands before we listened: the heartbeat judges a takeover.
            return
        # Not ours any more; the announcement says why (an interrupt keeps what was
        # streamed). Stop this run, not a newer one of the chat.
        self._stop_run(running, "interrupted" if announced == ChatStatus.WAITING else "lost")

    async def _released(self, row: Any) -> None:
        """Announce a chat this worker no longer runs (PENDING, or WAITING when it was
        being interrupted; its queue head then runs next)."""
        await self._status(row["owner_id"], row["id"], row["status"])
        if row["status"] == ChatStatus.WAITING:
            try:
                await promote_released(self.events, row["owner_id"], row["id"])
            except Exception:
                log.warning("promoting the queue of a released chat failed", exc_info=True)

    async def _title_job(self, chat_id: uuid.UUID) -> None:
        """One daemon wins the request (the lock's time moves on), runs it, unlocks."""
        if not await claims.claim_title(str(chat_id)):
            return
        owner = None
        try:
            owner = await claims.title_owner(str(chat_id))
            title = await regenerate_title(chat_id, self.secrets, self.events)
        except Exception:
            log.warning("title regeneration failed", exc_info=True)
            title = None
        finally:
            await claims.release_title(str(chat_id))
        if title is None and owner is not None:
            with contextlib.suppress(Exception):
                await self.events.title_failed(owner, chat_id)

    def _stop(self, chat_id: uuid.UUID, reason: str) -> None:
        running = self.running.get(chat_id)
        if running is not None:
            self._stop_run(running, reason)

    @staticmethod
    def _stop_run(running: _Running, reason: str) -> None:
        if running.task.done() or running.turn.finished or running.turn.stop_reason:
            return  # already settled or stopping: the first reason stands
        running.turn.stop_reason = reason
        running.task.cancel()

    async def _status(self, owner_id: uuid.UUID, chat_id: uuid.UUID, status: str) -> None:
        try:
            await self.events.status(owner_id, chat_id, status)
        except Exception:
            log.warning("publishing a status failed", exc_info=True)
