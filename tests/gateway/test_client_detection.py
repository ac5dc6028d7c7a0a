"""Which client sent a request: real User-Agent strings and headers of the tools
teams point at the gateway, and the session ids they carry (never a user id)."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from gateway.client_detection import detect_client, session_id

CASES = [
    ({"user-agent": "claude-cli/1.0.83 (external, cli)"}, "CLAUDE_CODE"),
    ({"user-agent": "claude-cli/2.0.14 (external, sdk-ts)", "x-app": "cli"}, "CLAUDE_CODE"),
    ({"user-agent": "Anthropic/JS 0.60.0", "x-claude-code-session-id": "abc12345"}, "CLAUDE_CODE"),
    (
        {"user-agent": "codex_cli_rs/0.46.0 (Mac OS 15.6.1; arm64) iTerm.app/3.6.1",
         "originator": "codex_cli_rs"},
        "CODEX",
    ),
    ({"user-agent": "codex_vscode/0.44.0 (Windows 10.0.26100; x86_64) vscode/1.104.2"}, "CODEX"),
    ({"user-agent": "node", "originator": "codex_exec"}, "CODEX"),
    ({"user-agent": "OpenAI/JS 4.83.0", "x-cursor-client-version": "1.7.28"}, "CURSOR"),
    ({"user-agent": "GitHubCopilotChat/0.31.5", "editor-version": "vscode/1.104.0"}, "COPILOT"),
    ({"user-agent": "Zed/0.206.6 (macos; aarch64)"}, "ZED"),
    ({"user-agent": "OpenAI/Python 1.99.9", "x-title": "Aider",
      "http-referer": "https://aider.chat"}, "AIDER"),
    ({"user-agent": "OpenAI/JS 5.12.2", "x-title": "Cline",
      "http-referer": "https://cline.bot"}, "CLINE"),
    ({"user-agent": "OpenAI/JS 5.12.2", "x-title": "Roo Code",
      "http-referer": "https://github.com/RooVetGit/Roo-Cline"}, "ROO_CODE"),
    ({"user-agent": "Kilo-Code/4.84.0", "x-title": "Kilo Code"}, "KILO_CODE"),
    ({"user-agent": "opencode/0.15.2 ai-sdk/provider-utils/3.0.10 runtime/bun/1.2.23"},
     "OPENCODE"),
    ({"user-agent": "Anthropic/Python 0.64.0"}, "ANTHROPIC_SDK"),
    ({"user-agent": "AsyncAnthropic/Python 0.64.0"}, "ANTHROPIC_SDK"),
    ({"user-agent": "OpenAI/Python 1.99.9"}, "OPENAI_SDK"),
    ({"user-agent": "AsyncOpenAI/Python 1.99.9"}, "OPENAI_SDK"),
    ({"user-agent": "curl/8.5.0"}, "Unknown"),
    ({"user-agent": "python-httpx/0.28.1"}, "Unknown"),
    ({}, "Unknown"),
]  # fmt: skip


@pytest.mark.parametrize(("headers", "client"), CASES)
def test_the_client_is_detected_from_its_headers(headers: dict[str, str], client: str) -> None:
    assert detect_client(Headers(headers)) == client


def test_claude_codes_session_is_taken_from_its_header_or_metadata_never_the_account() -> None:
    assert session_id(Headers({"x-claude-code-session-id": "5f0c7f4e-1"}), {}) == "5f0c7f4e-1"
    account = "user_3a9f_account_7d1e2c44-0b5a-4a37-9f5e-1c2d3e4f5a6b"
    session = "session_0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
    body = {"metadata": {"user_id": f"{account}_{session}"}}
    assert session_id(Headers({}), body) == "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
    assert session_id(Headers({}), {"metadata": {"user_id": account}}) is None


def test_codex_sends_its_session_as_a_header() -> None:
    headers = Headers({"session_id": "0199a213-81c0-7800-8aa1-bbab2a035a53"})
    assert session_id(headers, {}) == "0199a213-81c0-7800-8aa1-bbab2a035a53"
    assert session_id(Headers({"session_id": "bad value; drop table"}), {}) is None
