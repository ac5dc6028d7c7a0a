"""Spend limits through the API: whose limit applies, where the period stands,
the settings and overrides an admin changes (and the input they refuse), and the
mutations that start model work refusing up front — with nothing written.

The settings are one row per database, so every test sets the ones it needs and
they are put back afterwards; people are fresh in every test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from tortoise.transactions import in_transaction

from db import spend
from db.costing import ModelPrices, Usage
from db.models import Chat, ChatMessage, ChatQueuedMessage, Group, GroupMember, ModelConfig, User
from db.usage_limits import DEFAULT_SETTINGS, write_settings
from db.vocabulary import TITLE_LOCK_WORKER, USAGE_LIMIT_MAX_MICROS
from resolvers import global_id
from resolvers.usage_limits import require_spendable
from tests.harness import GraphQLClient, Person, counted_queries, new_person

STATUS = """
fragment S on UsageLimitStatus {
  source period limitMicros spentMicros reservedMicros remainingMicros periodStart resetsAt
}"""
VIEWER_LIMIT = "{ viewer { usageLimit { ...S } } }" + STATUS
CONFIG = """
{ chatConfig { usageLimits {
  enabled period defaultLimitMicros unpricedModelCount
  userOverrides { user { username } limitMicros }
  groupOverrides { name usageLimitMicros }
} } }"""
UPDATE_CONFIG = """
mutation($input: UpdateUsageLimitConfigInput!) {
  updateUsageLimitConfig(input: $input) {
    usageLimitConfig { enabled period defaultLimitMicros unpricedModelCount } warnings
  }
}"""
SET_USER = (
    """
mutation($input: SetUserUsageLimitInput!) {
  setUserUsageLimit(input: $input) { user { username } usageLimit { ...S } }
}"""
    + STATUS
)
SET_GROUP = """
mutation($input: SetGroupUsageLimitInput!) {
  setGroupUsageLimit(input: $input) { group { name usageLimitMicros } }
}"""
CREATE_CHAT = """
mutation($input: CreateChatInput!) { createChat(input: $input) { chat { id } } }"""
SEND = """
mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { queued queuedMessage { id } }
}"""
PROMOTE = "mutation($id: ID!) { promoteQueuedMessage(input: {id: $id}) { message { id } } }"
EDIT = """
mutation($id: ID!) {
  editMessage(input: {messageId: $id, content: [{text: "again"}]}) { message { id } }
}"""
REGENERATE = "mutation($id: ID!) { regenerateChatTitle(id: $id) { id } }"
CREATE_MODEL = """
mutation($input: CreateModelConfigInput!) {
  createModelConfig(input: $input) { modelConfig { id } }
}"""
MESSAGES = "query($id: ID!) { chat(id: $id) { messages { nodes { id } } } }"
TEXT = [{"text": "hello"}]
DOLLAR = 1_000_000


@pytest.fixture(autouse=True)
async def limits_off_afterwards(app: Starlette) -> AsyncIterator[None]:
    yield
    await write_settings(DEFAULT_SETTINGS)


async def limits(
    gql: GraphQLClient,
    token: str,
    *,
    enabled: bool = True,
    period: str = "MONTH",
    default: int | None = None,
) -> dict[str, Any]:
    values = {"enabled": enabled, "period": period, "defaultLimitMicros": default}
    data = await gql.ok(UPDATE_CONFIG, {"input": values}, token=token)
    return dict(data["updateUsageLimitConfig"])


async def status(gql: GraphQLClient, person: Person) -> dict[str, Any]:
    return dict((await gql.ok(VIEWER_LIMIT, token=person.token))["viewer"]["usageLimit"])


def user_id(person: Person) -> str:
    return global_id.encode("User", person.user.id)


async def spent(person: Person, micros: int, at: datetime | None = None) -> None:
    """Settled spend of ``micros``: a priced call at $1 per million input tokens."""
    charge = spend.Charge(
        user_id=person.user.id,
        usage=Usage(input_tokens=micros),
        prices=ModelPrices(input_micros=DOLLAR, output_micros=DOLLAR),
        model_config_id=None,
        provider="scripted",
        model="seed",
        at=at,
    )
    async with in_transaction() as conn:
        await spend.settle(conn, None, charge)


async def group(name: str, limit: int | None, *members: Person) -> Group:
    row = await Group.create(name=f"{name}-{uuid.uuid4().hex[:8]}", spend_limit_micros=limit)
    for person in members:
        await GroupMember.create(group=row, user=person.user)
    return row


def code(error: dict[str, Any]) -> str:
    return str(error["extensions"]["code"])


# ---------------------------------------------------------------- resolution


async def test_user_override_then_lowest_group_then_default(
    gql: GraphQLClient, admin_token: str
) -> None:
    me = await new_person()
    await limits(gql, admin_token, default=5 * DOLLAR)
    assert (await status(gql, me))["source"] == "DEPLOYMENT"
    assert (await status(gql, me))["limitMicros"] == 5 * DOLLAR

    dear = await group("dear", 3 * DOLLAR, me)
    cheap = await group("cheap", 2 * DOLLAR, me)
    await group("unlimited", None, me)
    await group("others", DOLLAR // 2)  # not a member: does not apply
    now = await status(gql, me)
    assert (now["source"], now["limitMicros"]) == ("GROUP", 2 * DOLLAR)

    # The user's own override wins even when it is higher than every group's.
    data = await gql.ok(
        SET_USER, {"input": {"userId": user_id(me), "limitMicros": 7 * DOLLAR}}, token=admin_token
    )
    assert data["setUserUsageLimit"]["usageLimit"]["source"] == "USER"
    now = await status(gql, me)
    assert (now["source"], now["limitMicros"]) == ("USER", 7 * DOLLAR)

    await gql.ok(
        SET_USER, {"input": {"userId": user_id(me), "limitMicros": None}}, token=admin_token
    )
    assert (await status(gql, me))["limitMicros"] == 2 * DOLLAR

    gid = global_id.encode("Group", cheap.id)
    await gql.ok(SET_GROUP, {"input": {"groupId": gid, "limitMicros": None}}, token=admin_token)
    now = await status(gql, me)
    assert (now["source"], now["limitMicros"]) == ("GROUP", 3 * DOLLAR)

    gid = global_id.encode("Group", dear.id)
    await gql.ok(SET_GROUP, {"input": {"groupId": gid, "limitMicros": None}}, token=admin_token)
    now = await status(gql, me)
    assert (now["source"], now["limitMicros"]) == ("DEPLOYMENT", 5 * DOLLAR)


async def test_disabled_limits_limit_nobody(gql: GraphQLClient, admin_token: str) -> None:
    me = await new_person()
    await group("g", DOLLAR, me)
    await gql.ok(
        SET_USER, {"input": {"userId": user_id(me), "limitMicros": DOLLAR}}, token=admin_token
    )
    await limits(gql, admin_token, enabled=False, default=DOLLAR)
    now = await status(gql, me)
    assert (now["source"], now["limitMicros"], now["remainingMicros"]) == ("NONE", None, None)
    # On, without a default: only overrides limit anyone.
    await limits(gql, admin_token, enabled=True, default=None)
    other = await new_person()
    assert (await status(gql, other))["source"] == "NONE"
    assert (await status(gql, me))["source"] == "USER"


async def test_status_counts_spend_and_holds(gql: GraphQLClient, admin_token: str) -> None:
    me = await new_person()
    await limits(gql, admin_token, default=5 * DOLLAR)
    await spent(me, 1_500_000)
    held = await spend.hold(
        me.user.id,
        ModelPrices(input_micros=DOLLAR, output_micros=DOLLAR),
        model="m",
        input_tokens=500_000,
        max_output_tokens=500_000,
        worker_id=None,
    )
    assert held.amount_micros == DOLLAR
    now = await status(gql, me)
    assert (now["spentMicros"], now["reservedMicros"]) == (1_500_000, DOLLAR)
    assert now["remainingMicros"] == 5 * DOLLAR - 1_500_000 - DOLLAR
    await spend.release(held)
    assert (await status(gql, me))["reservedMicros"] == 0


# ---------------------------------------------------------------- periods


def expected_bounds(period: str, at: datetime) -> tuple[datetime, datetime]:
    midnight = datetime(at.year, at.month, at.day, tzinfo=UTC)
    if period == "DAY":
        return midnight, midnight + timedelta(days=1)
    if period == "WEEK":
        monday = midnight - timedelta(days=at.weekday())
        return monday, monday + timedelta(days=7)
    first = midnight.replace(day=1)
    following = datetime(at.year + at.month // 12, at.month % 12 + 1, 1, tzinfo=UTC)
    return first, following


@pytest.mark.parametrize("period", ["DAY", "WEEK", "MONTH"])
async def test_period_bounds_are_utc_aligned(
    gql: GraphQLClient, admin_token: str, period: str
) -> None:
    me = await new_person()
    await limits(gql, admin_token, period=period, default=DOLLAR)
    before = datetime.now(UTC)
    now = await status(gql, me)
    after = datetime.now(UTC)
    start = datetime.fromisoformat(now["periodStart"])
    resets = datetime.fromisoformat(now["resetsAt"])
    assert (start, resets) in {expected_bounds(period, before), expected_bounds(period, after)}
    assert start.utcoffset() == timedelta(0)
    assert (start.hour, start.minute, start.second) == (0, 0, 0)
    if period == "WEEK":
        assert start.weekday() == 0  # Monday
    if period == "MONTH":
        assert (start.day, resets.day) == (1, 1)
    assert now["period"] == period


async def test_spend_of_an_earlier_period_does_not_count(
    gql: GraphQLClient, admin_token: str
) -> None:
    me = await new_person()
    await limits(gql, admin_token, period="DAY", default=DOLLAR)
    start = datetime.fromisoformat((await status(gql, me))["periodStart"])
    await spent(me, 300_000, at=start - timedelta(seconds=1))
    await spent(me, 200_000, at=start)
    assert (await status(gql, me))["spentMicros"] == 200_000
    # The month holds both.
    await limits(gql, admin_token, period="MONTH", default=DOLLAR)
    month = await status(gql, me)
    in_month = datetime.fromisoformat(month["periodStart"]) <= start - timedelta(seconds=1)
    assert month["spentMicros"] == (500_000 if in_month else 200_000)


# ---------------------------------------------------------------- the config


async def test_config_lists_overrides_and_unpriced_models(
    gql: GraphQLClient, admin_token: str, unpriced: str
) -> None:
    me = await new_person()
    team = await group("team", 4 * DOLLAR)
    await gql.ok(
        SET_USER, {"input": {"userId": user_id(me), "limitMicros": 3 * DOLLAR}}, token=admin_token
    )
    made = await limits(gql, admin_token, period="WEEK", default=DOLLAR)
    config = made["usageLimitConfig"]
    assert (config["enabled"], config["period"], config["defaultLimitMicros"]) == (
        True,
        "WEEK",
        DOLLAR,
    )
    assert config["unpricedModelCount"] == 1
    assert "1 enabled model config(s) have no input or output price" in made["warnings"][0]
    read = (await gql.ok(CONFIG, token=admin_token))["chatConfig"]["usageLimits"]
    assert {"user": {"username": me.user.username}, "limitMicros": 3 * DOLLAR} in read[
        "userOverrides"
    ]
    assert {"name": team.name, "usageLimitMicros": 4 * DOLLAR} in read["groupOverrides"]
    assert read["unpricedModelCount"] == 1
    # Priced (an output price alone is not enough), disabled or deleted: not counted.
    row = await ModelConfig.get(id=global_id.decode_uuid(unpriced, "ModelConfig"))
    row.output_price_micros = 0
    await row.save()
    assert (await gql.ok(CONFIG, token=admin_token))["chatConfig"]["usageLimits"][
        "unpricedModelCount"
    ] == 1
    row.input_price_micros = 0
    await row.save()
    assert (await gql.ok(CONFIG, token=admin_token))["chatConfig"]["usageLimits"][
        "unpricedModelCount"
    ] == 0


async def test_members_neither_read_nor_change_the_config(
    gql: GraphQLClient, admin_token: str
) -> None:
    me = await new_person()
    result = await gql(CONFIG, token=me.token)
    assert result["data"]["chatConfig"]["usageLimits"] is None
    assert code(result["errors"][0]) == "FORBIDDEN"
    group_id = global_id.encode("Group", (await group("g", None)).id)
    for query, values in (
        (UPDATE_CONFIG, {"enabled": True, "period": "DAY", "defaultLimitMicros": 1}),
        (SET_USER, {"userId": user_id(me), "limitMicros": 10 * DOLLAR}),
        (SET_GROUP, {"groupId": group_id, "limitMicros": 10 * DOLLAR}),
    ):
        assert code(await gql.error(query, {"input": values}, token=me.token)) == "FORBIDDEN"
    assert (await User.get(id=me.user.id)).spend_limit_micros is None
    assert (await status(gql, me))["source"] == "NONE"


# ---------------------------------------------------------------- bad input

BAD_LIMITS = [0, -1, -(2**40), USAGE_LIMIT_MAX_MICROS + 1, 2**53]


@pytest.mark.parametrize("limit", BAD_LIMITS)
async def test_bad_limits_name_the_field_and_change_nothing(
    gql: GraphQLClient, admin_token: str, limit: int
) -> None:
    me = await new_person()
    team = await group("g", DOLLAR, me)
    await limits(gql, admin_token, period="WEEK", default=2 * DOLLAR)
    cases = (
        (
            UPDATE_CONFIG,
            {"enabled": True, "period": "DAY", "defaultLimitMicros": limit},
            "defaultLimitMicros",
        ),
        (SET_USER, {"userId": user_id(me), "limitMicros": limit}, "limitMicros"),
        (
            SET_GROUP,
            {"groupId": global_id.encode("Group", team.id), "limitMicros": limit},
            "limitMicros",
        ),
    )
    for query, values, field in cases:
        error = await gql.error(query, {"input": values}, token=admin_token)
        assert code(error) == "BAD_USER_INPUT", error
        assert error["extensions"]["field"] == field
        assert error["extensions"]["maximum"] == USAGE_LIMIT_MAX_MICROS
    config = (await gql.ok(CONFIG, token=admin_token))["chatConfig"]["usageLimits"]
    assert (config["period"], config["defaultLimitMicros"]) == ("WEEK", 2 * DOLLAR)
    assert (await User.get(id=me.user.id)).spend_limit_micros is None
    assert (await Group.get(id=team.id)).spend_limit_micros == DOLLAR


async def test_the_largest_limit_is_accepted(gql: GraphQLClient, admin_token: str) -> None:
    me = await new_person()
    values = {"userId": user_id(me), "limitMicros": USAGE_LIMIT_MAX_MICROS}
    data = await gql.ok(SET_USER, {"input": values}, token=admin_token)
    assert data["setUserUsageLimit"]["user"]["username"] == me.user.username
    assert (await User.get(id=me.user.id)).spend_limit_micros == USAGE_LIMIT_MAX_MICROS


async def test_unknown_users_and_groups_are_not_found(gql: GraphQLClient, admin_token: str) -> None:
    nobody = {"userId": global_id.encode("User", uuid.uuid4()), "limitMicros": DOLLAR}
    assert code(await gql.error(SET_USER, {"input": nobody}, token=admin_token)) == "NOT_FOUND"
    no_group = {"groupId": global_id.encode("Group", uuid.uuid4()), "limitMicros": DOLLAR}
    assert code(await gql.error(SET_GROUP, {"input": no_group}, token=admin_token)) == "NOT_FOUND"
    # An id of another type is not an id of a user at all.
    chat_id = {"userId": global_id.encode("Chat", uuid.uuid4()), "limitMicros": DOLLAR}
    error = await gql.error(SET_USER, {"input": chat_id}, token=admin_token)
    assert (code(error), error["extensions"]["field"]) == ("BAD_USER_INPUT", "userId")
    garbage = {"groupId": "garbage", "limitMicros": DOLLAR}
    error = await gql.error(SET_GROUP, {"input": garbage}, token=admin_token)
    assert (code(error), error["extensions"]["field"]) == ("BAD_USER_INPUT", "groupId")


async def test_an_unknown_period_is_refused_by_the_schema(
    gql: GraphQLClient, admin_token: str
) -> None:
    await limits(gql, admin_token, period="DAY", default=DOLLAR)
    values = {"enabled": True, "period": "YEAR", "defaultLimitMicros": 2 * DOLLAR}
    error = await gql.error(UPDATE_CONFIG, {"input": values}, token=admin_token)
    assert "YEAR" in error["message"]
    config = (await gql.ok(CONFIG, token=admin_token))["chatConfig"]["usageLimits"]
    assert (config["period"], config["defaultLimitMicros"]) == ("DAY", DOLLAR)


# ---------------------------------------------------------------- refusals


@pytest.fixture
async def unpriced(gql: GraphQLClient, admin_token: str) -> AsyncIterator[str]:
    """An enabled model config without prices on the scripted provider."""
    provider = await ModelConfig.filter(is_default=True).values_list("provider_id", flat=True)
    values = {
        "providerId": global_id.encode("Provider", provider[0]),
        "model": f"unpriced-{uuid.uuid4().hex[:6]}",
        "displayName": "Mystery Model",
        "contextLimit": 8000,
    }
    data = await gql.ok(CREATE_MODEL, {"input": values}, token=admin_token)
    gid = str(data["createModelConfig"]["modelConfig"]["id"])
    yield gid
    await ModelConfig.filter(id=global_id.decode_uuid(gid, "ModelConfig")).update(deleted=True)


async def new_chat(gql: GraphQLClient, person: Person, **values: Any) -> str:
    data = await gql.ok(CREATE_CHAT, {"input": {"content": TEXT, **values}}, token=person.token)
    return str(data["createChat"]["chat"]["id"])


async def written(person: Person) -> tuple[int, int, int, list[Any]]:
    """What the person's chats hold: chats, messages, queued messages, chat states."""
    chats = await Chat.filter(owner_id=person.user.id).order_by("id")
    keys = [chat.id for chat in chats]
    return (
        len(chats),
        await ChatMessage.filter(chat_id__in=keys).count(),
        await ChatQueuedMessage.filter(chat_id__in=keys).count(),
        [(c.status, c.worker_id, c.model_config_id, c.updated_at) for c in chats],
    )


def assert_exceeded(error: dict[str, Any], *, spent_micros: int, limit: int, source: str) -> None:
    facts = error["extensions"]
    assert facts["code"] == "USAGE_LIMIT_EXCEEDED", error
    assert (facts["spentMicros"], facts["limitMicros"], facts["source"]) == (
        spent_micros,
        limit,
        source,
    )
    resets = datetime.fromisoformat(facts["resetsAt"])
    assert resets > datetime.now(UTC)
    assert (resets.day, resets.hour, resets.minute) == (1, 0, 0)  # monthly
    assert "resets at" in error["message"]


async def test_an_exhausted_limit_refuses_all_model_work_and_writes_nothing(
    gql: GraphQLClient, admin_token: str
) -> None:
    me = await new_person()
    await limits(gql, admin_token, default=10 * DOLLAR)
    chat = await new_chat(gql, me)  # PENDING: the next message queues
    sent = await gql.ok(SEND, {"input": {"chatId": chat, "content": TEXT}}, token=me.token)
    queued = sent["sendMessage"]["queuedMessage"]["id"]
    first = (await gql.ok(MESSAGES, {"id": chat}, token=me.token))["chat"]["messages"]["nodes"]
    await gql.ok(
        SET_USER, {"input": {"userId": user_id(me), "limitMicros": DOLLAR}}, token=admin_token
    )
    await spent(me, DOLLAR)  # spent == limit: exhausted
    before = await written(me)

    refusals: list[tuple[str, dict[str, Any]]] = [
        (CREATE_CHAT, {"input": {"content": TEXT}}),
        (SEND, {"input": {"chatId": chat, "content": TEXT}}),
        (PROMOTE, {"id": queued}),
        (REGENERATE, {"id": chat}),
        (EDIT, {"id": first[0]["id"]}),
    ]
    for query, variables in refusals:
        error = await gql.error(query, variables, token=me.token)
        assert_exceeded(error, spent_micros=DOLLAR, limit=DOLLAR, source="USER")
    assert await written(me) == before
    assert (await Chat.get(id=global_id.decode_uuid(chat, "Chat"))).worker_id != TITLE_LOCK_WORKER

    # A raised limit lets the same work through.
    await gql.ok(
        SET_USER, {"input": {"userId": user_id(me), "limitMicros": None}}, token=admin_token
    )
    await gql.ok(PROMOTE, {"id": queued}, token=me.token)
    await new_chat(gql, me)


async def test_spend_over_the_limit_and_holds_in_flight_also_refuse(
    gql: GraphQLClient, admin_token: str
) -> None:
    over = await new_person()
    await limits(gql, admin_token, default=DOLLAR)
    await spent(over, DOLLAR + 1)
    error = await gql.error(CREATE_CHAT, {"input": {"content": TEXT}}, token=over.token)
    assert_exceeded(error, spent_micros=DOLLAR + 1, limit=DOLLAR, source="DEPLOYMENT")

    busy = await new_person()
    await group("g", DOLLAR, busy)
    await spent(busy, DOLLAR // 2)
    held = await spend.hold(
        busy.user.id,
        ModelPrices(input_micros=DOLLAR, output_micros=DOLLAR),
        model="m",
        input_tokens=0,
        max_output_tokens=DOLLAR // 2,
        worker_id=None,
    )
    error = await gql.error(CREATE_CHAT, {"input": {"content": TEXT}}, token=busy.token)
    assert_exceeded(error, spent_micros=DOLLAR // 2, limit=DOLLAR, source="GROUP")
    assert error["extensions"]["reservedMicros"] == DOLLAR // 2
    assert await Chat.filter(owner_id=busy.user.id).count() == 0
    await spend.release(held)
    await new_chat(gql, busy)


async def test_below_the_limit_work_goes_ahead(gql: GraphQLClient, admin_token: str) -> None:
    me = await new_person()
    await limits(gql, admin_token, default=DOLLAR)
    await spent(me, DOLLAR - 1)
    chat = await new_chat(gql, me)
    await gql.ok(SEND, {"input": {"chatId": chat, "content": TEXT}}, token=me.token)


async def test_an_unpriced_model_under_a_limit_is_refused_with_what_to_fix(
    gql: GraphQLClient, admin_token: str, unpriced: str
) -> None:
    me = await new_person()
    await limits(gql, admin_token, default=10 * DOLLAR)
    error = await gql.error(
        CREATE_CHAT, {"input": {"content": TEXT, "modelConfigId": unpriced}}, token=me.token
    )
    facts = error["extensions"]
    assert (facts["code"], facts["field"], facts["reason"]) == (
        "BAD_USER_INPUT",
        "modelConfigId",
        "UNPRICED_MODEL",
    )
    assert facts["modelConfigId"] == unpriced
    assert "Mystery Model" in error["message"]
    assert "administrator must set its input and output prices" in error["message"]
    assert await Chat.filter(owner_id=me.user.id).count() == 0

    # Switching an existing chat to it is refused too, and leaves the chat as it was.
    chat = await new_chat(gql, me)
    before = await written(me)
    error = await gql.error(
        SEND,
        {"input": {"chatId": chat, "content": TEXT, "modelConfigId": unpriced}},
        token=me.token,
    )
    assert error["extensions"]["reason"] == "UNPRICED_MODEL"
    assert await written(me) == before


async def test_an_unpriced_model_is_usable_where_no_limit_applies(
    gql: GraphQLClient, admin_token: str, unpriced: str
) -> None:
    me = await new_person()
    # Limits off.
    await limits(gql, admin_token, enabled=False, default=DOLLAR)
    await new_chat(gql, me, modelConfigId=unpriced)
    # Limits on, but none for this user (no default, no override).
    await limits(gql, admin_token, enabled=True, default=None)
    await new_chat(gql, me, modelConfigId=unpriced)
    assert await Chat.filter(owner_id=me.user.id).count() == 2


async def test_the_check_costs_one_statement_with_limits_off(
    gql: GraphQLClient, admin_token: str
) -> None:
    me = await new_person()
    await limits(gql, admin_token, enabled=False, default=DOLLAR)
    with counted_queries() as sent:
        await require_spendable(me.user.id)
    assert len(sent) == 1
    # With a limit: the settings, the user's status, and the model's prices.
    await limits(gql, admin_token, default=DOLLAR)
    with counted_queries() as sent:
        await require_spendable(me.user.id)
    assert len(sent) == 3
