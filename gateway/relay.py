"""Relaying a provider's event stream to the client as it arrives.

Each SSE event (keep-alive comments included) is forwarded byte for byte as
soon as its blank line has arrived — nothing waits for the whole body. Events
pass through the ``UsageMeter`` on the way; for an OpenAI chat stream the gateway
asked usage for, the usage-only chunk is dropped when the client did not ask.

The client leaving cancels the upstream read (the provider stops generating);
``finish`` then runs shielded from that cancellation, so a cut call is always
settled and logged, at what it used.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import httpx
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from gateway.usage_meter import UsageMeter

_SEPARATORS = (b"\r\n\r\n", b"\n\n", b"\r\r")
_LONGEST = max(len(s) for s in _SEPARATORS)
# How long one send may wait on a client that reads nothing (its window shut)
# before it counts as gone: else it holds an upstream connection and its hold.
CLIENT_STALL_S = 60.0


class _ClientStalled(Exception):
    pass


@dataclass(frozen=True, slots=True)
class RelayOutcome:
    complete: bool  # the upstream body ended normally
    disconnected: bool  # the client left first
    first_token_at: float | None  # perf_counter of the first generated output
    ended_at: float


def next_event(buffer: bytes | bytearray, start: int = 0) -> tuple[int, int]:
    """(end of the first complete event at or after ``start``, length of its
    separator), or (-1, 0)."""
    best, size = -1, 0
    for separator in _SEPARATORS:
        at = buffer.find(separator, start)
        if at >= 0 and (best < 0 or at < best):
            best, size = at, len(separator)
    return best, size


def usage_only_chunk(event: bytes) -> bool:
    """The chunk ``stream_options.include_usage`` adds: no choices, only usage."""
    return b'"usage"' in event and (b'"choices":[]' in event or b'"choices": []' in event)


class RelayResponse(Response):
    def __init__(
        self,
        upstream: httpx.Response,
        headers: list[tuple[bytes, bytes]],
        meter: UsageMeter,
        finish: Callable[[RelayOutcome], Awaitable[None]],
        *,
        strip_usage_chunk: bool,
        stall_timeout: float = CLIENT_STALL_S,
    ) -> None:
        super().__init__(status_code=upstream.status_code)
        self.stall_timeout = stall_timeout
        self.raw_headers = headers
        self.upstream = upstream
        self.meter = meter
        self.finish = finish
        self.strip_usage_chunk = strip_usage_chunk
        self.first_token_at: float | None = None
        self.complete = False
        self.disconnected = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def watch() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    self.disconnected = True
                    group.cancel_scope.cancel()

                group.start_soon(watch)
                await self._pump(send)
                group.cancel_scope.cancel()
        except* (OSError, _ClientStalled):
            # ASGI 2.4 servers raise on send to a closed client; a stalled one is let go.
            self.disconnected = True
        finally:
            with anyio.CancelScope(shield=True):
                await self.upstream.aclose()
                outcome = RelayOutcome(
                    complete=self.complete,
                    disconnected=self.disconnected,
                    first_token_at=self.first_token_at,
                    ended_at=time.perf_counter(),
                )
                await self.finish(outcome)

    async def _send(self, send: Send, message: Message) -> None:
        with anyio.move_on_after(self.stall_timeout) as waited:
            await send(message)
        if waited.cancelled_caught:
            raise _ClientStalled

    async def _pump(self, send: Send) -> None:
        head = {"type": "http.response.start", "status": self.status_code}
        await self._send(send, {**head, "headers": self.raw_headers})
        # An event may arrive in many reads (a member decides the size of one that
        # echoes their request): bytes are appended in place and searched once each
        # (from just before where the last search ended), so relaying is linear.
        buffer = bytearray()
        searched = 0
        try:
            async for chunk in self.upstream.aiter_bytes():
                buffer += chunk
                out: list[bytes] = []
                start = 0
                while True:
                    end, size = next_event(buffer, max(start, searched - _LONGEST + 1))
                    if end < 0:
                        break
                    event, framed = bytes(buffer[start:end]), bytes(buffer[start : end + size])
                    start = end + size
                    if self.meter.read_event(event) and self.first_token_at is None:
                        self.first_token_at = time.perf_counter()
                    if self.strip_usage_chunk and usage_only_chunk(event):
                        continue
                    out.append(framed)  # unchanged, separator included
                del buffer[:start]
                searched = len(buffer)
                if out:
                    body = b"".join(out)
                    message = {"type": "http.response.body", "body": body, "more_body": True}
                    await self._send(send, message)
            if buffer:
                await self._send(
                    send, {"type": "http.response.body", "body": bytes(buffer), "more_body": True}
                )
            self.complete = True
        except httpx.HTTPError:
            pass  # the provider broke off or went quiet too long: end what we relayed
        await self._send(send, {"type": "http.response.body", "body": b"", "more_body": False})
