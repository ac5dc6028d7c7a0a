"""End-to-end plumbing for the daemon and subscription tests.

An app with the chat daemon running in its lifespan, a graphql-transport-ws
client on the real ``websockets`` library (one reader task routes frames to
per-subscription queues, and every raw frame is kept so a test can search
them), the GraphQL documents those tests share, and small waits with
deadlines: nothing here sleeps and hopes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from daemon.providers import ToolSpec
from daemon.tool_registry import Tool, ToolRegistry
from db.model_resolution import ensure_default_scripted_model
from db.models import Chat, ChatMessage
from db.vocabulary import ChatStatus, MessageRole
from resolvers import global_id
from resolvers.accounts import create_user
from server.app import create_app
from server.settings import Settings
from tests.harness import LOGIN, PASSWORD, GraphQLClient

# Fast everything: heartbeats, polls, coalescing and retries in milliseconds.
FAST_DAEMON: dict[str, Any] = {
    "daemon_heartbeat_s": 0.5,
    "daemon_poll_s": 0.2,
    "stream_coalesce_ms": 20,
    "retry_base_s": 0.05,
    "retry_max_s": 0.2,
    "daemon_stale_after_s": 2,
}
WAIT_S = 10.0

PART_FIELDS = """
fragment P on MessagePart {
  __typename
  ... on TextPart { text }
  ... on ReasoningPart { text }
  ... on ToolCallPart { toolCallId toolName args }
  ... on ToolResultPart { toolCallId toolName result isError }
}"""
ERROR_FIELDS = "kind message detail provider retryable statusCode"
CHAT_EVENTS = (
    f"""
subscription($id: ID!, $after: String) {{
  chatEvents(chatId: $id, after: $after) {{
    __typename
    ... on StatusChanged {{ chatId status }}
    ... on PartDelta {{ chatId role partIndex part {{ ...P }} }}
    ... on MessageCreated {{
      chatId cursor
      message {{
        id role runtimeMs costMicros parts {{ ...P }}
        usage {{ inputTokens outputTokens reasoningTokens cacheReadTokens cacheWriteTokens }}
      }}
    }}
    ... on RetryScheduled {{ chatId attempt delayMs retryingAt error {{ {ERROR_FIELDS} }} }}
    ... on ChatFailed {{ chatId error {{ {ERROR_FIELDS} }} }}
    ... on QueueUpdated {{ chatId queuedMessages {{ id parts {{ ...P }} }} }}
    ... on HistoryReset {{ chatId }}
    ... on Resync {{ resyncChatId: chatId reason }}
  }}
}}"""
    + PART_FIELDS
)
CHAT_LIST_EVENTS = "subscription { chatListEvents { kind chat { id title status } } }"
TITLE_CHANGES = """
subscription($id: ID) {
  titleChanges(chatId: $id) {
    __typename
    ... on TitleChange { chatId title }
    ... on Resync { resyncChatId: chatId reason }
  }
}"""
CREATE_CHAT = """
mutation($text: String!, $model: ID) {
  createChat(input: {content: [{text: $text}], modelConfigId: $model}) {
    chat { id title status }
  }
}"""
SEND = """
mutation($id: ID!, $text: String!, $busy: BusyBehavior! = QUEUE) {
  sendMessage(input: {chatId: $id, content: [{text: $text}], busyBehavior: $busy}) {
    queued message { id } queuedMessage { id }
  }
}"""
INTERRUPT = "mutation($id: ID!) { interruptChat(id: $id) { id status } }"
REGENERATE_TITLE = "mutation($id: ID!) { regenerateChatTitle(id: $id) { id title status } }"
CHAT = (
    f"""
query($id: ID!) {{
  chat(id: $id) {{
    id title status hasUnread
    lastError {{ {ERROR_FIELDS} }}
    queuedMessages {{ id }}
    messages(first: 200) {{
      nodes {{
        id role runtimeMs costMicros parts {{ ...P }}
        usage {{ inputTokens outputTokens reasoningTokens cacheReadTokens cacheWriteTokens }}
      }}
    }}
  }}
}}"""
    + PART_FIELDS
)


async def _echo(args: dict[str, Any], turn: Any) -> Any:
    return {"echoed": args}


# A test-only tool: ``/tool echo {...}`` makes a two-step turn with a tool message.
ECHO = Tool(ToolSpec("echo", "Return the arguments.", {"type": "object", "properties": {}}), _echo)


# -- the app ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_app(
    settings: Settings, *, tools: ToolRegistry | None = None, run_daemon: bool = True
) -> AsyncIterator[Starlette]:
    """The app through its lifespan (database, hub, daemon), with a default model.

    Only one Tortoise context exists per process: a module that runs this must
    not also use the shared ``app`` fixture (override ``app`` with it instead).
    """
    application = create_app(settings, run_daemon=run_daemon, tools=tools)
    async with application.router.lifespan_context(application):
        await ensure_default_scripted_model()
        yield application


@contextlib.asynccontextmanager
async def http_client(base_url: str) -> AsyncIterator[GraphQLClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        yield GraphQLClient(client)


_users = itertools.count()


async def new_user(gql: GraphQLClient, prefix: str = "user") -> str:
    """A fresh MEMBER account (sign-up is closed after the first); its token."""
    name = f"{prefix}{next(_users)}_{uuid.uuid4().hex[:6]}"
    await create_user(name, PASSWORD)
    data = await gql.ok(LOGIN, {"u": name, "p": PASSWORD})
    return str(data["login"]["token"])


async def create_chat(
    gql: GraphQLClient, token: str, text: str, model: str | None = None
) -> dict[str, Any]:
    data = await gql.ok(CREATE_CHAT, {"text": text, "model": model}, token=token)
    return dict(data["createChat"]["chat"])


async def read_chat(gql: GraphQLClient, token: str, chat_gid: str) -> dict[str, Any]:
    data = await gql.ok(CHAT, {"id": chat_gid}, token=token)
    assert data["chat"] is not None
    return dict(data["chat"])


def nonce() -> str:
    """Keeps scripted requests distinct: ``/fail N`` attempts are counted per request
    content in the process."""
    return uuid.uuid4().hex[:8]


def chat_uuid(chat_gid: str) -> uuid.UUID:
    return global_id.decode_uuid(chat_gid, "Chat")


def message_gid(message_id: int) -> str:
    return global_id.encode("Message", message_id)


def text_of(parts: list[dict[str, Any]]) -> str:
    return "".join(p["text"] for p in parts if p.get("__typename", "TextPart") == "TextPart")


def stored_text(parts: list[dict[str, Any]]) -> str:
    """The text of parts as stored (``{"type": "text", "text": ...}``)."""
    return "".join(p["text"] for p in parts if p.get("type") == "text")


# -- waiting ---------------------------------------------------------------------------


async def eventually(
    check: Callable[[], Awaitable[Any]],
    *,
    timeout: float = WAIT_S,  # noqa: ASYNC109 (a test helper)
    every: float = 0.02,
) -> Any:
    """Poll ``check`` until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")
        await asyncio.sleep(every)


async def chat_settled(chat_id: uuid.UUID, *statuses: ChatStatus, timeout: float = WAIT_S) -> Chat:  # noqa: ASYNC109 (a test helper)
    wanted = statuses or (ChatStatus.WAITING,)

    async def check() -> Chat | None:
        chat = await Chat.filter(id=chat_id).first()
        return chat if chat is not None and chat.status in wanted else None

    result: Chat = await eventually(check, timeout=timeout)
    return result


async def messages_of(chat_id: uuid.UUID, role: MessageRole | None = None) -> list[ChatMessage]:
    rows = ChatMessage.filter(chat_id=chat_id, deleted=False)
    if role is not None:
        rows = rows.filter(role=role)
    return list(await rows.order_by("id"))


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


# -- graphql-transport-ws over real sockets ------------------------------------------


class SubscriptionClosedError(AssertionError):
    pass


class Subscription:
    def __init__(self, socket: GraphQLSocket, sub_id: str, field: str) -> None:
        self.socket = socket
        self.id = sub_id
        self.field = field
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.received: list[dict[str, Any]] = []

    async def next(self, timeout: float = WAIT_S) -> dict[str, Any]:  # noqa: ASYNC109 (a test helper)
        """The next event's payload (``data[field]``); errors and completion fail."""
        try:
            message = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"no {self.field} event within {timeout}s; had {self.received!r}"
            ) from None
        kind = message.get("type")
        if kind != "next":
            raise SubscriptionClosedError(f"{self.field}: {message!r}")
        payload = message["payload"]
        assert not payload.get("errors"), payload["errors"]
        event = dict(payload["data"][self.field])
        self.received.append(event)
        return event

    async def until(
        self,
        done: Callable[[dict[str, Any]], bool],
        timeout: float = WAIT_S,  # noqa: ASYNC109 (a test helper)
    ) -> list[dict[str, Any]]:
        """Events up to and including the first for which ``done`` holds."""
        deadline = time.monotonic() + timeout
        events: list[dict[str, Any]] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.field}: condition not met; got {events!r}")
            event = await self.next(left)
            events.append(event)
            if done(event):
                return events

    async def stop(self) -> None:
        await self.socket.send({"id": self.id, "type": "complete"})


class GraphQLSocket:
    """One acknowledged graphql-transport-ws connection; frames kept in ``frames``."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[str] = []
        self.subscriptions: dict[str, Subscription] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, base_url: str, token: str | None) -> AsyncIterator[GraphQLSocket]:
        url = base_url.replace("http://", "ws://", 1) + "/graphql"
        async with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=10) as ws:  # type: ignore[list-item]
            init: dict[str, Any] = {"type": "connection_init"}
            if token is not None:
                init["payload"] = {"authToken": token}
            await ws.send(json.dumps(init))
            ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert ack["type"] == "connection_ack", ack
            socket = cls(ws)
            socket._reader = asyncio.create_task(socket._read())
            try:
                yield socket
            finally:
                socket._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await socket._reader

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(message).decode())

    async def subscribe(
        self, query: str, variables: dict[str, Any] | None = None, *, field: str
    ) -> Subscription:
        sub = Subscription(self, str(next(self._ids)), field)
        self.subscriptions[sub.id] = sub
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        await self.send({"id": sub.id, "type": "subscribe", "payload": payload})
        return sub

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                text = raw if isinstance(raw, str) else raw.decode()
                self.frames.append(text)
                message = json.loads(text)
                if message.get("type") == "ping":
                    await self.send({"type": "pong"})
                    continue
                sub = self.subscriptions.get(str(message.get("id")))
                if sub is not None:
                    sub.queue.put_nowait(message)
        except ConnectionClosed:
            pass
        closed = {"type": "closed"}
        for sub in self.subscriptions.values():
            sub.queue.put_nowait(closed)


def typename(event: dict[str, Any], name: str) -> bool:
    return event.get("__typename") == name


def is_status(event: dict[str, Any], status: str) -> bool:
    return typename(event, "StatusChanged") and event["status"] == status


def is_message(event: dict[str, Any], role: str | None = None) -> bool:
    return typename(event, "MessageCreated") and (role is None or event["message"]["role"] == role)


def settled(event: dict[str, Any]) -> bool:
    return typename(event, "StatusChanged") and event["status"] in {"WAITING", "ERROR"}
