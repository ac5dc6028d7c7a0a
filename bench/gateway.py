"""``python -m bench gateway``: a streamed completion through the AI gateway vs
straight to the provider, in the same run.

A fake OpenAI-compatible provider (its own process) streams ``--tokens`` chunks
(one token each, ``--interval-ms`` apart, then the usage chunk and ``[DONE]``).
``agentgql serve`` routes a priced model to it. The load generator (this process,
uvloop) runs rounds of ``--streams`` concurrent streams, alternating the direct
side and the gateway side; each stream's time to first byte and total time are
samples, and each round's throughput is tokens received per second of wall time.
The gateway side does everything a real request does: token check, routing,
spend hold, relay with usage metering, settle and log row.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import uvloop

from bench.postgres import bench_database
from bench.servers import HOST, REPO_ROOT, agentgql_server, free_port, spawn, stop

NAME = "gateway"
MODEL = "bench-fake"
PROVIDER_KEY = "sk-bench-provider-key"


# The fake provider ----------------------------------------------------------------


def fake_provider_app(tokens: int, interval_s: float) -> object:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    def frame(payload: object) -> bytes:
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
    first = frame({**head, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
    token = frame({**head, "choices": [{"index": 0, "delta": {"content": " tok"}}]})
    usage = {"prompt_tokens": 20, "completion_tokens": tokens, "total_tokens": tokens + 20}
    tail = frame({**head, "choices": [], "usage": usage}) + b"data: [DONE]\n\n"

    async def chunks() -> object:
        yield first
        for _ in range(tokens):
            if interval_s:
                await asyncio.sleep(interval_s)
            yield token
        yield tail

    async def completions(request: Request) -> Response:
        await request.body()
        return StreamingResponse(chunks(), media_type="text/event-stream")  # type: ignore[arg-type]

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


def serve_fake(port: int, tokens: int, interval_s: float) -> int:
    import uvicorn

    app = fake_provider_app(tokens, interval_s)
    uvicorn.run(app, host=HOST, port=port, log_level="warning", loop="uvloop")  # type: ignore[arg-type]
    return 0


def wait_listening(port: int, seconds: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"the fake provider is not listening on {port}")


# Setup -----------------------------------------------------------------------------


async def prepare(url: str, fake_url: str, secret_key: str) -> str:
    """Migrate; a user, their API token, and a priced model on the fake provider."""
    from db.connection import close_database, open_database, tortoise_config
    from db.migrator import apply_migrations
    from db.models import ModelConfig, Provider
    from db.secret_box import SecretBox
    from db.vocabulary import ProviderKind, TokenKind
    from resolvers.accounts import create_user
    from resolvers.tokens import issue_token

    await open_database(url)
    try:
        await apply_migrations(tortoise_config(url))
        user = await create_user("gateway-bench", "gateway-bench-password")
        provider = await Provider.create(
            kind=ProviderKind.OPENAI_COMPATIBLE,
            display_name="Fake",
            base_url=f"{fake_url}/v1",
            api_key_ciphertext=SecretBox(secret_key).encrypt(PROVIDER_KEY),
        )
        await ModelConfig.create(
            provider=provider,
            model=MODEL,
            display_name="Bench fake",
            context_limit=128_000,
            input_price_micros=1_000_000,
            output_price_micros=2_000_000,
        )
        return (await issue_token(user, TokenKind.API, "bench", None)).secret
    finally:
        await close_database()


# Load --------------------------------------------------------------------------------


@dataclass
class Side:
    name: str
    url: str
    headers: dict[str, str]
    ttfb_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    throughput: list[float] = field(default_factory=list)  # tokens per second per round
    tokens: int = 0


BODY = orjson.dumps(
    {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "Count."}]}
)


async def one_stream(http: httpx.AsyncClient, side: Side) -> tuple[float, float, int]:
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    async with http.stream("POST", side.url, content=BODY, headers=side.headers) as answer:
        if answer.status_code != 200:
            raise RuntimeError(f"{side.name}: {answer.status_code} {await answer.aread()!r}")
        async for chunk in answer.aiter_raw():
            if first is None:
                first = time.perf_counter()
            tokens += chunk.count(b'"content":" tok"')
    ended = time.perf_counter()
    assert first is not None
    return (first - started) * 1000, (ended - started) * 1000, tokens


async def round_of(http: httpx.AsyncClient, side: Side, streams: int, record: bool) -> None:
    started = time.perf_counter()
    results = await asyncio.gather(*[one_stream(http, side) for _ in range(streams)])
    wall = time.perf_counter() - started
    if record:
        side.ttfb_ms += [r[0] for r in results]
        side.total_ms += [r[1] for r in results]
        side.throughput.append(sum(r[2] for r in results) / wall)
        side.tokens += sum(r[2] for r in results)


async def measure(sides: list[Side], streams: int, rounds: int, tokens: int) -> None:
    limits = httpx.Limits(max_connections=streams * 2, max_keepalive_connections=streams * 2)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        for side in sides:  # warm-up: connections, prepared statements, caches
            await round_of(http, side, streams, record=False)
        for _ in range(rounds):
            for side in sides:
                await round_of(http, side, streams, record=True)
    for side in sides:  # every token of every stream arrived, on both sides
        if side.tokens != tokens * streams * rounds:
            raise RuntimeError(
                f"{side.name}: {side.tokens} tokens, not {tokens * streams * rounds}"
            )


def report(direct: Side, gateway: Side, args: argparse.Namespace) -> None:
    def p50(values: list[float]) -> float:
        return statistics.median(values)

    print(
        f"gateway bench: {args.streams} concurrent streams of {args.tokens} tokens, "
        f"{args.interval_ms} ms between tokens, {args.rounds} rounds per side"
    )
    print(f"{'side':8} {'TTFB p50 ms':>12} {'total p50 ms':>13} {'tokens/s (mean)':>16}")
    for side in (direct, gateway):
        print(
            f"{side.name:8} {p50(side.ttfb_ms):12.2f} {p50(side.total_ms):13.1f} "
            f"{statistics.fmean(side.throughput):16.0f}"
        )
    added_ttfb = p50(gateway.ttfb_ms) - p50(direct.ttfb_ms)
    added_total = p50(gateway.total_ms) - p50(direct.total_ms)
    ratio = statistics.fmean(gateway.throughput) / statistics.fmean(direct.throughput)
    print(f"added p50 TTFB: {added_ttfb:.2f} ms; added p50 total: {added_total:.1f} ms")
    print(f"throughput ratio gateway/direct: {ratio:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench gateway", description=__doc__)
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--interval-ms", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="(accepted; the report is text)")
    parser.add_argument("--fake-provider", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.fake_provider:
        return serve_fake(args.fake_provider, args.tokens, args.interval_ms / 1000)
    fake_port = free_port()
    fake_url = f"http://{HOST}:{fake_port}"
    secret_key = secrets.token_urlsafe(32)
    command = [sys.executable, "-m", "bench.gateway", "--fake-provider", str(fake_port)]
    command += ["--tokens", str(args.tokens), "--interval-ms", str(args.interval_ms)]
    fake = spawn(command, env=os.environ, cwd=REPO_ROOT, stdin=subprocess.DEVNULL)
    try:
        with tempfile.TemporaryDirectory() as tmp, bench_database() as database:
            token = asyncio.run(prepare(database.url, fake_url, secret_key))
            env = {"AGENTGQL_SECRET_KEY": secret_key}
            with agentgql_server(database.url, Path(tmp), env, ["--no-daemon"]) as server:
                wait_listening(fake_port)
                direct = Side("direct", f"{fake_url}/v1/chat/completions",
                              {"authorization": f"Bearer {PROVIDER_KEY}"})  # fmt: skip
                gateway = Side(
                    "gateway",
                    f"http://{server.host}:{server.port}/v1/chat/completions",
                    {"authorization": f"Bearer {token}"},
                )
                uvloop.run(measure([direct, gateway], args.streams, args.rounds, args.tokens))
        report(direct, gateway, args)
    finally:
        stop(fake)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
