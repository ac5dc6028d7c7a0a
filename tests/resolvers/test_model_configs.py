"""Model configs: validation, prices, the single default, visibility, per-user
compaction thresholds, chats' modelConfigId, cost and the fresh-install default.

Each test starts with no providers (so no model configs either).
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from starlette.applications import Starlette

from db.model_resolution import ensure_default_scripted_model, resolve_model
from db.models import Chat, ChatMessage, ModelConfig, Provider, User, UserConfig
from db.secret_box import SecretBox
from events.payloads import ConfigChanged, Event
from resolvers import global_id
from server.settings import Settings
from tests.harness import GraphQLClient

FIELDS = """
fragment M on ModelConfig {
  id model displayName enabled isDefault deleted contextLimit compressionThreshold
  maxOutputTokens inputPricePerMillionTokens outputPricePerMillionTokens
  cacheReadPricePerMillionTokens cacheWritePricePerMillionTokens providerKind
  provider { id kind } createdAt updatedAt
}"""
CREATE = (
    """
mutation($input: CreateModelConfigInput!) {
  createModelConfig(input: $input) { modelConfig { ...M } warnings }
}"""
    + FIELDS
)
UPDATE = (
    """
mutation($input: UpdateModelConfigInput!) {
  updateModelConfig(input: $input) { modelConfig { ...M } warnings }
}"""
    + FIELDS
)
DELETE = """
mutation($id: ID!) { deleteModelConfig(input: {id: $id}) { deletedId warnings } }"""
LIST = "{ modelConfigs { ...M } }" + FIELDS
NODE = "query($id: ID!) { node(id: $id) { ... on ModelConfig { ...M } } }" + FIELDS
CREATE_PROVIDER = """
mutation($input: CreateProviderInput!) { createProvider(input: $input) { provider { id } } }"""
SET_THRESHOLD = """
mutation($id: ID!, $pct: Int!) {
  setCompactionThreshold(input: {modelConfigId: $id, percent: $pct}) {
    threshold { modelConfig { id } percent effectivePercent } warnings
  }
}"""
CLEAR_THRESHOLD = """
mutation($id: ID!) {
  clearCompactionThreshold(input: {modelConfigId: $id}) {
    threshold { modelConfig { id } percent effectivePercent } warnings
  }
}"""
THRESHOLDS = "{ compactionThresholds { modelConfig { id } percent effectivePercent } }"
CREATE_CHAT = """
mutation($input: CreateChatInput!) { createChat(input: $input) { chat { id } warnings } }"""
SEND = """
mutation($input: SendMessageInput!) { sendMessage(input: $input) { queued warnings } }"""


@pytest.fixture(autouse=True)
async def no_providers(app: Starlette) -> None:
    await Provider.all().delete()
    await UserConfig.all().delete()


@pytest.fixture
async def provider(gql: GraphQLClient, admin_token: str) -> str:
    data = await gql.ok(CREATE_PROVIDER, {"input": {"kind": "SCRIPTED"}}, token=admin_token)
    return str(data["createProvider"]["provider"]["id"])


async def create(
    gql: GraphQLClient, token: str, provider: str, model: str = "m", **values: Any
) -> dict[str, Any]:
    values = {"providerId": provider, "model": model, "contextLimit": 8000, **values}
    data = await gql.ok(CREATE, {"input": values}, token=token)
    return dict(data["createModelConfig"])


async def update(gql: GraphQLClient, token: str, gid: str, **values: Any) -> dict[str, Any]:
    data = await gql.ok(UPDATE, {"input": {"id": gid, **values}}, token=token)
    return dict(data["updateModelConfig"])


async def defaults() -> list[str]:
    rows = await ModelConfig.filter(is_default=True).order_by("created_at")
    return [row.model for row in rows]


def bad_input(error: dict[str, Any], field: str) -> None:
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["field"] == field, error


def key(gid: str) -> uuid.UUID:
    return global_id.decode_uuid(gid, "ModelConfig")


async def member() -> User:
    return await User.get(username="member")


# ---------------------------------------------------------------- admin


async def test_create_with_defaults_and_prices(
    gql: GraphQLClient, admin_token: str, provider: str
) -> None:
    made = await create(
        gql,
        admin_token,
        provider,
        "claude-x",
        inputPricePerMillionTokens=3,
        outputPricePerMillionTokens=15.0,
        cacheReadPricePerMillionTokens=0.3,
        cacheWritePricePerMillionTokens=3.75,
        maxOutputTokens=4096,
    )
    config = made["modelConfig"]
    assert made["warnings"] == []
    assert (config["model"], config["displayName"]) == ("claude-x", "claude-x")
    assert (config["enabled"], config["isDefault"], config["deleted"]) == (True, True, False)
    assert (config["contextLimit"], config["compressionThreshold"]) == (8000, 70)
    assert config["maxOutputTokens"] == 4096
    assert config["providerKind"] == "SCRIPTED"
    assert config["provider"] == {"id": provider, "kind": "SCRIPTED"}
    assert (
        config["inputPricePerMillionTokens"],
        config["outputPricePerMillionTokens"],
        config["cacheReadPricePerMillionTokens"],
        config["cacheWritePricePerMillionTokens"],
    ) == (3.0, 15.0, 0.3, 3.75)
    row = await ModelConfig.get(id=key(config["id"]))
    assert (
        row.input_price_micros,
        row.output_price_micros,
        row.cache_read_price_micros,
        row.cache_write_price_micros,
    ) == (3_000_000, 15_000_000, 300_000, 3_750_000)


async def test_prices_not_given_are_unpriced_not_free(
    gql: GraphQLClient, admin_token: str, provider: str
) -> None:
    config = (await create(gql, admin_token, provider, inputPricePerMillionTokens=1))["modelConfig"]
    assert config["inputPricePerMillionTokens"] == 1.0
    assert config["outputPricePerMillionTokens"] is None
    assert config["cacheReadPricePerMillionTokens"] is None
    assert config["cacheWritePricePerMillionTokens"] is None
    row = await ModelConfig.get(id=key(config["id"]))
    assert (row.input_price_micros, row.output_price_micros) == (1_000_000, None)


async def test_null_clears_a_price(gql: GraphQLClient, admin_token: str, provider: str) -> None:
    gid = (
        await create(
            gql,
            admin_token,
            provider,
            inputPricePerMillionTokens=3,
            outputPricePerMillionTokens=15,
            cacheReadPricePerMillionTokens=0.3,
        )
    )["modelConfig"]["id"]
    config = (
        await update(
            gql,
            admin_token,
            gid,
            outputPricePerMillionTokens=None,
            cacheReadPricePerMillionTokens=None,
        )
    )["modelConfig"]
    assert config["inputPricePerMillionTokens"] == 3.0
    assert config["outputPricePerMillionTokens"] is None
    assert config["cacheReadPricePerMillionTokens"] is None
    row = await ModelConfig.get(id=key(gid))
    assert (row.input_price_micros, row.output_price_micros) == (3_000_000, None)
    assert row.cache_read_price_micros is None
    # Zero stays a price: a free model is not an unpriced one.
    config = (await update(gql, admin_token, gid, outputPricePerMillionTokens=0))["modelConfig"]
    assert config["outputPricePerMillionTokens"] == 0.0
    assert (await ModelConfig.get(id=key(gid))).output_price_micros == 0


@pytest.mark.parametrize(
    ("usd", "micros"),
    [(0, 0), (0.15, 150_000), (1e-6, 1), (4e-7, 0), (5e-7, 1), (1_000_000, 10**12)],
)
async def test_prices_round_to_the_micro_dollar(
    gql: GraphQLClient, admin_token: str, provider: str, usd: float, micros: int
) -> None:
    made = await create(gql, admin_token, provider, inputPricePerMillionTokens=usd)
    row = await ModelConfig.get(id=key(made["modelConfig"]["id"]))
    assert row.input_price_micros == micros
    assert made["modelConfig"]["inputPricePerMillionTokens"] == micros / 1_000_000


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"contextLimit": 0}, "contextLimit"),
        ({"contextLimit": -5}, "contextLimit"),
        ({"compressionThreshold": -1}, "compressionThreshold"),
        ({"compressionThreshold": 101}, "compressionThreshold"),
        ({"maxOutputTokens": 0}, "maxOutputTokens"),
        ({"maxOutputTokens": -1}, "maxOutputTokens"),
        ({"inputPricePerMillionTokens": -0.01}, "inputPricePerMillionTokens"),
        ({"outputPricePerMillionTokens": -1}, "outputPricePerMillionTokens"),
        ({"cacheReadPricePerMillionTokens": -1}, "cacheReadPricePerMillionTokens"),
        ({"cacheWritePricePerMillionTokens": 1_000_001}, "cacheWritePricePerMillionTokens"),
        ({"model": ""}, "model"),
        ({"model": "   "}, "model"),
        ({"model": "x" * 201}, "model"),
        ({"model": "a\nb"}, "model"),
        ({"displayName": " "}, "displayName"),
        ({"providerId": "garbage"}, "providerId"),
        ({"providerId": global_id.encode("Provider", uuid.uuid4())}, "providerId"),
        ({"providerId": global_id.encode("Chat", uuid.uuid4())}, "providerId"),
        ({"enabled": False, "isDefault": True}, "isDefault"),
    ],
)
async def test_invalid_create_input(
    gql: GraphQLClient, admin_token: str, provider: str, values: dict[str, Any], field: str
) -> None:
    variables = {"providerId": provider, "model": "m", "contextLimit": 8000, **values}
    bad_input(await gql.error(CREATE, {"input": variables}, token=admin_token), field)
    assert await ModelConfig.all().count() == 0


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"contextLimit": 0}, "contextLimit"),
        ({"contextLimit": None}, "contextLimit"),
        ({"compressionThreshold": 101}, "compressionThreshold"),
        ({"compressionThreshold": None}, "compressionThreshold"),
        ({"maxOutputTokens": 0}, "maxOutputTokens"),
        ({"inputPricePerMillionTokens": -1}, "inputPricePerMillionTokens"),
        ({"outputPricePerMillionTokens": 1_000_001}, "outputPricePerMillionTokens"),
        ({"model": None}, "model"),
        ({"enabled": None}, "enabled"),
        ({"isDefault": False}, "isDefault"),
    ],
)
async def test_invalid_update_input_changes_nothing(
    gql: GraphQLClient, admin_token: str, provider: str, values: dict[str, Any], field: str
) -> None:
    gid = (await create(gql, admin_token, provider))["modelConfig"]["id"]
    before = dict((await ModelConfig.get(id=key(gid))).__dict__)
    bad_input(await gql.error(UPDATE, {"input": {"id": gid, **values}}, token=admin_token), field)
    assert dict((await ModelConfig.get(id=key(gid))).__dict__) == before


async def test_update_fields(gql: GraphQLClient, admin_token: str, provider: str) -> None:
    gid = (await create(gql, admin_token, provider, maxOutputTokens=100))["modelConfig"]["id"]
    config = (
        await update(
            gql,
            admin_token,
            gid,
            model="other",
            displayName="Other",
            contextLimit=2_000_000,
            compressionThreshold=0,
            maxOutputTokens=None,
            outputPricePerMillionTokens=2.5,
        )
    )["modelConfig"]
    assert (config["model"], config["displayName"], config["contextLimit"]) == (
        "other",
        "Other",
        2_000_000,
    )
    assert (config["compressionThreshold"], config["maxOutputTokens"]) == (0, None)
    assert config["outputPricePerMillionTokens"] == 2.5
    missing = global_id.encode("ModelConfig", uuid.uuid4())
    error = await gql.error(UPDATE, {"input": {"id": missing}}, token=admin_token)
    assert error["extensions"]["code"] == "NOT_FOUND"


async def test_members_cannot_manage_model_configs(
    gql: GraphQLClient, admin_token: str, member_token: str, provider: str
) -> None:
    gid = (await create(gql, admin_token, provider))["modelConfig"]["id"]
    for query, variables in (
        (CREATE, {"input": {"providerId": provider, "model": "x", "contextLimit": 1}}),
        (UPDATE, {"input": {"id": gid, "enabled": False}}),
        (DELETE, {"id": gid}),
    ):
        error = await gql.error(query, variables, token=member_token)
        assert error["extensions"]["code"] == "FORBIDDEN"
        error = await gql.error(query, variables)
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
    row = await ModelConfig.get(id=key(gid))
    assert (row.enabled, row.deleted, await ModelConfig.all().count()) == (True, False, 1)


# ---------------------------------------------------------------- the single default


async def test_the_first_enabled_config_is_the_default_and_is_default_moves_it(
    gql: GraphQLClient, admin_token: str, provider: str
) -> None:
    await create(gql, admin_token, provider, "off", enabled=False)
    assert await defaults() == []
    first = (await create(gql, admin_token, provider, "a"))["modelConfig"]
    assert first["isDefault"] is True
    second = (await create(gql, admin_token, provider, "b"))["modelConfig"]
    assert second["isDefault"] is False
    third = (await create(gql, admin_token, provider, "c", isDefault=True))["modelConfig"]
    assert third["isDefault"] is True
    assert await defaults() == ["c"]
    assert (await update(gql, admin_token, second["id"], isDefault=True))["modelConfig"][
        "isDefault"
    ]
    assert await defaults() == ["b"]
    listed = (await gql.ok(LIST, token=admin_token))["modelConfigs"]
    assert [c["model"] for c in listed] == ["b", "off", "a", "c"]  # the default first
    # Moving the default to a disabled config is refused; enabling it at once is fine.
    off = next(c for c in listed if c["model"] == "off")
    bad_input(
        await gql.error(UPDATE, {"input": {"id": off["id"], "isDefault": True}}, token=admin_token),
        "isDefault",
    )
    moved = await update(gql, admin_token, off["id"], isDefault=True, enabled=True)
    assert moved["modelConfig"]["isDefault"] is True
    assert await defaults() == ["off"]


async def test_deleting_the_default_promotes_another_enabled_one(
    gql: GraphQLClient, admin_token: str, provider: str
) -> None:
    a = (await create(gql, admin_token, provider, "a"))["modelConfig"]["id"]
    await create(gql, admin_token, provider, "disabled", enabled=False)
    b = (await create(gql, admin_token, provider, "b", displayName="Model B"))["modelConfig"]["id"]
    data = await gql.ok(DELETE, {"id": a}, token=admin_token)
    assert data["deleteModelConfig"] == {
        "deletedId": a,
        "warnings": ["The default model is now 'Model B'."],
    }
    assert await defaults() == ["b"]
    row = await ModelConfig.get(id=key(a))
    assert (row.deleted, row.deleted_at is not None, row.is_default) == (True, True, False)
    listed = (await gql.ok(LIST, token=admin_token))["modelConfigs"]
    assert [c["model"] for c in listed] == ["b", "disabled"]
    assert (await gql.ok(DELETE, {"id": b}, token=admin_token))["deleteModelConfig"][
        "warnings"
    ] == ["No enabled model config is left: chats cannot start until one exists."]
    assert await defaults() == []
    error = await gql.error(DELETE, {"id": b}, token=admin_token)  # already deleted
    assert error["extensions"]["code"] == "NOT_FOUND"
    # Deleted configs stay readable by id for admins (history points at them).
    node = (await gql.ok(NODE, {"id": a}, token=admin_token))["node"]
    assert node["deleted"] is True


async def test_disabling_the_default_promotes_and_enabling_restores_one(
    gql: GraphQLClient, admin_token: str, provider: str
) -> None:
    a = (await create(gql, admin_token, provider, "a"))["modelConfig"]["id"]
    b = (await create(gql, admin_token, provider, "b"))["modelConfig"]["id"]
    changed = await update(gql, admin_token, a, enabled=False)
    assert (changed["modelConfig"]["enabled"], changed["modelConfig"]["isDefault"]) == (
        False,
        False,
    )
    assert await defaults() == ["b"]
    last = await update(gql, admin_token, b, enabled=False)
    assert last["warnings"] == [
        "No enabled model config is left: chats cannot start until one exists."
    ]
    assert await defaults() == []
    again = await update(gql, admin_token, a, enabled=True)
    assert again["modelConfig"]["isDefault"] is True
    assert await defaults() == ["a"]


async def test_a_disabled_provider_is_warned_about(gql: GraphQLClient, admin_token: str) -> None:
    data = await gql.ok(
        CREATE_PROVIDER, {"input": {"kind": "SCRIPTED", "enabled": False}}, token=admin_token
    )
    made = await create(gql, admin_token, data["createProvider"]["provider"]["id"])
    assert made["warnings"] == [
        "The provider is disabled: this model cannot be used until it is enabled."
    ]


async def test_the_database_allows_one_default_among_live_configs(
    gql: GraphQLClient, admin_token: str, provider: str, database_url: str
) -> None:
    a = key((await create(gql, admin_token, provider, "a"))["modelConfig"]["id"])
    b = key((await create(gql, admin_token, provider, "b"))["modelConfig"]["id"])
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute("UPDATE model_configs SET is_default = true WHERE id = $1", b)
        # A deleted default does not count.
        await conn.execute("UPDATE model_configs SET deleted = true WHERE id = $1", a)
        await conn.execute("UPDATE model_configs SET is_default = true WHERE id = $1", b)
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE model_configs SET context_limit = 0 WHERE id = $1", b)
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "UPDATE providers SET central_key_enabled = false, user_keys_allowed = false"
            )
    finally:
        await conn.close()


async def test_changes_are_announced_on_the_config_channel(
    gql: GraphQLClient,
    admin_token: str,
    member_token: str,
    provider: str,
    app: Starlette,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = (await create(gql, admin_token, provider, "a"))["modelConfig"]["id"]
    b = (await create(gql, admin_token, provider, "b"))["modelConfig"]["id"]
    sent: list[Any] = []

    async def record(channel: str, event: Event) -> None:
        sent.append((channel, event))

    monkeypatch.setattr(app.state.announcer.hub, "publish", record)
    await update(gql, admin_token, b, displayName="B")
    await update(gql, admin_token, b, isDefault=True)  # a loses it: both announced
    await gql.ok(DELETE, {"id": b}, token=admin_token)  # a becomes the default again
    await gql.ok(SET_THRESHOLD, {"id": a, "pct": 40}, token=member_token)
    await gql.ok(CLEAR_THRESHOLD, {"id": a}, token=member_token)
    event = [("config", ConfigChanged("model_config", key(g))) for g in (b, b, a, b, a)]
    mine = ("config", ConfigChanged("user_config", (await member()).id))
    assert sent == [*event, mine, mine]


# ---------------------------------------------------------------- visibility


async def test_members_see_enabled_configs_only_and_no_providers(
    gql: GraphQLClient, admin_token: str, member_token: str, provider: str
) -> None:
    on = (await create(gql, admin_token, provider, "on"))["modelConfig"]["id"]
    off = (await create(gql, admin_token, provider, "off", enabled=False))["modelConfig"]["id"]
    listed = (await gql.ok(LIST, token=member_token))["modelConfigs"]
    assert [(c["id"], c["provider"]) for c in listed] == [(on, None)]
    assert listed[0]["providerKind"] == "SCRIPTED"
    assert (await gql.ok(NODE, {"id": off}, token=member_token))["node"] is None
    assert (await gql.ok(NODE, {"id": on}, token=member_token))["node"]["id"] == on
    assert (await gql.ok(NODE, {"id": off}, token=admin_token))["node"]["id"] == off
    assert len((await gql.ok(LIST, token=admin_token))["modelConfigs"]) == 2
    error = await gql.error(LIST)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


# ---------------------------------------------------------------- compaction thresholds


async def test_compaction_threshold_override(
    gql: GraphQLClient,
    admin_token: str,
    member_token: str,
    provider: str,
    settings: Settings,
) -> None:
    gid = (await create(gql, admin_token, provider, compressionThreshold=60))["modelConfig"]["id"]
    me = await member()
    box = SecretBox(settings.resolved_secret_key())
    assert (await resolve_model(key(gid), me.id, box)).compression_threshold == 60
    for pct in (0, 100, 85):
        data = await gql.ok(SET_THRESHOLD, {"id": gid, "pct": pct}, token=member_token)
        assert data["setCompactionThreshold"]["threshold"] == {
            "modelConfig": {"id": gid},
            "percent": pct,
            "effectivePercent": pct,
        }
    [row] = await UserConfig.filter(user_id=me.id)
    assert (row.key, row.value) == (f"chat_compaction_threshold_pct:{key(gid)}", 85)
    assert (await resolve_model(key(gid), me.id, box)).compression_threshold == 85
    listed = (await gql.ok(THRESHOLDS, token=member_token))["compactionThresholds"]
    assert listed == [{"modelConfig": {"id": gid}, "percent": 85, "effectivePercent": 85}]
    # Per user: the admin still gets the model's own threshold.
    admin = await User.get(username="admin")
    assert (await resolve_model(key(gid), admin.id, box)).compression_threshold == 60
    assert (await gql.ok(THRESHOLDS, token=admin_token))["compactionThresholds"] == []

    data = await gql.ok(CLEAR_THRESHOLD, {"id": gid}, token=member_token)
    assert data["clearCompactionThreshold"]["threshold"] == {
        "modelConfig": {"id": gid},
        "percent": None,
        "effectivePercent": 60,
    }
    assert await UserConfig.filter(user_id=me.id).count() == 0
    assert (await resolve_model(key(gid), me.id, box)).compression_threshold == 60


async def test_compaction_threshold_rules(
    gql: GraphQLClient, admin_token: str, member_token: str, provider: str
) -> None:
    gid = (await create(gql, admin_token, provider))["modelConfig"]["id"]
    off = (await create(gql, admin_token, provider, "off", enabled=False))["modelConfig"]["id"]
    for pct in (-1, 101):
        error = await gql.error(SET_THRESHOLD, {"id": gid, "pct": pct}, token=member_token)
        bad_input(error, "percent")
    for target in (off, global_id.encode("ModelConfig", uuid.uuid4()), "garbage"):
        for query, variables in (
            (SET_THRESHOLD, {"id": target, "pct": 50}),
            (CLEAR_THRESHOLD, {"id": target}),
        ):
            bad_input(await gql.error(query, variables, token=member_token), "modelConfigId")
    error = await gql.error(SET_THRESHOLD, {"id": gid, "pct": 50})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert await UserConfig.all().count() == 0
    # Deleting the model drops everyone's override for it.
    await gql.ok(SET_THRESHOLD, {"id": gid, "pct": 50}, token=member_token)
    await gql.ok(DELETE, {"id": gid}, token=admin_token)
    assert await UserConfig.all().count() == 0
    bad_input(
        await gql.error(SET_THRESHOLD, {"id": gid, "pct": 50}, token=member_token),
        "modelConfigId",
    )


async def test_malformed_stored_overrides_are_ignored(
    gql: GraphQLClient, admin_token: str, member_token: str, provider: str, settings: Settings
) -> None:
    gid = (await create(gql, admin_token, provider))["modelConfig"]["id"]
    me = await member()
    box = SecretBox(settings.resolved_secret_key())
    for value in (101, -1, True, 85.5, {"pct": 5}, [85]):
        await UserConfig.filter(user_id=me.id).delete()
        await UserConfig.create(
            user_id=me.id, key=f"chat_compaction_threshold_pct:{key(gid)}", value=value
        )
        assert (await resolve_model(key(gid), me.id, box)).compression_threshold == 70
        assert (await gql.ok(THRESHOLDS, token=member_token))["compactionThresholds"] == []


# ---------------------------------------------------------------- chats' modelConfigId


async def _chat_rows() -> tuple[int, int]:
    return await Chat.all().count(), await ChatMessage.all().count()


def _chat_input(**extra: Any) -> dict[str, Any]:
    return {"input": {"content": [{"text": "hello"}], **extra}}


async def test_create_chat_refuses_unusable_model_configs_and_writes_nothing(
    gql: GraphQLClient, admin_token: str, member_token: str, provider: str
) -> None:
    await create(gql, admin_token, provider, "default")
    off = (await create(gql, admin_token, provider, "off", enabled=False))["modelConfig"]["id"]
    gone = (await create(gql, admin_token, provider, "gone"))["modelConfig"]["id"]
    await gql.ok(DELETE, {"id": gone}, token=admin_token)
    before = await _chat_rows()
    for bad in (
        "garbage",
        global_id.encode("Chat", uuid.uuid4()),
        global_id.encode("ModelConfig", uuid.uuid4()),
        off,
        gone,
    ):
        error = await gql.error(CREATE_CHAT, _chat_input(modelConfigId=bad), token=member_token)
        bad_input(error, "modelConfigId")
    assert await _chat_rows() == before


async def test_create_chat_uses_the_default_or_the_given_model(
    gql: GraphQLClient, admin_token: str, member_token: str, provider: str
) -> None:
    default = (await create(gql, admin_token, provider, "default"))["modelConfig"]["id"]
    other = (await create(gql, admin_token, provider, "other"))["modelConfig"]["id"]
    data = await gql.ok(CREATE_CHAT, _chat_input(), token=member_token)
    chat_gid = data["createChat"]["chat"]["id"]
    chat = await Chat.get(id=global_id.decode_uuid(chat_gid, "Chat"))
    assert chat.model_config_id == key(default)
    [message] = await ChatMessage.filter(chat_id=chat.id)
    assert message.model_config_id == key(default)
    data = await gql.ok(CREATE_CHAT, _chat_input(modelConfigId=other), token=member_token)
    chat = await Chat.get(id=global_id.decode_uuid(data["createChat"]["chat"]["id"], "Chat"))
    assert chat.model_config_id == key(other)


async def test_create_chat_without_any_default(gql: GraphQLClient, member_token: str) -> None:
    before = await _chat_rows()
    error = await gql.error(CREATE_CHAT, _chat_input(), token=member_token)
    assert error["message"] == "No default chat model config is configured."
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "modelConfigId"}
    assert await _chat_rows() == before


async def test_send_message_checks_the_model_config(
    gql: GraphQLClient, admin_token: str, member_token: str, provider: str
) -> None:
    await create(gql, admin_token, provider, "default")
    other = (await create(gql, admin_token, provider, "other"))["modelConfig"]["id"]
    off = (await create(gql, admin_token, provider, "off", enabled=False))["modelConfig"]["id"]
    chat_gid = (await gql.ok(CREATE_CHAT, _chat_input(), token=member_token))["createChat"]["chat"][
        "id"
    ]
    chat_key = global_id.decode_uuid(chat_gid, "Chat")
    await Chat.filter(id=chat_key).update(status="waiting")
    before = await _chat_rows()
    for bad in (off, global_id.encode("ModelConfig", uuid.uuid4())):
        variables = {
            "input": {"chatId": chat_gid, "content": [{"text": "x"}], "modelConfigId": bad}
        }
        bad_input(await gql.error(SEND, variables, token=member_token), "modelConfigId")
    assert await _chat_rows() == before
    variables = {"input": {"chatId": chat_gid, "content": [{"text": "x"}], "modelConfigId": other}}
    await gql.ok(SEND, variables, token=member_token)
    assert (await Chat.get(id=chat_key)).model_config_id == key(other)
    # Without one the chat keeps its model, whatever the default is now.
    await Chat.filter(id=chat_key).update(status="waiting")
    await gql.ok(
        SEND, {"input": {"chatId": chat_gid, "content": [{"text": "y"}]}}, token=member_token
    )
    assert (await Chat.get(id=chat_key)).model_config_id == key(other)


# ---------------------------------------------------------------- the fresh install


async def test_ensure_default_scripted_model_only_on_an_empty_install(
    gql: GraphQLClient, member_token: str, settings: Settings
) -> None:
    created = await ensure_default_scripted_model()
    assert created is not None
    assert (created.model, created.display_name, created.context_limit) == (
        "scripted",
        "Scripted (offline demo)",
        32_000,
    )
    assert created.is_default is True
    [provider] = await Provider.all()
    assert (provider.kind, provider.api_key_ciphertext, provider.enabled) == (
        "scripted",
        None,
        True,
    )
    assert await ensure_default_scripted_model() is None  # providers exist now
    assert await ModelConfig.all().count() == 1
    resolved = await resolve_model(None, (await member()).id, SecretBox("any"))
    assert (resolved.model, resolved.api_key) == ("scripted", None)
    # A first chat works with no API key anywhere.
    data = await gql.ok(CREATE_CHAT, _chat_input(), token=member_token)
    chat = await Chat.get(id=global_id.decode_uuid(data["createChat"]["chat"]["id"], "Chat"))
    assert chat.model_config_id == created.id
