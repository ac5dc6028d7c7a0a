"""Who turns debug logging on, where: the deployment, a user's opt-in, a chat's override."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from db import debug_runs
from db.debug_runs import DebugLoggingSettings, logging_applies
from db.models import Chat, User
from resolvers import global_id
from tests.harness import GraphQLClient, new_person

CONFIG = "{ chatConfig { debugLogging { enabled allowUsers retentionDays } } }"
UPDATE_CONFIG = """
mutation($input: UpdateDebugLoggingConfigInput!) {
  updateDebugLoggingConfig(input: $input) {
    debugLoggingConfig { enabled allowUsers retentionDays }
  }
}"""
OPT_IN = """
mutation($enabled: Boolean) {
  setDebugLoggingOptIn(input: {enabled: $enabled}) { viewer { debugLoggingOptIn } }
}"""
OVERRIDE = """
mutation($id: ID!, $value: Boolean, $title: String) {
  updateChat(input: {id: $id, debugLoggingOverride: $value, title: $title}) {
    id debugLoggingOverride
  }
}"""
OVERRIDE_ONLY = """
mutation($id: ID!, $value: Boolean) {
  updateChat(input: {id: $id, debugLoggingOverride: $value}) { id debugLoggingOverride }
}"""


async def configure(gql: GraphQLClient, token: str, **values: Any) -> dict[str, Any]:
    data = await gql.ok(UPDATE_CONFIG, {"input": values}, token=token)
    return dict(data["updateDebugLoggingConfig"]["debugLoggingConfig"])


async def chat_of(user: User) -> Chat:
    chat_id, now = uuid.uuid4(), datetime.now(UTC)
    return await Chat.create(
        id=chat_id, owner_id=user.id, root_id=chat_id, title="Mine", updated_at=now
    )


@pytest.fixture(autouse=True)
async def reset_settings(app: Any) -> Any:
    yield
    await debug_runs.write_settings(DebugLoggingSettings())


@pytest.mark.parametrize(
    ("enabled", "allow_users", "opt_in", "override", "applies"),
    [
        (False, False, None, None, False),
        (True, False, None, None, True),
        (True, False, False, None, True),  # opting out needs allowUsers
        (False, False, True, None, False),  # so does opting in
        (False, True, True, None, True),
        (True, True, False, None, False),
        (True, True, None, None, True),
        (False, False, None, True, True),  # the chat's override decides first
        (True, True, True, False, False),
    ],
)
def test_precedence_chat_override_then_opt_in_when_allowed_then_deployment(
    enabled: bool, allow_users: bool, opt_in: bool | None, override: bool | None, applies: bool
) -> None:
    settings = DebugLoggingSettings(enabled=enabled, allow_users=allow_users)
    assert logging_applies(settings, opt_in, override) is applies


async def test_the_deployment_setting_defaults_off_for_30_days_and_any_user_reads_it(
    gql: GraphQLClient, member_token: str
) -> None:
    data = await gql.ok(CONFIG, token=member_token)
    assert data["chatConfig"]["debugLogging"] == {
        "enabled": False,
        "allowUsers": False,
        "retentionDays": 30,
    }


async def test_only_admins_change_it_and_bad_retention_changes_nothing(
    gql: GraphQLClient, admin_token: str, member_token: str
) -> None:
    error = await gql.error(UPDATE_CONFIG, {"input": {"enabled": True}}, token=member_token)
    assert error["extensions"]["code"] == "FORBIDDEN"

    for days in (0, 366):
        bad = {"enabled": True, "retentionDays": days}
        error = await gql.error(UPDATE_CONFIG, {"input": bad}, token=admin_token)
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["field"] == "retentionDays"
    assert (await debug_runs.read_settings()) == DebugLoggingSettings()

    assert await configure(gql, admin_token, retentionDays=7) == {
        "enabled": False,
        "allowUsers": False,
        "retentionDays": 7,
    }
    # Fields not given stay as they are.
    assert await configure(gql, admin_token, allowUsers=True) == {
        "enabled": False,
        "allowUsers": True,
        "retentionDays": 7,
    }


@pytest.mark.parametrize(
    ("enabled", "reason"), [(True, "DEBUG_LOGGING_FORCED"), (False, "DEBUG_LOGGING_NOT_ALLOWED")]
)
async def test_opting_in_is_refused_unless_users_may_choose(
    gql: GraphQLClient, admin_token: str, enabled: bool, reason: str
) -> None:
    person = await new_person("optin")
    await configure(gql, admin_token, enabled=enabled, allowUsers=False)

    error = await gql.error(OPT_IN, {"enabled": True}, token=person.token)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["reason"] == reason
    assert await debug_runs.read_opt_in(person.user.id) is None  # nothing written

    await configure(gql, admin_token, allowUsers=True)
    data = await gql.ok(OPT_IN, {"enabled": True}, token=person.token)
    assert data["setDebugLoggingOptIn"]["viewer"]["debugLoggingOptIn"] is True
    data = await gql.ok(OPT_IN, {"enabled": None}, token=person.token)
    assert data["setDebugLoggingOptIn"]["viewer"]["debugLoggingOptIn"] is None


async def test_a_chats_override_is_its_owners_or_an_admins_and_nobody_elses(
    gql: GraphQLClient, admin_token: str
) -> None:
    owner, stranger = await new_person("owner"), await new_person("stranger")
    chat = await chat_of(owner.user)
    gid = global_id.encode("Chat", chat.id)

    error = await gql.error(OVERRIDE_ONLY, {"id": gid, "value": True}, token=stranger.token)
    assert error["extensions"]["code"] == "NOT_FOUND"
    # The owner may not while users cannot choose...
    error = await gql.error(OVERRIDE_ONLY, {"id": gid, "value": True}, token=owner.token)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["reason"] == "DEBUG_LOGGING_NOT_ALLOWED"
    # ...an admin may, on anyone's chat, but change nothing else of it.
    data = await gql.ok(OVERRIDE_ONLY, {"id": gid, "value": True}, token=admin_token)
    assert data["updateChat"]["debugLoggingOverride"] is True
    both = {"id": gid, "value": False, "title": "Taken over"}
    error = await gql.error(OVERRIDE, both, token=admin_token)
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert (await Chat.get(id=chat.id)).debug_logging_override is True

    await configure(gql, admin_token, allowUsers=True)
    data = await gql.ok(OVERRIDE_ONLY, {"id": gid, "value": None}, token=owner.token)
    assert data["updateChat"]["debugLoggingOverride"] is None
    error = await gql.error(OVERRIDE_ONLY, {"id": gid, "value": True}, token=stranger.token)
    assert error["extensions"]["code"] == "NOT_FOUND"


async def test_a_sub_agent_follows_its_root_chats_override(gql: GraphQLClient) -> None:
    person = await new_person("family")
    root = await chat_of(person.user)
    child_id = uuid.uuid4()
    await Chat.create(
        id=child_id,
        owner_id=person.user.id,
        parent_id=root.id,
        root_id=root.id,
        title="Child",
        updated_at=datetime.now(UTC),
    )
    target = await debug_runs.target(child_id)
    assert target is not None
    assert not target.applies
    await Chat.filter(id=root.id).update(debug_logging_override=True)
    target = await debug_runs.target(child_id)
    assert target is not None
    assert target.applies
    assert target.root_id == root.id
    assert target.parent_id == root.id
