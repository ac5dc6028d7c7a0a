"""The relay on its own: one large event arriving in many small reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio

from gateway.relay import RelayOutcome, RelayResponse
from gateway.usage_meter import UsageMeter
from gateway.wire import RESPONSES

READ = 16 * 1024


class Upstream:
    """A provider's streamed body, read ``READ`` bytes at a time."""

    status_code = 200

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for at in range(0, len(self.body), READ):
            yield self.body[at : at + READ]

    async def aclose(self) -> None:
        pass


async def relay(body: bytes) -> bytes:
    """What the client receives."""
    received: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        received.append(message.get("body", b""))

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError

    async def finish(outcome: RelayOutcome) -> None:
        assert outcome.complete

    response = RelayResponse(
        Upstream(body),  # type: ignore[arg-type]
        [],
        UsageMeter(RESPONSES, 0),
        finish,
        strip_usage_chunk=False,
    )
    await response({"type": "http"}, receive, send)  # type: ignore[arg-type]
    return b"".join(received)


def event(name: str, text: bytes) -> bytes:
    return b"event: " + name.encode() + b'\ndata: {"instructions":"' + text + b'"}\n\n'


async def test_one_large_event_in_many_reads_is_relayed_in_time_linear_in_its_size() -> None:
    # The Responses API echoes a request's ``instructions`` in its first events, so a
    # member decides their size (up to the 12 MiB body limit). Searching the whole
    # buffer again on every read, and copying it to append, took 23 s of the event
    # loop for 12 MiB (every other request of the server waited). Compared with the
    # same bytes as many small events (8 MiB: 0.16 s now, measured by hand; no timer
    # is asserted here).
    size = 8 << 20
    large = event("response.created", b"x" * size) + event("response.completed", b"")
    many = b"".join(event("response.output_text.delta", b"x" * 8000) for _ in range(size // 8000))
    relayed = await relay(large)
    assert relayed == large
    relayed = await relay(many)
    assert relayed == many


async def test_separators_split_across_reads_still_end_events() -> None:
    events = [event("response.output_text.delta", b"a" * n) for n in range(READ - 40, READ + 40)]
    for separator in (b"\r\n\r\n", b"\r\r"):
        body = b"".join(e.replace(b"\n\n", separator) for e in events)
        relayed = await relay(body)
        assert relayed == body


async def test_a_client_that_stops_reading_is_let_go_and_its_call_settled() -> None:
    # A client whose window stays shut blocks each send for good: its stream held an
    # upstream connection (1 000 shared by every user) and its hold, forever.
    upstream = Upstream(b"".join(event("response.output_text.delta", b"x") for _ in range(9)))
    outcomes: list[RelayOutcome] = []
    closed: list[bool] = []

    async def send(message: dict[str, Any]) -> None:
        if message.get("body"):
            await anyio.sleep_forever()

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError

    async def finish(outcome: RelayOutcome) -> None:
        outcomes.append(outcome)

    async def aclose() -> None:
        closed.append(True)

    upstream.aclose = aclose  # type: ignore[method-assign]
    response = RelayResponse(
        upstream,  # type: ignore[arg-type]
        [],
        UsageMeter(RESPONSES, 0),
        finish,
        strip_usage_chunk=False,
        stall_timeout=0.05,
    )
    with anyio.fail_after(10):
        await response({"type": "http"}, receive, send)  # type: ignore[arg-type]
    assert closed == [True]
    assert len(outcomes) == 1
    assert outcomes[0].disconnected
    assert not outcomes[0].complete
