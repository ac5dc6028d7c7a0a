"""P4's physical limit: a bare Starlette WebSocket route that writes one pre-encoded frame.

It speaks just enough graphql-transport-ws for ``bench.stream_latency``'s client
(``connection_init`` → ``connection_ack``, ``subscribe`` → one ``next`` frame with
the current status, as agentgql's replay sends it). ``POST /fire`` with
``{"status": "RUNNING"}`` encodes one ``next`` frame (StatusChanged, the same
shape and size as agentgql's) and writes it to every subscribed socket, awaiting
each write in turn: no GraphQL, no queues, no per-subscriber tasks. What is left
is the socket writes themselves, which is what agentgql's fan-out is measured
against.

Served by uvicorn with agentgql's WebSocket settings (``stream_baseline_server``
in ``bench.servers``).
"""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

PROTOCOL = "graphql-transport-ws"
COST = 1  # the ``extensions.cost`` agentgql reports for the bench's selection


def next_frame(operation_id: str, status: str) -> str:
    """The ``next`` message agentgql sends for a StatusChanged event."""
    event = {"__typename": "StatusChanged", "status": status}
    payload = {"data": {"chatEvents": event}, "extensions": {"cost": COST}}
    return orjson.dumps({"id": operation_id, "type": "next", "payload": payload}).decode()


class Subscribers:
    """Every subscribed socket with its operation id; one status for all of them."""

    def __init__(self) -> None:
        self.sockets: dict[WebSocket, str] = {}
        self.status = "WAITING"

    async def fire(self, status: str) -> int:
        self.status = status
        ids = set(self.sockets.values())
        frames = {operation_id: next_frame(operation_id, status) for operation_id in ids}
        for socket, operation_id in list(self.sockets.items()):
            try:
                await socket.send_text(frames[operation_id])
            except (WebSocketDisconnect, RuntimeError):
                self.sockets.pop(socket, None)
        return len(self.sockets)


SUBSCRIBERS = Subscribers()


async def graphql_socket(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol=PROTOCOL)
    try:
        while True:
            message = orjson.loads(await websocket.receive_text())
            kind = message.get("type")
            if kind == "connection_init":
                await websocket.send_text('{"type":"connection_ack"}')
            elif kind == "ping":
                await websocket.send_text('{"type":"pong"}')
            elif kind == "subscribe":
                operation_id = str(message["id"])
                await websocket.send_text(next_frame(operation_id, SUBSCRIBERS.status))
                SUBSCRIBERS.sockets[websocket] = operation_id
            elif kind == "complete":
                SUBSCRIBERS.sockets.pop(websocket, None)
    except WebSocketDisconnect:
        pass
    finally:
        SUBSCRIBERS.sockets.pop(websocket, None)


async def fire(request: Request) -> Response:
    body = orjson.loads(await request.body())
    sent = await SUBSCRIBERS.fire(str(body["status"]))
    return JSONResponse({"sent": sent})


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


app = Starlette(
    routes=[
        WebSocketRoute("/graphql", graphql_socket),
        Route("/fire", fire, methods=["POST"]),
        Route("/healthz", healthz),
    ]
)
