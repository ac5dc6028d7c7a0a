"""Error codes on every error; unexpected failures masked and logged."""

from __future__ import annotations

import logging

import pytest

from resolvers import users
from tests.harness import GraphQLClient


async def test_internal_failure_is_masked_and_logged(
    gql: GraphQLClient,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("connection string postgres://secret@db")

    monkeypatch.setattr(users, "users", explode)
    with caplog.at_level(logging.ERROR, logger="agentgql.errors"):
        result = await gql("{ users { nodes { id } } }", token=admin_token)
    error = result["errors"][0]
    assert error["message"] == "Internal server error"
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "secret" not in str(result)
    assert error["extensions"]["requestId"]
    logged = [r for r in caplog.records if r.name == "agentgql.errors"]
    assert logged
    exc_info = logged[0].exc_info
    assert exc_info is not None
    assert "postgres://secret@db" in str(exc_info[1])
    assert getattr(logged[0], "request_id", None) == error["extensions"]["requestId"]


async def test_request_id_header_matches_the_masked_error(
    gql: GraphQLClient, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def explode(*args: object, **kwargs: object) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(users, "users", explode)
    response = await gql.post(
        "{ users { nodes { id } } }", token=admin_token, headers={"X-Request-ID": "req-42"}
    )
    assert response.headers["x-request-id"] == "req-42"
    assert response.json()["errors"][0]["extensions"]["requestId"] == "req-42"


async def test_validation_errors_are_bad_user_input_not_masked(gql: GraphQLClient) -> None:
    error = await gql.error("{ viewer { nope } }")
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "nope" in error["message"]


async def test_syntax_errors_are_bad_user_input(gql: GraphQLClient) -> None:
    error = await gql.error("{ viewer { ")
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_wrong_variable_type_is_bad_user_input(gql: GraphQLClient) -> None:
    error = await gql.error("query($n: Int) { users(first: $n) { nodes { id } } }", {"n": "many"})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_member_on_admin_field_is_forbidden(gql: GraphQLClient, member_token: str) -> None:
    error = await gql.error("{ users { nodes { id } } }", token=member_token)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["message"] == "requires the MANAGE_USERS permission"
    assert error["path"] == ["users"]


async def test_signed_out_on_admin_field_is_unauthenticated(gql: GraphQLClient) -> None:
    error = await gql.error("{ users { nodes { id } } }")
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
