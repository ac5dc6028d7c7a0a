"""A provider that cannot be reached or used, as the chat shows it.

An unreachable provider (nobody listening, no route, a connect that hangs) is an
outage like any other: retried, and every retry announced as RetryScheduled,
never a chat sitting RUNNING in silence. A provider that cannot be used at all
(no key, disabled) fails the chat with ``lastError.provider`` naming it.
Real uvicorn, the daemon in its lifespan, a real WebSocket; the "provider" is a
closed local port or a local listener whose backlog is full (connects hang).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import anthropic  # noqa: F401 (imported now: a first import blocks the loop for a second)
import pytest
from starlette.applications import Starlette

from daemon.providers import classify
from daemon.providers.errors import UNREACHABLE_MESSAGE
from db.models import Chat, ChatMessage, ModelConfig, Provider, User
from db.vocabulary import ChatErrorKind, ChatStatus, MessageRole, ProviderKind
from resolvers import global_id
from resolvers.accounts import create_user
from tests.daemon import live_app
from tests.daemon.live import (
    CHAT_EVENTS,
    INTERRUPT,
    GraphQLSocket,
    chat_settled,
    nonce,
    read_chat,
    typename,
)
from tests.harness import LOGIN, PASSWORD, GraphQLClient

# The shared fixtures of a module with its own running app (tests.daemon.live_app).
app, admin, client = live_app.app, live_app.admin, live_app.client

_users = itertools.count()


def free_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def blackhole() -> Iterator[int]:
    """A port whose connects hang: a listener that never accepts, its backlog full,
    so the kernel drops new connection attempts as an unreachable host would."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port: int = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(3):
                filler = socket.socket()
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
                fillers.append(filler)
            yield port
        finally:
            for filler in fillers:
                filler.close()


async def provider(
    app: Starlette,
    kind: ProviderKind,
    *,
    key: str | None = None,
    base_url: str | None = None,
    enabled: bool = True,
) -> ModelConfig:
    """The module's provider of ``kind`` (one per kind), as given, and a model on it."""
    ciphertext = app.state.secrets.encrypt(key) if key is not None else None
    row, _ = await Provider.update_or_create(
        kind=kind,
        defaults={
            "display_name": f"{kind.value} under test",
            "base_url": base_url,
            "enabled": enabled,
            "api_key_ciphertext": ciphertext,
        },
    )
    return await ModelConfig.create(
        provider=row, model="model-under-test", display_name="Under test", context_limit=8000
    )


async def someone(client: GraphQLClient) -> tuple[User, str]:
    user = await create_user(f"net{next(_users)}_{nonce()}", PASSWORD)
    data = await client.ok(LOGIN, {"u": user.username, "p": PASSWORD})
    return user, str(data["login"]["token"])


async def chat_on(owner: User, config: ModelConfig, status: ChatStatus) -> Chat:
    """A chat with one user message, on ``config``, left in ``status``."""
    chat_id = uuid.uuid4()
    chat = await Chat.create(
        id=chat_id,
        owner_id=owner.id,
        root_id=chat_id,
        title="Provider under test",
        status=status,
        model_config_id=config.id,
        updated_at=datetime.now(UTC),
    )
    await ChatMessage.create(
        chat_id=chat_id,
        role=MessageRole.USER,
        parts=[{"type": "text", "text": f"hello {nonce()}"}],
        created_by_id=owner.id,
        model_config_id=config.id,
    )
    return chat


def chat_gid(chat: Chat) -> str:
    return global_id.encode("Chat", str(chat.id))


# -- classification -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        OSError(errno.ENETUNREACH, "Network is unreachable"),
        OSError(errno.EHOSTUNREACH, "No route to host"),
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    ],
)
def test_a_provider_never_reached_is_a_retryable_outage(exc: OSError) -> None:
    error = classify(exc, "openai")
    assert error.retryable is True
    assert error.kind is ChatErrorKind.GENERIC
    assert error.message == UNREACHABLE_MESSAGE
    assert error.provider == "openai"


# -- unreachable: retried and announced -------------------------------------------------


async def retry_seen(
    app: Starlette, live_server: str, client: GraphQLClient, config: ModelConfig
) -> dict[str, object]:
    """Run a chat on ``config``; its first RetryScheduled, then interrupt it."""
    owner, token = await someone(client)
    chat = await chat_on(owner, config, ChatStatus.WAITING)
    async with GraphQLSocket.open(live_server, token) as socket_:
        sub = await socket_.subscribe(CHAT_EVENTS, {"id": chat_gid(chat)}, field="chatEvents")
        await sub.until(lambda e: typename(e, "QueueUpdated"))  # the replay is done
        await Chat.filter(id=chat.id).update(status=ChatStatus.PENDING)
        app.state.daemon.wake()
        events = await sub.until(lambda e: typename(e, "RetryScheduled"), timeout=30)
        await client.ok(INTERRUPT, {"id": chat_gid(chat)}, token=token)
    await chat_settled(chat.id, ChatStatus.WAITING)
    retry = events[-1]
    assert [e["status"] for e in events if typename(e, "StatusChanged")][-1] == "RUNNING"
    assert not [e for e in events if typename(e, "ChatFailed")]
    return retry


async def test_a_closed_port_is_retried_and_announced(
    app: Starlette, live_server: str, client: GraphQLClient, admin: str
) -> None:
    config = await provider(
        app,
        ProviderKind.OPENAI,
        key="sk-test-unreachable",
        base_url=f"http://127.0.0.1:{free_port()}/v1",
    )
    retry = await retry_seen(app, live_server, client, config)
    error = retry["error"]
    assert isinstance(error, dict)
    assert (error["kind"], error["retryable"], error["provider"]) == ("GENERIC", True, "openai")
    assert error["message"] == UNREACHABLE_MESSAGE


async def test_a_connect_that_hangs_is_retried_and_announced(
    app: Starlette, live_server: str, client: GraphQLClient, admin: str
) -> None:
    """No network: the connect hangs. It must time out soon (not after the reply
    timeout of minutes) and be retried, announced."""
    app.state.daemon.settings.turn.connect_timeout_s = 1.0  # the default is seconds more
    with blackhole() as port:
        config = await provider(
            app,
            ProviderKind.ANTHROPIC,
            key="sk-ant-unreachable",
            base_url=f"http://127.0.0.1:{port}",
        )
        retry = await retry_seen(app, live_server, client, config)
    error = retry["error"]
    assert isinstance(error, dict)
    assert (error["kind"], error["retryable"], error["provider"]) == ("TIMEOUT", True, "anthropic")
    assert error["message"] == UNREACHABLE_MESSAGE


# -- unusable: the error names the provider ------------------------------------------------


async def failed_error(
    client: GraphQLClient, app: Starlette, config: ModelConfig
) -> dict[str, object]:
    owner, token = await someone(client)
    chat = await chat_on(owner, config, ChatStatus.PENDING)
    app.state.daemon.wake()
    await chat_settled(chat.id, ChatStatus.ERROR, ChatStatus.WAITING)
    state = await read_chat(client, token, chat_gid(chat))
    assert state["status"] == "ERROR"
    error: dict[str, object] = state["lastError"]
    return error


async def test_a_missing_key_names_the_provider(
    app: Starlette, client: GraphQLClient, admin: str
) -> None:
    config = await provider(app, ProviderKind.OPENAI_COMPATIBLE, base_url="http://127.0.0.1:9/v1")
    error = await failed_error(client, app, config)
    assert (error["kind"], error["provider"], error["retryable"]) == (
        "MISSING_KEY",
        "openai_compatible",
        False,
    )


async def test_a_disabled_provider_names_the_provider(
    app: Starlette, client: GraphQLClient, admin: str
) -> None:
    config = await provider(app, ProviderKind.SCRIPTED, enabled=False)
    try:
        error = await failed_error(client, app, config)
    finally:
        await Provider.filter(kind=ProviderKind.SCRIPTED).update(enabled=True)
    assert (error["kind"], error["provider"], error["retryable"]) == (
        "PROVIDER_DISABLED",
        "scripted",
        False,
    )
