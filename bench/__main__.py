"""``python -m bench NAME``: one benchmark, the GraphQL path against a raw baseline, in one run.

Sequence: fresh database (migrated, seeded, ANALYZEd) → agentgql and baseline
servers as uvicorn processes → one correctness check (same data on both sides)
→ a separate load-generator process alternating timed rounds → medians and the
ratio. Every process and the database are cleaned up on any exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from types import FrameType

import orjson

from bench import uploads
from bench.benchmark import DEFAULT_BASELINE, checked_run_options, progress, run_options
from bench.load import LoadSpec, RoundResult, Target, fetch_once
from bench.postgres import DatabaseFailed, bench_database, prepare
from bench.registry import BENCHMARKS, IN_PROCESS
from bench.report import report, run_info
from bench.servers import REPO_ROOT, ServerFailed, agentgql_server, baseline_server, spawn, stop


class BenchFailed(RuntimeError):
    """The run cannot produce a trustworthy number (wrong answer, dead load generator)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = run_options("python -m bench", __doc__, rounds=5, duration=3.0, connections=16)
    parser.add_argument(
        "name", choices=sorted([*BENCHMARKS, *IN_PROCESS]), help="which benchmark to run"
    )
    args = checked_run_options(parser, argv)
    variants = BENCHMARKS[args.name].baseline_variants if args.name in BENCHMARKS else {}
    if args.baseline != DEFAULT_BASELINE and args.baseline not in variants:
        known = ", ".join([DEFAULT_BASELINE, *variants])
        parser.error(f"{args.name} has these baselines: {known}")
    return args


def verify(graphql: Target, baseline: Target, *, same_data: bool = True) -> None:
    """Before timing: GraphQL answers without errors and its data equals the baseline's."""

    async def both() -> tuple[tuple[int, bytes], tuple[int, bytes]]:
        return await fetch_once(graphql), await fetch_once(baseline)

    (g_status, g_body), (b_status, b_body) = asyncio.run(both())
    if g_status != 200 or b_status != 200:
        raise BenchFailed(f"status graphql {g_status}, baseline {b_status}: {g_body!r} {b_body!r}")
    answer = orjson.loads(g_body)
    expected = orjson.loads(b_body)
    if answer.get("errors") or "data" not in answer:
        raise BenchFailed(f"graphql answered with errors: {g_body.decode()}")
    if not same_data:
        if expected.get("errors"):
            raise BenchFailed(f"reference answered with errors: {b_body.decode()}")
        return
    if answer["data"] != expected:
        raise BenchFailed(f"data differ:\n  graphql  {answer['data']}\n  baseline {expected}")


def run_load(spec: LoadSpec) -> list[RoundResult]:
    """The load generator in its own process, so it is scheduled apart from the servers."""
    process = spawn(
        [sys.executable, "-m", "bench.load"],
        env=os.environ,
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        out, _ = process.communicate(spec.to_json())
    finally:
        stop(process)
    if process.returncode != 0:
        raise BenchFailed(f"load generator exited with {process.returncode}")
    return [RoundResult(**row) for row in orjson.loads(out)]


def run(args: argparse.Namespace) -> int:
    if args.name == uploads.BENCHMARK.name:  # e.g. ``--json uploads``: same options
        return uploads.run(args)
    if args.name in IN_PROCESS:  # e.g. ``--json analysis``: its own defaults otherwise
        return IN_PROCESS[args.name](["--json"] if args.json else [])
    benchmark = BENCHMARKS[args.name]
    load_before = os.getloadavg()[0]
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="agentgql-bench-")))
        database = stack.enter_context(bench_database(embedded=args.embedded))
        progress(f"database {database.name} on {database.where}: migrate, seed, ANALYZE")
        pair = asyncio.run(prepare(database.url, benchmark))
        if args.baseline != DEFAULT_BASELINE:
            pair = replace(pair, baseline=benchmark.baseline_variants[args.baseline](pair.baseline))
        progress("starting agentgql and baseline servers")
        graphql = stack.enter_context(agentgql_server(database.url, workdir))
        baseline = (
            graphql
            if benchmark.baseline_is_graphql
            else stack.enter_context(baseline_server(database.url, workdir))
        )
        targets = [
            Target(
                "graphql",
                graphql.host,
                graphql.port,
                pair.graphql.encode(graphql.host, graphql.port),
            ),
            Target(
                "baseline",
                baseline.host,
                baseline.port,
                pair.baseline.encode(baseline.host, baseline.port),
            ),
        ]
        verify(*targets, same_data=not benchmark.baseline_is_graphql)
        progress("responses match; timing")
        spec = LoadSpec(targets, args.rounds, args.duration, args.warmup, args.connections)
        results = run_load(spec)
        progress("stopping servers, dropping the database")

    note = (
        f"graphql: {pair.graphql.method} {pair.graphql.path} on `agentgql serve`; "
        f"baseline ({args.baseline}): {pair.baseline.method} {pair.baseline.path} "
        "on bench.baseline; "
        "both one uvicorn worker (uvloop, httptools), pool 1–10"
    )
    info = run_info(args, benchmark.name, benchmark.summary, database.where, load_before, note)
    summary = report(info, results, args.json)
    if summary.graphql.errors or summary.baseline.errors:
        progress("some requests failed; the numbers above exclude them")
        return 1
    return 0


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds the ExitStack like Ctrl-C does


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    if raw[:1] and raw[0] in IN_PROCESS:  # no servers: its own options
        return IN_PROCESS[raw[0]](raw[1:])
    if raw[:1] == [uploads.BENCHMARK.name]:  # its own load (new bytes per request) and options
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        return uploads.main(raw[1:])
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return run(args)
    except (BenchFailed, uploads.BenchFailed, ServerFailed, DatabaseFailed) as exc:
        progress(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        progress("interrupted; servers stopped, database dropped")
        return 130
    except SystemExit as exc:
        progress("terminated; servers stopped, database dropped")
        raise exc


if __name__ == "__main__":
    raise SystemExit(main())
