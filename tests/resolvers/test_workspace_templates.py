"""Workspace templates: admin management with validation, and the listing the
template allowlist filters for members.

Each test starts with no templates and no allowlist.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette

from db import chat_config
from db.models import SiteConfig, WorkspaceTemplate
from resolvers import global_id
from tests.harness import GraphQLClient

FIELDS = """
fragment T on WorkspaceTemplate {
  id name description source sourceKind deprecated defaultTtlSeconds createdAt updatedAt
}"""
CREATE = (
    """
mutation($input: CreateWorkspaceTemplateInput!) {
  createWorkspaceTemplate(input: $input) { workspaceTemplate { ...T } warnings }
}"""
    + FIELDS
)
UPDATE = (
    """
mutation($input: UpdateWorkspaceTemplateInput!) {
  updateWorkspaceTemplate(input: $input) { workspaceTemplate { ...T } warnings }
}"""
    + FIELDS
)
DELETE = """
mutation($id: ID!) { deleteWorkspaceTemplate(input: {id: $id}) { deletedId warnings } }"""
LIST = (
    """
query($all: Boolean! = false) { workspaceTemplates(includeDeprecated: $all) { ...T } }"""
    + FIELDS
)
NODE = "query($id: ID!) { node(id: $id) { __typename ... on WorkspaceTemplate { name } } }"
SET_ALLOWLIST = """
mutation($ids: [ID!]) {
  updateChatConfig(input: {templateAllowlist: $ids}) { templateAllowlist }
}"""


@pytest.fixture(autouse=True)
async def no_templates(app: Starlette) -> None:
    await WorkspaceTemplate.all().delete()
    await SiteConfig.filter(
        key__in=[chat_config.TEMPLATE_ALLOWLIST_KEY, chat_config.WORKSPACE_TTL_KEY]
    ).delete()


def template_input(name: str = "python", **extra: Any) -> dict[str, Any]:
    return {"name": name, "sourceKind": "DIRECTORY", "source": "/srv/templates/python", **extra}


async def create(gql: GraphQLClient, token: str, name: str = "python", **extra: Any) -> Any:
    data = await gql.ok(CREATE, {"input": template_input(name, **extra)}, token=token)
    return data["createWorkspaceTemplate"]


async def names(gql: GraphQLClient, token: str, include_deprecated: bool = False) -> list[str]:
    data = await gql.ok(LIST, {"all": include_deprecated}, token=token)
    return [t["name"] for t in data["workspaceTemplates"]]


def assert_bad_input(error: dict[str, Any], field: str) -> None:
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["field"] == field, error


# --- create, update, delete ---------------------------------------------------------


async def test_admin_creates_a_template(gql: GraphQLClient, admin_token: str) -> None:
    created = await create(
        gql, admin_token, "  python  ", description="Python 3.13", defaultTtlSeconds=3600
    )
    template = created["workspaceTemplate"]
    assert template["name"] == "python"
    assert template["description"] == "Python 3.13"
    assert template["sourceKind"] == "DIRECTORY"
    assert template["source"] == "/srv/templates/python"
    assert template["deprecated"] is False
    assert template["defaultTtlSeconds"] == 3600
    assert created["warnings"] == []
    row = await WorkspaceTemplate.get(name="python")
    assert template["id"] == global_id.encode("WorkspaceTemplate", row.id)
    assert row.default_ttl_s == 3600


async def test_a_template_without_any_ttl_warns(gql: GraphQLClient, admin_token: str) -> None:
    created = await create(gql, admin_token, sourceKind="GIT", source="https://git.example/r.git")
    assert created["workspaceTemplate"]["defaultTtlSeconds"] is None
    assert created["warnings"] == [
        "No default TTL and no site workspace TTL: its workspaces never stop on their own."
    ]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        pytest.param({"name": "   "}, "name", id="blank-name"),
        pytest.param({"name": "x" * 201}, "name", id="long-name"),
        pytest.param({"source": "  "}, "source", id="blank-source"),
        pytest.param({"source": "relative/dir"}, "source", id="relative-directory"),
        pytest.param(
            {"sourceKind": "GIT", "source": "https://token@git.example/r.git"},
            "source",
            id="https-credentials",
        ),
        pytest.param(
            {"sourceKind": "GIT", "source": "ssh://git:secret@git.example/r.git"},
            "source",
            id="password-in-url",
        ),
        pytest.param({"sourceKind": "GIT", "source": "--upload-pack=x"}, "source", id="option"),
        pytest.param({"defaultTtlSeconds": 59}, "defaultTtlSeconds", id="ttl-too-short"),
        pytest.param({"defaultTtlSeconds": 2_592_001}, "defaultTtlSeconds", id="ttl-too-long"),
        pytest.param({"defaultTtlSeconds": 0}, "defaultTtlSeconds", id="ttl-zero"),
    ],
)
async def test_bad_template_input_names_the_field(
    gql: GraphQLClient, admin_token: str, extra: dict[str, Any], field: str
) -> None:
    error = await gql.error(CREATE, {"input": {**template_input(), **extra}}, token=admin_token)
    assert_bad_input(error, field)
    assert await WorkspaceTemplate.all().count() == 0


@pytest.mark.parametrize("ttl", [60, 2_592_000])
async def test_ttl_bounds_are_inclusive(gql: GraphQLClient, admin_token: str, ttl: int) -> None:
    created = await create(gql, admin_token, defaultTtlSeconds=ttl)
    assert created["workspaceTemplate"]["defaultTtlSeconds"] == ttl


async def test_git_sources_may_name_an_ssh_user(gql: GraphQLClient, admin_token: str) -> None:
    for name, source in [("a", "git@git.example:org/r.git"), ("b", "ssh://git@git.example/r")]:
        created = await create(gql, admin_token, name, sourceKind="GIT", source=source)
        assert created["workspaceTemplate"]["source"] == source


async def test_duplicate_name_is_a_conflict(gql: GraphQLClient, admin_token: str) -> None:
    await create(gql, admin_token, "python")
    error = await gql.error(CREATE, {"input": template_input("python")}, token=admin_token)
    assert error["extensions"]["code"] == "CONFLICT"
    assert error["extensions"]["field"] == "name"
    other = (await create(gql, admin_token, "go"))["workspaceTemplate"]
    error = await gql.error(
        UPDATE, {"input": {"id": other["id"], "name": "python"}}, token=admin_token
    )
    assert error["extensions"]["code"] == "CONFLICT"
    assert (
        await WorkspaceTemplate.get(id=global_id.decode_uuid(other["id"], "WorkspaceTemplate"))
    ).name == "go"


async def test_update_changes_only_the_given_fields(gql: GraphQLClient, admin_token: str) -> None:
    template = (await create(gql, admin_token, description="old", defaultTtlSeconds=600))[
        "workspaceTemplate"
    ]
    data = await gql.ok(
        UPDATE,
        {"input": {"id": template["id"], "description": "new", "deprecated": True}},
        token=admin_token,
    )
    updated = data["updateWorkspaceTemplate"]["workspaceTemplate"]
    assert updated["description"] == "new"
    assert updated["deprecated"] is True
    assert updated["name"] == template["name"]
    assert updated["defaultTtlSeconds"] == 600
    data = await gql.ok(
        UPDATE, {"input": {"id": template["id"], "defaultTtlSeconds": None}}, token=admin_token
    )
    assert data["updateWorkspaceTemplate"]["workspaceTemplate"]["defaultTtlSeconds"] is None


async def test_changing_the_kind_revalidates_the_source(
    gql: GraphQLClient, admin_token: str
) -> None:
    template = (
        await create(gql, admin_token, sourceKind="GIT", source="https://git.example/r.git")
    )["workspaceTemplate"]
    error = await gql.error(
        UPDATE, {"input": {"id": template["id"], "sourceKind": "DIRECTORY"}}, token=admin_token
    )
    assert_bad_input(error, "source")
    row = await WorkspaceTemplate.get(name=template["name"])
    assert row.source_kind == "git"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": None}, "name"),
        ({"sourceKind": None}, "sourceKind"),
        ({"deprecated": None}, "deprecated"),
        ({"defaultTtlSeconds": 30}, "defaultTtlSeconds"),
    ],
)
async def test_bad_update_names_the_field(
    gql: GraphQLClient, admin_token: str, change: dict[str, Any], field: str
) -> None:
    template = (await create(gql, admin_token))["workspaceTemplate"]
    error = await gql.error(UPDATE, {"input": {"id": template["id"], **change}}, token=admin_token)
    assert_bad_input(error, field)


async def test_delete(gql: GraphQLClient, admin_token: str) -> None:
    template = (await create(gql, admin_token))["workspaceTemplate"]
    data = await gql.ok(DELETE, {"id": template["id"]}, token=admin_token)
    assert data["deleteWorkspaceTemplate"] == {"deletedId": template["id"], "warnings": []}
    assert await WorkspaceTemplate.all().count() == 0
    error = await gql.error(DELETE, {"id": template["id"]}, token=admin_token)
    assert error["extensions"]["code"] == "NOT_FOUND"


async def test_deleting_an_allowlisted_template_warns(gql: GraphQLClient, admin_token: str) -> None:
    template = (await create(gql, admin_token))["workspaceTemplate"]
    await gql.ok(SET_ALLOWLIST, {"ids": [template["id"]]}, token=admin_token)
    data = await gql.ok(DELETE, {"id": template["id"]}, token=admin_token)
    assert "allowlist" in data["deleteWorkspaceTemplate"]["warnings"][0]


async def test_missing_template_is_not_found(gql: GraphQLClient, admin_token: str) -> None:
    gid = global_id.encode("WorkspaceTemplate", "00000000-0000-0000-0000-000000000009")
    error = await gql.error(UPDATE, {"input": {"id": gid, "name": "x"}}, token=admin_token)
    assert error["extensions"]["code"] == "NOT_FOUND"


async def test_members_cannot_manage_templates(
    gql: GraphQLClient, admin_token: str, member_token: str
) -> None:
    error = await gql.error(CREATE, {"input": template_input()}, token=member_token)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert await WorkspaceTemplate.all().count() == 0
    template = (await create(gql, admin_token))["workspaceTemplate"]
    error = await gql.error(
        UPDATE, {"input": {"id": template["id"], "name": "x"}}, token=member_token
    )
    assert error["extensions"]["code"] == "FORBIDDEN"
    error = await gql.error(DELETE, {"id": template["id"]}, token=member_token)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert (await WorkspaceTemplate.get(name="python")).name == "python"


# --- listing ----------------------------------------------------------------------------


async def test_listing_is_by_name_and_hides_deprecated(
    gql: GraphQLClient, admin_token: str, member_token: str
) -> None:
    for name in ("zeta", "alpha"):
        await create(gql, admin_token, name)
    await create(gql, admin_token, "old", deprecated=True)
    assert await names(gql, member_token) == ["alpha", "zeta"]
    assert await names(gql, member_token, include_deprecated=True) == ["alpha", "old", "zeta"]


async def test_allowlist_filters_the_listing_for_members_only(
    gql: GraphQLClient, admin_token: str, member_token: str
) -> None:
    alpha = (await create(gql, admin_token, "alpha"))["workspaceTemplate"]
    await create(gql, admin_token, "beta")
    await gql.ok(SET_ALLOWLIST, {"ids": [alpha["id"]]}, token=admin_token)
    assert await names(gql, member_token) == ["alpha"]
    assert await names(gql, admin_token) == ["alpha", "beta"]
    await gql.ok(SET_ALLOWLIST, {"ids": []}, token=admin_token)
    assert await names(gql, member_token) == ["alpha", "beta"]


async def test_listing_needs_a_signed_in_user(gql: GraphQLClient) -> None:
    error = await gql.error(LIST)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_node_resolves_templates_for_signed_in_users(
    gql: GraphQLClient, admin_token: str, member_token: str
) -> None:
    template = (await create(gql, admin_token))["workspaceTemplate"]
    data = await gql.ok(NODE, {"id": template["id"]}, token=member_token)
    assert data["node"] == {"__typename": "WorkspaceTemplate", "name": "python"}
    assert (await gql.ok(NODE, {"id": template["id"]}))["node"] is None


async def test_node_hides_templates_off_the_allowlist_from_members(
    gql: GraphQLClient, admin_token: str, member_token: str
) -> None:
    """What ``workspaceTemplates`` hides from a member (source included) is not
    readable by id either; admins still see every template."""
    alpha = (await create(gql, admin_token, "alpha"))["workspaceTemplate"]["id"]
    beta = (await create(gql, admin_token, "beta"))["workspaceTemplate"]["id"]
    await gql.ok(SET_ALLOWLIST, {"ids": [alpha]}, token=admin_token)
    source = "query($id: ID!) { node(id: $id) { ... on WorkspaceTemplate { source } } }"
    assert (await gql.ok(source, {"id": beta}, token=member_token))["node"] is None
    many = "query($ids: [ID!]!) { nodes(ids: $ids) { ... on WorkspaceTemplate { name } } }"
    found = await gql.ok(many, {"ids": [alpha, beta]}, token=member_token)
    assert found["nodes"] == [{"name": "alpha"}, None]
    found = await gql.ok(many, {"ids": [alpha, beta]}, token=admin_token)
    assert found["nodes"] == [{"name": "alpha"}, {"name": "beta"}]
    await gql.ok(SET_ALLOWLIST, {"ids": []}, token=admin_token)  # no allowlist: all allowed
    assert (await gql.ok(NODE, {"id": beta}, token=member_token))["node"]["name"] == "beta"
