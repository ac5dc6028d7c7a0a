"""Which tools a chat may use (root or sub-agent, explore, plan mode), which end
the turn, and how the registry offers and refuses them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from daemon.providers import ToolSpec
from daemon.tool_policy import ToolPolicy
from daemon.tool_registry import Tool, ToolError, ToolRegistry
from daemon.tools import ProcessTable, agent_tools

ROOT = ToolPolicy(is_root=True, explore=False, plan_mode=False)
SUB_AGENT = ToolPolicy(is_root=False, explore=False, plan_mode=False)
EXPLORE = ToolPolicy(is_root=False, explore=True, plan_mode=False)
PLANNING = ToolPolicy(is_root=True, explore=False, plan_mode=True)
SUB_AGENT_PLANNING = ToolPolicy(is_root=False, explore=False, plan_mode=True)

WORKSPACE = {"read_file", "write_file", "edit_files", "execute", "process_output"}
ROOT_ONLY = {
    "list_templates",
    "read_template",
    "create_workspace",
    "propose_plan",
    "ask_user_question",
    "spawn_agent",
    "spawn_explore_agent",
}
EVERY_TOOL = WORKSPACE | ROOT_ONLY


def offered(policy: ToolPolicy) -> set[str]:
    return {name for name in EVERY_TOOL if policy.allows(name)}


@pytest.fixture(scope="module")
def registry() -> ToolRegistry:
    return ToolRegistry(agent_tools(ProcessTable()))


def test_the_daemon_registry_holds_every_tool(registry: ToolRegistry) -> None:
    assert registry.names() == EVERY_TOOL


def test_a_root_chat_may_use_every_tool() -> None:
    assert offered(ROOT) == EVERY_TOOL
    assert all(ROOT.refusal(name) is None for name in EVERY_TOOL)


def test_sub_agents_cannot_use_root_only_tools() -> None:
    assert offered(SUB_AGENT) == WORKSPACE
    for name in ROOT_ONLY:
        reason = SUB_AGENT.refusal(name)
        assert reason == f"{name} is only available in the root chat, not to sub-agents"


def test_an_explore_sub_agent_is_read_only_and_cannot_spawn() -> None:
    assert offered(EXPLORE) == {"read_file", "execute", "process_output"}
    for name in ("write_file", "edit_files", "spawn_agent", "spawn_explore_agent"):
        reason = EXPLORE.refusal(name)
        assert reason is not None
        assert "explore sub-agent" in reason
        assert "read-only" in reason
    # Even a root-mode flag cannot widen an explore chat.
    assert offered(ToolPolicy(is_root=True, explore=True, plan_mode=True)) == offered(EXPLORE)


def test_plan_mode_allows_exploring_writing_the_plan_and_asking() -> None:
    assert offered(PLANNING) == EVERY_TOOL - {"spawn_agent"}
    reason = PLANNING.refusal("spawn_agent")
    assert reason is not None
    assert "not available in plan mode" in reason
    assert "propose_plan" in reason


def test_plan_mode_blocks_dynamic_tools() -> None:
    assert ROOT.allows("some_mcp_tool")
    reason = PLANNING.refusal("some_mcp_tool")
    assert reason is not None
    assert reason.startswith("some_mcp_tool is not available in plan mode")


def test_a_sub_agent_in_plan_mode_keeps_its_own_limits() -> None:
    assert offered(SUB_AGENT_PLANNING) == WORKSPACE
    assert not SUB_AGENT_PLANNING.allows("some_mcp_tool")


@pytest.mark.parametrize(
    ("policy", "stopping"),
    [
        (ROOT, {"ask_user_question"}),
        (PLANNING, {"ask_user_question", "propose_plan"}),
        (SUB_AGENT, {"ask_user_question"}),
        (SUB_AGENT_PLANNING, {"ask_user_question"}),
    ],
    ids=["root", "plan-mode", "sub-agent", "sub-agent-plan-mode"],
)
def test_which_tools_end_the_turn(policy: ToolPolicy, stopping: set[str]) -> None:
    assert {name for name in EVERY_TOOL if policy.stops_turn(name)} == stopping


@pytest.mark.parametrize(
    ("policy", "names"),
    [
        (ROOT, EVERY_TOOL),
        (SUB_AGENT, WORKSPACE),
        (EXPLORE, {"read_file", "execute", "process_output"}),
        (PLANNING, EVERY_TOOL - {"spawn_agent"}),
    ],
    ids=["root", "sub-agent", "explore", "plan-mode"],
)
def test_the_registry_offers_what_the_policy_allows(
    registry: ToolRegistry, policy: ToolPolicy, names: set[str]
) -> None:
    assert {spec.name for spec in registry.specs(policy.allows)} == names


def test_every_tool_has_an_object_schema(registry: ToolRegistry) -> None:
    for spec in registry.specs():
        assert spec.description
        assert spec.parameters["type"] == "object"


# -- running calls ----------------------------------------------------------------------


class Calls:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def ok(self, args: dict[str, Any], turn: Any) -> Any:
        self.seen.append(args)
        return {"ok": True}


async def refusing(args: dict[str, Any], turn: Any) -> Any:
    raise ToolError("that file is outside the workspace")


async def broken(args: dict[str, Any], turn: Any) -> Any:
    raise KeyError("missing")


async def stuck(args: dict[str, Any], turn: Any) -> Any:
    await asyncio.Event().wait()


def spec(name: str) -> ToolSpec:
    return ToolSpec(name, f"The {name} tool.", {"type": "object", "properties": {}})


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def small(calls: Calls) -> ToolRegistry:
    return ToolRegistry(
        [
            Tool(spec("write_file"), calls.ok),
            Tool(spec("read_file"), calls.ok),
            Tool(spec("refuse"), refusing),
            Tool(spec("broken"), broken),
            Tool(spec("stuck"), stuck, timeout_s=0.05),
        ]
    )


async def test_a_refused_call_never_runs_and_the_model_reads_why(
    small: ToolRegistry, calls: Calls
) -> None:
    result, is_error = await small.run("write_file", {"path": "a"}, None, EXPLORE.refusal)
    assert is_error is True
    assert result == {"error": EXPLORE.refusal("write_file")}
    assert calls.seen == []

    result, is_error = await small.run("read_file", {"path": "a"}, None, EXPLORE.refusal)
    assert (result, is_error) == ({"ok": True}, False)
    assert calls.seen == [{"path": "a"}]


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("nope", "unknown tool 'nope'"),
        ("refuse", "that file is outside the workspace"),
        ("broken", "KeyError: 'missing'"),
        ("stuck", "stuck timed out after 0.05s"),
    ],
    ids=["unknown", "tool-error", "exception", "timeout"],
)
async def test_failures_are_error_results(small: ToolRegistry, name: str, error: str) -> None:
    assert await small.run(name, {}, None) == ({"error": error}, True)
