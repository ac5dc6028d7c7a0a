"""Fixtures for modules that run their own app with the daemon on (fast settings)
behind a real uvicorn: import them into the module, which then replaces the
shared ``app`` fixture for its tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette

from daemon.tool_registry import ToolRegistry
from tests.conftest import make_settings
from tests.daemon.live import ECHO, FAST_DAEMON, http_client, new_user, running_app
from tests.harness import PASSWORD, SIGN_UP, GraphQLClient


@pytest.fixture(scope="module")
async def app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Starlette]:
    """This module's own app (it replaces the shared one): the daemon runs, fast."""
    settings = make_settings(database_url, tmp_path_factory, **FAST_DAEMON)
    async with running_app(settings, tools=ToolRegistry([ECHO])) as application:
        yield application


@pytest.fixture(scope="module")
async def client(live_server: str) -> AsyncIterator[GraphQLClient]:
    async with http_client(live_server) as gql:
        yield gql


@pytest.fixture(scope="module")
async def admin(client: GraphQLClient) -> str:
    """The first account, hence ADMIN."""
    data = await client.ok(SIGN_UP, {"u": "admin", "p": PASSWORD})
    assert data["signUp"]["user"]["role"] == "ADMIN"
    return str(data["signUp"]["token"])


@pytest.fixture
async def token(client: GraphQLClient, admin: str) -> str:
    return await new_user(client)
