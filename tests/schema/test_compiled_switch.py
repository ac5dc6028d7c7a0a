"""``AGENTGQL_COMPILED_QUERIES=false``: the compiled engine is off entirely.

The app of this module is built with the setting off; compiling or running a
plan would fail the test, and queries (answers and errors) still come back.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette

from schema.engine import executor
from server.settings import Settings
from tests.conftest import make_settings
from tests.harness import GraphQLClient
from tests.schema.test_compiled_errors import graphql_schema


@pytest.fixture(scope="module")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(database_url, tmp_path_factory, compiled_queries=False)


def test_the_setting_reads_false_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTGQL_COMPILED_QUERIES", "false")
    assert Settings().compiled_queries is False
    monkeypatch.delenv("AGENTGQL_COMPILED_QUERIES")
    assert Settings().compiled_queries is True


async def test_no_compiled_plan_is_made_or_run(
    app: Starlette, gql: GraphQLClient, member_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a compiled plan was used with compiled queries off")

    monkeypatch.setattr(executor, "compile_query", refuse)
    monkeypatch.setattr(executor.FastExecutor, "run", refuse)
    monkeypatch.setattr(executor.FastExecutor, "__call__", refuse)
    schema = graphql_schema(app)
    assert schema.fast is None
    assert schema.fast_lane is None

    data = await gql.ok("{ viewer { user { username } } }", token=member_token)
    assert data == {"viewer": {"user": {"username": "member"}}}
    refused = await gql("{ chats(first: 1) { nodes { id } } }")
    assert refused["data"] is None
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["UNAUTHENTICATED"]
