"""The offline GraphiQL page, driven in a real headless Chromium.

Loads ``/graphql`` from a live server, checks that nothing is fetched from any
host but the server itself, types a bearer token into GraphiQL's headers editor,
runs the default viewer query with the execute button and waits for the answer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, async_playwright, expect

pytestmark = [pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
QUERY = "{ viewer { user { username } } }"
TIMEOUT_MS = 20_000

# GraphiQL 3 DOM: CodeMirror 5 editors keep their instance on the `.CodeMirror`
# element; the tools tabs are buttons with `data-name`; the active tool section is
# labelled after its tab.
CONTAINER = ".graphiql-container"
QUERY_EDITOR = "section.graphiql-query-editor .graphiql-editor .CodeMirror"
HEADERS_TAB = '.graphiql-editor-tools button[data-name="headers"]'
HEADERS_EDITOR = (
    'section.graphiql-editor-tool[aria-label="Headers"] .graphiql-editor:not(.hidden) .CodeMirror'
)
EXECUTE_BUTTON = "button.graphiql-execute-button"
RESPONSE = ".graphiql-response .CodeMirror"


@pytest.fixture
def chromium() -> str:
    """The Chromium binary; missing is a skip locally and a failure on CI."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        reason = f"chromium not found at {CHROMIUM}: install it with `apt-get install chromium`"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return str(CHROMIUM)


async def editor_value(page: Page, selector: str) -> str:
    value = await page.locator(selector).evaluate("el => el.CodeMirror.getValue()")
    assert isinstance(value, str)
    return value


async def replace_editor_text(page: Page, selector: str, text: str) -> None:
    """Types ``text`` into a CodeMirror editor in place of its content.

    ``insert_text`` goes through the editor's input element like typing does but
    without key events, so CodeMirror's auto-closed brackets don't double up.
    """
    await page.locator(selector).click()
    await page.keyboard.press("ControlOrMeta+A")
    await page.keyboard.press("Delete")
    await page.keyboard.insert_text(text)


async def test_graphiql_runs_viewer_query_with_typed_bearer_token(
    chromium: str, live_server: str, admin_token: str
) -> None:
    requested: list[str] = []
    page_errors: list[str] = []
    failed: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context()
            page = await context.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.on("websocket", lambda ws: requested.append(ws.url))
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))

            response = await page.goto(live_server + "/graphql")
            assert response is not None
            assert response.ok
            html = await response.text()
            assert "http://" not in html
            assert "https://" not in html
            await expect(page.locator(CONTAINER)).to_be_visible(timeout=TIMEOUT_MS)
            await expect(page.locator(QUERY_EDITOR)).to_be_visible(timeout=TIMEOUT_MS)

            await page.locator(HEADERS_TAB).click()
            await expect(page.locator(HEADERS_EDITOR)).to_be_visible(timeout=TIMEOUT_MS)
            headers = {"Authorization": f"Bearer {admin_token}"}
            await replace_editor_text(page, HEADERS_EDITOR, json.dumps(headers))
            assert json.loads(await editor_value(page, HEADERS_EDITOR)) == headers

            if (await editor_value(page, QUERY_EDITOR)).strip() != QUERY:
                await replace_editor_text(page, QUERY_EDITOR, QUERY)
            assert (await editor_value(page, QUERY_EDITOR)).strip() == QUERY

            await page.locator(EXECUTE_BUTTON).click()
            await expect(page.locator(RESPONSE)).to_contain_text(
                '"username": "admin"', timeout=TIMEOUT_MS
            )
        finally:
            await browser.close()

    assert requested, "the browser made no requests at all"
    foreign = [url for url in requested if urlsplit(url).hostname != "127.0.0.1"]
    assert foreign == [], f"requests left the server: {foreign}"
    assert page_errors == []
    assert failed == []
