"""Chat settings for workspaces and agents: the template allowlist, the workspace
TTL, the explore-model override and plan-mode instructions, through the API and
through the typed readers the daemon uses.

Each test starts with none of these settings stored.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from starlette.applications import Starlette

from db import chat_config
from db.models import ModelConfig, SiteConfig, WorkspaceTemplate
from db.vocabulary import WorkspaceSourceKind
from resolvers import global_id
from tests.harness import GraphQLClient

KEYS = [
    chat_config.TEMPLATE_ALLOWLIST_KEY,
    chat_config.WORKSPACE_TTL_KEY,
    chat_config.EXPLORE_MODEL_OVERRIDE_KEY,
    chat_config.PLAN_MODE_INSTRUCTIONS_KEY,
    chat_config.RETENTION_DAYS_KEY,
]
PUBLIC = "{ chatConfig { chatRetentionDays workspaceTtlSeconds templateAllowlist } }"
ADMIN_FIELDS = """
fragment A on ChatConfig {
  exploreModelOverride { modelConfig { id enabled } hasMalformedOverride }
  planModeInstructions
}"""
ADMIN = "{ chatConfig { chatRetentionDays ...A } }" + ADMIN_FIELDS
UPDATE = (
    """
mutation($input: UpdateChatConfigInput!) {
  updateChatConfig(input: $input) {
    chatRetentionDays workspaceTtlSeconds templateAllowlist ...A
  }
}"""
    + ADMIN_FIELDS
)


@pytest.fixture(autouse=True)
async def no_settings(app: Starlette) -> None:
    await SiteConfig.filter(key__in=KEYS).delete()
    await WorkspaceTemplate.all().delete()


async def put(key: str, value: Any) -> None:
    """Stores any JSON value as it is (Tortoise's JSONField cannot save a bare string)."""
    await chat_config.write_raw(key, value)


async def stored(key: str) -> Any:
    row = await SiteConfig.filter(key=key).first()
    return None if row is None else row.value


async def update(gql: GraphQLClient, token: str, **values: Any) -> dict[str, Any]:
    data = await gql.ok(UPDATE, {"input": values}, token=token)
    return dict(data["updateChatConfig"])


async def update_error(gql: GraphQLClient, token: str, **values: Any) -> dict[str, Any]:
    return dict(await gql.error(UPDATE, {"input": values}, token=token))


def assert_bad_input(error: dict[str, Any], field: str) -> None:
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    # Control characters are refused before any resolver, naming the argument path.
    assert error["extensions"]["field"] in (field, f"input.{field}"), error


async def template(name: str, *, deprecated: bool = False) -> WorkspaceTemplate:
    return await WorkspaceTemplate.create(
        name=name,
        source="/srv/templates/" + name,
        source_kind=WorkspaceSourceKind.DIRECTORY,
        deprecated=deprecated,
    )


def tid(row: WorkspaceTemplate) -> str:
    return global_id.encode("WorkspaceTemplate", row.id)


async def enabled_config() -> ModelConfig:
    return await ModelConfig.filter(enabled=True, deleted=False).order_by("created_at").get()


async def disabled_config() -> ModelConfig:
    model = await enabled_config()
    return await ModelConfig.create(
        provider_id=model.provider_id,  # type: ignore[attr-defined]
        model=f"off-{uuid.uuid4().hex[:6]}",
        display_name="Off",
        enabled=False,
        context_limit=1000,
    )


def mid(row: ModelConfig) -> str:
    return global_id.encode("ModelConfig", row.id)


# --- reading -------------------------------------------------------------------------


async def test_defaults(gql: GraphQLClient, admin_token: str, member_token: str) -> None:
    data = await gql.ok(PUBLIC, token=member_token)
    assert data["chatConfig"] == {
        "chatRetentionDays": 30,
        "workspaceTtlSeconds": 0,
        "templateAllowlist": [],
    }
    data = await gql.ok(ADMIN, token=admin_token)
    assert data["chatConfig"]["exploreModelOverride"] == {
        "modelConfig": None,
        "hasMalformedOverride": False,
    }
    assert data["chatConfig"]["planModeInstructions"] == ""


async def test_members_cannot_read_the_admin_fields_but_still_read_the_rest(
    gql: GraphQLClient, member_token: str
) -> None:
    result = await gql(ADMIN, token=member_token)
    assert result["data"]["chatConfig"] == {
        "chatRetentionDays": 30,
        "exploreModelOverride": None,
        "planModeInstructions": None,
    }
    assert sorted(e["path"][-1] for e in result["errors"]) == [
        "exploreModelOverride",
        "planModeInstructions",
    ]
    assert {e["extensions"]["code"] for e in result["errors"]} == {"FORBIDDEN"}


async def test_members_cannot_change_settings(gql: GraphQLClient, member_token: str) -> None:
    error = await gql.error(
        "mutation { updateChatConfig(input: {workspaceTtlSeconds: 600}) { workspaceTtlSeconds } }",
        token=member_token,
    )
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert await stored(chat_config.WORKSPACE_TTL_KEY) is None


# --- workspace TTL ------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0, 60, 3600, 2_592_000])
async def test_workspace_ttl_is_stored_in_milliseconds(
    gql: GraphQLClient, admin_token: str, seconds: int
) -> None:
    assert (await update(gql, admin_token, workspaceTtlSeconds=seconds))[
        "workspaceTtlSeconds"
    ] == seconds
    assert await stored(chat_config.WORKSPACE_TTL_KEY) == seconds * 1000
    assert await chat_config.workspace_ttl_s() == seconds


@pytest.mark.parametrize("seconds", [-1, 1, 59, 2_592_001])
async def test_workspace_ttl_bounds(gql: GraphQLClient, admin_token: str, seconds: int) -> None:
    error = await update_error(gql, admin_token, workspaceTtlSeconds=seconds)
    assert_bad_input(error, "workspaceTtlSeconds")
    assert error["extensions"]["minimum"] == 60
    assert error["extensions"]["maximum"] == 2_592_000
    assert await stored(chat_config.WORKSPACE_TTL_KEY) is None


@pytest.mark.parametrize("value", ["1h", 59_000, 60_500, True, -60_000, 2_592_001_000])
async def test_a_malformed_stored_ttl_reads_as_zero(value: Any) -> None:
    await put(chat_config.WORKSPACE_TTL_KEY, value)
    assert await chat_config.workspace_ttl_s() == 0


# --- template allowlist ---------------------------------------------------------------


async def test_allowlist_is_deduplicated_and_stored_as_lower_case_uuids(
    gql: GraphQLClient, admin_token: str, member_token: str
) -> None:
    alpha, beta = await template("alpha"), await template("beta")
    result = await update(gql, admin_token, templateAllowlist=[tid(beta), tid(alpha), tid(beta)])
    assert result["templateAllowlist"] == [tid(beta), tid(alpha)]
    assert await stored(chat_config.TEMPLATE_ALLOWLIST_KEY) == [str(beta.id), str(alpha.id)]
    assert await chat_config.template_allowlist() == [beta.id, alpha.id]
    data = await gql.ok(PUBLIC, token=member_token)
    assert data["chatConfig"]["templateAllowlist"] == [tid(beta), tid(alpha)]
    assert (await update(gql, admin_token, templateAllowlist=[]))["templateAllowlist"] == []
    assert await chat_config.template_allowlist() == []


async def test_upper_case_ids_are_stored_lower_case(gql: GraphQLClient, admin_token: str) -> None:
    row = await template("alpha")
    upper = global_id.encode("WorkspaceTemplate", str(row.id).upper())
    assert (await update(gql, admin_token, templateAllowlist=[upper]))["templateAllowlist"] == [
        tid(row)
    ]
    assert await stored(chat_config.TEMPLATE_ALLOWLIST_KEY) == [str(row.id)]


@pytest.mark.parametrize("problem", ["missing", "deprecated", "garbage", "other-type"])
async def test_allowlist_ids_must_be_usable_templates(
    gql: GraphQLClient, admin_token: str, problem: str
) -> None:
    good = await template("good")
    bad = {
        "missing": global_id.encode("WorkspaceTemplate", uuid.uuid4()),
        "deprecated": tid(await template("old", deprecated=True)),
        "garbage": "not-an-id",
        "other-type": global_id.encode("ModelConfig", uuid.uuid4()),
    }[problem]
    error = await update_error(
        gql, admin_token, templateAllowlist=[tid(good), bad], chatRetentionDays=7
    )
    assert_bad_input(error, "templateAllowlist[1]")
    # All or nothing: the valid retention change was not written either.
    assert await stored(chat_config.TEMPLATE_ALLOWLIST_KEY) is None
    assert await stored(chat_config.RETENTION_DAYS_KEY) is None


async def test_a_malformed_stored_allowlist_skips_bad_entries() -> None:
    key = uuid.uuid4()
    await put(chat_config.TEMPLATE_ALLOWLIST_KEY, ["junk", str(key), 7, str(key)])
    assert await chat_config.template_allowlist() == [key]
    await SiteConfig.filter(key=chat_config.TEMPLATE_ALLOWLIST_KEY).delete()
    await put(chat_config.TEMPLATE_ALLOWLIST_KEY, {"a": 1})
    assert await chat_config.template_allowlist() == []


# --- explore model override -------------------------------------------------------------


async def test_explore_override_set_read_keep_and_clear(
    gql: GraphQLClient, admin_token: str
) -> None:
    model = await enabled_config()
    result = await update(gql, admin_token, exploreModelOverrideId=mid(model))
    assert result["exploreModelOverride"] == {
        "modelConfig": {"id": mid(model), "enabled": True},
        "hasMalformedOverride": False,
    }
    assert await stored(chat_config.EXPLORE_MODEL_OVERRIDE_KEY) == str(model.id)
    assert await chat_config.explore_model_override() == (model.id, False)
    # Omitted: unchanged.
    result = await update(gql, admin_token, chatRetentionDays=10)
    assert result["exploreModelOverride"]["modelConfig"] == {"id": mid(model), "enabled": True}
    # null: cleared.
    result = await update(gql, admin_token, exploreModelOverrideId=None)
    assert result["exploreModelOverride"] == {"modelConfig": None, "hasMalformedOverride": False}
    assert await stored(chat_config.EXPLORE_MODEL_OVERRIDE_KEY) is None
    assert await chat_config.explore_model_override() == (None, False)


@pytest.mark.parametrize("problem", ["disabled", "deleted", "missing", "garbage", "other-type"])
async def test_explore_override_must_be_an_enabled_model_config(
    gql: GraphQLClient, admin_token: str, problem: str
) -> None:
    if problem == "disabled":
        gid = mid(await disabled_config())
    elif problem == "deleted":
        row = await disabled_config()
        await ModelConfig.filter(id=row.id).update(enabled=True, deleted=True)
        gid = mid(row)
    else:
        gid = {
            "missing": global_id.encode("ModelConfig", uuid.uuid4()),
            "garbage": "garbage",
            "other-type": global_id.encode("WorkspaceTemplate", uuid.uuid4()),
        }[problem]
    error = await update_error(gql, admin_token, exploreModelOverrideId=gid)
    assert_bad_input(error, "exploreModelOverrideId")
    assert error["message"] == "exploreModelOverrideId: Invalid model config."
    assert await stored(chat_config.EXPLORE_MODEL_OVERRIDE_KEY) is None


@pytest.mark.parametrize("value", ["not-a-uuid", 42, ["x"], str(uuid.uuid4())])
async def test_a_malformed_stored_override_reads_as_unset_and_can_be_cleared(
    gql: GraphQLClient, admin_token: str, value: Any
) -> None:
    await put(chat_config.EXPLORE_MODEL_OVERRIDE_KEY, value)
    data = await gql.ok(ADMIN, token=admin_token)
    assert data["chatConfig"]["exploreModelOverride"] == {
        "modelConfig": None,
        "hasMalformedOverride": True,
    }
    key, malformed = await chat_config.explore_model_override()
    if isinstance(value, str) and value != "not-a-uuid":  # a UUID of no model config
        assert (key, malformed) == (uuid.UUID(value), False)
    else:
        assert (key, malformed) == (None, True)
    result = await update(gql, admin_token, exploreModelOverrideId=None)
    assert result["exploreModelOverride"] == {"modelConfig": None, "hasMalformedOverride": False}


async def test_an_override_written_through_the_orm_is_malformed(
    gql: GraphQLClient, admin_token: str
) -> None:
    await SiteConfig.create(key=chat_config.EXPLORE_MODEL_OVERRIDE_KEY, value={"id": "x"})
    data = await gql.ok(ADMIN, token=admin_token)
    assert data["chatConfig"]["exploreModelOverride"]["hasMalformedOverride"] is True
    assert await chat_config.explore_model_override() == (None, True)


async def test_a_later_disabled_override_is_shown_as_it_is(
    gql: GraphQLClient, admin_token: str
) -> None:
    row = await disabled_config()
    await put(chat_config.EXPLORE_MODEL_OVERRIDE_KEY, str(row.id))
    data = await gql.ok(ADMIN, token=admin_token)
    assert data["chatConfig"]["exploreModelOverride"] == {
        "modelConfig": {"id": mid(row), "enabled": False},
        "hasMalformedOverride": False,
    }


# --- plan-mode instructions -------------------------------------------------------------


async def test_plan_mode_instructions(gql: GraphQLClient, admin_token: str) -> None:
    result = await update(gql, admin_token, planModeInstructions="  Ask before big changes.\n")
    assert result["planModeInstructions"] == "Ask before big changes."
    assert await chat_config.plan_mode_instructions() == "Ask before big changes."
    result = await update(gql, admin_token, chatRetentionDays=30)
    assert result["planModeInstructions"] == "Ask before big changes."
    result = await update(gql, admin_token, planModeInstructions="   ")
    assert result["planModeInstructions"] == ""
    assert await stored(chat_config.PLAN_MODE_INSTRUCTIONS_KEY) is None


async def test_plan_mode_instructions_limits(gql: GraphQLClient, admin_token: str) -> None:
    longest = "x" * chat_config.PLAN_MODE_INSTRUCTIONS_MAX
    assert (await update(gql, admin_token, planModeInstructions=longest))[
        "planModeInstructions"
    ] == longest
    for bad in (longest + "x", "nul\x00here"):
        error = await update_error(gql, admin_token, planModeInstructions=bad)
        assert_bad_input(error, "planModeInstructions")
    assert await chat_config.plan_mode_instructions() == longest


async def test_a_malformed_stored_instruction_reads_as_empty() -> None:
    await put(chat_config.PLAN_MODE_INSTRUCTIONS_KEY, {"text": "x"})
    assert await chat_config.plan_mode_instructions() == ""


# --- several at once ------------------------------------------------------------------


async def test_one_update_changes_everything_given(gql: GraphQLClient, admin_token: str) -> None:
    row = await template("alpha")
    model = await enabled_config()
    result = await update(
        gql,
        admin_token,
        chatRetentionDays=5,
        workspaceTtlSeconds=120,
        templateAllowlist=[tid(row)],
        exploreModelOverrideId=mid(model),
        planModeInstructions="plan",
    )
    assert result == {
        "chatRetentionDays": 5,
        "workspaceTtlSeconds": 120,
        "templateAllowlist": [tid(row)],
        "exploreModelOverride": {
            "modelConfig": {"id": mid(model), "enabled": True},
            "hasMalformedOverride": False,
        },
        "planModeInstructions": "plan",
    }


async def test_a_late_invalid_field_writes_nothing(gql: GraphQLClient, admin_token: str) -> None:
    row = await template("alpha")
    error = await update_error(
        gql,
        admin_token,
        chatRetentionDays=5,
        workspaceTtlSeconds=120,
        templateAllowlist=[tid(row)],
        planModeInstructions="plan",
        exploreModelOverrideId=global_id.encode("ModelConfig", uuid.uuid4()),
    )
    assert_bad_input(error, "exploreModelOverrideId")
    assert await SiteConfig.filter(key__in=KEYS).count() == 0
