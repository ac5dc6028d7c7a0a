"""Chat.files and FilePart.file: one SQL query per page, and loads that survive cancellation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from db.chat_files import FileMeta, store_file
from db.models import Chat, ChatFileLink, ChatMessage, ChatQueuedMessage, User
from db.vocabulary import MessageRole
from resolvers import global_id
from resolvers.accounts import create_user
from resolvers.loaders import Loaders, SafeLoader
from tests.conftest import login_token
from tests.harness import PASSWORD, GraphQLClient, counted_queries
from tests.uploads import png

CHATS = """query($n: Int) {
  chats(first: $n) {
    edges { node { id
      files { id name url }
      queuedMessages { id parts { __typename ... on FilePart { file { id name } } } }
    } }
  }
}"""
MESSAGES = """query($id: ID!, $n: Int) {
  chat(id: $id) {
    files { id }
    messages(last: $n) {
      edges { node { id parts { __typename ... on FilePart { file { id name mimeType } } } } }
    }
  }
}"""
WAIT_S = 5.0


async def _owner(gql: GraphQLClient, name: str) -> tuple[User, str]:
    user = await create_user(name, PASSWORD)
    token = await login_token(gql, name)
    await gql("{ viewer { user { id } } }", token=token)  # its once-a-minute lastUsedAt write
    return user, token


async def _file(owner: User, seed: int) -> FileMeta:
    meta, _ = await store_file(owner.id, f"f{seed}.png", "image/png", png(seed))
    return meta


def _file_part(meta: FileMeta) -> dict[str, str]:
    return {"type": "file", "fileId": str(meta.id)}


async def _count(gql: GraphQLClient, query: str, variables: dict[str, object], token: str) -> Any:
    with counted_queries() as sent:
        result = await gql(query, variables, token=token)
    assert "errors" not in result, result
    return len(sent), result["data"]


# -- batching --------------------------------------------------------------------------


async def test_a_page_of_fifty_chats_with_files_costs_what_one_chat_costs(
    gql: GraphQLClient,
) -> None:
    owner, token = await _owner(gql, "fifty_with_files")
    now = datetime.now(UTC)
    for i in range(50):
        chat_id = uuid.uuid4()
        await Chat.create(
            id=chat_id, owner=owner, root_id=chat_id, title=f"c{i}", updated_at=now - timedelta(i)
        )
        linked, queued = await _file(owner, 1000 + 2 * i), await _file(owner, 1001 + 2 * i)
        await ChatFileLink.create(chat_id=chat_id, file_id=linked.id)
        await ChatQueuedMessage.create(
            chat_id=chat_id, parts=[_file_part(queued)], created_by_id=owner.id
        )

    one, page = await _count(gql, CHATS, {"n": 1}, token)
    fifty, full = await _count(gql, CHATS, {"n": 50}, token)

    assert fifty == one
    # chats page, owners' links+files, queues, queued messages' files (the token is cached)
    assert one == 4
    nodes = [edge["node"] for edge in full["chats"]["edges"]]
    assert len(nodes) == 50
    assert page["chats"]["edges"][0]["node"] == nodes[0]
    for i, node in enumerate(nodes):
        (file,) = node["files"]
        assert file["name"] == f"f{1000 + 2 * i}.png"
        assert file["url"] == f"/files/{global_id.decode_uuid(file['id'], 'ChatFile')}"
        (queued,) = node["queuedMessages"]
        assert queued["parts"] == [
            {
                "__typename": "FilePart",
                "file": {"id": queued["parts"][0]["file"]["id"], "name": f"f{1001 + 2 * i}.png"},
            }
        ]


async def test_a_page_of_messages_with_files_costs_what_two_messages_cost(
    gql: GraphQLClient,
) -> None:
    owner, token = await _owner(gql, "long_with_files")
    chat_id = uuid.uuid4()
    await Chat.create(
        id=chat_id, owner=owner, root_id=chat_id, title="files", updated_at=datetime.now(UTC)
    )
    for i in range(100):
        meta = await _file(owner, 5000 + i)
        role = MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT
        parts = [{"type": "text", "text": f"m{i}"}, _file_part(meta)]
        await ChatMessage.create(chat_id=chat_id, role=role, parts=parts)
    gid = global_id.encode("Chat", chat_id)

    two, _ = await _count(gql, MESSAGES, {"id": gid, "n": 2}, token)
    hundred, data = await _count(gql, MESSAGES, {"id": gid, "n": 100}, token)

    assert hundred == two
    # chat, linked files, messages page, the parts' files (the token is cached)
    assert two == 4
    names = [
        part["file"]["name"]
        for edge in data["chat"]["messages"]["edges"]
        for part in edge["node"]["parts"]
        if part["__typename"] == "FilePart"
    ]
    assert names == [f"f{5000 + i}.png" for i in range(100)]


# -- cancellation ----------------------------------------------------------------------


class Gate:
    """A batch function that records its calls and waits for ``release``."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def load(self, keys: list[int]) -> list[int]:
        self.calls.append(list(keys))
        self.started.set()
        await self.release.wait()
        return [key * 2 for key in keys]


def resolver(loader: SafeLoader) -> Callable[[int], Coroutine[Any, Any, int]]:
    """What a field resolver does: load a key and await it."""

    async def resolve(key: int) -> int:
        return int(await loader.load(key))

    return resolve


async def _cancelled(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_load_cancelled_mid_batch_does_not_poison_a_later_load() -> None:
    gate = Gate()
    loader = SafeLoader(gate.load)
    first = asyncio.create_task(resolver(loader)(21))
    await asyncio.wait_for(gate.started.wait(), WAIT_S)
    await _cancelled(first)
    gate.release.set()

    assert await asyncio.wait_for(resolver(loader)(21), WAIT_S) == 42


async def test_cancelling_one_caller_leaves_the_others_of_the_same_key_served() -> None:
    gate = Gate()
    loader = SafeLoader(gate.load)
    resolve = resolver(loader)
    first = asyncio.create_task(resolve(7))
    second = asyncio.create_task(resolve(7))
    await asyncio.wait_for(gate.started.wait(), WAIT_S)
    await _cancelled(first)
    gate.release.set()

    assert await asyncio.wait_for(second, WAIT_S) == 14
    assert await asyncio.wait_for(resolve(7), WAIT_S) == 14
    assert gate.calls == [[7]]  # one batch served all three


async def test_a_key_whose_load_failed_is_loaded_again() -> None:
    answers: list[list[Any]] = [[ValueError("database hiccup")], [99]]

    async def flaky(keys: list[int]) -> list[Any]:
        return answers.pop(0)

    loader = SafeLoader(flaky)
    with pytest.raises(ValueError, match="hiccup"):
        await loader.load(1)
    assert await loader.load(1) == 99


async def test_the_file_loaders_serve_a_key_again_after_a_cancelled_load(
    gql: GraphQLClient,
) -> None:
    owner, _ = await _owner(gql, "cancel_safe")
    meta = await _file(owner, 9000)
    chat_id = uuid.uuid4()
    await Chat.create(
        id=chat_id, owner=owner, root_id=chat_id, title="c", updated_at=datetime.now(UTC)
    )
    await ChatFileLink.create(chat_id=chat_id, file_id=meta.id)
    loaders = Loaders()
    for loader, key, expected in (
        (loaders.files, meta.id, meta),
        (loaders.chat_files, chat_id, [meta]),
    ):
        loaded = asyncio.Event()

        async def resolve(loader: Any = loader, key: Any = key, loaded: Any = loaded) -> Any:
            pending = loader.load(key)
            loaded.set()
            return await pending

        first = asyncio.create_task(resolve())
        await asyncio.wait_for(loaded.wait(), WAIT_S)
        await _cancelled(first)
        assert await asyncio.wait_for(loader.load(key), WAIT_S) == expected
