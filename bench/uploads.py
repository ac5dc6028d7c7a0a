"""``uploads``: 1 MiB images through GraphQL ``uploadFile`` vs a bare Starlette upload route.

``python -m bench uploads [--rounds 3] [--duration 2] [--warmup 0.5] [--connections 4]``

Both sides get the very same multipart request (a ~1 MiB PNG of random pixels)
from one user with a bearer token. The GraphQL side does everything an upload
does: CSRF rule, multipart parsing, type sniffing and the PNG walk, the size cap,
name rules, sha256, one ``INSERT … ON CONFLICT`` of the bytes. The baseline is
what a hand-written route needs at least: the same token SELECT, Starlette's
form parsing, sha256 and the same INSERT with asyncpg. Every request carries
different bytes (a counter in a PNG text chunk, its CRC fixed up), so neither
side can take the dedupe shortcut. The load generator runs in this process:
the servers are processes of their own.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import os
import random
import struct
import sys
import tempfile
import time
import uuid
import zlib
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.benchmark import (
    GRAPHQL_PATH,
    Benchmark,
    Fixtures,
    HttpRequest,
    RequestPair,
    bearer,
    checked_run_options,
    json_response,
    pool_of,
    progress,
    run_options,
)
from bench.load import BadResponse, RoundResult, percentile, read_response, run_fast
from bench.postgres import DatabaseFailed, bench_database, prepare
from bench.report import report, run_info
from bench.servers import Server, ServerFailed, agentgql_server, baseline_server
from bench.viewer import TOKEN_SQL
from resolvers import global_id
from resolvers.tokens import hash_token

QUERY = "mutation($file: Upload!) { uploadFile(file: $file) { id } }"
BASELINE_PATH = "/uploads"
IMAGE_BYTES = 1024 * 1024
GOAL = 0.7
# The per-request tag: a tEXt chunk with a fixed-width counter, right after IHDR.
TAG_KEYWORD = b"bench\x00"
TAG_DIGITS = 16
INSERT_SQL = (
    "INSERT INTO chat_files (id, owner_id, name, mime_type, size_bytes, sha256, data,"
    " created_at) VALUES ($1, $2, $3, 'image/png', $4, $5, $6, now())"
    " ON CONFLICT (owner_id, sha256) DO NOTHING RETURNING id"
)


class BenchFailed(RuntimeError):
    """An upload did not work before timing: the numbers would mean nothing."""


# -- the image and the request ------------------------------------------------------------


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _tag(counter: int) -> bytes:
    return _chunk(b"tEXt", TAG_KEYWORD + str(counter).zfill(TAG_DIGITS).encode())


def bench_png(size: int = IMAGE_BYTES, seed: int = 0) -> bytes:
    """A valid RGB PNG of about ``size`` bytes: random pixels, stored uncompressed
    (real photos barely compress either), with a counter tag to vary per request."""
    width = 512
    height = max(1, size // (3 * width + 1))
    rng = random.Random(seed)
    rows = b"".join(b"\x00" + rng.randbytes(3 * width) for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _tag(0)
        + _chunk(b"IDAT", zlib.compress(rows, 0))
        + _chunk(b"IEND", b"")
    )


def multipart_body(data: bytes, name: str = "photo.png") -> tuple[bytes, str]:
    """A GraphQL multipart request (operations, map, one file) as browsers send it."""
    boundary = f"----agentgqlbench{uuid.uuid4().hex}"
    operations = orjson.dumps({"query": QUERY, "variables": {"file": None}})
    parts = [
        (b'name="operations"', b"", operations),
        (b'name="map"', b"", b'{"0": ["variables.file"]}'),
        (f'name="0"; filename="{name}"'.encode(), b"Content-Type: image/png\r\n", data),
    ]
    body = b"".join(
        f"--{boundary}\r\n".encode()
        + b"Content-Disposition: form-data; "
        + disposition
        + b"\r\n"
        + extra
        + b"\r\n"
        + content
        + b"\r\n"
        for disposition, extra, content in parts
    )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@dataclass(frozen=True)
class Template:
    """An encoded request split around its tag chunk: ``render(n)`` is the same
    request whose image carries counter ``n`` (so a different sha256)."""

    head: bytes
    tail: bytes

    @classmethod
    def of(cls, request: bytes) -> Template:
        at = request.index(b"tEXt" + TAG_KEYWORD) - 4
        end = at + len(_tag(0))
        return cls(request[:at], request[end:])

    def render(self, counter: int) -> bytes:
        return self.head + _tag(counter) + self.tail


async def prepare_pair(fixtures: Fixtures) -> RequestPair:
    body, content_type = multipart_body(bench_png())
    headers = {**bearer(fixtures.token), "Content-Type": content_type}
    graphql = HttpRequest("POST", GRAPHQL_PATH, {**headers, "Apollo-Require-Preflight": "1"}, body)
    return RequestPair(graphql=graphql, baseline=HttpRequest("POST", BASELINE_PATH, headers, body))


# -- the baseline route -------------------------------------------------------------------


async def baseline_upload(request: Request) -> Response:
    """Token SELECT, form parsing, sha256, INSERT: no GraphQL, no checks of the bytes."""
    _, _, raw = request.headers.get("authorization", "").partition(" ")
    pool = pool_of(request)
    token = await pool.fetchrow(TOKEN_SQL, hash_token(raw.strip()))
    if token is None:
        return json_response({"errors": [{"message": "sign in required"}]})
    form = await request.form()
    upload = form["0"]
    assert not isinstance(upload, str)
    data = await upload.read()
    digest = hashlib.sha256(data).hexdigest()
    args = (uuid.uuid4(), token["u_id"], upload.filename, len(data), digest, data)
    file_id = await pool.fetchval(INSERT_SQL, *args)
    return json_response({"uploadFile": {"id": global_id.encode("ChatFile", file_id)}})


BENCHMARK = Benchmark(
    name="uploads",
    summary="uploadFile of a 1 MiB PNG (GraphQL multipart) vs a bare Starlette upload route",
    prepare=prepare_pair,
    baseline_routes=[Route(BASELINE_PATH, baseline_upload, methods=["POST"])],
)


# -- load ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    name: str
    server: Server
    template: Template
    counters: itertools.count[int]


def _failed(status: int, body: bytes) -> bool:
    return status != 200 or b'"errors"' in body


async def verify(sides: list[Side]) -> None:
    """One upload per side before timing: answered, stored, new bytes each time."""
    for side in sides:
        ids = []
        for _ in range(2):
            reader, writer = await asyncio.open_connection(side.server.host, side.server.port)
            try:
                writer.write(side.template.render(next(side.counters)))
                status, body = await read_response(reader)
            finally:
                writer.close()
            if _failed(status, body):
                raise BenchFailed(f"{side.name} upload failed ({status}): {body[:500]!r}")
            answer = orjson.loads(body)
            ids.append((answer.get("data") or answer)["uploadFile"]["id"])
        if ids[0] == ids[1]:
            raise BenchFailed(f"{side.name}: two different images were stored as one")


async def timed_round(side: Side, index: int, args: argparse.Namespace) -> RoundResult:
    """Like ``bench.load.run_round``, with a freshly tagged image in every request."""
    opens = time.perf_counter() + args.warmup
    closes = opens + args.duration
    latencies: list[float] = []
    errors = 0

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(side.server.host, side.server.port)
        try:
            while (sent := time.perf_counter()) < closes:
                writer.write(side.template.render(next(side.counters)))
                status, body = await read_response(reader)
                done = time.perf_counter()
                if opens <= done < closes:
                    if _failed(status, body):
                        errors += 1
                    else:
                        latencies.append(done - sent)
        except (OSError, asyncio.IncompleteReadError, BadResponse, ValueError):
            errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(args.connections)))
    latencies.sort()
    return RoundResult(
        side=side.name,
        index=index,
        requests=len(latencies),
        errors=errors,
        duration_s=args.duration,
        rps=len(latencies) / args.duration,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
    )


async def measure(sides: list[Side], args: argparse.Namespace) -> list[RoundResult]:
    await verify(sides)
    results: list[RoundResult] = []
    for index in range(1, args.rounds + 1):
        for side in sides:
            result = await timed_round(side, index, args)
            results.append(result)
            print(
                f"  round {index}/{args.rounds} {side.name:<8} {result.rps:7.1f} uploads/s"
                f"  p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms"
                + (f"  errors {result.errors}" if result.errors else ""),
                file=sys.stderr,
                flush=True,
            )
    return results


# -- command line -------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = run_options("python -m bench uploads", __doc__, rounds=3, duration=2.0, connections=4)
    return checked_run_options(parser, argv)


def run(args: argparse.Namespace) -> int:
    load_before = os.getloadavg()[0]
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="agentgql-bench-")))
        database = stack.enter_context(bench_database(embedded=args.embedded))
        progress(f"database {database.name} on {database.where}: migrate, seed, ANALYZE")
        pair = asyncio.run(prepare(database.url, BENCHMARK))
        progress("starting agentgql and baseline servers")
        graphql = stack.enter_context(agentgql_server(database.url, workdir))
        baseline = stack.enter_context(baseline_server(database.url, workdir))
        # Disjoint counters: the two sides never upload the same bytes either.
        sides = [
            Side(
                "graphql",
                graphql,
                Template.of(pair.graphql.encode(graphql.host, graphql.port)),
                itertools.count(1),
            ),
            Side(
                "baseline",
                baseline,
                Template.of(pair.baseline.encode(baseline.host, baseline.port)),
                itertools.count(10**12),
            ),
        ]
        progress(f"uploading {len(pair.graphql.body) / 2**20:.2f} MiB requests; timing")
        results = run_fast(measure(sides, args))
        progress("stopping servers, dropping the database")

    note = (
        f"graphql: POST {GRAPHQL_PATH} uploadFile on `agentgql serve`; baseline: "
        f"POST {BASELINE_PATH} on bench.baseline; both one uvicorn worker, pool 1–10; "
        "req/s = uploads/s of ~1 MiB"
    )
    info = run_info(args, BENCHMARK.name, BENCHMARK.summary, database.where, load_before, note)
    summary = report(info, results, args.json)
    if not args.json:
        mib = len(pair.graphql.body) / 2**20
        print(
            f"throughput: graphql {summary.graphql.rps_median * mib:.1f} MiB/s, baseline "
            f"{summary.baseline.rps_median * mib:.1f} MiB/s; goal: ratio ≥ {GOAL}"
        )
    if summary.graphql.errors or summary.baseline.errors:
        progress("some uploads failed; the numbers above exclude them")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except (BenchFailed, ServerFailed, DatabaseFailed) as exc:
        progress(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        progress("interrupted; servers stopped, database dropped")
        return 130
