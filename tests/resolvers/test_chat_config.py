"""chatConfig: any signed-in user reads it, only administrators change it, within bounds."""

from __future__ import annotations

import pytest

from db import chat_config
from db.models import SiteConfig
from tests.harness import GraphQLClient

READ = "{ chatConfig { chatRetentionDays } }"
UPDATE = """
mutation($days: Int) {
  updateChatConfig(input: {chatRetentionDays: $days}) { chatRetentionDays }
}"""


async def days(gql: GraphQLClient, token: str) -> int:
    value: int = (await gql.ok(READ, token=token))["chatConfig"]["chatRetentionDays"]
    return value


@pytest.fixture(autouse=True)
async def default_setting(admin_token: str) -> None:
    """Each test starts from the unset setting (the default)."""
    await SiteConfig.filter(key=chat_config.RETENTION_DAYS_KEY).delete()


async def test_a_member_reads_the_default_of_30_days(gql: GraphQLClient, member_token: str) -> None:
    assert await days(gql, member_token) == 30


async def test_signed_out_readers_are_unauthenticated(gql: GraphQLClient) -> None:
    error = await gql.error(READ)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("value", [0, 1, 90, 3650])
async def test_an_admin_sets_it_and_everyone_reads_the_new_value(
    gql: GraphQLClient, admin_token: str, member_token: str, value: int
) -> None:
    data = await gql.ok(UPDATE, {"days": value}, token=admin_token)
    assert data["updateChatConfig"] == {"chatRetentionDays": value}
    assert await days(gql, member_token) == value
    assert await chat_config.chat_retention_days() == value


async def test_a_member_may_not_change_it(gql: GraphQLClient, member_token: str) -> None:
    error = await gql.error(UPDATE, {"days": 1}, token=member_token)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "MANAGE_DEPLOYMENT_CONFIG" in error["message"]
    assert await days(gql, member_token) == 30
    assert not await SiteConfig.filter(key=chat_config.RETENTION_DAYS_KEY).exists()


@pytest.mark.parametrize("value", [-1, 3651, 1_000_000])
async def test_out_of_range_values_are_refused_and_change_nothing(
    gql: GraphQLClient, admin_token: str, value: int
) -> None:
    await gql.ok(UPDATE, {"days": 45}, token=admin_token)
    error = await gql.error(UPDATE, {"days": value}, token=admin_token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "chatRetentionDays"
    assert error["message"] == "chatRetentionDays: between 0 (keep forever) and 3650"
    assert await days(gql, admin_token) == 45


async def test_an_update_without_fields_changes_nothing(
    gql: GraphQLClient, admin_token: str
) -> None:
    await gql.ok(UPDATE, {"days": 7}, token=admin_token)
    data = await gql.ok(UPDATE, {"days": None}, token=admin_token)
    assert data["updateChatConfig"] == {"chatRetentionDays": 7}


@pytest.mark.parametrize("stored", ["30", True, -5, 99_999, 1.5, {"days": 3}])
async def test_a_malformed_stored_value_reads_as_the_default(
    gql: GraphQLClient, member_token: str, stored: object
) -> None:
    await SiteConfig.create(key=chat_config.RETENTION_DAYS_KEY, value=stored)
    assert await days(gql, member_token) == 30
