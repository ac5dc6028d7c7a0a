"""Every benchmark by name: add a module that defines ``BENCHMARK`` and list it here.

Both the command line and the baseline app read this one dict, so a benchmark's
baseline route exists exactly when the benchmark does.
"""

from __future__ import annotations

from bench import messages, uploads, viewer
from bench.benchmark import Benchmark

BENCHMARKS: dict[str, Benchmark] = {
    benchmark.name: benchmark
    for benchmark in (
        viewer.BENCHMARK,
        messages.BENCHMARK,
        messages.DEEP_BENCHMARK,
        uploads.BENCHMARK,
    )
}
