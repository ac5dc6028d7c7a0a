"""API tokens: created with a secret shown once, listed, used and revoked."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from db.models import ApiToken, User
from db.vocabulary import TokenKind
from resolvers import global_id
from resolvers.accounts import create_user
from resolvers.tokens import TOKEN_PREFIX, hash_token
from tests.conftest import login_token
from tests.harness import PASSWORD, GraphQLClient

TOKEN_FIELDS = "id kind name prefix createdAt expiresAt lastUsedAt revokedAt"
CREATE = f"""
mutation($name: String!, $expiresAt: DateTime) {{
  createApiToken(input: {{name: $name, expiresAt: $expiresAt}}) {{
    secret warnings token {{ {TOKEN_FIELDS} }}
  }}
}}"""
REVOKE = f"""
mutation($id: ID!) {{
  revokeApiToken(input: {{id: $id}}) {{ warnings token {{ {TOKEN_FIELDS} }} }}
}}"""
LIST = f"""
query($first: Int, $after: String) {{
  viewer {{
    apiTokens(first: $first, after: $after) {{
      edges {{ cursor node {{ {TOKEN_FIELDS} }} }}
      nodes {{ {TOKEN_FIELDS} }}
      pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
    }}
  }}
}}"""
NODE = f"query($id: ID!) {{ node(id: $id) {{ __typename ... on ApiToken {{ {TOKEN_FIELDS} }} }} }}"
VIEWER = "{ viewer { user { username } } }"


async def fresh_session(gql: GraphQLClient, stem: str) -> tuple[User, str]:
    """A new member with nothing but a login session."""
    user = await create_user(f"{stem}-{uuid.uuid4().hex[:8]}", PASSWORD)
    return user, await login_token(gql, user.username)


async def create(gql: GraphQLClient, token: str, name: str, **variables: Any) -> dict[str, Any]:
    data = await gql.ok(CREATE, {"name": name, **variables}, token=token)
    payload: dict[str, Any] = data["createApiToken"]
    return payload


async def listed(gql: GraphQLClient, token: str, **args: Any) -> dict[str, Any]:
    data = await gql.ok(LIST, args, token=token)
    connection: dict[str, Any] = data["viewer"]["apiTokens"]
    assert connection["nodes"] == [e["node"] for e in connection["edges"]]
    return connection


# --- creating ---------------------------------------------------------------


async def test_create_returns_the_secret_once_and_it_works(
    gql: GraphQLClient, admin_token: str
) -> None:
    user, session = await fresh_session(gql, "maker")
    payload = await create(gql, session, "  deploy bot  ")
    secret, token = payload["secret"], payload["token"]
    assert payload["warnings"] == []
    assert secret.startswith(TOKEN_PREFIX)
    assert len(secret) > 40
    assert token["kind"] == "API"
    assert token["name"] == "deploy bot"
    assert token["prefix"] == secret[: len(TOKEN_PREFIX) + 6]
    assert (token["expiresAt"], token["lastUsedAt"], token["revokedAt"]) == (None, None, None)

    row = await ApiToken.get(id=global_id.decode_uuid(token["id"], "ApiToken"))
    assert row.user_id == user.id  # type: ignore[attr-defined]
    assert row.token_hash == hash_token(secret)
    assert secret not in row.token_hash

    viewer = await gql.ok(VIEWER, token=secret)
    assert viewer["viewer"]["user"]["username"] == user.username


async def test_secret_and_hash_never_appear_again(gql: GraphQLClient, admin_token: str) -> None:
    _, session = await fresh_session(gql, "quiet")
    payload = await create(gql, session, "once")
    secret, token_id = payload["secret"], payload["token"]["id"]
    token_hash = hash_token(secret)
    await gql.ok(VIEWER, token=secret)  # used once, so lastUsedAt is filled in too
    responses = [
        await gql(LIST, token=session),
        await gql(LIST, token=secret),
        await gql(NODE, {"id": token_id}, token=session),
        await gql(
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": [token_id]}, token=session
        ),
        await gql(REVOKE, {"id": token_id}, token=session),
        await gql(LIST, token=session),
    ]
    assert responses[0]["data"]["viewer"]["apiTokens"]["nodes"][0]["id"] == token_id
    assert responses[2]["data"]["node"]["id"] == token_id
    for response in responses:
        text = json.dumps(response)
        assert secret not in text
        assert secret[len(TOKEN_PREFIX) + 6 :] not in text
        assert token_hash not in text


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "name: must be 1..100 characters"),
        ("    ", "name: must be 1..100 characters"),
        ("n" * 101, "name: must be 1..100 characters"),
    ],
    ids=["empty", "blank", "101-chars"],
)
async def test_bad_name_is_bad_user_input_and_writes_nothing(
    gql: GraphQLClient, admin_token: str, name: str, message: str
) -> None:
    user, session = await fresh_session(gql, "badname")
    error = await gql.error(CREATE, {"name": name}, token=session)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "name"
    assert error["message"] == message
    assert not await ApiToken.filter(user_id=user.id, kind=TokenKind.API).exists()


async def test_name_of_exactly_100_characters_is_fine(gql: GraphQLClient, admin_token: str) -> None:
    _, session = await fresh_session(gql, "longname")
    assert (await create(gql, session, "n" * 100))["token"]["name"] == "n" * 100


@pytest.mark.parametrize(
    ("expires_at", "message"),
    [
        (datetime.now(UTC) - timedelta(days=1), "expiresAt: must be in the future"),
        (datetime.now(UTC) - timedelta(seconds=5), "expiresAt: must be in the future"),
        (datetime(2000, 1, 1, tzinfo=UTC), "expiresAt: must be in the future"),
        (datetime.now() + timedelta(days=1), "expiresAt: must carry a time zone"),
    ],
    ids=["yesterday", "seconds-ago", "2000", "naive"],
)
async def test_bad_expiry_is_bad_user_input_and_writes_nothing(
    gql: GraphQLClient, admin_token: str, expires_at: datetime, message: str
) -> None:
    user, session = await fresh_session(gql, "expiry")
    error = await gql.error(
        CREATE, {"name": "late", "expiresAt": expires_at.isoformat()}, token=session
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "expiresAt"
    assert error["message"] == message
    assert not await ApiToken.filter(user_id=user.id, kind=TokenKind.API).exists()


async def test_future_expiry_is_kept(gql: GraphQLClient, admin_token: str) -> None:
    _, session = await fresh_session(gql, "future")
    when = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0)
    payload = await create(gql, session, "weekly", expiresAt=when.isoformat())
    assert datetime.fromisoformat(payload["token"]["expiresAt"]) == when
    assert (await gql.ok(VIEWER, token=payload["secret"]))["viewer"] is not None


async def test_signed_out_cannot_create_tokens(gql: GraphQLClient) -> None:
    before = await ApiToken.all().count()
    error = await gql.error(CREATE, {"name": "anon"})
    assert (error["extensions"]["code"], error["message"]) == (
        "UNAUTHENTICATED",
        "sign in required",
    )
    assert await ApiToken.all().count() == before


# --- listing and using --------------------------------------------------------


async def test_list_is_newest_first_with_prefixes(gql: GraphQLClient, admin_token: str) -> None:
    _, session = await fresh_session(gql, "lister")
    made = [await create(gql, session, name) for name in ("oldest", "middle", "newest")]
    connection = await listed(gql, session)
    assert [n["name"] for n in connection["nodes"]] == ["newest", "middle", "oldest"]
    for node, payload in zip(connection["nodes"], reversed(made), strict=True):
        assert node["id"] == payload["token"]["id"]
        assert node["prefix"] == payload["secret"][: len(TOKEN_PREFIX) + 6]
        assert payload["secret"].startswith(node["prefix"])
        assert node["kind"] == "API"
    assert connection["pageInfo"]["hasNextPage"] is False
    assert connection["pageInfo"]["hasPreviousPage"] is False


async def test_list_first_page_and_sizes(gql: GraphQLClient, admin_token: str) -> None:
    _, session = await fresh_session(gql, "sizer")
    for name in ("t1", "t2", "t3"):
        await create(gql, session, name)
    first = await listed(gql, session, first=2)
    assert [n["name"] for n in first["nodes"]] == ["t3", "t2"]
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["pageInfo"]["hasPreviousPage"] is False
    empty = await listed(gql, session, first=0)
    assert empty["nodes"] == []
    assert empty["pageInfo"]["hasNextPage"] is True  # tokens lie beyond an empty page
    error = await gql.error(LIST, {"first": -1}, token=session)
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "first",
    )


async def test_list_pages_on_with_the_end_cursor(gql: GraphQLClient, admin_token: str) -> None:
    _, session = await fresh_session(gql, "pager")
    for name in ("t1", "t2", "t3"):
        await create(gql, session, name)
    first = await listed(gql, session, first=2)
    rest = await listed(gql, session, first=2, after=first["pageInfo"]["endCursor"])
    assert [n["name"] for n in rest["nodes"]] == ["t1"]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert rest["pageInfo"]["hasPreviousPage"] is True


async def test_last_used_at_is_set_by_the_first_use(gql: GraphQLClient, admin_token: str) -> None:
    _, session = await fresh_session(gql, "user")
    payload = await create(gql, session, "cron")
    assert (await listed(gql, session))["nodes"][0]["lastUsedAt"] is None
    started = datetime.now(UTC)
    await gql.ok(VIEWER, token=payload["secret"])
    used = (await listed(gql, session))["nodes"][0]["lastUsedAt"]
    assert used is not None
    assert started - timedelta(seconds=5) <= datetime.fromisoformat(used) <= datetime.now(UTC)


async def test_session_tokens_are_not_listed(gql: GraphQLClient, admin_token: str) -> None:
    user, session = await fresh_session(gql, "sessions")
    await login_token(gql, user.username)
    assert (await listed(gql, session))["nodes"] == []
    await create(gql, session, "only-this")
    assert [n["name"] for n in (await listed(gql, session))["nodes"]] == ["only-this"]
    kinds = sorted(t.kind.value for t in await ApiToken.filter(user_id=user.id))
    assert kinds == ["api", "session", "session"]


async def test_each_user_sees_only_their_own_tokens(gql: GraphQLClient, admin_token: str) -> None:
    _, alice = await fresh_session(gql, "alice")
    _, bob = await fresh_session(gql, "bob")
    await create(gql, alice, "alice-token")
    await create(gql, bob, "bob-token")
    assert [n["name"] for n in (await listed(gql, alice))["nodes"]] == ["alice-token"]
    assert [n["name"] for n in (await listed(gql, bob))["nodes"]] == ["bob-token"]


# --- revoking ---------------------------------------------------------------


async def test_revoked_tokens_leave_the_list_and_stop_working(
    gql: GraphQLClient, admin_token: str
) -> None:
    _, session = await fresh_session(gql, "revoker")
    keep = await create(gql, session, "keep")
    drop = await create(gql, session, "drop")
    data = await gql.ok(REVOKE, {"id": drop["token"]["id"]}, token=session)
    revoked = data["revokeApiToken"]["token"]
    assert data["revokeApiToken"]["warnings"] == []
    assert revoked["id"] == drop["token"]["id"]
    assert revoked["revokedAt"] is not None
    assert [n["name"] for n in (await listed(gql, session))["nodes"]] == ["keep"]
    error = await gql.error(VIEWER, token=drop["secret"])
    assert (error["extensions"]["code"], error["message"]) == ("UNAUTHENTICATED", "token revoked")
    await gql.ok(VIEWER, token=keep["secret"])
    # Revoking again is harmless and keeps the original time.
    again = await gql.ok(REVOKE, {"id": drop["token"]["id"]}, token=session)
    assert again["revokeApiToken"]["token"]["revokedAt"] == revoked["revokedAt"]


async def test_a_token_can_revoke_itself(gql: GraphQLClient, admin_token: str) -> None:
    _, session = await fresh_session(gql, "selfrevoke")
    payload = await create(gql, session, "self")
    await gql.ok(REVOKE, {"id": payload["token"]["id"]}, token=payload["secret"])
    error = await gql.error(VIEWER, token=payload["secret"])
    assert error["message"] == "token revoked"


async def test_revoking_someone_elses_token_is_not_found(
    gql: GraphQLClient, admin_token: str, member_token: str
) -> None:
    owner, owner_session = await fresh_session(gql, "owner")
    payload = await create(gql, owner_session, "mine")
    token_id = payload["token"]["id"]
    for intruder in (member_token, admin_token):  # not even an admin
        error = await gql.error(REVOKE, {"id": token_id}, token=intruder)
        assert (error["extensions"]["code"], error["message"]) == ("NOT_FOUND", "token not found")
    row = await ApiToken.get(id=global_id.decode_uuid(token_id, "ApiToken"))
    assert row.revoked_at is None
    assert (await gql.ok(VIEWER, token=payload["secret"]))["viewer"]["user"]["username"] == (
        owner.username
    )
    assert [n["name"] for n in (await listed(gql, owner_session))["nodes"]] == ["mine"]


async def test_revoking_an_unknown_token_is_not_found(gql: GraphQLClient, admin_token: str) -> None:
    missing = global_id.encode("ApiToken", uuid.uuid4())
    error = await gql.error(REVOKE, {"id": missing}, token=admin_token)
    assert (error["extensions"]["code"], error["message"]) == ("NOT_FOUND", "token not found")


@pytest.mark.parametrize(
    "bad_id",
    [
        "garbage",
        str(uuid.uuid4()),
        global_id.encode("User", uuid.uuid4()),
        global_id.encode("ApiToken", "123"),
    ],
    ids=["garbage", "bare-uuid", "user-id", "non-uuid-key"],
)
async def test_revoking_a_malformed_id_is_bad_user_input(
    gql: GraphQLClient, admin_token: str, bad_id: str
) -> None:
    error = await gql.error(REVOKE, {"id": bad_id}, token=admin_token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "id"
    assert error["message"] == "id: not a valid ApiToken id"


async def test_signed_out_cannot_revoke(gql: GraphQLClient, admin_token: str) -> None:
    _, session = await fresh_session(gql, "keeper")
    payload = await create(gql, session, "safe")
    error = await gql.error(REVOKE, {"id": payload["token"]["id"]})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    await gql.ok(VIEWER, token=payload["secret"])
