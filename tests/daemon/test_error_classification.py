"""classify(): every failure shape the SDKs and the network produce, mapped once."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import openai
import pytest

from daemon.providers import ProviderError, classify, make_client
from daemon.providers.errors import redact_text
from db.vocabulary import ChatErrorKind

REQUEST = httpx2.Request("POST", "https://llm.example/v1/chat/completions")


def response(status: int, body: Any = None) -> httpx2.Response:
    return httpx2.Response(status, json=body, request=REQUEST)


def openai_status(status: int, error: dict[str, Any]) -> openai.APIStatusError:
    cls = {429: openai.RateLimitError, 401: openai.AuthenticationError}.get(
        status, openai.InternalServerError if status >= 500 else openai.APIStatusError
    )
    return cls(f"Error code: {status}", response=response(status, {"error": error}), body=error)


def anthropic_status(status: int, type_: str, message: str) -> anthropic.APIStatusError:
    body = {"type": "error", "error": {"type": type_, "message": message}}
    cls = {529: anthropic.OverloadedError, 429: anthropic.RateLimitError}.get(
        status, anthropic.APIStatusError
    )
    return cls(f"Error code: {status}", response=response(status, body), body=body)


@pytest.mark.parametrize(
    ("exc", "kind", "retryable", "status"),
    [
        (openai_status(429, {"message": "slow down", "code": "rate_limit_exceeded"}),
         ChatErrorKind.RATE_LIMIT, True, 429),
        (openai_status(502, {"message": "bad gateway"}), ChatErrorKind.GENERIC, True, 502),
        (openai_status(501, {"message": "not implemented"}), ChatErrorKind.GENERIC, False, 501),
        (openai_status(401, {"message": "no"}), ChatErrorKind.AUTH, False, 401),
        (openai_status(408, {"message": "slow"}), ChatErrorKind.TIMEOUT, True, 408),
        (openai_status(413, {"message": "too big"}), ChatErrorKind.CONFIG, False, 413),
        (openai_status(400, {"message": "no", "code": "content_filter"}),
         ChatErrorKind.CONTENT_FILTER, False, 400),
        (anthropic_status(529, "overloaded_error", "Overloaded"),
         ChatErrorKind.OVERLOADED, True, 529),
        (anthropic_status(500, "overloaded_error", "Overloaded"),
         ChatErrorKind.OVERLOADED, True, 500),
        (anthropic_status(429, "rate_limit_error", "tokens"), ChatErrorKind.RATE_LIMIT, True, 429),
        (anthropic_status(400, "invalid_request_error", "bad"), ChatErrorKind.CONFIG, False, 400),
        (anthropic_status(200, "api_error", "Internal"), ChatErrorKind.GENERIC, True, None),
        (anthropic_status(200, "authentication_error", "x"), ChatErrorKind.AUTH, False, None),
        (anthropic_status(200, "something_new", "x"), ChatErrorKind.GENERIC, True, None),
        (openai.APIError("boom", REQUEST, body={"message": "boom", "type": "server_error"}),
         ChatErrorKind.GENERIC, True, None),
        (openai.APITimeoutError(REQUEST), ChatErrorKind.TIMEOUT, True, None),
        (anthropic.APITimeoutError(REQUEST), ChatErrorKind.TIMEOUT, True, None),
        (openai.APIConnectionError(request=REQUEST), ChatErrorKind.GENERIC, True, None),
        (anthropic.APIConnectionError(request=REQUEST), ChatErrorKind.GENERIC, True, None),
        (httpx2.ReadTimeout("silence"), ChatErrorKind.TIMEOUT, True, None),
        (httpx2.RemoteProtocolError("incomplete chunked read"), ChatErrorKind.GENERIC, True, None),
        (TimeoutError(), ChatErrorKind.TIMEOUT, True, None),
        (ConnectionResetError(), ChatErrorKind.GENERIC, True, None),
        (openai.ContentFilterFinishReasonError(), ChatErrorKind.CONTENT_FILTER, False, None),
        (ValueError("bug"), ChatErrorKind.GENERIC, False, None),
    ],
)  # fmt: skip
def test_classify(
    exc: BaseException, kind: ChatErrorKind, retryable: bool, status: int | None
) -> None:
    err = classify(exc, "openai")

    assert (err.kind, err.retryable, err.status_code, err.provider) == (
        kind,
        retryable,
        status,
        "openai",
    )
    assert err.message
    assert err.detail is not None
    assert type(exc).__name__ in err.detail


def test_message_is_the_providers_own_text() -> None:
    err = classify(anthropic_status(529, "overloaded_error", "Overloaded"), "anthropic")
    assert err.message == "Overloaded"
    assert str(err) == "Overloaded"


def test_provider_error_passes_through() -> None:
    original = ProviderError(ChatErrorKind.USAGE_LIMIT, provider="openai")
    assert classify(original, "anthropic") is original
    assert original.retryable is False


def test_default_retryability_follows_kind() -> None:
    assert ProviderError(ChatErrorKind.OVERLOADED, provider="p").retryable
    assert ProviderError(ChatErrorKind.RATE_LIMIT, provider="p").retryable
    assert ProviderError(ChatErrorKind.TIMEOUT, provider="p").retryable
    assert not ProviderError(ChatErrorKind.GENERIC, provider="p").retryable
    assert not ProviderError(ChatErrorKind.AUTH, provider="p").retryable


def test_as_dict_is_the_chat_error_shape() -> None:
    err = classify(openai_status(429, {"message": "slow down"}), "openai")
    assert err.as_dict() == {
        "kind": "rate_limit",
        "provider": "openai",
        "retryable": True,
        "status_code": 429,
        "message": "slow down",
        "detail": "RateLimitError: Error code: 429",
    }


@pytest.mark.parametrize(
    "text",
    [
        "Incorrect API key provided: sk-proj-abcdef123456. You can find…",
        "Incorrect API key provided: sk-proj-****************3456.",
        "header Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
        "{'x-api-key': 'abcdef0123456789'}",
        "api_key=abcdef0123456789",
    ],
)
def test_key_shapes_are_redacted(text: str) -> None:
    redacted = redact_text(text)
    assert "[REDACTED]" in redacted
    for secret in ("abcdef123456", "3456.", "eyJhbGci", "abcdef0123456789"):
        assert secret not in redacted


def test_known_secret_is_redacted_whatever_its_shape() -> None:
    err = ProviderError(
        ChatErrorKind.AUTH,
        provider="p",
        message="key hunter2hunter2 refused",
        detail="hunter2hunter2",
    ).redact("hunter2hunter2")
    assert "hunter2" not in f"{err} {err.detail} {err!r}"


def test_factory_refuses_unknown_kinds_and_missing_keys() -> None:
    with pytest.raises(ProviderError) as unknown:
        make_client("gemini", api_key="k", base_url=None)
    assert (unknown.value.kind, unknown.value.retryable) == (ChatErrorKind.CONFIG, False)

    with pytest.raises(ProviderError) as missing:
        make_client("openai", api_key=None, base_url=None)
    assert (missing.value.kind, missing.value.provider) == (ChatErrorKind.MISSING_KEY, "openai")

    assert make_client("OpenAI-Compatible", api_key=None, base_url="http://x/v1").provider == (
        "openai_compatible"
    )
