"""Every benchmark by name: add a module that defines ``BENCHMARK`` and list it here.

Both the command line and the baseline app read this one dict, so a benchmark's
baseline route exists exactly when the benchmark does. ``IN_PROCESS`` lists the
benchmarks that need no server or database: a ``main(argv)`` each.
"""

from __future__ import annotations

from collections.abc import Callable

from bench import analysis, costs, gateway, messages, uploads, viewer
from bench.benchmark import Benchmark

BENCHMARKS: dict[str, Benchmark] = {
    benchmark.name: benchmark
    for benchmark in (
        viewer.BENCHMARK,
        messages.BENCHMARK,
        messages.DEEP_BENCHMARK,
        uploads.BENCHMARK,
        costs.BENCHMARK,
    )
}

IN_PROCESS: dict[str, Callable[[list[str]], int]] = {
    analysis.NAME: analysis.main,
    gateway.NAME: gateway.main,
}
