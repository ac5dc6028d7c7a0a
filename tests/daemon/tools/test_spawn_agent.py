"""``spawn_agent`` and ``spawn_explore_agent``: a PENDING child chat in the family and
the workspace, the task as its first message; explore children read-only, on the
explore model when one is configured and usable."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from daemon.tool_policy import ToolPolicy
from daemon.tool_registry import ToolError, ToolRegistry
from daemon.tools import ProcessTable, agent_tools
from daemon.tools.spawn_agent import EXPLORE_TOOL, SPAWN_TOOL, explore_model
from db.chat_config import EXPLORE_MODEL_OVERRIDE_KEY, delete_raw, write_raw
from db.model_resolution import default_model_config
from db.models import Chat, ChatMessage, ModelConfig, User
from db.vocabulary import TEXT_PART_MAX, ChatMode, ChatStatus, MessageRole
from events.announcer import ChatAnnouncer
from events.channels import WORK_CHANNEL, owner_channel
from events.hub import EventHub
from events.wire import as_json
from tests.daemon.tools.workspace_turn import FakeTurn


async def spawn(args: dict[str, Any], turn: FakeTurn, explore: bool) -> dict[str, Any]:
    """A call as the model makes it: arguments validated, then the child made."""
    result: dict[str, Any] = await (EXPLORE_TOOL if explore else SPAWN_TOOL).run(args, turn)
    return result


SPAWN_LOG = "daemon.tools.spawn_agent"


@pytest.fixture(scope="module")
async def owner(app: Starlette) -> User:
    return await User.create(username=f"sa{uuid.uuid4().hex[:8]}", password_hash="x")


@pytest.fixture(scope="module")
async def default_model(app: Starlette) -> ModelConfig:
    config = await default_model_config()
    assert config is not None
    return config


async def another_model(default: ModelConfig, *, enabled: bool = True) -> ModelConfig:
    return await ModelConfig.create(
        provider_id=default.provider_id,  # type: ignore[attr-defined]
        model=f"scripted-{uuid.uuid4().hex[:6]}",
        display_name="Another",
        context_limit=1000,
        enabled=enabled,
    )


@pytest.fixture
async def override() -> AsyncIterator[None]:
    """Tests may set the explore override freely; it is removed after."""
    yield
    await delete_raw(EXPLORE_MODEL_OVERRIDE_KEY)


@pytest.fixture
async def root(
    app: Starlette, owner: User, default_model: ModelConfig, workspace: Path
) -> FakeTurn:
    """A root chat's turn, in plan mode, with a workspace."""
    chat_id, workspace_id = uuid.uuid4(), uuid.uuid4()
    await Chat.create(
        id=chat_id,
        owner_id=owner.id,
        root_id=chat_id,
        workspace_id=workspace_id,
        model_config_id=default_model.id,
        plan_mode=True,
        title="root",
        updated_at=datetime.now(UTC),
    )
    return FakeTurn(
        workspace_dir=workspace,
        chat_id=chat_id,
        owner_id=owner.id,
        plan_mode=True,
        model_config_id=default_model.id,
        root_id=chat_id,
        workspace_id=workspace_id,
        events=ChatAnnouncer(app.state.event_hub),
    )


async def child_of(result: dict[str, Any]) -> Chat:
    return await Chat.get(id=uuid.UUID(result["chatId"]))


async def test_spawn_agent_makes_a_pending_child_with_the_task_as_its_first_message(
    app: Starlette, root: FakeTurn
) -> None:
    hub: EventHub = app.state.event_hub
    async with (
        hub.subscribe(WORK_CHANNEL) as work,
        hub.subscribe(owner_channel(root.owner_id)) as mine,
    ):
        result = await spawn(
            {"prompt": "  Rename the config loader.  ", "title": " 'Rename loader' "}, root, False
        )
        child = await child_of(result)
        wake = as_json(await work.get(timeout=5))
        changed = as_json(await mine.get(timeout=5))

    assert result == {"chatId": str(child.id), "mode": "general", "status": "pending"}
    assert child.status is ChatStatus.PENDING
    assert child.parent_id == root.chat_id  # type: ignore[attr-defined]
    assert child.root_id == root.chat_id
    assert child.workspace_id == root.workspace_id
    assert child.owner_id == root.owner_id  # type: ignore[attr-defined]
    assert child.model_config_id == root.model_config_id
    assert child.mode is None
    assert (child.plan_mode, child.title) == (False, "Rename loader")
    assert child.worker_id is None
    [first] = await ChatMessage.filter(chat_id=child.id)
    assert first.role is MessageRole.USER
    assert first.parts == [{"type": "text", "text": "Rename the config loader."}]
    assert first.created_by_id == root.owner_id
    # Any daemon may claim it now.
    assert (wake["kind"], wake["chatId"]) == ("wake", str(child.id))
    assert (changed["kind"], changed["chatId"]) == ("status_changed", str(child.id))


@pytest.mark.parametrize("title", [None, "Flaky", "   "])
async def test_without_a_usable_title_a_child_is_named_from_its_task(
    root: FakeTurn, title: Any
) -> None:
    child = await child_of(
        await spawn({"prompt": "Find the flaky test", "title": title}, root, False)
    )
    assert child.title == "Find the flaky test"


async def test_children_keep_the_family_root(root: FakeTurn, owner: User) -> None:
    # A chat that is itself someone's child names the family's root, not itself.
    family_root = uuid.uuid4()
    root.root_id = family_root
    child = await child_of(await spawn({"prompt": "Dig"}, root, False))
    assert (child.parent_id, child.root_id) == (root.chat_id, family_root)  # type: ignore[attr-defined]


async def test_an_explore_child_is_read_only_and_never_in_plan_mode(
    root: FakeTurn, override: None
) -> None:
    assert root.plan_mode is True
    result = await spawn({"prompt": "Where is the retry loop?"}, root, True)
    child = await child_of(result)
    assert result["mode"] == "explore"
    assert (child.mode, child.plan_mode, child.status) == (
        ChatMode.EXPLORE,
        False,
        ChatStatus.PENDING,
    )
    assert (child.parent_id, child.workspace_id) == (root.chat_id, root.workspace_id)  # type: ignore[attr-defined]
    assert child.model_config_id == root.model_config_id  # no override: the turn's model


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"prompt": ""}, "argument 'prompt' must not be empty"),
        ({"prompt": "   "}, "argument 'prompt' must not be empty"),
        ({"prompt": None}, "argument 'prompt' is required"),
        ({"prompt": 7}, "argument 'prompt' must be a string, not the number 7"),
        (
            {"prompt": "x" * (TEXT_PART_MAX + 1)},
            f"argument 'prompt' is longer than {TEXT_PART_MAX} characters",
        ),
        ({"prompt": "Dig", "title": 7}, "argument 'title' must be a string, not the number 7"),
        ({"prompt": "Dig", "model": "big"}, "unknown argument 'model'"),
    ],
    ids=["empty", "blank", "null", "number", "oversized", "title-number", "unknown"],
)
async def test_a_missing_or_oversized_task_is_refused(
    root: FakeTurn, args: dict[str, Any], error: str
) -> None:
    before = await Chat.filter(parent_id=root.chat_id).count()
    with pytest.raises(ToolError, match=error):
        await spawn(args, root, False)
    assert await Chat.filter(parent_id=root.chat_id).count() == before


# -- the explore model ------------------------------------------------------------------


async def test_the_explore_override_is_used_when_enabled(
    root: FakeTurn, default_model: ModelConfig, override: None
) -> None:
    chosen = await another_model(default_model)
    await write_raw(EXPLORE_MODEL_OVERRIDE_KEY, str(chosen.id))
    explorer = await child_of(await spawn({"prompt": "Look around"}, root, True))
    assert explorer.model_config_id == chosen.id
    [first] = await ChatMessage.filter(chat_id=explorer.id)
    assert first.model_config_id == chosen.id
    # A general sub-agent keeps the turn's model.
    general = await child_of(await spawn({"prompt": "Do it"}, root, False))
    assert general.model_config_id == default_model.id


async def test_an_unusable_override_falls_back_to_the_turn_model_with_a_warning(
    root: FakeTurn,
    default_model: ModelConfig,
    override: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    disabled = await another_model(default_model, enabled=False)
    deleted = await another_model(default_model)
    await ModelConfig.filter(id=deleted.id).update(deleted=True)
    for unusable in (disabled.id, deleted.id, uuid.uuid4()):
        await write_raw(EXPLORE_MODEL_OVERRIDE_KEY, str(unusable))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=SPAWN_LOG):
            child = await child_of(await spawn({"prompt": "Look around"}, root, True))
        assert child.model_config_id == default_model.id
        warnings = [r for r in caplog.records if r.name == SPAWN_LOG]
        assert [r.levelno for r in warnings] == [logging.WARNING]
        assert f"override {unusable} is unavailable" in warnings[0].getMessage()


@pytest.mark.parametrize("stored", ["not-a-uuid", 42, ["x"]])
async def test_a_malformed_override_falls_back_with_a_warning(
    root: FakeTurn,
    default_model: ModelConfig,
    override: None,
    caplog: pytest.LogCaptureFixture,
    stored: Any,
) -> None:
    await write_raw(EXPLORE_MODEL_OVERRIDE_KEY, stored)
    with caplog.at_level(logging.WARNING, logger=SPAWN_LOG):
        child = await child_of(await spawn({"prompt": "Look around"}, root, True))
    assert child.model_config_id == default_model.id
    assert any(r.name == SPAWN_LOG and "malformed" in r.getMessage() for r in caplog.records), (
        caplog.text
    )


async def test_without_override_or_turn_model_the_default_applies(
    override: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=SPAWN_LOG):
        assert await explore_model(None) is None  # the chat then runs on the default
    assert not [r for r in caplog.records if r.name == SPAWN_LOG]


# -- who may spawn ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry() -> ToolRegistry:
    return ToolRegistry(agent_tools(ProcessTable()))


@pytest.mark.parametrize(
    ("policy", "name", "reason"),
    [
        (ToolPolicy(False, False, False), "spawn_agent", "only available in the root chat"),
        (ToolPolicy(False, False, False), "spawn_explore_agent", "only available in the root"),
        (ToolPolicy(False, True, False), "spawn_agent", "explore sub-agent: it is read-only"),
        (ToolPolicy(False, True, False), "spawn_explore_agent", "explore sub-agent"),
        (ToolPolicy(True, False, True), "spawn_agent", "not available in plan mode"),
    ],
    ids=["sub-agent", "sub-agent-explore", "explore", "explore-explore", "plan-mode"],
)
async def test_refused_spawns_create_nothing(
    registry: ToolRegistry, root: FakeTurn, policy: ToolPolicy, name: str, reason: str
) -> None:
    result, is_error = await registry.run(name, {"prompt": "Go"}, root, policy.refusal)
    assert is_error is True
    assert reason in result["error"]
    assert not await Chat.filter(parent_id=root.chat_id).exists()


async def test_plan_mode_may_start_explore_agents(registry: ToolRegistry, root: FakeTurn) -> None:
    planning = ToolPolicy(True, False, True)
    result, is_error = await registry.run(
        "spawn_explore_agent", {"prompt": "Map the modules"}, root, planning.refusal
    )
    assert is_error is False
    assert (await child_of(result)).mode is ChatMode.EXPLORE


@pytest.mark.parametrize(
    "name",
    [
        "list_templates",
        "read_template",
        "create_workspace",
        "propose_plan",
        "ask_user_question",
    ],
)
async def test_sub_agents_cannot_use_root_only_tools(
    registry: ToolRegistry, root: FakeTurn, name: str
) -> None:
    sub_agent = ToolPolicy(is_root=False, explore=False, plan_mode=False)
    result, is_error = await registry.run(name, {}, root, sub_agent.refusal)
    assert (result, is_error) == (
        {"error": f"{name} is only available in the root chat, not to sub-agents"},
        True,
    )
