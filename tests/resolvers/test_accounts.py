"""Signing up (closed and open), logging in, and racing account creation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from db.models import ApiToken, User
from db.vocabulary import UserRole
from resolvers.accounts import create_user
from resolvers.errors import ApiError
from server.app import create_app
from server.request_auth import COOKIE_NAME
from tests.conftest import login_token, make_settings
from tests.harness import LOGIN, PASSWORD, SIGN_UP, GraphQLClient

SIGN_UP_FULL = """
mutation($u: String!, $p: String!, $e: String, $n: String) {
  signUp(input: {username: $u, password: $p, email: $e, name: $n}) {
    token user { id username role email name disabled }
  }
}"""
VIEWER = "{ viewer { user { username role } permissions } }"
USERS = "{ users(first: 200) { nodes { username role } } }"
CLOSED = "sign-up is closed; ask an admin for an account"
USERNAME_RULE = "username: 1..64 letters, digits, '.', '_' or '-', starting with a letter or digit"


@pytest.fixture(scope="module")
async def open_gql(
    app: Starlette,
    admin_token: str,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[GraphQLClient]:
    """A second app over the same database with AGENTGQL_ALLOW_SIGNUP on.

    Tortoise keeps one connection context per process, already opened by the
    module's ``app`` lifespan, so this app is called without running its own.
    """
    open_app = create_app(make_settings(database_url, tmp_path_factory, allow_signup=True))
    transport = httpx.ASGITransport(app=open_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield GraphQLClient(client)


async def _absent(username: str) -> bool:
    return not await User.filter(username__iexact=username.strip()).exists()


# --- the first account ------------------------------------------------------


async def test_first_user_is_admin_and_later_users_are_members(
    gql: GraphQLClient, admin_token: str, member_token: str
) -> None:
    viewer = await gql.ok(VIEWER, token=admin_token)
    assert viewer["viewer"]["user"] == {"username": "admin", "role": "ADMIN"}
    assert "MANAGE_USERS" in viewer["viewer"]["permissions"]
    roles = {
        u["username"]: u["role"] for u in (await gql.ok(USERS, token=admin_token))["users"]["nodes"]
    }
    assert roles["admin"] == "ADMIN"
    assert roles["member"] == "MEMBER"
    assert (await User.get(username="admin")).role is UserRole.ADMIN
    assert (await User.get(username="member")).role is UserRole.MEMBER


# --- closed sign-up (the default) ---------------------------------------------


async def test_closed_sign_up_is_forbidden_and_writes_nothing(
    gql: GraphQLClient, admin_token: str
) -> None:
    before = await User.all().count()
    error = await gql.error(SIGN_UP, {"u": "latecomer", "p": PASSWORD})
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["message"] == CLOSED
    assert error["path"] == ["signUp"]
    assert await _absent("latecomer")
    assert await User.all().count() == before


async def test_closed_sign_up_says_closed_before_judging_the_input(
    gql: GraphQLClient, admin_token: str
) -> None:
    error = await gql.error(SIGN_UP, {"u": "bad name!", "p": "x"})
    assert (error["extensions"]["code"], error["message"]) == ("FORBIDDEN", CLOSED)


async def test_create_user_only_first_refuses_once_someone_exists(admin_token: str) -> None:
    with pytest.raises(ApiError) as caught:
        await create_user("second-first", PASSWORD, only_first=True)
    assert caught.value.extensions == {"code": "FORBIDDEN"}
    assert await _absent("second-first")


# --- open sign-up -----------------------------------------------------------


async def test_open_sign_up_creates_a_signed_in_member(open_gql: GraphQLClient) -> None:
    response = await open_gql.post(
        SIGN_UP_FULL,
        {"u": "  newcomer ", "p": PASSWORD, "e": " new@example.com ", "n": "New Comer"},
    )
    body = response.json()
    assert "errors" not in body, body
    payload = body["data"]["signUp"]
    assert payload["user"]["username"] == "newcomer"
    assert payload["user"]["role"] == "MEMBER"
    assert payload["user"]["email"] == "new@example.com"
    assert payload["user"]["name"] == "New Comer"
    assert payload["user"]["disabled"] is False
    assert response.headers["set-cookie"].startswith(f"{COOKIE_NAME}={payload['token']}")

    row = await User.get(username="newcomer")
    assert row.role is UserRole.MEMBER
    assert (row.email, row.name) == ("new@example.com", "New Comer")
    assert row.password_hash != PASSWORD
    assert PASSWORD not in row.password_hash

    viewer = await open_gql.ok(VIEWER, token=payload["token"])
    assert viewer["viewer"]["user"] == {"username": "newcomer", "role": "MEMBER"}
    assert viewer["viewer"]["permissions"] == ["CREATE_CHAT"]
    # The same account works on the deployment's other app and by password.
    await login_token(open_gql, "newcomer")


async def test_open_sign_up_blank_email_and_name_are_stored_as_null(
    open_gql: GraphQLClient,
) -> None:
    data = await open_gql.ok(SIGN_UP_FULL, {"u": "blanks", "p": PASSWORD, "e": "  ", "n": ""})
    assert (data["signUp"]["user"]["email"], data["signUp"]["user"]["name"]) == (None, None)
    row = await User.get(username="blanks")
    assert (row.email, row.name) == (None, None)


@pytest.mark.parametrize(
    ("username", "password", "email", "name", "field", "message"),
    [
        ("ADMIN", PASSWORD, None, None, "username", "username: already taken"),
        ("Admin", PASSWORD, None, None, "username", "username: already taken"),
        ("bad name", PASSWORD, None, None, "username", USERNAME_RULE),
        ("semi;colon", PASSWORD, None, None, "username", USERNAME_RULE),
        ("_leading", PASSWORD, None, None, "username", USERNAME_RULE),
        ("", PASSWORD, None, None, "username", USERNAME_RULE),
        ("   ", PASSWORD, None, None, "username", USERNAME_RULE),
        ("u" * 65, PASSWORD, None, None, "username", USERNAME_RULE),
        ("shortpw", "Ab1!xyz", None, None, "password", "password: too weak: at least 8 characters"),
        ("samepass1", "SamePass1", None, None, "password", "password: too weak: too easy to guess"),
        ("fewchars", "abcabcab", None, None, "password", "password: too weak: too easy to guess"),
        ("longpw", "a1b2c3d4" * 129, None, None, "password", "password: at most 1024 characters"),
        ("bademail", PASSWORD, "not-an-email", None, "email", "email: not an email address"),
        ("bademail2", PASSWORD, "a@b", None, "email", "email: not an email address"),
        (
            "longemail",
            PASSWORD,
            "a" * 310 + "@example.com",
            None,
            "email",
            "email: at most 320 characters",
        ),
        ("longname", PASSWORD, None, "n" * 201, "name", "name: at most 200 characters"),
    ],
)
async def test_open_sign_up_bad_input_names_the_field_and_writes_nothing(
    open_gql: GraphQLClient,
    username: str,
    password: str,
    email: str | None,
    name: str | None,
    field: str,
    message: str,
) -> None:
    before = await User.all().count()
    error = await open_gql.error(
        SIGN_UP_FULL, {"u": username, "p": password, "e": email, "n": name}
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field
    assert error["message"] == message
    assert await User.all().count() == before
    if field != "username":
        assert await _absent(username)


async def test_open_sign_up_limits_are_inclusive(open_gql: GraphQLClient) -> None:
    username = "u" * 64
    data = await open_gql.ok(SIGN_UP_FULL, {"u": username, "p": "abcd" * 2, "n": "n" * 200})
    assert data["signUp"]["user"]["username"] == username
    assert data["signUp"]["user"]["name"] == "n" * 200


async def test_open_sign_up_taken_username_keeps_the_original_account(
    open_gql: GraphQLClient, gql: GraphQLClient
) -> None:
    await open_gql.ok(SIGN_UP, {"u": "Original", "p": PASSWORD})
    error = await open_gql.error(SIGN_UP, {"u": "oRIGINAL", "p": "another-password-9"})
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "username",
    )
    assert [u.username for u in await User.filter(username__iexact="original")] == ["Original"]
    # The first password still works, the second never did.
    await login_token(gql, "original")
    error = await gql.error(LOGIN, {"u": "original", "p": "another-password-9"})
    assert error["message"] == "invalid username or password"


# --- login ------------------------------------------------------------------


async def test_login_returns_a_working_session(gql: GraphQLClient, admin_token: str) -> None:
    await create_user("loginok", PASSWORD)
    data = await gql.ok(LOGIN, {"u": "loginok", "p": PASSWORD})
    assert data["login"]["user"]["username"] == "loginok"
    assert data["login"]["user"]["role"] == "MEMBER"
    viewer = await gql.ok(VIEWER, token=data["login"]["token"])
    assert viewer["viewer"]["user"]["username"] == "loginok"


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("wrongpw", "not-the-password"),
        ("wrongpw", ""),
        ("wrongpw", PASSWORD.upper()),
        ("nobody-here", PASSWORD),
        ("", PASSWORD),
    ],
)
async def test_login_refusals_do_not_say_which_part_was_wrong(
    gql: GraphQLClient, admin_token: str, username: str, password: str
) -> None:
    if not await User.filter(username="wrongpw").exists():
        await create_user("wrongpw", PASSWORD)
    tokens_before = await ApiToken.all().count()
    error = await gql.error(LOGIN, {"u": username, "p": password})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["message"] == "invalid username or password"
    assert "field" not in error["extensions"]
    assert await ApiToken.all().count() == tokens_before


async def test_login_of_a_disabled_account_is_refused(gql: GraphQLClient, admin_token: str) -> None:
    await create_user("dormant", PASSWORD)
    await User.filter(username="dormant").update(disabled=True)
    tokens_before = await ApiToken.filter(user__username="dormant").count()
    error = await gql.error(LOGIN, {"u": "dormant", "p": PASSWORD})
    assert (error["extensions"]["code"], error["message"]) == (
        "UNAUTHENTICATED",
        "account disabled",
    )
    # A wrong password does not reveal that the account exists but is disabled.
    error = await gql.error(LOGIN, {"u": "dormant", "p": "not-the-password"})
    assert error["message"] == "invalid username or password"
    assert await ApiToken.filter(user__username="dormant").count() == tokens_before


@pytest.mark.parametrize("typed", ["caseuser", "CASEUSER", "  CaseUser  ", "cAsEuSeR"])
async def test_login_username_is_case_insensitive(
    gql: GraphQLClient, admin_token: str, typed: str
) -> None:
    if not await User.filter(username="CaseUser").exists():
        await create_user("CaseUser", PASSWORD)
    data = await gql.ok(LOGIN, {"u": typed, "p": PASSWORD})
    assert data["login"]["user"]["username"] == "CaseUser"


async def test_login_password_is_case_sensitive(gql: GraphQLClient, admin_token: str) -> None:
    await create_user("pwcase", "Sensitive-Pass1")
    error = await gql.error(LOGIN, {"u": "pwcase", "p": "sensitive-pass1"})
    assert error["message"] == "invalid username or password"


# --- concurrency ------------------------------------------------------------


@pytest.mark.parametrize(
    "usernames",
    [
        ["racer"] * 5,
        ["Sprinter", "sprinter", "SPRINTER", "sPrInTeR", "sprinteR"],
    ],
    ids=["same", "case-variants"],
)
async def test_concurrent_create_user_exactly_one_wins(
    admin_token: str, usernames: list[str]
) -> None:
    results = await asyncio.gather(
        *(create_user(name, PASSWORD) for name in usernames), return_exceptions=True
    )
    created = [r for r in results if isinstance(r, User)]
    refused = [r for r in results if isinstance(r, ApiError)]
    assert len(created) == 1, results
    assert len(refused) == len(usernames) - 1, results
    for error in refused:
        assert error.extensions == {"code": "BAD_USER_INPUT", "field": "username"}
        assert error.message == "username: already taken"
    rows = await User.filter(username__iexact=usernames[0])
    assert [r.id for r in rows] == [created[0].id]
    assert rows[0].role is UserRole.MEMBER
