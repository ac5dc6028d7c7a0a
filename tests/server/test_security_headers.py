"""Content-Security-Policy on the pages a browser renders: GraphiQL and downloads.

GraphiQL runs with the visitor's cookie, so it may run only this server's own
scripts; a downloaded file opened as a page must not run anything at all. The
browser test proves GraphiQL still works under its policy.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import ConsoleMessage, async_playwright, expect

from tests.harness import new_person
from tests.server.test_graphiql_browser import CHROMIUM_ARGS, CONTAINER, TIMEOUT_MS, chromium
from tests.uploads import png

__all__ = ["chromium"]

SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


def policy(header: str) -> dict[str, str]:
    directives = (part.strip() for part in header.split(";"))
    return {d.split(" ", 1)[0]: d.partition(" ")[2] for d in directives if d}


async def test_graphiql_page_forbids_inline_and_foreign_scripts(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    csp = policy(response.headers["content-security-policy"])
    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == "'self'"
    assert csp["connect-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    # Every script is a file from the server or a data block, never inline code.
    for attributes in SCRIPT_TAG.findall(response.text):
        assert "src=" in attributes or 'type="application/json"' in attributes, attributes


async def test_downloads_are_sandboxed(http: httpx.AsyncClient, admin_token: str) -> None:
    person = await new_person("csp")
    auth = {"Authorization": f"Bearer {person.token}"}
    stored = await http.post(
        "/files", content=png(11), headers={**auth, "Content-Type": "image/png"}
    )
    assert stored.status_code == 201, stored.text
    downloaded = await http.get(stored.headers["location"], headers=auth)
    assert downloaded.status_code == 200
    assert downloaded.headers["content-security-policy"] == "default-src 'none'; sandbox"
    revalidated = await http.get(
        stored.headers["location"], headers={**auth, "If-None-Match": downloaded.headers["etag"]}
    )
    assert revalidated.status_code == 304
    assert revalidated.headers["content-security-policy"] == "default-src 'none'; sandbox"


@pytest.mark.browser
async def test_graphiql_loads_and_reaches_its_socket_under_the_policy(
    chromium: str, live_server: str
) -> None:
    violations: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            page.on("console", on_console)
            await page.goto(live_server + "/graphql")
            await expect(page.locator(CONTAINER)).to_be_visible(timeout=TIMEOUT_MS)
            # The subscription transport: a same-origin WebSocket must be allowed.
            opened = await page.evaluate(
                """() => new Promise((resolve) => {
                    const url = location.href.replace(/^http/, "ws");
                    const ws = new WebSocket(url, "graphql-transport-ws");
                    ws.onopen = () => { ws.close(); resolve("open"); };
                    ws.onerror = () => resolve("error");
                })"""
            )
        finally:
            await browser.close()
    assert opened == "open"
    assert violations == []
