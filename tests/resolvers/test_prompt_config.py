"""The deployment system prompt (administrators) and personal instructions (anyone
signed in): read, set together, capped with the limit named, nothing half-written."""

from __future__ import annotations

from typing import Any

import pytest

from db import system_prompt
from db.chat_config import write_raw
from db.models import SiteConfig, UserConfig
from db.system_prompt import DEFAULT_SYSTEM_PROMPT
from tests.harness import GraphQLClient, counted_queries

READ = """{ chatConfig { systemPrompt {
  customPrompt includeDefaultSystemPrompt defaultSystemPrompt effectivePrompt } } }"""
UPDATE = """
mutation($custom: String!, $include: Boolean!) {
  updateSystemPromptConfig(input: {customPrompt: $custom, includeDefaultSystemPrompt: $include}) {
    systemPromptConfig { customPrompt includeDefaultSystemPrompt effectivePrompt }
    warnings
  }
}"""
PERSONAL = "{ viewer { personalInstructions } }"
SET_PERSONAL = """
mutation($text: String!) {
  updatePersonalInstructions(input: {instructions: $text}) {
    viewer { personalInstructions user { username } }
    warnings
  }
}"""
KEYS = [system_prompt.CUSTOM_KEY, system_prompt.INCLUDE_DEFAULT_KEY]


@pytest.fixture(autouse=True)
async def unset(admin_token: str, member_token: str) -> None:
    """Each test starts with nothing stored."""
    await SiteConfig.filter(key__in=KEYS).delete()
    await UserConfig.filter(key=system_prompt.USER_PROMPT_KEY).delete()


async def config(gql: GraphQLClient, token: str) -> dict[str, Any]:
    found: dict[str, Any] = (await gql.ok(READ, token=token))["chatConfig"]["systemPrompt"]
    return found


async def stored() -> dict[str, Any]:
    return {row.key: row.value for row in await SiteConfig.filter(key__in=KEYS)}


# -- the deployment system prompt -----------------------------------------------------------


async def test_unset_it_is_the_built_in_prompt(gql: GraphQLClient, admin_token: str) -> None:
    assert await config(gql, admin_token) == {
        "customPrompt": "",
        "includeDefaultSystemPrompt": True,
        "defaultSystemPrompt": DEFAULT_SYSTEM_PROMPT,
        "effectivePrompt": DEFAULT_SYSTEM_PROMPT,
    }


@pytest.mark.parametrize(
    ("custom", "include", "effective"),
    [
        ("  Answer in French.\n", True, f"{DEFAULT_SYSTEM_PROMPT}\n\nAnswer in French."),
        ("Answer in French.", False, "Answer in French."),
        ("", True, DEFAULT_SYSTEM_PROMPT),
        ("   ", False, ""),
    ],
)
async def test_an_admin_sets_both_and_reads_the_composition(
    gql: GraphQLClient, admin_token: str, custom: str, include: bool, effective: str
) -> None:
    data = await gql.ok(UPDATE, {"custom": custom, "include": include}, token=admin_token)
    expected = {
        "customPrompt": custom.strip(),
        "includeDefaultSystemPrompt": include,
        "effectivePrompt": effective,
    }
    assert data["updateSystemPromptConfig"] == {"systemPromptConfig": expected, "warnings": []}
    assert await config(gql, admin_token) == {
        **expected,
        "defaultSystemPrompt": DEFAULT_SYSTEM_PROMPT,
    }
    assert await system_prompt.deployment_system_prompt() == effective


async def test_both_settings_are_written_by_one_statement(
    gql: GraphQLClient, admin_token: str
) -> None:
    with counted_queries() as sent:
        await gql.ok(UPDATE, {"custom": "Be brief.", "include": False}, token=admin_token)
    writes = [sql for sql in sent if "site_configs" in sql]
    assert len(writes) == 1
    assert writes[0].lstrip().startswith("INSERT")
    assert await stored() == {KEYS[0]: "Be brief.", KEYS[1]: False}


async def test_a_member_can_neither_read_nor_set_it(
    gql: GraphQLClient, admin_token: str, member_token: str
) -> None:
    await gql.ok(UPDATE, {"custom": "Kept.", "include": True}, token=admin_token)

    result = await gql(READ, token=member_token)
    assert result["data"]["chatConfig"]["systemPrompt"] is None
    assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    error = await gql.error(UPDATE, {"custom": "Mine now.", "include": False}, token=member_token)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "MANAGE_DEPLOYMENT_CONFIG" in error["message"]
    assert await stored() == {KEYS[0]: "Kept.", KEYS[1]: True}


async def test_the_cap_is_32_kib_of_utf8_and_an_oversized_prompt_changes_nothing(
    gql: GraphQLClient, admin_token: str
) -> None:
    limit = system_prompt.SYSTEM_PROMPT_MAX_BYTES
    assert limit == 32 * 1024
    await gql.ok(UPDATE, {"custom": "Kept.", "include": True}, token=admin_token)

    # Bytes, not characters: 'é' is two bytes in UTF-8.
    for oversized in ("x" * (limit + 1), "é" * (limit // 2 + 1)):
        error = await gql.error(UPDATE, {"custom": oversized, "include": False}, token=admin_token)
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["field"] == "customPrompt"
        assert error["extensions"]["maximum"] == limit
        assert f"at most {limit} bytes (32 KiB)" in error["message"]
        assert await stored() == {KEYS[0]: "Kept.", KEYS[1]: True}

    # Exactly the cap (after trimming) is accepted.
    at_cap = "é" * (limit // 2)
    data = await gql.ok(UPDATE, {"custom": f" {at_cap} ", "include": False}, token=admin_token)
    assert data["updateSystemPromptConfig"]["systemPromptConfig"]["customPrompt"] == at_cap


async def test_control_characters_are_refused_and_change_nothing(
    gql: GraphQLClient, admin_token: str
) -> None:
    error = await gql.error(UPDATE, {"custom": "a\x00b", "include": True}, token=admin_token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "input.customPrompt"
    assert await stored() == {}


@pytest.mark.parametrize(
    ("custom", "include"),
    [(42, "yes"), ({"text": "x"}, 1), (["x"], None)],
)
async def test_malformed_stored_values_read_as_their_defaults(
    gql: GraphQLClient, admin_token: str, custom: Any, include: Any
) -> None:
    await write_raw(system_prompt.CUSTOM_KEY, custom)
    await write_raw(system_prompt.INCLUDE_DEFAULT_KEY, include)
    found = await config(gql, admin_token)
    assert (found["customPrompt"], found["includeDefaultSystemPrompt"]) == ("", True)
    assert found["effectivePrompt"] == DEFAULT_SYSTEM_PROMPT


async def test_a_failed_read_at_turn_time_falls_back_to_the_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await system_prompt.write_config(system_prompt.SystemPromptConfig("Custom.", False))

    async def broken() -> system_prompt.SystemPromptConfig:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(system_prompt, "read_config", broken)
    with caplog.at_level("WARNING", logger="db.system_prompt"):
        assert await system_prompt.deployment_system_prompt() == DEFAULT_SYSTEM_PROMPT
    assert "reading the system prompt failed; using the default" in caplog.text


# -- personal instructions ------------------------------------------------------------------


async def test_a_member_sets_reads_and_clears_their_instructions(
    gql: GraphQLClient, admin_token: str, member_token: str
) -> None:
    assert (await gql.ok(PERSONAL, token=member_token))["viewer"] == {"personalInstructions": ""}

    data = await gql.ok(SET_PERSONAL, {"text": "\n Call me Sam. \n"}, token=member_token)
    assert data["updatePersonalInstructions"] == {
        "viewer": {"personalInstructions": "Call me Sam.", "user": {"username": "member"}},
        "warnings": [],
    }
    assert (await gql.ok(PERSONAL, token=member_token))["viewer"] == {
        "personalInstructions": "Call me Sam."
    }
    # They are the member's own: the admin's are still empty.
    assert (await gql.ok(PERSONAL, token=admin_token))["viewer"] == {"personalInstructions": ""}

    data = await gql.ok(SET_PERSONAL, {"text": "  "}, token=member_token)
    assert data["updatePersonalInstructions"]["viewer"]["personalInstructions"] == ""
    assert not await UserConfig.filter(key=system_prompt.USER_PROMPT_KEY).exists()


async def test_oversized_instructions_are_refused_with_the_limit_and_change_nothing(
    gql: GraphQLClient, member_token: str
) -> None:
    limit = system_prompt.PERSONAL_INSTRUCTIONS_MAX_BYTES
    assert limit == 16 * 1024
    await gql.ok(SET_PERSONAL, {"text": "Kept."}, token=member_token)

    error = await gql.error(SET_PERSONAL, {"text": "é" * (limit // 2 + 1)}, token=member_token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "instructions"
    assert error["extensions"]["maximum"] == limit
    assert f"at most {limit} bytes (16 KiB)" in error["message"]
    assert (await gql.ok(PERSONAL, token=member_token))["viewer"] == {
        "personalInstructions": "Kept."
    }

    data = await gql.ok(SET_PERSONAL, {"text": "x" * limit}, token=member_token)
    assert len(data["updatePersonalInstructions"]["viewer"]["personalInstructions"]) == limit


async def test_signed_out_nobody_sets_instructions(gql: GraphQLClient) -> None:
    error = await gql.error(SET_PERSONAL, {"text": "hello"})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert not await UserConfig.filter(key=system_prompt.USER_PROMPT_KEY).exists()
