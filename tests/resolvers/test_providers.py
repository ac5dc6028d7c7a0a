"""Providers: admin management, write-only encrypted keys, users' keys, the model
catalog, config events and the key policy ``resolve_model`` applies.

Each test starts with no providers (so no model configs or user keys either).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import asyncpg
import orjson
import pytest
from starlette.applications import Starlette

from db.model_resolution import KeySource, ModelUnavailable, resolve_model
from db.models import ModelConfig, Provider, User, UserProviderKey
from db.secret_box import SecretBox
from db.vocabulary import ChatErrorKind, ProviderKind
from events.payloads import ConfigChanged, Event
from resolvers import global_id
from server.settings import Settings
from tests.harness import GraphQLClient

CENTRAL_KEY = "sk-central-SECRET-4f1c9e2a7b"
USER_KEY = "sk-user-SECRET-8d3a6b0c51"
FIELDS = """
fragment F on Provider {
  id kind displayName baseUrl enabled hasApiKey
  centralKeyEnabled userKeysAllowed centralKeyFallback createdAt updatedAt
  modelConfigs { id }
}"""
CREATE = (
    """
mutation($input: CreateProviderInput!) {
  createProvider(input: $input) { provider { ...F } warnings }
}"""
    + FIELDS
)
UPDATE = (
    """
mutation($input: UpdateProviderInput!) {
  updateProvider(input: $input) { provider { ...F } warnings }
}"""
    + FIELDS
)
DELETE = """
mutation($id: ID!) { deleteProvider(input: {id: $id}) { deletedId warnings } }"""
PROVIDERS = "{ providers { ...F } }" + FIELDS
NODE = "query($id: ID!) { node(id: $id) { __typename ... on Provider { ...F } } }" + FIELDS
CATALOG_FIELDS = """
fragment C on ModelProvider {
  providerId kind displayName available unavailableReason
  userKeysAllowed hasUserApiKey centralKeyFallback
  models { id model displayName isDefault providerKind provider { id } }
}"""
CATALOG = "{ models { ...C } }" + CATALOG_FIELDS
SET_KEY = (
    """
mutation($id: ID!, $key: String!) {
  setUserProviderKey(input: {providerId: $id, apiKey: $key}) { provider { ...C } warnings }
}"""
    + CATALOG_FIELDS
)
CLEAR_KEY = (
    """
mutation($id: ID!) {
  clearUserProviderKey(input: {providerId: $id}) { provider { ...C } warnings }
}"""
    + CATALOG_FIELDS
)
CREATE_MODEL = """
mutation($input: CreateModelConfigInput!) {
  createModelConfig(input: $input) { modelConfig { id isDefault } warnings }
}"""


@pytest.fixture(autouse=True)
async def no_providers(app: Starlette) -> None:
    await Provider.all().delete()


@pytest.fixture
def box(settings: Settings) -> SecretBox:
    return SecretBox(settings.resolved_secret_key())


async def create(gql: GraphQLClient, token: str, **values: Any) -> dict[str, Any]:
    data = await gql.ok(CREATE, {"input": values}, token=token)
    return dict(data["createProvider"])


async def update(gql: GraphQLClient, token: str, gid: str, **values: Any) -> dict[str, Any]:
    data = await gql.ok(UPDATE, {"input": {"id": gid, **values}}, token=token)
    return dict(data["updateProvider"])


async def catalog(gql: GraphQLClient, token: str) -> dict[str, dict[str, Any]]:
    data = await gql.ok(CATALOG, token=token)
    return {entry["kind"]: entry for entry in data["models"]}


async def add_model(gql: GraphQLClient, token: str, provider_gid: str, model: str) -> str:
    data = await gql.ok(
        CREATE_MODEL,
        {"input": {"providerId": provider_gid, "model": model, "contextLimit": 1000}},
        token=token,
    )
    return str(data["createModelConfig"]["modelConfig"]["id"])


def bad_input(error: dict[str, Any], field: str) -> None:
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    # Control characters are refused before any resolver, naming the argument path.
    assert error["extensions"]["field"] in (field, f"input.{field}"), error


def key_of(gid: str) -> uuid.UUID:
    return global_id.decode_uuid(gid, "Provider")


async def raw_provider(database_url: str, gid: str) -> Any:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchrow("SELECT * FROM providers WHERE id = $1", key_of(gid))
    finally:
        await conn.close()


async def member_id() -> uuid.UUID:
    return (await User.get(username="member")).id


# ---------------------------------------------------------------- admin


async def test_members_and_strangers_cannot_manage_providers(
    gql: GraphQLClient, admin_token: str, member_token: str
) -> None:
    made = await create(gql, admin_token, kind="OPENAI", apiKey=CENTRAL_KEY)
    gid = made["provider"]["id"]
    attempts: list[tuple[str, dict[str, Any]]] = [
        (CREATE, {"input": {"kind": "ANTHROPIC"}}),
        (UPDATE, {"input": {"id": gid, "enabled": False}}),
        (DELETE, {"id": gid}),
        (PROVIDERS, {}),
    ]
    for query, variables in attempts:
        error = await gql.error(query, variables, token=member_token)
        assert error["extensions"]["code"] == "FORBIDDEN", error
        error = await gql.error(query, variables)
        assert error["extensions"]["code"] == "UNAUTHENTICATED", error
    assert await Provider.all().count() == 1
    assert (await Provider.get(id=key_of(gid))).enabled is True
    # Invisible as a node to members, like anything they may not read.
    assert (await gql.ok(NODE, {"id": gid}, token=member_token))["node"] is None
    node = (await gql.ok(NODE, {"id": gid}, token=admin_token))["node"]
    assert node["__typename"] == "Provider"
    assert node["kind"] == "OPENAI"


async def test_create_with_defaults(gql: GraphQLClient, admin_token: str) -> None:
    made = await create(gql, admin_token, kind="ANTHROPIC")
    provider = made["provider"]
    assert provider["displayName"] == "Anthropic"
    assert (provider["enabled"], provider["hasApiKey"], provider["baseUrl"]) == (True, False, None)
    assert (
        provider["centralKeyEnabled"],
        provider["userKeysAllowed"],
        provider["centralKeyFallback"],
    ) == (True, False, False)
    assert made["warnings"] == ["No API key is set: nobody can use this provider until one is."]
    assert global_id.decode(provider["id"]) == ("Provider", str(key_of(provider["id"])))
    row = await Provider.get(id=key_of(provider["id"]))
    assert row.kind == "anthropic"  # stored lowercase
    listed = (await gql.ok(PROVIDERS, token=admin_token))["providers"]
    assert [p["id"] for p in listed] == [provider["id"]]


async def test_key_is_write_only_and_encrypted_at_rest(
    gql: GraphQLClient, admin_token: str, database_url: str, box: SecretBox
) -> None:
    response = await gql.post(
        CREATE,
        {"input": {"kind": "OPENAI", "displayName": "  OpenAI prod  ", "apiKey": CENTRAL_KEY}},
        token=admin_token,
    )
    assert CENTRAL_KEY not in response.text
    body = response.json()
    provider = body["data"]["createProvider"]["provider"]
    assert provider["hasApiKey"] is True
    assert provider["displayName"] == "OpenAI prod"
    for query, variables in ((PROVIDERS, None), (NODE, {"id": provider["id"]})):
        text = (await gql.post(query, variables, token=admin_token)).text
        assert CENTRAL_KEY not in text
    row = await raw_provider(database_url, provider["id"])
    stored = row["api_key_ciphertext"]
    assert stored != CENTRAL_KEY
    assert CENTRAL_KEY not in stored
    assert CENTRAL_KEY not in str(dict(row))
    assert box.decrypt(stored) == CENTRAL_KEY


async def test_update_sets_and_clears_the_key_and_other_fields(
    gql: GraphQLClient, admin_token: str, database_url: str, box: SecretBox
) -> None:
    gid = (await create(gql, admin_token, kind="OPENAI"))["provider"]["id"]
    changed = await update(
        gql, admin_token, gid, apiKey=f"  {CENTRAL_KEY}\n", displayName="Main", enabled=False
    )
    assert changed["provider"]["hasApiKey"] is True
    assert (changed["provider"]["displayName"], changed["provider"]["enabled"]) == ("Main", False)
    assert changed["warnings"] == []
    assert box.decrypt((await raw_provider(database_url, gid))["api_key_ciphertext"]) == (
        CENTRAL_KEY  # trimmed
    )
    untouched = await update(gql, admin_token, gid, enabled=True)
    assert untouched["provider"]["hasApiKey"] is True  # absent apiKey keeps it
    assert untouched["provider"]["displayName"] == "Main"
    cleared = await update(gql, admin_token, gid, apiKey=None)
    assert cleared["provider"]["hasApiKey"] is False
    assert (await raw_provider(database_url, gid))["api_key_ciphertext"] is None


async def test_update_and_delete_unknown_or_malformed_ids(
    gql: GraphQLClient, admin_token: str
) -> None:
    missing = global_id.encode("Provider", uuid.uuid4())
    for query, variables in (
        (UPDATE, {"input": {"id": missing, "enabled": False}}),
        (DELETE, {"id": missing}),
    ):
        error = await gql.error(query, variables, token=admin_token)
        assert error["extensions"]["code"] == "NOT_FOUND"
    error = await gql.error(UPDATE, {"input": {"id": "garbage"}}, token=admin_token)
    bad_input(error, "id")
    chat_id = global_id.encode("Chat", uuid.uuid4())
    bad_input(await gql.error(DELETE, {"id": chat_id}, token=admin_token), "id")


async def test_one_provider_per_kind(gql: GraphQLClient, admin_token: str) -> None:
    await create(gql, admin_token, kind="OPENAI")
    error = await gql.error(CREATE, {"input": {"kind": "OPENAI"}}, token=admin_token)
    assert error["extensions"] == {"code": "CONFLICT", "kind": "OPENAI"}
    assert await Provider.all().count() == 1


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("https://api.example.com/v1/", "https://api.example.com/v1"),
        ("http://127.0.0.1:11434", "http://127.0.0.1:11434"),
        (" HTTPS://Example.com/openai ", "HTTPS://Example.com/openai"),
    ],
)
async def test_valid_base_urls(gql: GraphQLClient, admin_token: str, url: str, stored: str) -> None:
    made = await create(gql, admin_token, kind="OPENAI_COMPATIBLE", baseUrl=url)
    assert made["provider"]["baseUrl"] == stored


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "api.example.com/v1",
        "/v1",
        "ftp://example.com",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://",
        "https://user:pw@example.com",
        "https://token@example.com",
        "http://example.com:99999",
        "http://example.com:port",
        "https://example.com/#frag",
        "https://exa mple.com",
        "https://example.com/\x00",
        "https://example.com/" + "a" * 2048,
    ],
)
async def test_invalid_base_urls(gql: GraphQLClient, admin_token: str, url: str) -> None:
    error = await gql.error(
        CREATE, {"input": {"kind": "OPENAI", "baseUrl": url}}, token=admin_token
    )
    bad_input(error, "baseUrl")
    assert await Provider.all().count() == 0


async def test_openai_compatible_needs_a_base_url(gql: GraphQLClient, admin_token: str) -> None:
    bad_input(
        await gql.error(CREATE, {"input": {"kind": "OPENAI_COMPATIBLE"}}, token=admin_token),
        "baseUrl",
    )
    gid = (await create(gql, admin_token, kind="OPENAI_COMPATIBLE", baseUrl="http://llm:8000"))[
        "provider"
    ]["id"]
    error = await gql.error(UPDATE, {"input": {"id": gid, "baseUrl": None}}, token=admin_token)
    bad_input(error, "baseUrl")
    openai = (await create(gql, admin_token, kind="OPENAI", baseUrl="http://proxy"))["provider"]
    assert (await update(gql, admin_token, openai["id"], baseUrl=None))["provider"][
        "baseUrl"
    ] is None


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"centralKeyEnabled": False, "userKeysAllowed": False}, "centralKeyEnabled"),
        ({"centralKeyFallback": True}, "centralKeyFallback"),
        (
            {"centralKeyEnabled": False, "userKeysAllowed": True, "centralKeyFallback": True},
            "centralKeyFallback",
        ),
        (
            {"centralKeyEnabled": True, "userKeysAllowed": False, "centralKeyFallback": True},
            "centralKeyFallback",
        ),
    ],
)
async def test_invalid_key_policies(
    gql: GraphQLClient, admin_token: str, policy: dict[str, bool], field: str
) -> None:
    error = await gql.error(CREATE, {"input": {"kind": "OPENAI", **policy}}, token=admin_token)
    bad_input(error, field)
    gid = (await create(gql, admin_token, kind="OPENAI"))["provider"]["id"]
    bad_input(await gql.error(UPDATE, {"input": {"id": gid, **policy}}, token=admin_token), field)
    row = await Provider.get(id=key_of(gid))
    assert (row.central_key_enabled, row.user_keys_allowed, row.central_key_fallback) == (
        True,
        False,
        False,
    )


async def test_valid_key_policies_and_their_warnings(gql: GraphQLClient, admin_token: str) -> None:
    user_only = await create(
        gql, admin_token, kind="OPENAI", centralKeyEnabled=False, userKeysAllowed=True
    )
    assert user_only["warnings"] == []
    gid = user_only["provider"]["id"]
    stored_unused = await update(gql, admin_token, gid, apiKey=CENTRAL_KEY)
    assert stored_unused["warnings"] == [
        "The central API key is stored but unused while centralKeyEnabled is false."
    ]
    fallback = await update(
        gql, admin_token, gid, centralKeyEnabled=True, centralKeyFallback=True, apiKey=None
    )
    assert fallback["provider"]["centralKeyFallback"] is True
    assert fallback["warnings"] == [
        "No central API key is set: only users with their own key can use it."
    ]
    scripted = await create(gql, admin_token, kind="SCRIPTED")
    assert scripted["warnings"] == []  # needs no key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "   ",
        "a" * 10_241,
        "é" * 5_121,  # 10242 bytes in UTF-8
        "sk-with\nnewline",
        "sk-with\x00nul",
        "sk-\x1b[31m",
    ],
)
async def test_invalid_api_keys_are_refused_without_echo(
    gql: GraphQLClient, admin_token: str, key: str
) -> None:
    response = await gql.post(
        CREATE, {"input": {"kind": "OPENAI", "apiKey": key}}, token=admin_token
    )
    error = response.json()["errors"][0]
    bad_input(error, "apiKey")
    if key.strip():
        assert key.strip() not in orjson.dumps(response.json()).decode()
    gid = (await create(gql, admin_token, kind="ANTHROPIC"))["provider"]["id"]
    bad_input(
        await gql.error(UPDATE, {"input": {"id": gid, "apiKey": key}}, token=admin_token), "apiKey"
    )
    assert await Provider.filter(api_key_ciphertext__isnull=False).count() == 0


async def test_largest_key_fits(gql: GraphQLClient, admin_token: str, box: SecretBox) -> None:
    key = "k" * 10_240
    made = await create(gql, admin_token, kind="OPENAI", apiKey=key)
    row = await Provider.get(id=key_of(made["provider"]["id"]))
    assert row.api_key_ciphertext is not None
    assert box.decrypt(row.api_key_ciphertext) == key


async def test_keys_never_reach_the_logs(
    gql: GraphQLClient, admin_token: str, member_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    made = await create(
        gql,
        admin_token,
        kind="OPENAI",
        apiKey=CENTRAL_KEY,
        userKeysAllowed=True,
        centralKeyFallback=True,
    )
    gid = made["provider"]["id"]
    await update(gql, admin_token, gid, apiKey=CENTRAL_KEY + "2")
    await gql.error(
        UPDATE, {"input": {"id": gid, "apiKey": CENTRAL_KEY + "\n\x00"}}, token=admin_token
    )
    await gql.ok(SET_KEY, {"id": gid, "key": USER_KEY}, token=member_token)
    await gql.error(SET_KEY, {"id": gid, "key": USER_KEY + "\x07"}, token=member_token)
    await gql.error(CREATE, {"input": {"kind": "OPENAI", "apiKey": CENTRAL_KEY}}, token=admin_token)
    config = await ModelConfig.create(
        provider_id=key_of(gid), model="m", display_name="m", context_limit=10, is_default=True
    )
    with pytest.raises(ModelUnavailable):  # logs a warning about the undecryptable key
        await resolve_model(config.id, await member_id(), SecretBox("another secret"))
    assert "stored provider key cannot be decrypted" in caplog.text
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__)
        assert CENTRAL_KEY not in text
        assert USER_KEY not in text
    assert CENTRAL_KEY not in caplog.text
    assert USER_KEY not in caplog.text


async def test_delete_removes_models_and_user_keys_and_moves_the_default(
    gql: GraphQLClient, admin_token: str, member_token: str
) -> None:
    scripted = (await create(gql, admin_token, kind="SCRIPTED"))["provider"]["id"]
    openai = (
        await create(gql, admin_token, kind="OPENAI", centralKeyEnabled=False, userKeysAllowed=True)
    )["provider"]["id"]
    first = await add_model(gql, admin_token, openai, "gpt-a")  # the default
    await add_model(gql, admin_token, openai, "gpt-b")
    fallback = await add_model(gql, admin_token, scripted, "scripted")
    await gql.ok(SET_KEY, {"id": openai, "key": USER_KEY}, token=member_token)
    assert (await ModelConfig.get(id=global_id.decode_uuid(first, "ModelConfig"))).is_default
    data = await gql.ok(DELETE, {"id": openai}, token=admin_token)
    assert data["deleteProvider"] == {
        "deletedId": openai,
        "warnings": ["The default model is now 'scripted'."],
    }
    assert await Provider.filter(id=key_of(openai)).count() == 0
    assert await UserProviderKey.all().count() == 0
    remaining = await ModelConfig.all()
    assert [(str(m.id), m.is_default) for m in remaining] == [
        (str(global_id.decode_uuid(fallback, "ModelConfig")), True)
    ]
    data = await gql.ok(DELETE, {"id": scripted}, token=admin_token)
    assert data["deleteProvider"]["warnings"] == [
        "No enabled model config is left: chats cannot start until one exists."
    ]


# ---------------------------------------------------------------- catalog and users' keys


async def test_catalog_tells_admin_fixable_from_user_fixable(
    gql: GraphQLClient, admin_token: str, member_token: str
) -> None:
    central = (await create(gql, admin_token, kind="OPENAI"))["provider"]["id"]
    user_only = (
        await create(
            gql, admin_token, kind="ANTHROPIC", centralKeyEnabled=False, userKeysAllowed=True
        )
    )["provider"]["id"]
    scripted = (await create(gql, admin_token, kind="SCRIPTED"))["provider"]["id"]
    await add_model(gql, admin_token, central, "gpt")
    await add_model(gql, admin_token, user_only, "claude")
    await add_model(gql, admin_token, scripted, "scripted")

    seen = await catalog(gql, member_token)
    assert (seen["OPENAI"]["available"], seen["OPENAI"]["unavailableReason"]) == (
        False,
        "MISSING_API_KEY",
    )
    assert (seen["ANTHROPIC"]["available"], seen["ANTHROPIC"]["unavailableReason"]) == (
        False,
        "USER_API_KEY_REQUIRED",
    )
    assert (seen["SCRIPTED"]["available"], seen["SCRIPTED"]["unavailableReason"]) == (True, None)
    assert [m["model"] for m in seen["ANTHROPIC"]["models"]] == ["claude"]
    assert seen["ANTHROPIC"]["models"][0]["providerKind"] == "ANTHROPIC"
    assert seen["ANTHROPIC"]["models"][0]["provider"] is None  # members do not see providers
    assert seen["OPENAI"]["providerId"] == central

    await update(gql, admin_token, central, apiKey=CENTRAL_KEY)  # the admin fixes theirs
    await gql.ok(SET_KEY, {"id": user_only, "key": USER_KEY}, token=member_token)  # the user
    seen = await catalog(gql, member_token)
    assert all(entry["available"] for entry in seen.values())
    assert seen["ANTHROPIC"]["hasUserApiKey"] is True
    # Keys are per user: the admin has none for the user-key provider.
    admin_view = await catalog(gql, admin_token)
    assert admin_view["ANTHROPIC"]["unavailableReason"] == "USER_API_KEY_REQUIRED"
    assert admin_view["ANTHROPIC"]["models"][0]["provider"] == {"id": user_only}

    await update(gql, admin_token, scripted, enabled=False)
    seen = await catalog(gql, member_token)
    assert (seen["SCRIPTED"]["available"], seen["SCRIPTED"]["unavailableReason"]) == (
        False,
        "PROVIDER_DISABLED",
    )


async def test_catalog_fallback_and_disabled_models(
    gql: GraphQLClient, admin_token: str, member_token: str
) -> None:
    gid = (
        await create(gql, admin_token, kind="OPENAI", userKeysAllowed=True, centralKeyFallback=True)
    )["provider"]["id"]
    model_gid = await add_model(gql, admin_token, gid, "gpt")
    await gql.ok(
        "mutation($id: ID!) { updateModelConfig(input: {id: $id, enabled: false}) { warnings } }",
        {"id": await add_model(gql, admin_token, gid, "hidden")},
        token=admin_token,
    )
    entry = (await catalog(gql, member_token))["OPENAI"]
    # Fallback without a central key: the user can still fix it with their own.
    assert (entry["unavailableReason"], entry["centralKeyFallback"]) == (
        "USER_API_KEY_REQUIRED",
        False,
    )
    assert [m["id"] for m in entry["models"]] == [model_gid]
    await update(gql, admin_token, gid, apiKey=CENTRAL_KEY)
    entry = (await catalog(gql, member_token))["OPENAI"]
    assert (entry["available"], entry["centralKeyFallback"], entry["hasUserApiKey"]) == (
        True,
        True,
        False,
    )
    # Without the fallback, users need their own key even though a central one exists.
    await update(gql, admin_token, gid, centralKeyFallback=False)
    entry = (await catalog(gql, member_token))["OPENAI"]
    assert entry["unavailableReason"] == "USER_API_KEY_REQUIRED"


async def test_catalog_needs_a_viewer(gql: GraphQLClient) -> None:
    error = await gql.error(CATALOG)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_user_keys_are_write_only_encrypted_and_clearable(
    gql: GraphQLClient, member_token: str, admin_token: str, database_url: str, box: SecretBox
) -> None:
    gid = (
        await create(gql, admin_token, kind="OPENAI", centralKeyEnabled=False, userKeysAllowed=True)
    )["provider"]["id"]
    response = await gql.post(SET_KEY, {"id": gid, "key": f" {USER_KEY} "}, token=member_token)
    assert USER_KEY not in response.text
    entry = response.json()["data"]["setUserProviderKey"]["provider"]
    assert (entry["hasUserApiKey"], entry["available"]) == (True, True)
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT * FROM user_provider_keys")
    finally:
        await conn.close()
    [row] = rows
    assert row["user_id"] == await member_id()
    assert USER_KEY not in row["api_key_ciphertext"]
    assert box.decrypt(row["api_key_ciphertext"]) == USER_KEY
    # Setting again replaces, never duplicates.
    await gql.ok(SET_KEY, {"id": gid, "key": USER_KEY + "-v2"}, token=member_token)
    [stored] = await UserProviderKey.all()
    assert box.decrypt(stored.api_key_ciphertext) == USER_KEY + "-v2"
    for _ in range(2):  # idempotent
        data = await gql.ok(CLEAR_KEY, {"id": gid}, token=member_token)
        entry = data["clearUserProviderKey"]["provider"]
        assert (entry["hasUserApiKey"], entry["unavailableReason"]) == (
            False,
            "USER_API_KEY_REQUIRED",
        )
    assert await UserProviderKey.all().count() == 0


async def test_user_keys_only_where_allowed(
    gql: GraphQLClient, member_token: str, admin_token: str
) -> None:
    central = (await create(gql, admin_token, kind="OPENAI"))["provider"]["id"]
    scripted = (await create(gql, admin_token, kind="SCRIPTED", userKeysAllowed=True))["provider"][
        "id"
    ]
    for gid in (central, scripted):
        error = await gql.error(SET_KEY, {"id": gid, "key": USER_KEY}, token=member_token)
        bad_input(error, "providerId")
    missing = global_id.encode("Provider", uuid.uuid4())
    error = await gql.error(SET_KEY, {"id": missing, "key": USER_KEY}, token=member_token)
    assert error["extensions"]["code"] == "NOT_FOUND"
    bad_input(
        await gql.error(SET_KEY, {"id": "x", "key": USER_KEY}, token=member_token), "providerId"
    )
    error = await gql.error(SET_KEY, {"id": central, "key": USER_KEY})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    await update(gql, admin_token, central, userKeysAllowed=True)
    bad_input(
        await gql.error(SET_KEY, {"id": central, "key": "a" * 10_241}, token=member_token), "apiKey"
    )
    assert await UserProviderKey.all().count() == 0


# ---------------------------------------------------------------- config events


@pytest.fixture
def published(app: Starlette, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    hub = app.state.announcer.hub
    sent: list[Any] = []

    async def record(channel: str, event: Event) -> None:
        sent.append((channel, event))

    monkeypatch.setattr(hub, "publish", record)
    return sent


async def test_changes_are_announced_on_the_config_channel(
    gql: GraphQLClient, admin_token: str, member_token: str, published: list[Any]
) -> None:
    made = await create(gql, admin_token, kind="OPENAI", userKeysAllowed=True)
    key = key_of(made["provider"]["id"])
    await update(gql, admin_token, made["provider"]["id"], enabled=False)
    await gql.ok(SET_KEY, {"id": made["provider"]["id"], "key": USER_KEY}, token=member_token)
    await gql.ok(DELETE, {"id": made["provider"]["id"]}, token=admin_token)
    assert published == [
        ("config", ConfigChanged("provider", key)),
        ("config", ConfigChanged("provider", key)),
        ("config", ConfigChanged("user_config", await member_id())),
        ("config", ConfigChanged("provider", key)),
    ]
    assert USER_KEY not in repr(published)


async def test_a_failed_announcement_does_not_undo_the_change(
    gql: GraphQLClient,
    admin_token: str,
    app: Starlette,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(channel: str, event: Event) -> None:
        raise ConnectionError("broadcast backend down")

    monkeypatch.setattr(app.state.announcer.hub, "publish", broken)
    made = await create(gql, admin_token, kind="OPENAI", apiKey=CENTRAL_KEY)
    assert made["provider"]["hasApiKey"] is True
    assert await Provider.all().count() == 1
    assert "publishing a config event failed" in caplog.text
    assert CENTRAL_KEY not in caplog.text


# ---------------------------------------------------------------- resolve_model's key policy


async def _provider(
    *,
    central: bool = True,
    user: bool = False,
    fallback: bool = False,
    central_key: bool = False,
    enabled: bool = True,
    box: SecretBox,
) -> tuple[Provider, ModelConfig]:
    provider = await Provider.create(
        kind=ProviderKind.OPENAI,
        display_name="OpenAI",
        base_url="https://api.example.com/v1",
        enabled=enabled,
        central_key_enabled=central,
        user_keys_allowed=user,
        central_key_fallback=fallback,
        api_key_ciphertext=box.encrypt(CENTRAL_KEY) if central_key else None,
    )
    config = await ModelConfig.create(
        provider=provider,
        model="gpt-x",
        display_name="GPT X",
        context_limit=128_000,
        is_default=True,
        input_price_micros=2_500_000,
        output_price_micros=10_000_000,
        max_output_tokens=4096,
    )
    return provider, config


# (central, user, fallback, central key stored, user key stored) → key source or error kind
MATRIX = [
    ((True, False, False, True, False), KeySource.CENTRAL),
    ((True, False, False, True, True), KeySource.CENTRAL),  # a stray user key is ignored
    ((True, False, False, False, False), ChatErrorKind.MISSING_KEY),
    ((False, True, False, False, True), KeySource.USER),
    ((False, True, False, True, False), ChatErrorKind.MISSING_KEY),
    ((True, True, False, True, True), KeySource.USER),
    ((True, True, False, True, False), ChatErrorKind.MISSING_KEY),  # no fallback
    ((True, True, True, True, True), KeySource.USER),  # user key preferred
    ((True, True, True, True, False), KeySource.CENTRAL),  # fallback
    ((True, True, True, False, False), ChatErrorKind.MISSING_KEY),
    ((True, True, True, False, True), KeySource.USER),
]


@pytest.mark.parametrize(("policy", "expected"), MATRIX)
async def test_resolve_model_key_policy_matrix(
    member_token: str,
    box: SecretBox,
    policy: tuple[bool, bool, bool, bool, bool],
    expected: KeySource | ChatErrorKind,
) -> None:
    central, user, fallback, central_key, user_key = policy
    provider, config = await _provider(
        central=central, user=user, fallback=fallback, central_key=central_key, box=box
    )
    me = await member_id()
    if user_key:
        await UserProviderKey.create(
            user_id=me, provider=provider, api_key_ciphertext=box.encrypt(USER_KEY)
        )
    if isinstance(expected, KeySource):
        for wanted in (config.id, None):  # by id, and as the default
            resolved = await resolve_model(wanted, me, box)
            assert resolved.key_source is expected
            assert resolved.api_key == (USER_KEY if expected is KeySource.USER else CENTRAL_KEY)
            assert USER_KEY not in repr(resolved)
            assert CENTRAL_KEY not in repr(resolved)
    else:
        with pytest.raises(ModelUnavailable) as caught:
            await resolve_model(config.id, me, box)
        assert caught.value.kind is expected
        assert ("your own API key" in caught.value.message) is user


async def test_resolve_model_returns_everything_a_turn_needs(
    member_token: str, box: SecretBox
) -> None:
    provider, config = await _provider(central_key=True, box=box)
    resolved = await resolve_model(config.id, await member_id(), box)
    assert resolved.model_config_id == config.id
    assert resolved.provider_id == provider.id
    assert resolved.provider_kind is ProviderKind.OPENAI
    assert resolved.base_url == "https://api.example.com/v1"
    assert (resolved.model, resolved.display_name) == ("gpt-x", "GPT X")
    assert (resolved.context_limit, resolved.compression_threshold) == (128_000, 70)
    assert resolved.max_output_tokens == 4096
    assert (resolved.prices.input_micros, resolved.prices.output_micros) == (2_500_000, 10_000_000)


async def test_resolve_model_failures(member_token: str, box: SecretBox) -> None:
    me = await member_id()
    with pytest.raises(ModelUnavailable) as caught:
        await resolve_model(None, me, box)
    assert caught.value.kind is ChatErrorKind.CONFIG
    assert caught.value.message == "No default chat model config is configured."
    with pytest.raises(ModelUnavailable) as caught:
        await resolve_model(uuid.uuid4(), me, box)
    assert caught.value.kind is ChatErrorKind.CONFIG

    provider, config = await _provider(central_key=True, enabled=False, box=box)
    with pytest.raises(ModelUnavailable) as caught:
        await resolve_model(config.id, me, box)
    assert caught.value.kind is ChatErrorKind.PROVIDER_DISABLED

    provider.enabled = True
    await provider.save()
    with pytest.raises(ModelUnavailable) as caught:  # sealed under another secret
        await resolve_model(config.id, me, SecretBox("a different deployment secret"))
    assert caught.value.kind is ChatErrorKind.MISSING_KEY
    assert "cannot be decrypted" in caught.value.message

    config.enabled = False
    await config.save()
    with pytest.raises(ModelUnavailable) as caught:
        await resolve_model(config.id, me, box)
    assert caught.value.kind is ChatErrorKind.CONFIG
    config.enabled, config.deleted, config.is_default = True, True, False
    await config.save()
    with pytest.raises(ModelUnavailable) as caught:
        await resolve_model(config.id, me, box)
    assert caught.value.kind is ChatErrorKind.CONFIG


async def test_scripted_needs_no_key(member_token: str, box: SecretBox) -> None:
    provider = await Provider.create(kind=ProviderKind.SCRIPTED, display_name="Scripted")
    config = await ModelConfig.create(
        provider=provider, model="scripted", display_name="S", context_limit=1000, is_default=True
    )
    resolved = await resolve_model(None, await member_id(), box)
    assert (resolved.model_config_id, resolved.key_source, resolved.api_key) == (
        config.id,
        KeySource.NONE,
        None,
    )
