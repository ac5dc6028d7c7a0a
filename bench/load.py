"""The load generator: raw asyncio streams replaying pre-encoded keep-alive requests.

It runs in its own process (``python -m bench.load``: a ``LoadSpec`` as JSON on
stdin, a list of ``RoundResult`` as JSON on stdout, progress on stderr) so the
OS schedules its CPU apart from the servers'. Per response it reads only the
status line and Content-Length: an HTTP client library (httpx) costs more per
request than the servers under test and would measure itself.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Coroutine
from dataclasses import asdict, dataclass
from typing import Any

import orjson

HEAD_END = b"\r\n\r\n"
CONTENT_LENGTH = b"\r\ncontent-length:"


class BadResponse(Exception):
    """A response this generator cannot frame (no Content-Length)."""


@dataclass(frozen=True)
class Target:
    side: str
    host: str
    port: int
    request: bytes

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "request": self.request.decode("latin-1")}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Target:
        return cls(data["side"], data["host"], data["port"], data["request"].encode("latin-1"))


@dataclass(frozen=True)
class LoadSpec:
    """Rounds alternate over ``targets`` (graphql, baseline, graphql, ...)."""

    targets: list[Target]
    rounds: int
    duration_s: float
    warmup_s: float
    connections: int

    def to_json(self) -> bytes:
        data = {**asdict(self), "targets": [t.to_json() for t in self.targets]}
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes) -> LoadSpec:
        data = orjson.loads(raw)
        targets = [Target.from_json(t) for t in data.pop("targets")]
        return cls(targets=targets, **data)


@dataclass(frozen=True)
class RoundResult:
    side: str
    index: int
    requests: int
    errors: int
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status code and body of one response; headers beyond Content-Length are skipped."""
    head = await reader.readuntil(HEAD_END)
    status = int(head[9:12])
    lowered = head.lower()
    start = lowered.find(CONTENT_LENGTH)
    if start < 0:
        raise BadResponse(head.decode("latin-1"))
    start += len(CONTENT_LENGTH)
    length = int(head[start : lowered.index(b"\r\n", start)])
    return status, await reader.readexactly(length)


async def fetch_once(target: Target) -> tuple[int, bytes]:
    """One request on a fresh connection: the correctness check before timing."""
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        writer.write(target.request)
        return await read_response(reader)
    finally:
        writer.close()
        await writer.wait_closed()


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


async def run_round(
    target: Target, index: int, connections: int, warmup_s: float, duration_s: float
) -> RoundResult:
    """Keep ``connections`` requests in flight; count what completes inside the window.

    The window opens after the warmup (connections set up, caches and the
    server's pool warm) and a response counts if it completes inside it, so
    throughput is not biased by requests straddling either edge.
    """
    opens = time.perf_counter() + warmup_s
    closes = opens + duration_s
    latencies: list[float] = []
    errors = 0

    async def connection() -> None:
        nonlocal errors
        while time.perf_counter() < closes:
            try:
                reader, writer = await asyncio.open_connection(target.host, target.port)
            except OSError:
                errors += 1
                await asyncio.sleep(0.05)
                continue
            try:
                while (sent := time.perf_counter()) < closes:
                    writer.write(target.request)
                    status, _ = await read_response(reader)
                    done = time.perf_counter()
                    if opens <= done < closes:
                        if status == 200:
                            latencies.append(done - sent)
                        else:
                            errors += 1
            except (OSError, asyncio.IncompleteReadError, BadResponse, ValueError):
                errors += 1
            finally:
                writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    latencies.sort()
    return RoundResult(
        side=target.side,
        index=index,
        requests=len(latencies),
        errors=errors,
        duration_s=duration_s,
        rps=len(latencies) / duration_s,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
    )


async def run(spec: LoadSpec) -> list[RoundResult]:
    results: list[RoundResult] = []
    for index in range(1, spec.rounds + 1):
        for target in spec.targets:
            result = await run_round(
                target, index, spec.connections, spec.warmup_s, spec.duration_s
            )
            results.append(result)
            print(
                f"  round {index}/{spec.rounds} {result.side:<8} {result.rps:8.0f} req/s"
                f"  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
                + (f"  errors {result.errors}" if result.errors else ""),
                file=sys.stderr,
                flush=True,
            )
    return results


def run_fast(coro: Coroutine[Any, Any, list[RoundResult]]) -> list[RoundResult]:
    """uvloop when available: the cheaper the generator, the more CPU the servers keep."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def main() -> int:
    spec = LoadSpec.from_json(sys.stdin.buffer.read())
    results = run_fast(run(spec))
    sys.stdout.buffer.write(orjson.dumps([asdict(r) for r in results]))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
