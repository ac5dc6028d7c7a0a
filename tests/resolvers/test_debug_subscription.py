"""``debugRuns`` end to end: real uvicorn, real WebSockets, the daemon running.

A logged turn's run is delivered as it starts, as its step ends and as it ends;
another user's chat is NOT_FOUND, as for ``chatEvents``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette

from db import debug_runs
from db.models import DebugRun, DebugStatus
from resolvers import global_id
from tests.conftest import make_settings
from tests.daemon.live import (
    FAST_DAEMON,
    SEND,
    GraphQLSocket,
    chat_settled,
    chat_uuid,
    create_chat,
    eventually,
    http_client,
    new_user,
    running_app,
)
from tests.harness import PASSWORD, SIGN_UP, GraphQLClient

DEBUG_RUNS = """
subscription($id: ID!) {
  debugRuns(chatId: $id) {
    id kind status tokenSummary
    steps { index status operation }
  }
}"""


@pytest.fixture(scope="module")
async def app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Starlette]:
    settings = make_settings(database_url, tmp_path_factory, **FAST_DAEMON)
    async with running_app(settings) as application:
        await debug_runs.write_settings(debug_runs.DebugLoggingSettings(enabled=True))
        yield application


@pytest.fixture(scope="module")
async def client(live_server: str) -> AsyncIterator[GraphQLClient]:
    async with http_client(live_server) as gql:
        await gql.ok(SIGN_UP, {"u": "admin", "p": PASSWORD})  # the first account
        yield gql


def nonce() -> str:
    return uuid.uuid4().hex[:6]


async def runs_settled(chat_id: uuid.UUID, count: int) -> None:
    """``count`` runs recorded, none of them still in progress."""

    async def check() -> bool:
        runs = await DebugRun.filter(chat_id=chat_id)
        return len(runs) >= count and all(r.status is not DebugStatus.IN_PROGRESS for r in runs)

    await eventually(check)


async def test_a_run_is_delivered_as_it_starts_as_its_step_ends_and_as_it_ends(
    live_server: str, client: GraphQLClient
) -> None:
    token = await new_user(client, "watcher")
    chat = await create_chat(client, token, f"first turn {nonce()}")
    key = chat_uuid(chat["id"])
    await chat_settled(key)
    await runs_settled(key, 2)  # the turn and its automatic title
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(DEBUG_RUNS, {"id": chat["id"]}, field="debugRuns")
        # The newest run as it is now: the subscription is live from here.
        current = await sub.next()
        assert current["status"] == "COMPLETED"
        seen = {global_id.encode("DebugRun", r.id) for r in await DebugRun.filter(chat_id=key)}

        # Paced, so the run is seen in progress before its only step ends.
        text = f"/slow 60\nthe second turn of words {nonce()}"
        await client.ok(SEND, {"id": chat["id"], "text": text}, token=token)

        def ended(frame: dict[str, Any]) -> bool:
            return frame["kind"] == "CHAT_TURN" and frame["status"] == "COMPLETED"

        frames = await sub.until(lambda f: f["id"] not in seen and ended(f))
    run_id = frames[-1]["id"]
    mine = [f for f in frames if f["id"] == run_id]
    start, step, end = mine
    assert (start["status"], start["steps"]) == ("IN_PROGRESS", [])
    # As the step left the run, even when the end is committed before it is read.
    assert step["steps"] == [{"index": 0, "status": "COMPLETED", "operation": "stream"}]
    assert step["status"] == "IN_PROGRESS"
    assert end["steps"] == step["steps"]
    assert end["status"] == "COMPLETED"
    assert end["tokenSummary"].endswith(" tok")
    assert end["tokenSummary"] != "0→0 tok"


async def test_debug_runs_of_someone_elses_chat_is_not_found(
    live_server: str, client: GraphQLClient
) -> None:
    owner = await new_user(client, "owner")
    stranger = await new_user(client, "stranger")
    chat = await create_chat(client, owner, f"private runs {nonce()}")
    async with GraphQLSocket.open(live_server, stranger) as socket:
        sub = await socket.subscribe(DEBUG_RUNS, {"id": chat["id"]}, field="debugRuns")
        frame = await asyncio.wait_for(sub.queue.get(), 10)
    errors = frame["payload"]["errors"] if frame["type"] == "next" else frame["payload"]
    assert errors[0]["extensions"]["code"] == "NOT_FOUND", frame
