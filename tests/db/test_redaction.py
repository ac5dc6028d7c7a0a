"""Secrets never reach the debug tables: by key, by shape, and whole bodies."""

from __future__ import annotations

import pytest

from db.redaction import REDACTED, redact, redact_body, redact_text, sensitive_key

OPENAI_KEY = "sk-proj-4fJ9dK2mQ8xZ1vB7nL3pR6tY0wE5uI"
ANTHROPIC_KEY = "sk-ant-api03-Xq7Lm2Vb9Nc4Zr8Tk1Hw6Pj3Ds5Fg0Ay"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
AGENTGQL = "agq_Zk3vQ9xLm2Rt8Yp4Wn6Bc1Hd7Jf5Gs0AeUiOo"


@pytest.mark.parametrize(
    "key",
    [
        "api_key",
        "apiKey",
        "x-api-key",
        "Authorization",
        "client_secret",
        "password",
        "db_passwd",
        "aws_credentials",
        "access_token",
        "refreshToken",
        "Cookie",
        "private_key",
    ],
)
def test_sensitive_keys_lose_their_values(key: str) -> None:
    assert redact({key: "hunter2", "kept": "hello"}) == {key: REDACTED, "kept": "hello"}


@pytest.mark.parametrize(
    "key",
    ["input_tokens", "output_tokens", "max_tokens", "maxOutputTokens", "cache_read_input_tokens"],
)
def test_usage_counters_are_kept(key: str) -> None:
    assert not sensitive_key(key)
    assert redact({key: 1234}) == {key: 1234}


def test_a_number_under_a_token_key_is_a_count_not_a_credential() -> None:
    assert redact({"token_count": 7, "token": "abc"}) == {"token_count": 7, "token": REDACTED}


def test_a_sensitive_key_loses_a_whole_object() -> None:
    assert redact({"headers": {"authorization": {"scheme": "Bearer", "value": "x"}}}) == {
        "headers": {"authorization": REDACTED}
    }


@pytest.mark.parametrize("secret", [OPENAI_KEY, ANTHROPIC_KEY, JWT, AGENTGQL])
def test_token_shaped_values_are_replaced_inside_text(secret: str) -> None:
    text = f"the tool printed {secret} and carried on"
    cleaned = redact_text(text)
    assert secret not in cleaned
    assert cleaned == f"the tool printed {REDACTED} and carried on"


def test_bearer_and_basic_credentials_keep_their_scheme() -> None:
    assert redact_text("curl -H 'Authorization: Bearer abc.def-123456'") == (
        f"curl -H 'Authorization: {REDACTED}'"
    )
    assert redact_text("Bearer abcdef123456") == f"Bearer {REDACTED}"
    assert redact_text("Basic dXNlcjpwYXNzd29yZA==") == f"Basic {REDACTED}"
    assert redact_text("basic functionality works") == "basic functionality works"


def test_key_value_pairs_in_free_text() -> None:
    env = "OPENAI_API_KEY=abcd1234efgh\nDEBUG=true\npassword: opensesame"
    assert redact_text(env) == f"OPENAI_API_KEY={REDACTED}\nDEBUG=true\npassword: {REDACTED}"
    assert redact_text("https://x.test/cb?token=abcd1234&page=2") == (
        f"https://x.test/cb?token={REDACTED}&page=2"
    )


def test_long_high_entropy_strings_go_and_ordinary_identifiers_stay() -> None:
    random_key = "Q3xV9bN2mL8kJ4hG7fD1sA6pO0iU5yTz"
    assert redact_text(f"key {random_key}") == f"key {REDACTED}"
    sha = "3f786850e387550fdab836ed7e6dc881de23001b"  # hex: too few symbols
    uuid_text = "123e4567-e89b-12d3-a456-426614174000"
    words = "this_is_a_perfectly_ordinary_snake_case_identifier_name"
    for kept in (sha, uuid_text, words, "/workspace/src/Module2/handlers/RequestParser.py"):
        assert redact_text(kept) == kept


def test_nested_request_and_response_alike() -> None:
    request = {
        "messages": [
            {
                "role": "tool",
                "parts": [{"type": "tool-result", "result": {"stdout": f"key={OPENAI_KEY}"}}],
            }
        ],
        "options": {"maxOutputTokens": 1000, "headers": {"x-api-key": ANTHROPIC_KEY}},
    }
    cleaned = redact(request)
    assert OPENAI_KEY not in str(cleaned)
    assert ANTHROPIC_KEY not in str(cleaned)
    assert cleaned["options"]["maxOutputTokens"] == 1000


def test_bodies_that_are_not_json_are_replaced_whole() -> None:
    page = f"<html><body>502 Bad Gateway {OPENAI_KEY}</body></html>"
    replaced = redact_body(page)
    assert isinstance(replaced, str)
    assert replaced.startswith(REDACTED)
    assert OPENAI_KEY not in replaced
    assert redact_body('{"error": {"message": "bad", "api_key": "x"}}') == {
        "error": {"message": "bad", "api_key": REDACTED}
    }
    assert redact_body(None) is None


@pytest.mark.parametrize("unit", ["eyJ-", "eyJa-"])
def test_a_hostile_run_of_jwt_starts_is_scanned_in_linear_time(unit: str) -> None:
    # A chat message or tool output is redacted whole, and Python's regex engine
    # holds the GIL: a pattern that rescans the rest of the text from each of its
    # n starts stalls every chat of the server (100 KB once took seconds).
    # (No timer is asserted: 100 KB of it took 3 s before, ~5 ms now, by hand.)
    hostile = unit * (100_000 // len(unit))
    assert redact_text(hostile) == hostile  # nothing secret in it, and it returns
    for text in (f"jwt={JWT}", f'"{JWT}"', f"https://x.test/cb/{JWT}", f"a.{JWT}"):
        assert redact_text(text) == text.replace(JWT, REDACTED)


PEM_BODY = (
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ\n"
)


@pytest.mark.parametrize(
    "block",
    [
        f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}-----END PRIVATE KEY-----",
        f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}-----END OPENSSH PRIVATE KEY-----",
        f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{PEM_BODY}=njUN\n"
        "-----END PGP PRIVATE KEY BLOCK-----",
        # a service account's JSON printed as text: its newlines are "\n" escapes
        "-----BEGIN RSA PRIVATE KEY-----\\n"
        + PEM_BODY.replace("\n", "\\n")
        + "-----END RSA PRIVATE KEY-----",
    ],
)
def test_a_private_key_block_goes_whole(block: str) -> None:
    # ``cat ~/.ssh/id_ed25519`` in a tool result: its base64 lines are split by
    # "/" into runs too short for the entropy rule, so most of the key was kept.
    cleaned = redact_text(f"here it is:\n{block}\nthanks")
    assert cleaned == f"here it is:\n{REDACTED}\nthanks"


def test_passwords_in_urls_and_aws_secret_keys() -> None:
    assert redact_text("DATABASE_URL=postgres://app:S3cretPassw0rd@db:5432/app") == (
        f"DATABASE_URL=postgres://app:{REDACTED}@db:5432/app"
    )
    assert redact_text("git clone https://user:hunter2@github.com/org/repo.git") == (
        f"git clone https://user:{REDACTED}@github.com/org/repo.git"
    )
    assert redact_text("see https://example.com:8443/path@v2 and mailto:a@b.c") == (
        "see https://example.com:8443/path@v2 and mailto:a@b.c"
    )
    assert redact_text("curl -v says\n< Set-Cookie: session=9f8e7d6c5b4a; Path=/") == (
        f"curl -v says\n< Set-Cookie: {REDACTED}; Path=/"
    )
    assert redact_text("Cookie: sid=abcd1234efgh") == f"Cookie: {REDACTED}"
    aws = "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert redact_text(aws) == f"aws_secret_access_key = {REDACTED}"
    assert redact_text("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG") == (
        f"AWS_SECRET_ACCESS_KEY={REDACTED}"
    )


@pytest.mark.parametrize(
    "unit", ["-----BEGIN PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----\nAAAA", "://a:", "://a:b"]
)
def test_hostile_runs_of_key_and_url_starts_are_scanned_in_linear_time(unit: str) -> None:
    # Runs of pattern starts with no end: each returns (no timer asserted).
    hostile = unit * (100_000 // len(unit))
    assert isinstance(redact_text(hostile), str)
