"""Turning round results into the summary: medians per side and the ratio, as a table or JSON.

Medians over rounds (not means) so one round disturbed by the shared CPUs does
not move the result; min–max of req/s shows how much the rounds disagreed.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from bench.load import RoundResult

SIDES = ("graphql", "baseline")


@dataclass(frozen=True)
class SideSummary:
    side: str
    rps_median: float
    rps_min: float
    rps_max: float
    p50_ms: float  # median over rounds of each round's p50
    p99_ms: float  # median over rounds of each round's p99
    requests: int
    errors: int
    rounds_rps: list[float]


@dataclass(frozen=True)
class RunInfo:
    """What the numbers depend on, printed above them."""

    benchmark: str
    summary: str
    rounds: int
    duration_s: float
    warmup_s: float
    connections: int
    cpus: int
    postgres: str
    python: str
    load_before: float  # 1-min load average at the start: other work on the machine skews rounds
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Summary:
    info: RunInfo
    graphql: SideSummary
    baseline: SideSummary

    @property
    def ratio(self) -> float:
        if self.baseline.rps_median == 0:
            return 0.0
        return self.graphql.rps_median / self.baseline.rps_median


def summarize_side(side: str, results: list[RoundResult]) -> SideSummary:
    rounds = [r for r in results if r.side == side]
    if not rounds:
        raise ValueError(f"no rounds for {side}")
    rps = [r.rps for r in rounds]
    return SideSummary(
        side=side,
        rps_median=statistics.median(rps),
        rps_min=min(rps),
        rps_max=max(rps),
        p50_ms=statistics.median(r.p50_ms for r in rounds),
        p99_ms=statistics.median(r.p99_ms for r in rounds),
        requests=sum(r.requests for r in rounds),
        errors=sum(r.errors for r in rounds),
        rounds_rps=[round(x, 1) for x in rps],
    )


def summarize(info: RunInfo, results: list[RoundResult]) -> Summary:
    return Summary(
        info=info,
        graphql=summarize_side("graphql", results),
        baseline=summarize_side("baseline", results),
    )


def header(info: RunInfo) -> str:
    lines = [
        f"bench {info.benchmark}: {info.summary}",
        f"  {info.rounds} rounds per side, alternating, {info.duration_s:g} s each after "
        f"{info.warmup_s:g} s warmup, {info.connections} keep-alive connections",
        f"  machine: {info.cpus} CPU(s) shared by both servers, PostgreSQL and the load "
        "generator; absolute numbers are pessimistic, compare the ratio",
        f"  load average before the run: {info.load_before:.2f} (other work skews rounds)",
        f"  postgres: {info.postgres}; python {info.python}",
    ]
    lines += [f"  note: {note}" for note in info.notes]
    return "\n".join(lines)


def table(summary: Summary) -> str:
    rows = [
        f"{'side':<9} {'req/s':>8} {'min–max':>15} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'requests':>9} {'errors':>7}"
    ]
    for side in (summary.graphql, summary.baseline):
        spread = f"{side.rps_min:.0f}–{side.rps_max:.0f}"
        rows.append(
            f"{side.side:<9} {side.rps_median:>8.0f} {spread:>15} {side.p50_ms:>8.2f} "
            f"{side.p99_ms:>8.2f} {side.requests:>9} {side.errors:>7}"
        )
    rows.append(
        f"{summary.info.benchmark}: graphql {summary.graphql.rps_median:.0f} req/s, "
        f"baseline {summary.baseline.rps_median:.0f} req/s, ratio {summary.ratio:.2f}; "
        f"p50 graphql/baseline {summary.graphql.p50_ms / (summary.baseline.p50_ms or 1):.2f}"
    )
    return "\n".join(rows)


def as_json(summary: Summary, results: list[RoundResult]) -> bytes:
    data: dict[str, Any] = {
        **asdict(summary.info),
        "graphql": asdict(summary.graphql),
        "baseline": asdict(summary.baseline),
        "ratio": round(summary.ratio, 4),
        "rounds_detail": [asdict(r) for r in results],
    }
    return orjson.dumps(data, option=orjson.OPT_INDENT_2)


def run_info(
    args: Any, benchmark: str, summary: str, postgres: str, load_before: float, note: str
) -> RunInfo:
    """The run's circumstances, from the command line and the machine."""
    return RunInfo(
        benchmark=benchmark,
        summary=summary,
        rounds=args.rounds,
        duration_s=args.duration,
        warmup_s=args.warmup,
        connections=args.connections,
        cpus=os.cpu_count() or 1,
        postgres=postgres,
        python=platform.python_version(),
        load_before=load_before,
        notes=[note],
    )


def report(info: RunInfo, results: list[RoundResult], as_json_output: bool) -> Summary:
    """Print the summary (table or JSON) and return it."""
    summary = summarize(info, results)
    if as_json_output:
        sys.stdout.buffer.write(as_json(summary, results) + b"\n")
    else:
        print(header(info))
        print(table(summary))
    return summary
