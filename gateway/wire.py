"""The two wire formats the gateway speaks, and errors in each one's own shape.

A client's SDK parses errors by its provider's shape (and retries by status), so
every answer of ours — no token, unknown model, spend limit, upstream down — is
shaped like the provider's own: OpenAI ``{"error": {message, type, param, code}}``,
Anthropic ``{"type": "error", "error": {type, message}}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from starlette.responses import JSONResponse

from db.vocabulary import ProviderKind


class Wire(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


# Which provider kinds serve each wire (the gateway passes bodies through; it
# does not translate one format into the other).
WIRE_KINDS: dict[Wire, frozenset[ProviderKind]] = {
    Wire.OPENAI: frozenset({ProviderKind.OPENAI, ProviderKind.OPENAI_COMPATIBLE}),
    Wire.ANTHROPIC: frozenset({ProviderKind.ANTHROPIC}),
}
DEFAULT_BASE_URLS: dict[ProviderKind, str] = {
    ProviderKind.OPENAI: "https://api.openai.com/v1",
    ProviderKind.ANTHROPIC: "https://api.anthropic.com",
}
ANTHROPIC_VERSION = "2023-06-01"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One gateway route: its wire, its name in the logs, and where it goes
    upstream (relative to the provider's base URL, as each SDK builds it:
    OpenAI base URLs end in ``/v1``, Anthropic's do not)."""

    wire: Wire
    name: str
    upstream_path: str
    generates: bool = True  # False: answered without generating (count_tokens)
    max_tokens_fields: tuple[str, ...] = ()


CHAT_COMPLETIONS = Endpoint(
    Wire.OPENAI, "chat.completions", "/chat/completions",
    max_tokens_fields=("max_completion_tokens", "max_tokens"),
)  # fmt: skip
RESPONSES = Endpoint(
    Wire.OPENAI, "responses", "/responses", max_tokens_fields=("max_output_tokens",)
)
MESSAGES = Endpoint(Wire.ANTHROPIC, "messages", "/v1/messages", max_tokens_fields=("max_tokens",))
COUNT_TOKENS = Endpoint(
    Wire.ANTHROPIC, "messages.count_tokens", "/v1/messages/count_tokens", generates=False
)

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "insufficient_quota",
    502: "server_error",
    504: "server_error",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    502: "api_error",
    504: "timeout_error",
}


def error_body(
    wire: Wire, status: int, message: str, code: str | None = None, **facts: Any
) -> dict[str, Any]:
    if wire is Wire.ANTHROPIC:
        kind = _ANTHROPIC_TYPES.get(status, "api_error")
        error: dict[str, Any] = {"type": kind, "message": message}
        if code is not None:
            error["code"] = code
        return {"type": "error", "error": {**error, **facts}}
    kind = _OPENAI_TYPES.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": code, **facts}}


def error_response(
    wire: Wire,
    status: int,
    message: str,
    code: str | None = None,
    *,
    retry: bool | None = None,
    headers: dict[str, str] | None = None,
    **facts: Any,
) -> JSONResponse:
    """A provider-shaped error; ``retry`` False tells both SDKs not to retry
    (``x-should-retry``), where they otherwise would (429, 5xx)."""
    extra = dict(headers or {})
    if retry is not None:
        extra["x-should-retry"] = "true" if retry else "false"
    return JSONResponse(error_body(wire, status, message, code, **facts), status, headers=extra)
