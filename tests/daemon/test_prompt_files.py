"""Attached images reach the model: read from storage when the turn is dispatched.

A real turn (``run_turn``) against the fake OpenAI and Anthropic servers; the
message rows keep only file ids, and what the provider receives is checked
byte for byte.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.applications import Starlette

from daemon.providers.anthropic_client import ANTHROPIC_INLINE_IMAGE_MAX
from daemon.tool_registry import ToolRegistry
from daemon.turn_runner import Turn, TurnSettings, run_turn
from db.chat_files import FileMeta, store_file
from db.models import (
    Chat,
    ChatFile,
    ChatFileLink,
    ChatMessage,
    ChatQueuedMessage,
    ModelConfig,
    Provider,
    User,
)
from db.vocabulary import ChatStatus, MessageRole, ProviderKind
from events.announcer import ChatAnnouncer
from resolvers.accounts import create_user
from tests.daemon.fake_llm import TEST_KEY, FakeLlm, SseReply, anthropic_stream, openai_stream
from tests.harness import PASSWORD
from tests.uploads import gif, png, png_of_size

FAST = TurnSettings(coalesce_s=0.02, retry_base_s=0.01, retry_max_s=0.02)


@pytest.fixture(scope="module")
async def owner(app: Starlette) -> User:
    return await create_user("illustrator", PASSWORD)


@pytest.fixture(scope="module")
async def models(app: Starlette, served_llm: FakeLlm) -> dict[str, ModelConfig]:
    """One model on each real provider kind, both served by the fake."""
    key = app.state.secrets.encrypt(TEST_KEY)
    configs: dict[str, ModelConfig] = {}
    for kind, base_url, model in (
        (ProviderKind.OPENAI, f"{served_llm.url}/v1", "gpt-fake"),
        (ProviderKind.ANTHROPIC, served_llm.url, "claude-fake"),
    ):
        provider = await Provider.create(
            kind=kind, display_name=kind.value, base_url=base_url, api_key_ciphertext=key
        )
        configs[kind.value] = await ModelConfig.create(
            provider=provider, model=model, display_name=model, context_limit=200_000
        )
    return configs


async def stored(owner: User, name: str, data: bytes, mime_type: str = "image/png") -> FileMeta:
    meta, _ = await store_file(owner.id, name, mime_type, data)
    return meta


def file_parts(words: str, files: list[FileMeta]) -> list[dict[str, Any]]:
    parts = [{"type": "text", "text": words}]
    return parts + [{"type": "file", "fileId": str(meta.id)} for meta in files]


async def claimed_chat(owner: User, model: ModelConfig, parts: list[dict[str, Any]]) -> Chat:
    """A chat as a worker holds it after claiming, its user message ``parts``."""
    chat_id = uuid.uuid4()
    now = datetime.now(UTC)
    chat = await Chat.create(
        id=chat_id,
        owner_id=owner.id,
        root_id=chat_id,
        title="Pictures",
        updated_at=now,
        model_config_id=model.id,
    )
    await ChatMessage.create(
        chat_id=chat_id,
        role=MessageRole.USER,
        parts=parts,
        created_by_id=owner.id,
        model_config_id=model.id,
    )
    return await claim(chat)


async def claim(chat: Chat) -> Chat:
    now = datetime.now(UTC)
    chat.status, chat.worker_id = ChatStatus.RUNNING, uuid.uuid4()
    chat.started_at = chat.heartbeat_at = now
    await chat.save(update_fields=["status", "worker_id", "started_at", "heartbeat_at"])
    return chat


async def run(app: Starlette, chat: Chat) -> ChatStatus:
    """One turn on the claimed ``chat``; the chat's status afterwards."""
    turn = Turn(
        chat_id=chat.id,
        owner_id=chat.owner_id,  # type: ignore[attr-defined]
        model_config_id=chat.model_config_id,
        worker_id=chat.worker_id,  # type: ignore[arg-type]
        events=ChatAnnouncer(app.state.event_hub),
        secrets=app.state.secrets,
        tools=ToolRegistry(),
        settings=FAST,
    )
    assert await run_turn(turn)
    return (await Chat.get(id=chat.id)).status


async def run_with_files(
    app: Starlette, owner: User, model: ModelConfig, words: str, files: list[FileMeta]
) -> None:
    """Run one turn on a chat whose user message is ``words`` and ``files``."""
    parts = file_parts(words, files)
    chat = await claimed_chat(owner, model, parts)
    assert await run(app, chat) is ChatStatus.WAITING
    (sent,) = await ChatMessage.filter(chat_id=chat.id, role=MessageRole.USER)
    assert sent.parts == parts  # the row keeps ids, never bytes


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def user_content(llm: FakeLlm, words: str) -> Any:
    """The last user message's blocks after its text (which names the attachments too)."""
    request = llm.requests[-1]
    user = [m for m in request.body["messages"] if m["role"] == "user"][-1]
    first, *rest = user["content"]
    assert first["type"] == "text"
    assert first["text"].startswith(words)
    return rest


async def test_openai_receives_each_attached_image_as_a_data_url(
    app: Starlette, owner: User, models: dict[str, ModelConfig], llm: FakeLlm
) -> None:
    picture, animation = png(1, side=4), gif()
    files = [
        await stored(owner, "p.png", picture),
        await stored(owner, "a.gif", animation, "image/gif"),
    ]
    llm.push(SseReply(openai_stream(text=["Two images."])))

    await run_with_files(app, owner, models["openai"], "What are these?", files)

    assert user_content(llm, "What are these?") == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(picture)}"}},
        {"type": "image_url", "image_url": {"url": f"data:image/gif;base64,{b64(animation)}"}},
    ]


async def test_anthropic_receives_each_attached_image_as_an_image_block(
    app: Starlette, owner: User, models: dict[str, ModelConfig], llm: FakeLlm
) -> None:
    picture = png(2, side=4)
    files = [await stored(owner, "q.png", picture)]
    llm.push(SseReply(anthropic_stream(("text", ["An image."]))))

    await run_with_files(app, owner, models["anthropic"], "Describe it", files)

    assert user_content(llm, "Describe it") == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": b64(picture)},
        },
    ]


async def test_anthropic_gets_images_over_5_mib_by_name_only(
    app: Starlette, owner: User, models: dict[str, ModelConfig], llm: FakeLlm
) -> None:
    small = png(3)
    files = [
        await stored(owner, "huge.png", png_of_size(ANTHROPIC_INLINE_IMAGE_MAX + 1, seed=3)),
        await stored(owner, "edge.png", png_of_size(ANTHROPIC_INLINE_IMAGE_MAX, seed=4)),
        await stored(owner, "small.png", small),
    ]
    llm.push(SseReply(anthropic_stream(("text", ["ok"]))))

    await run_with_files(app, owner, models["anthropic"], "Compare", files)

    huge, edge, last = user_content(llm, "Compare")
    assert huge == {"type": "text", "text": "[image huge.png too large to show inline]"}
    assert edge["type"] == "image"  # exactly 5 MiB is still inlined
    assert len(base64.b64decode(edge["source"]["data"])) == ANTHROPIC_INLINE_IMAGE_MAX
    assert last["source"]["data"] == b64(small)


async def test_a_file_deleted_before_dispatch_is_left_out_and_the_turn_still_runs(
    app: Starlette, owner: User, models: dict[str, ModelConfig], llm: FakeLlm
) -> None:
    kept, gone = png(5), png(6)
    files = [await stored(owner, "kept.png", kept), await stored(owner, "gone.png", gone)]
    await ChatFile.filter(id=files[1].id).delete()
    llm.push(SseReply(openai_stream(text=["One image."])))

    await run_with_files(app, owner, models["openai"], "Still there?", files)

    assert user_content(llm, "Still there?") == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(kept)}"}},
    ]


async def test_a_queued_image_is_linked_when_the_turn_ends_and_shown_in_the_next(
    app: Starlette, owner: User, models: dict[str, ModelConfig], llm: FakeLlm
) -> None:
    picture = png(7, side=3)
    meta = await stored(owner, "queued.png", picture)
    chat = await claimed_chat(owner, models["openai"], file_parts("first", []))
    await ChatQueuedMessage.create(
        chat_id=chat.id, parts=file_parts("then this", [meta]), created_by_id=owner.id
    )
    llm.push(SseReply(openai_stream(text=["one"])), SseReply(openai_stream(text=["two"])))

    assert await run(app, chat) is ChatStatus.PENDING  # the queue head was sent
    assert await ChatFileLink.filter(chat_id=chat.id, file_id=meta.id).exists()
    assert await run(app, await claim(chat)) is ChatStatus.WAITING

    assert len(llm.requests) == 2
    assert user_content(llm, "then this") == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(picture)}"}},
    ]
