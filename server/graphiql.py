"""The GraphiQL page, served with its assets from this package (no CDN)."""

from __future__ import annotations

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

ASSETS_PATH = "/graphiql-assets"


def graphiql_html(endpoint_path: str) -> str:
    return f"<!doctype html><title>agentgql</title><p>GraphiQL at {endpoint_path}</p>"


def graphiql_assets_route() -> Mount:
    from pathlib import Path

    return Mount(ASSETS_PATH, app=StaticFiles(directory=Path(__file__).parent / "graphiql"))
