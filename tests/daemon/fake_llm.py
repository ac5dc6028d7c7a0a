"""A scriptable fake of OpenAI's and Anthropic's streaming endpoints.

The provider clients are tested through the real SDKs over real HTTP, so what
is exercised is the SDK's request building, SSE parsing and error mapping,
not a mock of them. Each test pushes the replies it wants, in order; every
request is recorded with its headers and JSON body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

DONE = "[DONE]"
TEST_KEY = "sk-test-0123456789abcdef"


@dataclass
class SseReply:
    """An SSE body; ``cut_after`` drops the connection after that many events."""

    events: list[tuple[str | None, Any]]
    cut_after: int | None = None
    delay: float = 0.0


@dataclass
class JsonReply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StallReply:
    """Answers nothing for ``seconds`` (to provoke client timeouts)."""

    seconds: float


Reply = SseReply | JsonReply | StallReply


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any


class FakeLlm:
    """Serves pushed replies in order; requests with a key not in ``keys`` get a 401."""

    def __init__(self, *, keys: Iterable[str] = (TEST_KEY,)) -> None:
        self._initial_keys = frozenset(keys)
        self.keys = set(self._initial_keys)
        self.url = ""  # set by ``serve``
        self.replies: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        # Streams whose client left before the last event (the gateway tests).
        self.disconnects = asyncio.Event()
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._openai, methods=["POST"]),
                Route("/v1/responses", self._openai, methods=["POST"]),
                Route("/v1/messages", self._anthropic, methods=["POST"]),
                Route("/v1/messages/count_tokens", self._anthropic, methods=["POST"]),
            ]
        )

    def reset(self) -> None:
        """Forgets replies, requests and added keys (one server serves a whole module)."""
        self.keys = set(self._initial_keys)
        self.replies.clear()
        self.requests.clear()
        self.disconnects = asyncio.Event()

    def push(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    async def _openai(self, request: Request) -> Response:
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        rejected = openai_error(
            401, f"Incorrect API key provided: {key}.", "invalid_request_error", "invalid_api_key"
        )
        return await self._answer(request, key, rejected)

    async def _anthropic(self, request: Request) -> Response:
        key = request.headers.get("x-api-key", "")
        rejected = anthropic_error(401, "authentication_error", f"invalid x-api-key: {key}")
        return await self._answer(request, key, rejected)

    async def _answer(self, request: Request, key: str, rejected: JsonReply) -> Response:
        body = await request.json()
        self.requests.append(Recorded(request.url.path, dict(request.headers), body))
        reply = rejected if key not in self.keys else self.replies.popleft()
        if isinstance(reply, StallReply):
            await asyncio.sleep(reply.seconds)
            return JSONResponse({"error": {"message": "too late"}}, status_code=500)
        if isinstance(reply, JsonReply):
            return JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)
        return _SseResponse(reply, self.disconnects)


class _SseResponse(Response):
    """Writes events one by one; returning early without the final chunk cuts the stream.
    A client that leaves mid-stream stops it and sets ``disconnected``."""

    def __init__(self, reply: SseReply, disconnected: asyncio.Event | None = None) -> None:
        super().__init__(status_code=200)
        self.disconnected = disconnected or asyncio.Event()
        # No content-length: the body is chunked, so a cut leaves it unfinished.
        self.raw_headers = [
            (b"content-type", b"text/event-stream"),
            (b"cache-control", b"no-cache"),
        ]
        self.reply = reply

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        left = asyncio.ensure_future(receive())  # the body is read: next is a disconnect
        try:
            for sent, (event, data) in enumerate(self.reply.events):
                if self.reply.cut_after is not None and sent >= self.reply.cut_after:
                    return  # uvicorn closes the connection: the chunked body never ends
                if self.reply.delay:
                    await asyncio.wait([left], timeout=self.reply.delay)
                if left.done():
                    self.disconnected.set()
                    return
                payload = data if isinstance(data, str) else json.dumps(data)
                frame = (f"event: {event}\n" if event else "") + f"data: {payload}\n\n"
                body = frame.encode()
                await send({"type": "http.response.body", "body": body, "more_body": True})
        finally:
            left.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@contextlib.asynccontextmanager
async def serve(fake: FakeLlm) -> AsyncIterator[str]:
    """Runs ``fake`` on a free loopback port in this event loop; yields its root URL."""
    config = uvicorn.Config(fake.app, host="127.0.0.1", port=0, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake.url
    finally:
        server.should_exit = True
        server.force_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=5)


# OpenAI chat completions -------------------------------------------------------------


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def openai_stream(
    *,
    text: Iterable[str] = (),
    reasoning: Iterable[str] = (),
    tool_calls: Iterable[tuple[str, str, list[str]]] = (),
    finish: str = "stop",
    usage: dict[str, Any] | None = None,
    done: bool = True,
) -> list[tuple[str | None, Any]]:
    """Chunks as the API sends them: role, deltas, finish, usage chunk, ``[DONE]``.

    ``tool_calls`` are (id, name, argument fragments); ``reasoning`` goes in the
    ``reasoning_content`` field compatible servers use.
    """
    events: list[tuple[str | None, Any]] = [(None, _chunk({"role": "assistant", "content": ""}))]
    events += [(None, _chunk({"reasoning_content": r})) for r in reasoning]
    events += [(None, _chunk({"content": t})) for t in text]
    for index, (call_id, name, fragments) in enumerate(tool_calls):
        head = {"index": index, "id": call_id, "type": "function"}
        events.append(
            (None, _chunk({"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]}))
        )
        for fragment in fragments:
            delta = {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
            events.append((None, _chunk(delta)))
    events.append((None, _chunk({}, finish)))
    if usage is not None:
        events.append((None, {**_chunk({}), "choices": [], "usage": usage}))
    if done:
        events.append((None, DONE))
    return events


def openai_usage(
    prompt: int, completion: int, *, cached: int = 0, reasoning: int = 0
) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def openai_error(status: int, message: str, type_: str, code: str | None = None) -> JsonReply:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return JsonReply(status, body)


# Anthropic messages ------------------------------------------------------------------


def anthropic_stream(
    *blocks: tuple[str, Any],
    stop_reason: str = "end_turn",
    input_tokens: int = 10,
    output_tokens: int = 5,
    cache_read: int = 0,
    cache_write: int = 0,
) -> list[tuple[str | None, Any]]:
    """Events as the API sends them. Blocks: ("text", [chunks]), ("thinking", [chunks]),
    ("tool_use", (id, name, [json fragments]))."""
    message = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": "claude-fake",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": 1,
            "cache_read_input_tokens": cache_read,
            "cache_creation_input_tokens": cache_write,
        },
    }
    events: list[tuple[str | None, Any]] = [
        ("message_start", {"type": "message_start", "message": message}),
        ("ping", {"type": "ping"}),
    ]
    for index, (kind, content) in enumerate(blocks):
        events += _anthropic_block(index, kind, content)
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _anthropic_block(index: int, kind: str, content: Any) -> list[tuple[str | None, Any]]:
    if kind == "text":
        start: dict[str, Any] = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": t} for t in content]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": t} for t in content]
        deltas.append({"type": "signature_delta", "signature": "c2lnbmF0dXJl"})
    else:
        call_id, name, fragments = content
        start = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": f} for f in fragments]
    events: list[tuple[str | None, Any]] = [
        (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        )
    ]
    events += [
        ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
        for d in deltas
    ]
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def anthropic_error(status: int, type_: str, message: str) -> JsonReply:
    return JsonReply(status, {"type": "error", "error": {"type": type_, "message": message}})
