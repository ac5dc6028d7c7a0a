"""Fixtures shared by every test package."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from db.model_resolution import ensure_default_scripted_model
from resolvers.accounts import create_user
from server.app import create_app
from server.settings import Settings
from tests.harness import (
    LOGIN,
    PASSWORD,
    SIGN_UP,
    GraphQLClient,
    PostgresServer,
    make_template,
    start_postgres,
)

pytest_plugins = ["tests.private_redis", "tests.compiled_shadow"]

_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    pg = start_postgres()
    yield pg
    asyncio.run(pg.drop_all())
    if pg.cluster is not None:
        pg.cluster.stop()


@pytest.fixture(scope="session")
def template_db(postgres: PostgresServer) -> str:
    return asyncio.run(make_template(postgres))


@pytest.fixture(scope="module")
async def database_url(postgres: PostgresServer, template_db: str) -> str:
    name = f"agentgql_t{os.getpid()}_{next(_counter)}"
    return await postgres.create(name, template=template_db)


def make_settings(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, **extra: Any
) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("data"),
        log_format="text",
        **extra,
    )


@pytest.fixture(scope="module")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(database_url, tmp_path_factory)


@pytest.fixture(scope="module")
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        # Chats need a default model config; the server makes one only when embedded.
        await ensure_default_scripted_model()
        yield application


@pytest.fixture(scope="module")
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture(scope="module")
def gql(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http)


@pytest.fixture(scope="module")
async def admin_token(gql: GraphQLClient) -> str:
    """The first account of the module's database, hence ADMIN."""
    data = await gql.ok(SIGN_UP, {"u": "admin", "p": PASSWORD})
    assert data["signUp"]["user"]["role"] == "ADMIN"
    return str(data["signUp"]["token"])


async def login_token(gql: GraphQLClient, username: str, password: str = PASSWORD) -> str:
    data = await gql.ok(LOGIN, {"u": username, "p": password})
    return str(data["login"]["token"])


@pytest.fixture(scope="module")
async def member_token(gql: GraphQLClient, admin_token: str) -> str:
    await create_user("member", PASSWORD)
    return await login_token(gql, "member")


@pytest.fixture(scope="module")
async def live_server(app: Starlette) -> AsyncIterator[str]:
    """The module's app served by a real uvicorn on a free loopback port."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=10)
