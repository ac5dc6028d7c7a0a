"""Shadow mode for the test suite: ``pytest --shadow-compiled`` (or
``AGENTGQL_COMPILED_SHADOW=1``) runs every compiled answer through graphql-core
too, and a test during which any answer differed fails.

The check itself is always on: a module that switches shadow mode on for its
own app (``tests/schema/test_compiled_shadow.py``) fails the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from schema.engine.executor import SHADOW_DIFFERENCES, SHADOW_ENV


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shadow-compiled",
        action="store_true",
        default=False,
        help="also run every compiled query through graphql-core; fail on any difference",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--shadow-compiled"):
        os.environ[SHADOW_ENV] = "1"  # read by every executor built from here on


@pytest.fixture(autouse=True)
def _compiled_answers_match_graphql_core() -> Iterator[None]:
    seen = len(SHADOW_DIFFERENCES)
    yield
    found = SHADOW_DIFFERENCES[seen:]
    if found:
        del SHADOW_DIFFERENCES[seen:]
        lines = "\n".join(
            f"- {d.query!r} {d.variables!r}\n  compiled: {d.compiled!r}\n  expected: {d.expected!r}"
            for d in found
        )
        pytest.fail(f"compiled answers differ from graphql-core's:\n{lines}", pytrace=False)
