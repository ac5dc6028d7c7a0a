"""``node(id)`` and ``nodes(ids)``: your objects resolve, everything else is null."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from db.models import User
from resolvers import global_id
from resolvers.accounts import create_user
from tests.conftest import login_token
from tests.harness import PASSWORD, GraphQLClient

FIELDS = """
  __typename id
  ... on User { username role }
  ... on ApiToken { name prefix kind }
"""
NODE = f"query($id: ID!) {{ node(id: $id) {{ {FIELDS} }} }}"
NODES = f"query($ids: [ID!]!) {{ nodes(ids: $ids) {{ {FIELDS} }} }}"
ME = "{ viewer { user { id username } } }"
CREATE = "mutation($n: String!) { createApiToken(input: {name: $n}) { secret token { id } } }"


async def person(gql: GraphQLClient, stem: str) -> tuple[str, str, str]:
    """A fresh member: (username, session token, user global id)."""
    username = f"{stem}-{uuid.uuid4().hex[:8]}"
    user = await create_user(username, PASSWORD)
    return username, await login_token(gql, username), global_id.encode("User", user.id)


async def api_token(gql: GraphQLClient, session: str, name: str) -> str:
    data = await gql.ok(CREATE, {"n": name}, token=session)
    return str(data["createApiToken"]["token"]["id"])


async def node(gql: GraphQLClient, gid: str, token: str | None = None) -> Any:
    result = await gql(NODE, {"id": gid}, token=token)
    assert "errors" not in result, result
    return result["data"]["node"]


async def nodes(gql: GraphQLClient, ids: list[str], token: str | None = None) -> list[Any]:
    result = await gql(NODES, {"ids": ids}, token=token)
    assert "errors" not in result, result
    found: list[Any] = result["data"]["nodes"]
    assert len(found) == len(ids)
    return found


async def test_node_returns_your_own_user(gql: GraphQLClient, admin_token: str) -> None:
    username, session, user_id = await person(gql, "self")
    assert (await gql.ok(ME, token=session))["viewer"]["user"]["id"] == user_id
    assert await node(gql, user_id, session) == {
        "__typename": "User",
        "id": user_id,
        "username": username,
        "role": "MEMBER",
    }


async def test_node_returns_your_own_api_token(gql: GraphQLClient, admin_token: str) -> None:
    _, session, _ = await person(gql, "tokens")
    token_id = await api_token(gql, session, "laptop")
    found = await node(gql, token_id, session)
    assert found["__typename"] == "ApiToken"
    assert (found["id"], found["name"], found["kind"]) == (token_id, "laptop", "API")
    assert found["prefix"].startswith("agq_")


async def test_another_users_api_token_is_null_even_for_an_admin(
    gql: GraphQLClient, admin_token: str
) -> None:
    _, owner, _ = await person(gql, "owner")
    _, other, _ = await person(gql, "other")
    token_id = await api_token(gql, owner, "private")
    assert await node(gql, token_id, other) is None
    assert await node(gql, token_id, admin_token) is None
    assert (await node(gql, token_id, owner))["id"] == token_id


async def test_a_member_cannot_see_other_users(gql: GraphQLClient, admin_token: str) -> None:
    _, session, _ = await person(gql, "nosy")
    _, _, neighbour_id = await person(gql, "neighbour")
    admin_id = global_id.encode("User", (await User.get(username="admin")).id)
    assert await node(gql, neighbour_id, session) is None
    assert await node(gql, admin_id, session) is None


async def test_an_admin_sees_other_users(gql: GraphQLClient, admin_token: str) -> None:
    username, _, user_id = await person(gql, "seen")
    found = await node(gql, user_id, admin_token)
    assert found == {"__typename": "User", "id": user_id, "username": username, "role": "MEMBER"}


async def test_nodes_keeps_order_and_nulls_what_you_may_not_see(
    gql: GraphQLClient, admin_token: str
) -> None:
    username, session, user_id = await person(gql, "many")
    _, other_session, other_id = await person(gql, "stranger")
    mine = await api_token(gql, session, "mine")
    theirs = await api_token(gql, other_session, "theirs")
    some = uuid.uuid4()
    ids = [
        mine,
        "garbage",
        user_id,
        global_id.encode("Spaceship", some),  # a type nodes does not know
        theirs,
        other_id,
        global_id.encode("User", some),  # well-formed, no such user
        global_id.encode("User", "not-a-uuid"),
        global_id.encode("ApiToken", some),
        str(some),
        "",
        base64.urlsafe_b64encode(b"User").decode(),
        mine,  # repeats resolve again
    ]
    found = await nodes(gql, ids, session)
    assert [f and (f["__typename"], f["id"]) for f in found] == [
        ("ApiToken", mine),
        None,
        ("User", user_id),
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        ("ApiToken", mine),
    ]
    assert found[2]["username"] == username


async def test_nodes_for_an_admin_mix_users_and_only_own_tokens(
    gql: GraphQLClient, admin_token: str
) -> None:
    _, session, user_id = await person(gql, "mixed")
    theirs = await api_token(gql, session, "theirs")
    own = await api_token(gql, admin_token, "admins-own")
    found = await nodes(gql, [theirs, user_id, own], admin_token)
    assert [f and f["__typename"] for f in found] == [None, "User", "ApiToken"]
    assert found[1]["id"] == user_id
    assert found[2]["name"] == "admins-own"


async def test_nodes_of_nothing_is_empty(gql: GraphQLClient, admin_token: str) -> None:
    assert await nodes(gql, [], admin_token) == []


@pytest.mark.parametrize("kind", ["User", "ApiToken"])
async def test_signed_out_everything_is_null(
    gql: GraphQLClient, admin_token: str, kind: str
) -> None:
    _, session, user_id = await person(gql, "public")
    token_id = await api_token(gql, session, "hidden")
    target = user_id if kind == "User" else token_id
    assert await node(gql, target) is None
    assert await nodes(gql, [user_id, token_id, "garbage"]) == [None, None, None]


# -- ids whose numbers PostgreSQL cannot hold ----------------------------------------------

BEYOND_BIGINT = [2**63, 2**64, 10**30, -(2**63) - 1]


@pytest.mark.parametrize("kind", ["Message", "QueuedMessage"])
@pytest.mark.parametrize("number", BEYOND_BIGINT, ids=str)
async def test_node_ids_beyond_bigint_are_null(
    gql: GraphQLClient, admin_token: str, kind: str, number: int
) -> None:
    gid = global_id.encode(kind, number)
    assert await node(gql, gid, admin_token) is None
    assert await nodes(gql, [gid, "garbage", gid], admin_token) == [None, None, None]


@pytest.mark.parametrize("raw", ["-1", "1_000", " 7", "0x10", "٣"])
async def test_node_ids_that_are_not_plain_digits_are_null(
    gql: GraphQLClient, admin_token: str, raw: str
) -> None:
    assert await node(gql, global_id.encode("Message", raw), admin_token) is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("query($id: ID!) { chat(id: $id) { id } }", "id"),
        ("mutation($id: ID!) { interruptChat(id: $id) { id } }", "id"),
        (
            'mutation($id: ID!) { editMessage(input: {messageId: $id, content: [{text: "x"}]})'
            " { warnings } }",
            "messageId",
        ),
        ("mutation($id: ID!) { deleteQueuedMessage(input: {id: $id}) { deletedId } }", "id"),
    ],
    ids=["chat", "interruptChat", "editMessage", "deleteQueuedMessage"],
)
async def test_id_arguments_beyond_bigint_are_bad_user_input(
    gql: GraphQLClient, admin_token: str, query: str, field: str
) -> None:
    kind = "QueuedMessage" if "Queued" in query else "Message" if "edit" in query else "Chat"
    error = await gql.error(query, {"id": global_id.encode(kind, 2**64)}, token=admin_token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}, error
