"""Groups: managed by MANAGE_USERS, idempotent membership, and the read-only
permissions a group grants its members (``viewer.permissions`` on the next request)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from httpx_ws import WebSocketDisconnect
from starlette.applications import Starlette

from db.models import User
from db.vocabulary import Permission
from events.channels import SESSIONS_CHANNEL
from events.payloads import SessionEnd
from resolvers import global_id
from resolvers.context import RequestContext
from resolvers.errors import ApiError
from resolvers.groups import MEMBERS_PER_CALL_MAX
from resolvers.permissions import require_permission
from tests.harness import (
    GraphQLClient,
    Person,
    counted_queries,
    graphql_ws,
    listening,
    new_person,
    nothing_more,
)

GROUP = "id name displayName permissions memberCount usageLimitMicros createdAt"
CREATE = f"""
mutation($name: String!, $displayName: String, $permissions: [Permission!]) {{
  createGroup(input: {{name: $name, displayName: $displayName, permissions: $permissions}}) {{
    group {{ {GROUP} }} warnings
  }}
}}"""
UPDATE = f"""
mutation($input: UpdateGroupInput!) {{ updateGroup(input: $input) {{ group {{ {GROUP} }} }} }}"""
DELETE = "mutation($id: ID!) { deleteGroup(input: {id: $id}) { deletedId warnings } }"
ADD = f"""
mutation($g: ID!, $u: [ID!]!) {{
  addGroupMembers(input: {{groupId: $g, userIds: $u}}) {{ group {{ {GROUP} }} }}
}}"""
REMOVE = f"""
mutation($g: ID!, $u: [ID!]!) {{
  removeGroupMembers(input: {{groupId: $g, userIds: $u}}) {{ group {{ {GROUP} }} }}
}}"""
GROUPS = "{ groups { id name memberCount } }"
MEMBERS = """
query($id: ID!, $first: Int, $after: String) {
  node(id: $id) { ... on Group {
    members(first: $first, after: $after) {
      nodes { username } pageInfo { hasNextPage endCursor }
    }
  } }
}"""
NODE = "query($id: ID!) { node(id: $id) { __typename ... on Group { name } } }"
USER_GROUPS = "query($id: ID!) { node(id: $id) { ... on User { groups { name } } } }"
MY_GROUPS = "{ viewer { user { groups { name permissions } } } }"
PERMISSIONS = "{ viewer { permissions } }"


def uid(person: Person) -> str:
    return global_id.encode("User", person.user.id)


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"


async def create(
    gql: GraphQLClient, token: str, name: str | None = None, **variables: Any
) -> dict[str, Any]:
    data = await gql.ok(CREATE, {"name": name or unique("g"), **variables}, token=token)
    group: dict[str, Any] = data["createGroup"]["group"]
    return group


async def add(gql: GraphQLClient, token: str, group: dict[str, Any], *people: Person) -> Any:
    data = await gql.ok(ADD, {"g": group["id"], "u": [uid(p) for p in people]}, token=token)
    return data["addGroupMembers"]["group"]


async def remove(gql: GraphQLClient, token: str, group: dict[str, Any], *people: Person) -> Any:
    data = await gql.ok(REMOVE, {"g": group["id"], "u": [uid(p) for p in people]}, token=token)
    return data["removeGroupMembers"]["group"]


async def member_names(gql: GraphQLClient, token: str, group: dict[str, Any]) -> list[str]:
    data = await gql.ok(MEMBERS, {"id": group["id"], "first": 200}, token=token)
    return [n["username"] for n in data["node"]["members"]["nodes"]]


async def permissions(gql: GraphQLClient, person: Person) -> set[str]:
    return set((await gql.ok(PERMISSIONS, token=person.token))["viewer"]["permissions"])


# ---------------------------------------------------------------- CRUD


async def test_create_rename_and_delete_a_group(gql: GraphQLClient, admin_token: str) -> None:
    name = unique("eng")
    data = await gql.ok(
        CREATE,
        {"name": f"  {name} ", "displayName": "Engineering", "permissions": ["VIEW_INSIGHTS"]},
        token=admin_token,
    )
    group = data["createGroup"]["group"]
    assert data["createGroup"]["warnings"] == []
    assert (group["name"], group["displayName"]) == (name, "Engineering")
    assert group["permissions"] == ["VIEW_INSIGHTS"]
    assert (group["memberCount"], group["usageLimitMicros"]) == (0, None)
    listed = (await gql.ok(GROUPS, token=admin_token))["groups"]
    assert {"id": group["id"], "name": name, "memberCount": 0} in listed
    assert [g["name"] for g in listed] == sorted(g["name"] for g in listed)

    renamed = unique("platform")
    update = {"id": group["id"], "name": renamed, "displayName": " "}
    changed = (await gql.ok(UPDATE, {"input": update}, token=admin_token))["updateGroup"]["group"]
    assert (changed["name"], changed["displayName"]) == (renamed, None)
    assert changed["permissions"] == ["VIEW_INSIGHTS"]  # not given: unchanged

    deleted = await gql.ok(DELETE, {"id": group["id"]}, token=admin_token)
    assert deleted["deleteGroup"] == {"deletedId": group["id"], "warnings": []}
    assert (await gql.ok(NODE, {"id": group["id"]}, token=admin_token))["node"] is None
    again = await gql.error(DELETE, {"id": group["id"]}, token=admin_token)
    assert again["extensions"]["code"] == "NOT_FOUND"


async def test_members_are_added_and_removed_idempotently(
    gql: GraphQLClient, admin_token: str
) -> None:
    a, b, c, outsider = [await new_person("m") for _ in range(4)]
    group = await create(gql, admin_token)
    assert (await add(gql, admin_token, group, a, b))["memberCount"] == 2
    # Adding members again (and one twice in the same call) adds only the newcomer.
    assert (await add(gql, admin_token, group, a, b, c, a))["memberCount"] == 3
    assert sorted(await member_names(gql, admin_token, group)) == sorted(
        p.user.username for p in (a, b, c)
    )
    # Removing a non-member is no error; removing twice neither.
    assert (await remove(gql, admin_token, group, a, outsider))["memberCount"] == 2
    assert (await remove(gql, admin_token, group, a))["memberCount"] == 2
    assert sorted(await member_names(gql, admin_token, group)) == sorted(
        p.user.username for p in (b, c)
    )


async def test_members_page_oldest_account_first(gql: GraphQLClient, admin_token: str) -> None:
    people = [await new_person("p") for _ in range(5)]
    group = await create(gql, admin_token)
    await add(gql, admin_token, group, *reversed(people))
    seen: list[str] = []
    after = None
    while True:
        data = await gql.ok(
            MEMBERS, {"id": group["id"], "first": 2, "after": after}, token=admin_token
        )
        page = data["node"]["members"]
        seen += [n["username"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [p.user.username for p in people]


async def test_group_list_costs_the_same_queries_for_more_groups(
    gql: GraphQLClient, admin_token: str
) -> None:
    with counted_queries() as before:
        await gql.ok(GROUPS, token=admin_token)
    for _ in range(3):
        group = await create(gql, admin_token)
        await add(gql, admin_token, group, await new_person("q"))
    with counted_queries() as after:
        await gql.ok(GROUPS, token=admin_token)
    assert len(after) == len(before)


async def test_adding_many_members_costs_the_same_statements_as_one(
    gql: GraphQLClient, admin_token: str
) -> None:
    """Membership and the grants' recompute are set-based: one statement each."""
    group = await create(gql, admin_token, permissions=["VIEW_ALL_COSTS"])
    people = [await new_person("n") for _ in range(51)]
    with counted_queries() as one:
        await add(gql, admin_token, group, people[0])
    with counted_queries() as fifty:
        await add(gql, admin_token, group, *people[1:])
    assert len(fifty) == len(one)
    assert await permissions(gql, people[-1]) == {"CREATE_CHAT", "VIEW_ALL_COSTS"}


# ---------------------------------------------------------------- bad input


async def test_unknown_users_are_named_and_nothing_is_written(
    gql: GraphQLClient, admin_token: str
) -> None:
    known = await new_person("k")
    group = await create(gql, admin_token)
    ghost = global_id.encode("User", uuid.uuid4())
    for query in (ADD, REMOVE):
        error = await gql.error(
            query, {"g": group["id"], "u": [uid(known), ghost]}, token=admin_token
        )
        assert error["extensions"]["code"] == "NOT_FOUND"
        assert error["extensions"]["userIds"] == [ghost]
        assert ghost in error["message"]
    assert await member_names(gql, admin_token, group) == []


async def test_bad_ids_and_too_many_users_are_refused(gql: GraphQLClient, admin_token: str) -> None:
    group = await create(gql, admin_token)
    person = await new_person("b")
    too_many = [uid(person)] * (MEMBERS_PER_CALL_MAX + 1)
    error = await gql.error(ADD, {"g": group["id"], "u": too_many}, token=admin_token)
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "userIds",
    )
    chat_id = global_id.encode("Chat", uuid.uuid4())
    error = await gql.error(ADD, {"g": group["id"], "u": [chat_id]}, token=admin_token)
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "userIds",
    )
    error = await gql.error(ADD, {"g": uid(person), "u": []}, token=admin_token)
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "groupId",
    )
    missing = global_id.encode("Group", uuid.uuid4())
    error = await gql.error(ADD, {"g": missing, "u": [uid(person)]}, token=admin_token)
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert await member_names(gql, admin_token, group) == []


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
async def test_names_must_be_1_to_100_characters(
    gql: GraphQLClient, admin_token: str, name: str
) -> None:
    error = await gql.error(CREATE, {"name": name}, token=admin_token)
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("BAD_USER_INPUT", "name")


async def test_names_are_unique(gql: GraphQLClient, admin_token: str) -> None:
    taken = await create(gql, admin_token)
    error = await gql.error(CREATE, {"name": taken["name"]}, token=admin_token)
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("CONFLICT", "name")
    other = await create(gql, admin_token)
    update = {"id": other["id"], "name": taken["name"]}
    error = await gql.error(UPDATE, {"input": update}, token=admin_token)
    assert error["extensions"]["code"] == "CONFLICT"
    assert (await gql.ok(NODE, {"id": other["id"]}, token=admin_token))["node"]["name"] == other[
        "name"
    ]


@pytest.mark.parametrize("permission", ["MANAGE_USERS", "CREATE_CHAT", "MANAGE_PROVIDERS"])
async def test_only_read_only_views_can_be_granted(
    gql: GraphQLClient, admin_token: str, permission: str
) -> None:
    wanted = ["VIEW_ALL_COSTS", permission]
    error = await gql.error(CREATE, {"name": unique("x"), "permissions": wanted}, token=admin_token)
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "permissions",
    )
    assert error["extensions"]["permissions"] == [permission]
    group = await create(gql, admin_token, permissions=["VIEW_INSIGHTS"])
    update = {"id": group["id"], "permissions": wanted}
    error = await gql.error(UPDATE, {"input": update}, token=admin_token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    listed = await gql.ok(
        "query($id: ID!) { node(id: $id) { ... on Group { permissions } } }",
        {"id": group["id"]},
        token=admin_token,
    )
    assert listed["node"]["permissions"] == ["VIEW_INSIGHTS"]


async def test_members_cannot_manage_or_read_groups(gql: GraphQLClient, admin_token: str) -> None:
    member = await new_person("f")
    group = await create(gql, admin_token)
    calls: list[tuple[str, dict[str, Any]]] = [
        (GROUPS, {}),
        (CREATE, {"name": unique("mine")}),
        (UPDATE, {"input": {"id": group["id"], "name": unique("mine")}}),
        (DELETE, {"id": group["id"]}),
        (ADD, {"g": group["id"], "u": [uid(member)]}),
        (REMOVE, {"g": group["id"], "u": [uid(member)]}),
    ]
    for query, variables in calls:
        error = await gql.error(query, variables, token=member.token)
        assert error["extensions"]["code"] == "FORBIDDEN", query
    assert await member_names(gql, admin_token, group) == []
    assert (await gql.ok(NODE, {"id": group["id"]}, token=member.token))["node"] is None


# ---------------------------------------------------------------- granted permissions


async def test_a_group_grant_reaches_viewer_permissions_on_the_next_request(
    gql: GraphQLClient, admin_token: str
) -> None:
    member = await new_person("v")
    assert await permissions(gql, member) == {"CREATE_CHAT"}
    group = await create(gql, admin_token, permissions=["VIEW_ALL_COSTS"])
    await add(gql, admin_token, group, member)
    assert await permissions(gql, member) == {"CREATE_CHAT", "VIEW_ALL_COSTS"}

    await remove(gql, admin_token, group, member)
    assert await permissions(gql, member) == {"CREATE_CHAT"}

    await add(gql, admin_token, group, member)
    update = {"id": group["id"], "permissions": []}
    await gql.ok(UPDATE, {"input": update}, token=admin_token)
    assert await permissions(gql, member) == {"CREATE_CHAT"}
    update = {"id": group["id"], "permissions": ["VIEW_ALL_COSTS", "VIEW_REQUEST_LOGS"]}
    await gql.ok(UPDATE, {"input": update}, token=admin_token)
    assert await permissions(gql, member) == {"CREATE_CHAT", "VIEW_ALL_COSTS", "VIEW_REQUEST_LOGS"}

    await gql.ok(DELETE, {"id": group["id"]}, token=admin_token)
    assert await permissions(gql, member) == {"CREATE_CHAT"}


async def test_require_permission_accepts_a_grant(gql: GraphQLClient, admin_token: str) -> None:
    member = await new_person("r")
    group = await create(gql, admin_token, permissions=["VIEW_INSIGHTS"])

    async def allowed() -> bool:
        viewer = await User.get(id=member.user.id)
        try:
            require_permission(RequestContext("t", viewer=viewer), Permission.VIEW_INSIGHTS)
        except ApiError:
            return False
        return True

    assert not await allowed()
    await add(gql, admin_token, group, member)
    assert await allowed()


async def test_stored_grants_never_exceed_what_a_group_may_grant(gql: GraphQLClient) -> None:
    member = await new_person("s")
    await User.filter(id=member.user.id).update(
        granted_permissions=["manage_users", "bogus", 7, "view_insights"]
    )
    assert await permissions(gql, member) == {"CREATE_CHAT", "VIEW_INSIGHTS"}


async def test_a_user_in_many_groups_holds_the_union(gql: GraphQLClient, admin_token: str) -> None:
    member = await new_person("u")
    costs = await create(gql, admin_token, name=unique("a-costs"), permissions=["VIEW_ALL_COSTS"])
    both = await create(
        gql, admin_token, name=unique("b-both"), permissions=["VIEW_ALL_COSTS", "VIEW_INSIGHTS"]
    )
    plain = await create(gql, admin_token, name=unique("c-plain"))
    for group in (costs, both, plain):
        await add(gql, admin_token, group, member)
    assert await permissions(gql, member) == {"CREATE_CHAT", "VIEW_ALL_COSTS", "VIEW_INSIGHTS"}
    mine = (await gql.ok(MY_GROUPS, token=member.token))["viewer"]["user"]["groups"]
    assert [g["name"] for g in mine] == [costs["name"], both["name"], plain["name"]]

    await remove(gql, admin_token, both, member)  # VIEW_ALL_COSTS still comes from "costs"
    assert await permissions(gql, member) == {"CREATE_CHAT", "VIEW_ALL_COSTS"}
    await gql.ok(DELETE, {"id": costs["id"]}, token=admin_token)
    assert await permissions(gql, member) == {"CREATE_CHAT"}
    mine = (await gql.ok(MY_GROUPS, token=member.token))["viewer"]["user"]["groups"]
    assert [g["name"] for g in mine] == [plain["name"]]


async def test_admins_see_anyones_groups_members_see_their_own(
    gql: GraphQLClient, admin_token: str
) -> None:
    member, other = await new_person("o"), await new_person("o")
    group = await create(gql, admin_token)
    await add(gql, admin_token, group, member)
    as_admin = await gql.ok(USER_GROUPS, {"id": uid(member)}, token=admin_token)
    assert as_admin["node"]["groups"] == [{"name": group["name"]}]
    # A member reaches their own group by id, but not its members; others see nothing.
    assert (await gql.ok(NODE, {"id": group["id"]}, token=member.token))["node"]["name"] == group[
        "name"
    ]
    error = await gql.error(MEMBERS, {"id": group["id"]}, token=member.token)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert (await gql.ok(NODE, {"id": group["id"]}, token=other.token))["node"] is None
    assert (await gql.ok(USER_GROUPS, {"id": uid(member)}, token=other.token))["node"] is None


async def test_sockets_of_members_whose_grants_change_are_told(
    app: Starlette, gql: GraphQLClient, admin_token: str
) -> None:
    member = await new_person("w")
    plain = await create(gql, admin_token)
    granting = await create(gql, admin_token, permissions=["VIEW_REQUEST_LOGS"])
    async with listening(app, SESSIONS_CHANNEL) as sessions:
        await add(gql, admin_token, plain, member)  # grants nothing: sockets stay
        await nothing_more(sessions)
        await add(gql, admin_token, granting, member)
        event = await sessions.get(timeout=5)
        assert event == SessionEnd(user_id=member.user.id, role_changed=True)


async def test_two_groups_changed_at_once_leave_the_shared_member_right(
    gql: GraphQLClient, admin_token: str
) -> None:
    """Each change recomputes the shared member after locking them: the later one
    sees the earlier one's commit, so no grant is lost."""
    member = await new_person("c")
    first = await create(gql, admin_token)
    second = await create(gql, admin_token)
    for group in (first, second):
        await add(gql, admin_token, group, member)
    for perms in (["VIEW_INSIGHTS"], [], ["VIEW_INSIGHTS"], [], ["VIEW_INSIGHTS"]):
        costs = ["VIEW_ALL_COSTS"] if perms else []
        await asyncio.gather(
            gql.ok(UPDATE, {"input": {"id": first["id"], "permissions": perms}}, token=admin_token),
            gql.ok(
                UPDATE, {"input": {"id": second["id"], "permissions": costs}}, token=admin_token
            ),
        )
        expected = {"CREATE_CHAT", *perms, *costs}
        assert await permissions(gql, member) == expected


async def socket_permissions(ws: Any, op: str) -> set[str]:
    await ws.send_json({"id": op, "type": "subscribe", "payload": {"query": PERMISSIONS}})
    message = await ws.receive_json(timeout=5)
    assert message["type"] == "next", message
    return set(message["payload"]["data"]["viewer"]["permissions"])


async def closed_code(ws: Any) -> int:
    """The close code once the server closes (a receive times out otherwise)."""
    try:
        while True:  # the "complete" of an earlier operation may come first
            await ws.receive_json(timeout=5)
    except WebSocketDisconnect as closed:
        return int(closed.code)


async def test_an_open_socket_reconnects_with_the_new_grants(
    app: Starlette, gql: GraphQLClient, admin_token: str
) -> None:
    member = await new_person("ws")
    group = await create(gql, admin_token, permissions=["VIEW_INSIGHTS"])
    async with graphql_ws(app, init={"authToken": member.token}) as ws:
        assert await socket_permissions(ws, "1") == {"CREATE_CHAT"}
        await add(gql, admin_token, group, member)
        assert await closed_code(ws) == 4403
    async with graphql_ws(app, init={"authToken": member.token}) as ws:
        assert await socket_permissions(ws, "1") == {"CREATE_CHAT", "VIEW_INSIGHTS"}


async def test_a_socket_cannot_start_an_operation_on_stale_grants_even_unannounced(
    app: Starlette,
) -> None:
    member = await new_person("wu")
    async with graphql_ws(app, init={"authToken": member.token}) as ws:
        assert await socket_permissions(ws, "1") == {"CREATE_CHAT"}
        # Granted behind the server's back: no announcement, only the re-check.
        await User.filter(id=member.user.id).update(granted_permissions=["view_all_costs"])
        await ws.send_json({"id": "2", "type": "subscribe", "payload": {"query": PERMISSIONS}})
        assert await closed_code(ws) == 4403


USERS_WITH_GROUPS = """
query($first: Int) { users(first: $first) { nodes { username groups { name memberCount } } } }"""


async def test_groups_of_a_user_list_cost_the_same_statements_for_more_users(
    gql: GraphQLClient, admin_token: str
) -> None:
    """``User.groups`` (and their member counts) in a users page: one load for the
    page, not a query per user and per group."""
    group = await create(gql, admin_token)
    people = [await new_person("l") for _ in range(6)]
    await add(gql, admin_token, group, *people)
    one_user = "query($id: ID!) { node(id: $id) { ... on User { groups { name memberCount } } } }"
    with counted_queries() as one:
        await gql.ok(one_user, {"id": uid(people[0])}, token=admin_token)
    with counted_queries() as many:
        data = await gql.ok(USERS_WITH_GROUPS, {"first": 200}, token=admin_token)
    names = {n["username"]: n["groups"] for n in data["users"]["nodes"]}
    assert names[people[0].user.username] == [{"name": group["name"], "memberCount": 6}]
    assert len(many) == len(one)
