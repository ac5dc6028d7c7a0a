"""``/readyz`` reports a database that went away, and recovers when it returns."""

from __future__ import annotations

import httpx

from tests.harness import PostgresServer


async def _cut_off(postgres: PostgresServer, name: str, *, allowed: bool) -> None:
    await postgres.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')
    if not allowed:
        await postgres.execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )


async def test_readyz_is_503_while_the_database_is_down(
    http: httpx.AsyncClient, postgres: PostgresServer, database_url: str
) -> None:
    name = database_url.rsplit("/", 1)[1].split("?")[0]
    assert (await http.get("/readyz")).status_code == 200
    await _cut_off(postgres, name, allowed=False)
    try:
        down = await http.get("/readyz")
        assert down.status_code == 503
        body = down.json()
        assert body["status"] == "unavailable"
        assert body["problems"][0].startswith("database unreachable")
        assert body["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
        assert (await http.get("/healthz")).status_code == 200  # alive, just not ready
    finally:
        await _cut_off(postgres, name, allowed=True)
    up = await http.get("/readyz")
    assert (up.status_code, up.json()) == (200, {"status": "ready"})
