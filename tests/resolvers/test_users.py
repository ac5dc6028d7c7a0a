"""The admin's ``users`` connection and user management."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import orjson
import pytest

from db.models import ApiToken, User
from db.vocabulary import UserRole
from resolvers import global_id
from resolvers.accounts import create_user
from tests.conftest import login_token
from tests.harness import LOGIN, PASSWORD, GraphQLClient

USERS = """
query($first: Int, $after: String, $last: Int, $before: String) {
  users(first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { id username } }
    nodes { username }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
SET_ROLE = """
mutation($id: ID!, $role: UserRole!) {
  setUserRole(input: {userId: $id, role: $role}) { user { id username role disabled } warnings }
}"""
SET_DISABLED = """
mutation($id: ID!, $disabled: Boolean!) {
  setUserDisabled(input: {userId: $id, disabled: $disabled}) {
    user { id username role disabled } warnings
  }
}"""
VIEWER = "{ viewer { user { username role } permissions } }"
LAST_ADMIN = "the last enabled admin cannot be demoted or disabled"


def gid(user: User) -> str:
    return global_id.encode("User", user.id)


async def new_user(username: str, role: UserRole | None = None) -> User:
    return await create_user(username, PASSWORD, role=role)


async def all_usernames() -> list[str]:
    return [u.username for u in await User.all().order_by("created_at", "id")]


async def page(gql: GraphQLClient, token: str, **args: Any) -> dict[str, Any]:
    data = await gql.ok(USERS, args, token=token)
    connection: dict[str, Any] = data["users"]
    names = [e["node"]["username"] for e in connection["edges"]]
    assert [n["username"] for n in connection["nodes"]] == names
    info = connection["pageInfo"]
    if names:
        assert info["startCursor"] == connection["edges"][0]["cursor"]
        assert info["endCursor"] == connection["edges"][-1]["cursor"]
    else:
        assert (info["startCursor"], info["endCursor"]) == (None, None)
    return connection


def names(connection: dict[str, Any]) -> list[str]:
    return [e["node"]["username"] for e in connection["edges"]]


@pytest.fixture(scope="module")
async def seven(admin_token: str) -> list[str]:
    made = [f"pager{i}" for i in range(1, 8)]
    for name in made:
        await new_user(name)
    return made


async def only_admin_is_admin() -> None:
    """Make "admin" the one enabled admin, whatever earlier tests did."""
    await User.filter(role=UserRole.ADMIN).exclude(username="admin").update(role=UserRole.MEMBER)
    await User.filter(username="admin").update(role=UserRole.ADMIN, disabled=False)


# --- the users connection ---------------------------------------------------


async def test_users_lists_everyone_oldest_first(
    gql: GraphQLClient, admin_token: str, seven: list[str]
) -> None:
    everyone = await all_usernames()
    connection = await page(gql, admin_token, first=200)
    assert names(connection) == everyone
    assert names(connection)[0] == "admin"
    assert set(seven) <= set(everyone)
    assert connection["pageInfo"]["hasNextPage"] is False
    assert connection["pageInfo"]["hasPreviousPage"] is False
    # No arguments: the default page holds everyone here too.
    assert names(await page(gql, admin_token)) == everyone


async def test_users_pages_forward_without_gaps_or_duplicates(
    gql: GraphQLClient, admin_token: str, seven: list[str]
) -> None:
    everyone = await all_usernames()
    assert len(everyone) >= 8
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        connection = await page(gql, admin_token, first=3, after=after)
        info = connection["pageInfo"]
        seen += names(connection)
        assert info["hasPreviousPage"] is (pages > 0)
        pages += 1
        if not info["hasNextPage"]:
            break
        assert len(names(connection)) == 3
        after = info["endCursor"]
    assert seen == everyone
    assert pages == -(-len(everyone) // 3)


async def test_users_pages_backward_without_gaps_or_duplicates(
    gql: GraphQLClient, admin_token: str, seven: list[str]
) -> None:
    everyone = await all_usernames()
    seen: list[str] = []
    before: str | None = None
    pages = 0
    while True:
        connection = await page(gql, admin_token, last=3, before=before)
        info = connection["pageInfo"]
        seen = names(connection) + seen
        assert info["hasNextPage"] is (pages > 0)
        pages += 1
        if not info["hasPreviousPage"]:
            break
        assert len(names(connection)) == 3
        before = info["startCursor"]
    assert seen == everyone
    assert pages == -(-len(everyone) // 3)


async def test_users_last_page_is_the_newest_in_order(
    gql: GraphQLClient, admin_token: str, seven: list[str]
) -> None:
    everyone = await all_usernames()
    connection = await page(gql, admin_token, last=2)
    assert names(connection) == everyone[-2:]
    assert connection["pageInfo"]["hasPreviousPage"] is True
    assert connection["pageInfo"]["hasNextPage"] is False


async def test_users_cursors_go_both_ways_from_the_middle(
    gql: GraphQLClient, admin_token: str, seven: list[str]
) -> None:
    everyone = await all_usernames()
    full = await page(gql, admin_token, first=200)
    middle = full["edges"][4]["cursor"]
    assert names(await page(gql, admin_token, first=2, after=middle)) == everyone[5:7]
    assert names(await page(gql, admin_token, last=2, before=middle)) == everyone[2:4]


async def test_users_inserted_while_paging_are_neither_skipped_nor_repeated(
    gql: GraphQLClient, admin_token: str, seven: list[str]
) -> None:
    first = await page(gql, admin_token, first=4)
    await new_user(f"latejoiner{uuid.uuid4().hex[:6]}")
    rest: list[str] = []
    after = first["pageInfo"]["endCursor"]
    while True:
        connection = await page(gql, admin_token, first=4, after=after)
        rest += names(connection)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert names(first) + rest == await all_usernames()


async def test_users_first_zero_is_an_empty_page(gql: GraphQLClient, admin_token: str) -> None:
    connection = await page(gql, admin_token, first=0)
    assert connection["edges"] == []
    assert connection["nodes"] == []
    assert connection["pageInfo"] == {
        "hasNextPage": True,  # an empty page still says users lie beyond it
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }


async def test_users_oversized_first_is_clamped_not_refused(
    gql: GraphQLClient, admin_token: str, seven: list[str]
) -> None:
    assert names(await page(gql, admin_token, first=10_000)) == await all_usernames()


def _cursor(values: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("args", "field", "message"),
    [
        ({"first": -1}, "first", "first: must be zero or more"),
        ({"last": -5}, "last", "last: must be zero or more"),
        ({"first": 2, "last": 2}, "last", "last: pass either first or last, not both"),
        ({"first": 2, "after": "not a cursor!"}, "after", "after: not a valid cursor"),
        ({"first": 2, "after": "bm9wZQ"}, "after", "after: not a valid cursor"),  # "nope"
        ({"last": 2, "before": "%%%"}, "before", "before: not a valid cursor"),
        ({"first": 2, "after": _cursor([1])}, "after", "after: not a valid cursor"),
        ({"first": 2, "after": _cursor({"a": 1})}, "after", "after: not a valid cursor"),
        (
            {"first": 2, "after": _cursor(["yesterday", str(uuid.uuid4())])},
            "after",
            "after: not a valid cursor",
        ),
        (
            {"first": 2, "after": _cursor(["2024-01-01T00:00:00+00:00", "not-a-uuid"])},
            "after",
            "after: not a valid cursor",
        ),
        (
            {"last": 2, "before": _cursor([None, None])},
            "before",
            "before: not a valid cursor",
        ),
        pytest.param(
            {"first": 2, "after": _cursor(["2024-01-01T00:00:00+00:00", 5])},
            "after",
            "after: not a valid cursor",
            id="uuid-not-a-string",
        ),
    ],
)
async def test_users_bad_arguments_are_bad_user_input(
    gql: GraphQLClient, admin_token: str, args: dict[str, Any], field: str, message: str
) -> None:
    error = await gql.error(USERS, args, token=admin_token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field
    assert error["message"] == message
    assert error["path"] == ["users"]


async def test_users_is_forbidden_to_members(gql: GraphQLClient, member_token: str) -> None:
    result = await gql(USERS, {"first": 5}, token=member_token)
    assert result["data"] is None
    error = result["errors"][0]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["message"] == "requires the MANAGE_USERS permission"


# --- setUserRole ------------------------------------------------------------


async def test_set_user_role_promotes_and_demotes(gql: GraphQLClient, admin_token: str) -> None:
    user = await new_user("climber")
    token = await login_token(gql, "climber")
    assert (await gql.ok(VIEWER, token=token))["viewer"]["permissions"] == ["CREATE_CHAT"]

    data = await gql.ok(SET_ROLE, {"id": gid(user), "role": "ADMIN"}, token=admin_token)
    assert data["setUserRole"] == {
        "user": {"id": gid(user), "username": "climber", "role": "ADMIN", "disabled": False},
        "warnings": [],
    }
    assert (await User.get(id=user.id)).role is UserRole.ADMIN
    # The existing session sees the new role at once.
    viewer = (await gql.ok(VIEWER, token=token))["viewer"]
    assert viewer["user"]["role"] == "ADMIN"
    assert "MANAGE_USERS" in viewer["permissions"]
    await gql.ok(USERS, {"first": 1}, token=token)

    data = await gql.ok(SET_ROLE, {"id": gid(user), "role": "MEMBER"}, token=admin_token)
    assert data["setUserRole"]["user"]["role"] == "MEMBER"
    assert (await User.get(id=user.id)).role is UserRole.MEMBER
    error = await gql.error(USERS, {"first": 1}, token=token)
    assert error["extensions"]["code"] == "FORBIDDEN"


async def test_set_user_role_to_the_same_role_changes_nothing(
    gql: GraphQLClient, admin_token: str
) -> None:
    user = await new_user("steady")
    data = await gql.ok(SET_ROLE, {"id": gid(user), "role": "MEMBER"}, token=admin_token)
    assert data["setUserRole"]["user"]["role"] == "MEMBER"
    assert (await User.get(id=user.id)).updated_at == user.updated_at


async def test_the_last_admin_may_be_set_to_admin_again(
    gql: GraphQLClient, admin_token: str
) -> None:
    await only_admin_is_admin()
    admin = await User.get(username="admin")
    data = await gql.ok(SET_ROLE, {"id": gid(admin), "role": "ADMIN"}, token=admin_token)
    assert data["setUserRole"]["user"]["role"] == "ADMIN"
    assert (await User.get(id=admin.id)).updated_at == admin.updated_at


async def test_demoting_the_last_enabled_admin_is_a_conflict(
    gql: GraphQLClient, admin_token: str
) -> None:
    await only_admin_is_admin()
    admin = await User.get(username="admin")
    error = await gql.error(SET_ROLE, {"id": gid(admin), "role": "MEMBER"}, token=admin_token)
    assert (error["extensions"]["code"], error["message"]) == ("CONFLICT", LAST_ADMIN)
    after = await User.get(id=admin.id)
    assert (after.role, after.disabled, after.updated_at) == (
        UserRole.ADMIN,
        False,
        admin.updated_at,
    )
    assert "MANAGE_USERS" in (await gql.ok(VIEWER, token=admin_token))["viewer"]["permissions"]


async def test_disabling_the_last_enabled_admin_is_a_conflict(
    gql: GraphQLClient, admin_token: str
) -> None:
    await only_admin_is_admin()
    admin = await User.get(username="admin")
    sessions = await ApiToken.filter(user_id=admin.id).count()
    error = await gql.error(SET_DISABLED, {"id": gid(admin), "disabled": True}, token=admin_token)
    assert (error["extensions"]["code"], error["message"]) == ("CONFLICT", LAST_ADMIN)
    after = await User.get(id=admin.id)
    assert (after.role, after.disabled) == (UserRole.ADMIN, False)
    assert await ApiToken.filter(user_id=admin.id).count() == sessions
    await gql.ok(VIEWER, token=admin_token)


async def test_a_disabled_admin_does_not_count_as_another_admin(
    gql: GraphQLClient, admin_token: str
) -> None:
    await only_admin_is_admin()
    deputy = await new_user("deputy", role=UserRole.ADMIN)
    admin = await User.get(username="admin")
    # With a second enabled admin, that one may be disabled...
    data = await gql.ok(SET_DISABLED, {"id": gid(deputy), "disabled": True}, token=admin_token)
    assert data["setUserDisabled"]["user"]["disabled"] is True
    # ...but then "admin" is the last enabled admin again.
    error = await gql.error(SET_ROLE, {"id": gid(admin), "role": "MEMBER"}, token=admin_token)
    assert (error["extensions"]["code"], error["message"]) == ("CONFLICT", LAST_ADMIN)
    assert (await User.get(id=admin.id)).role is UserRole.ADMIN


async def test_with_two_enabled_admins_one_may_step_down(
    gql: GraphQLClient, admin_token: str
) -> None:
    await only_admin_is_admin()
    second = await new_user("second-admin", role=UserRole.ADMIN)
    second_token = await login_token(gql, "second-admin")
    data = await gql.ok(SET_ROLE, {"id": gid(second), "role": "MEMBER"}, token=second_token)
    assert data["setUserRole"]["user"]["role"] == "MEMBER"
    assert (await User.get(id=second.id)).role is UserRole.MEMBER


@pytest.mark.parametrize(
    ("mutation", "extra"),
    [(SET_ROLE, {"role": "MEMBER"}), (SET_DISABLED, {"disabled": True})],
    ids=["demote", "disable"],
)
async def test_two_last_admins_removing_each_other_at_once_leave_one(
    gql: GraphQLClient, admin_token: str, mutation: str, extra: dict[str, Any]
) -> None:
    await only_admin_is_admin()
    try:
        for round_ in range(5):
            tag = f"{'r' if 'role' in extra else 'd'}{round_}{uuid.uuid4().hex[:6]}"
            a = await new_user(f"twin-a-{tag}", role=UserRole.ADMIN)
            b = await new_user(f"twin-b-{tag}", role=UserRole.ADMIN)
            token_a, token_b = (
                await login_token(gql, a.username),
                await login_token(gql, b.username),
            )
            # "admin" steps aside so a and b are the only enabled admins.
            await User.filter(username="admin").update(role=UserRole.MEMBER)
            results = await asyncio.gather(
                gql(mutation, {"id": gid(b), **extra}, token=token_a),
                gql(mutation, {"id": gid(a), **extra}, token=token_b),
            )
            errors = [r["errors"][0] for r in results if "errors" in r]
            assert len(errors) == 1, results
            # The loser is refused by the guard, or (when the winner committed
            # before the loser's request was authenticated) for no longer being admin.
            assert (errors[0]["extensions"]["code"], errors[0]["message"]) in {
                ("CONFLICT", LAST_ADMIN),
                ("FORBIDDEN", "requires the MANAGE_USERS permission"),
                ("UNAUTHENTICATED", "account disabled"),
            }
            assert await User.filter(role=UserRole.ADMIN, disabled=False).count() == 1
            await User.filter(id__in=[a.id, b.id]).update(role=UserRole.MEMBER)
            await User.filter(username="admin").update(role=UserRole.ADMIN)
    finally:
        await only_admin_is_admin()


# --- setUserDisabled --------------------------------------------------------


async def test_disabling_ends_every_session_at_once(gql: GraphQLClient, admin_token: str) -> None:
    user = await new_user("leaver")
    laptop = await login_token(gql, "leaver")
    phone = await login_token(gql, "leaver")
    created = await gql.ok(
        'mutation { createApiToken(input: {name: "ci"}) { secret } }', token=laptop
    )
    api = created["createApiToken"]["secret"]
    for token in (laptop, phone, api):
        await gql.ok(VIEWER, token=token)

    data = await gql.ok(SET_DISABLED, {"id": gid(user), "disabled": True}, token=admin_token)
    assert data["setUserDisabled"]["user"] == {
        "id": gid(user),
        "username": "leaver",
        "role": "MEMBER",
        "disabled": True,
    }
    assert (await User.get(id=user.id)).disabled is True
    for token in (laptop, phone, api):
        error = await gql.error(VIEWER, token=token)
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
        assert error["message"] == "invalid token"
    error = await gql.error(LOGIN, {"u": "leaver", "p": PASSWORD})
    assert (error["extensions"]["code"], error["message"]) == (
        "UNAUTHENTICATED",
        "account disabled",
    )
    # Disabling twice is harmless.
    data = await gql.ok(SET_DISABLED, {"id": gid(user), "disabled": True}, token=admin_token)
    assert data["setUserDisabled"]["user"]["disabled"] is True


async def test_re_enabling_lets_the_user_log_in_again(gql: GraphQLClient, admin_token: str) -> None:
    user = await new_user("returner")
    old = await login_token(gql, "returner")
    await gql.ok(SET_DISABLED, {"id": gid(user), "disabled": True}, token=admin_token)
    data = await gql.ok(SET_DISABLED, {"id": gid(user), "disabled": False}, token=admin_token)
    assert data["setUserDisabled"]["user"]["disabled"] is False
    assert (await User.get(id=user.id)).disabled is False
    fresh = await login_token(gql, "returner")
    assert (await gql.ok(VIEWER, token=fresh))["viewer"]["user"]["username"] == "returner"
    # Sessions ended by disabling stay ended.
    assert (await gql.error(VIEWER, token=old))["extensions"]["code"] == "UNAUTHENTICATED"


async def test_disabled_users_still_appear_in_the_list(
    gql: GraphQLClient, admin_token: str
) -> None:
    user = await new_user("ghost")
    await gql.ok(SET_DISABLED, {"id": gid(user), "disabled": True}, token=admin_token)
    data = await gql.ok("{ users(first: 200) { nodes { username disabled } } }", token=admin_token)
    assert {"username": "ghost", "disabled": True} in data["users"]["nodes"]


# --- who may, and which ids ---------------------------------------------------


@pytest.mark.parametrize(
    ("mutation", "extra"),
    [(SET_ROLE, {"role": "ADMIN"}), (SET_DISABLED, {"disabled": True})],
    ids=["setUserRole", "setUserDisabled"],
)
async def test_members_may_not_manage_users(
    gql: GraphQLClient, member_token: str, mutation: str, extra: dict[str, Any]
) -> None:
    member = await User.get(username="member")
    target = await User.get(username="admin")
    for user in (member, target):
        error = await gql.error(mutation, {"id": gid(user), **extra}, token=member_token)
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert error["message"] == "requires the MANAGE_USERS permission"
    assert (await User.get(id=member.id)).role is UserRole.MEMBER
    assert (await User.get(id=target.id)).disabled is False


@pytest.mark.parametrize(
    ("mutation", "extra"),
    [(SET_ROLE, {"role": "ADMIN"}), (SET_DISABLED, {"disabled": True})],
    ids=["setUserRole", "setUserDisabled"],
)
async def test_signed_out_may_not_manage_users(
    gql: GraphQLClient, admin_token: str, mutation: str, extra: dict[str, Any]
) -> None:
    admin = await User.get(username="admin")
    error = await gql.error(mutation, {"id": gid(admin), **extra})
    assert (error["extensions"]["code"], error["message"]) == (
        "UNAUTHENTICATED",
        "sign in required",
    )


def _bad_ids() -> list[str]:
    some = uuid.uuid4()
    return [
        "not-a-global-id",
        "",
        "!!!",
        str(some),
        global_id.encode("ApiToken", some),
        global_id.encode("Chat", some),
        global_id.encode("User", "42"),
        global_id.encode("User", ""),
        base64.urlsafe_b64encode(b"User").decode(),
    ]


@pytest.mark.parametrize("bad_id", _bad_ids())
@pytest.mark.parametrize(
    ("mutation", "extra"),
    [(SET_ROLE, {"role": "ADMIN"}), (SET_DISABLED, {"disabled": True})],
    ids=["setUserRole", "setUserDisabled"],
)
async def test_malformed_user_ids_are_bad_user_input(
    gql: GraphQLClient, admin_token: str, mutation: str, extra: dict[str, Any], bad_id: str
) -> None:
    error = await gql.error(mutation, {"id": bad_id, **extra}, token=admin_token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "userId"
    assert error["message"] == "userId: not a valid User id"


async def test_an_api_token_id_is_not_a_user_id(gql: GraphQLClient, admin_token: str) -> None:
    created = await gql.ok(
        'mutation { createApiToken(input: {name: "not-a-user"}) { token { id } } }',
        token=admin_token,
    )
    token_id = created["createApiToken"]["token"]["id"]
    error = await gql.error(SET_DISABLED, {"id": token_id, "disabled": True}, token=admin_token)
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "userId",
    )


@pytest.mark.parametrize(
    ("mutation", "extra"),
    [(SET_ROLE, {"role": "ADMIN"}), (SET_DISABLED, {"disabled": True})],
    ids=["setUserRole", "setUserDisabled"],
)
async def test_unknown_user_id_is_not_found(
    gql: GraphQLClient, admin_token: str, mutation: str, extra: dict[str, Any]
) -> None:
    before = await User.all().count()
    missing = global_id.encode("User", uuid.uuid4())
    error = await gql.error(mutation, {"id": missing, **extra}, token=admin_token)
    assert (error["extensions"]["code"], error["message"]) == ("NOT_FOUND", "user not found")
    assert await User.all().count() == before
