"""``list_templates`` and ``read_template`` show only allowed, non-deprecated templates."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from starlette.applications import Starlette

from daemon.tool_registry import ToolError
from daemon.tools.templates import LIST_TOOL, READ_TOOL
from db.chat_config import TEMPLATE_ALLOWLIST_KEY, allowlist_value, delete_raw, write_raw
from db.models import WorkspaceTemplate
from db.vocabulary import WorkspaceSourceKind
from tests.daemon.tools.workspace_turn import FakeTurn

list_templates, read_template = LIST_TOOL.run, READ_TOOL.run


@dataclass
class Templates:
    alpha: WorkspaceTemplate
    beta: WorkspaceTemplate
    old: WorkspaceTemplate


@pytest.fixture(scope="module")
async def templates(app: Starlette) -> Templates:
    await WorkspaceTemplate.all().delete()  # the listings cover the whole table
    return Templates(
        alpha=await WorkspaceTemplate.create(
            name="alpha",
            description="The alpha service.",
            source="https://example.com/alpha.git",
            source_kind=WorkspaceSourceKind.GIT,
            default_ttl_s=7200,
        ),
        beta=await WorkspaceTemplate.create(
            name="beta", source="/srv/beta", source_kind=WorkspaceSourceKind.DIRECTORY
        ),
        old=await WorkspaceTemplate.create(
            name="old",
            source="/srv/old",
            source_kind=WorkspaceSourceKind.DIRECTORY,
            deprecated=True,
        ),
    )


async def store(chosen: list[WorkspaceTemplate]) -> None:
    await write_raw(TEMPLATE_ALLOWLIST_KEY, allowlist_value(t.id for t in chosen))


Allow = Callable[[list[WorkspaceTemplate]], Awaitable[None]]


@pytest.fixture
async def allow() -> AsyncIterator[Allow]:
    """Stores an allowlist; the setting is removed again after the test."""
    yield store
    await delete_raw(TEMPLATE_ALLOWLIST_KEY)


def turn() -> FakeTurn:
    return FakeTurn(workspace_dir=None)


async def listed() -> list[str]:
    result = await list_templates({}, turn())
    return [t["name"] for t in result["templates"]]


async def test_an_empty_allowlist_lists_every_template_but_deprecated_ones(
    templates: Templates,
) -> None:
    result = await list_templates({}, turn())
    assert result == {
        "templates": [
            {"id": str(templates.alpha.id), "name": "alpha", "description": "The alpha service."},
            {"id": str(templates.beta.id), "name": "beta", "description": ""},
        ]
    }


@pytest.mark.parametrize(
    ("allowed", "names"),
    [
        (["beta"], ["beta"]),
        (["beta", "alpha"], ["alpha", "beta"]),
        # A deprecated template stays hidden even when the allowlist names it.
        (["old"], []),
        (["old", "alpha"], ["alpha"]),
        ([], ["alpha", "beta"]),
    ],
)
async def test_the_allowlist_narrows_the_listing(
    templates: Templates, allow: Allow, allowed: list[str], names: list[str]
) -> None:
    await allow([getattr(templates, name) for name in allowed])
    assert await listed() == names


async def test_read_template_by_name_or_id(templates: Templates) -> None:
    details = {
        "id": str(templates.alpha.id),
        "name": "alpha",
        "description": "The alpha service.",
        "sourceKind": "git",
        "source": "https://example.com/alpha.git",
        "defaultTtlSeconds": 7200,
    }
    assert await read_template({"template": "alpha"}, turn()) == details
    assert await read_template({"template": str(templates.alpha.id)}, turn()) == details
    beta = await read_template({"template": "beta"}, turn())
    assert (beta["sourceKind"], beta["defaultTtlSeconds"]) == ("directory", None)


async def test_read_template_refuses_what_is_not_allowed(
    templates: Templates, allow: Allow
) -> None:
    with pytest.raises(ToolError, match=r"no allowed template 'old'.*: alpha, beta$"):
        await read_template({"template": "old"}, turn())
    with pytest.raises(ToolError, match="no allowed template"):
        await read_template({"template": str(templates.old.id)}, turn())
    await allow([templates.alpha])
    with pytest.raises(ToolError, match=r"no allowed template 'beta'.*are: alpha$"):
        await read_template({"template": "beta"}, turn())
    with pytest.raises(ToolError, match="no allowed template"):
        await read_template({"template": str(uuid.uuid4())}, turn())
    await allow([templates.old])
    with pytest.raises(ToolError, match=r"the allowed templates are: none$"):
        await read_template({"template": "alpha"}, turn())


async def test_read_template_needs_a_template_argument(templates: Templates) -> None:
    with pytest.raises(ToolError, match="argument 'template' is required"):
        await read_template({}, turn())
