"""A disabled user's chat never reaches a model, whatever got it to PENDING.

The API refuses a disabled user, but a chat created in the instant before the
account was disabled (or queued earlier) is still PENDING; the daemon claims it
and must fail it with a clear lastError instead of running it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from starlette.applications import Starlette

from daemon.turn_runner import OWNER_DISABLED_MESSAGE
from db.model_resolution import default_model_config
from db.models import Chat, ChatMessage, User
from db.vocabulary import ChatStatus, MessageRole
from resolvers.accounts import create_user
from tests.daemon.live import chat_settled, messages_of, nonce
from tests.daemon.live_app import app  # noqa: F401 (fixture: the daemon runs)
from tests.harness import PASSWORD


async def pending_chat(owner: User, text: str) -> Chat:
    """A chat as createChat leaves it: PENDING, with its first message."""
    config = await default_model_config()
    assert config is not None
    chat_id = uuid.uuid4()
    chat = await Chat.create(
        id=chat_id,
        owner_id=owner.id,
        root_id=chat_id,
        title="Typed by hand",
        status=ChatStatus.PENDING,
        model_config_id=config.id,
        updated_at=datetime.now(UTC),
    )
    await ChatMessage.create(
        chat_id=chat_id,
        role=MessageRole.USER,
        parts=[{"type": "text", "text": text}],
        created_by_id=owner.id,
        model_config_id=config.id,
    )
    return chat


async def test_a_disabled_owners_chat_fails_with_a_clear_error_and_no_reply(
    app: Starlette,  # noqa: F811 (the fixture imported above)
) -> None:
    owner = await create_user(f"gone{nonce()}", PASSWORD)
    owner.disabled = True
    await owner.save(update_fields=["disabled"])
    chat = await pending_chat(owner, f"run me anyway {nonce()}")
    app.state.daemon.wake()

    settled = await chat_settled(chat.id, ChatStatus.ERROR, ChatStatus.WAITING)

    assert settled.status is ChatStatus.ERROR
    assert settled.last_error is not None
    assert settled.last_error["kind"] == "auth"
    assert settled.last_error["message"] == OWNER_DISABLED_MESSAGE
    assert [m.role for m in await messages_of(chat.id)] == [MessageRole.USER]


async def test_an_enabled_owners_chat_still_runs(
    app: Starlette,  # noqa: F811 (the fixture imported above)
) -> None:
    owner = await create_user(f"here{nonce()}", PASSWORD)
    chat = await pending_chat(owner, f"hello {nonce()}")
    app.state.daemon.wake()

    settled = await chat_settled(chat.id, ChatStatus.ERROR, ChatStatus.WAITING)

    assert settled.status is ChatStatus.WAITING
    assert [m.role for m in await messages_of(chat.id)] == [
        MessageRole.USER,
        MessageRole.ASSISTANT,
    ]
