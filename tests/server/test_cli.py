"""The ``agentgql`` command line, run as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg

from tests.harness import PostgresServer

ROOT = Path(__file__).resolve().parents[2]


def agentgql(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_export_schema_prints_the_committed_sdl() -> None:
    result = agentgql("export-schema")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "schema.graphql").read_text()


async def test_migrate_then_createuser_with_password_on_stdin(postgres: PostgresServer) -> None:
    url = await postgres.create(f"agentgql_cli_{uuid.uuid4().hex[:8]}")
    env = {"DATABASE_URL": url}

    refused = agentgql("createuser", "carol", "--password-stdin", env=env, stdin="long-enough-pw\n")
    assert refused.returncode != 0
    assert "agentgql migrate" in refused.stderr

    assert agentgql("migrate", env=env).returncode == 0
    made = agentgql(
        "createuser", "carol", "--admin", "--password-stdin", env=env, stdin="long-enough-pw\n"
    )
    assert made.returncode == 0, made.stderr
    weak = agentgql("createuser", "dave", "--password-stdin", env=env, stdin="short\n")
    assert weak.returncode == 2
    assert "password" in weak.stderr

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT username, role FROM users ORDER BY username")
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [("carol", "admin")]
