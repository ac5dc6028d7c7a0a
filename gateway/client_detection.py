"""Which coding client sent a request, and its session, from headers (and, for
Claude Code, the body's ``metadata.user_id``).

Rules are checked in order; the first match names the client, ``Unknown`` when
none does (the raw User-Agent is logged beside it either way). Client-specific
products come before the SDKs they are built on (Claude Code sends through the
Anthropic SDK, Aider through OpenAI's).

A session id identifies one conversation of a client, never a user: Claude
Code's ``metadata.user_id`` holds account and session (``user_<h>_account_<id>_
session_<id>``); only the part after ``_session_`` is kept, and a value without
one is not taken at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers

from db.ai_request_logs import UNKNOWN_CLIENT

SESSION_ID_MAX = 128
_SAFE_SESSION = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_CLAUDE_SESSION = re.compile(r"_session_([A-Za-z0-9-]{8,64})$")


@dataclass(frozen=True, slots=True)
class Rule:
    client: str
    matches: Callable[[Headers, str], bool]


def _ua_prefix(*prefixes: str) -> Callable[[Headers, str], bool]:
    lowered = tuple(p.lower() for p in prefixes)
    return lambda headers, ua: ua.startswith(lowered)


def _ua_contains(*parts: str) -> Callable[[Headers, str], bool]:
    lowered = tuple(p.lower() for p in parts)
    return lambda headers, ua: any(p in ua for p in lowered)


def _header(name: str, *values: str) -> Callable[[Headers, str], bool]:
    """``name`` present (with one of ``values``, case-insensitive, when given)."""
    lowered = tuple(v.lower() for v in values)

    def check(headers: Headers, ua: str) -> bool:
        value = headers.get(name)
        if value is None:
            return False
        return not lowered or any(v in value.lower() for v in lowered)

    return check


def _any(*checks: Callable[[Headers, str], bool]) -> Callable[[Headers, str], bool]:
    return lambda headers, ua: any(check(headers, ua) for check in checks)


RULES: tuple[Rule, ...] = (
    Rule("CLAUDE_CODE", _any(_ua_prefix("claude-cli/", "claude-code/"),
                             _header("x-claude-code-session-id"))),
    Rule("CODEX", _any(_ua_prefix("codex_cli_rs/", "codex_vscode/", "codex_exec/", "codex/"),
                       _header("originator", "codex"))),
    Rule("CURSOR", _any(_header("x-cursor-client-version"), _ua_contains("cursor/"))),
    Rule("COPILOT", _any(_ua_prefix("githubcopilotchat/", "copilot/", "github-copilot"),
                         _header("copilot-integration-id"))),
    Rule("ZED", _ua_prefix("zed/")),
    Rule("AIDER", _any(_ua_contains("aider"), _header("x-title", "aider"),
                       _header("http-referer", "aider.chat"))),
    Rule("CLINE", _any(_ua_prefix("cline/"), _header("x-title", "cline"),
                       _header("http-referer", "cline.bot"))),
    Rule("ROO_CODE", _any(_ua_prefix("roo-code/", "roocode/"), _header("x-title", "roo code"),
                          _header("http-referer", "roovetgit", "roocode"))),
    Rule("KILO_CODE", _any(_ua_prefix("kilo-code/", "kilocode/"), _header("x-title", "kilo"))),
    Rule("OPENCODE", _ua_prefix("opencode/")),
    Rule("CONTINUE", _any(_ua_prefix("continue/"), _header("x-title", "continue"))),
    Rule("GOOSE", _ua_prefix("goose/")),
    Rule("ANTHROPIC_SDK", _ua_prefix("anthropic/", "asyncanthropic/")),
    Rule("OPENAI_SDK", _ua_prefix("openai/", "asyncopenai/")),
)  # fmt: skip


def detect_client(headers: Headers) -> str:
    ua = headers.get("user-agent", "").strip().lower()
    for rule in RULES:
        if rule.matches(headers, ua):
            return rule.client
    return UNKNOWN_CLIENT


def _safe(value: object) -> str | None:
    if isinstance(value, str) and _SAFE_SESSION.fullmatch(value):
        return value
    return None


def session_id(headers: Headers, body: Mapping[str, Any]) -> str | None:
    """The client's own session id, where it sends one; never a user's id."""
    for name in ("x-claude-code-session-id", "session_id", "x-session-id", "conversation_id"):
        found = _safe(headers.get(name))
        if found is not None:
            return found
    metadata = body.get("metadata")
    if isinstance(metadata, Mapping):
        user_id = metadata.get("user_id")
        if isinstance(user_id, str):
            match = _CLAUDE_SESSION.search(user_id)
            if match is not None:
                return match.group(1)
    return None
