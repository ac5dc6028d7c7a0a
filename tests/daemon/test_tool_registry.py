"""Tool arguments are declared once: the schema the model sees and the checks a call
passes are the same pydantic model, and a malformed call runs nothing."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.providers import ToolSpec
from daemon.tool_registry import Tool, ToolRegistry, args_schema
from daemon.tools import ProcessTable, agent_tools
from daemon.tools.write_file import CONTENT_MAX
from tests.daemon.tools.workspace_turn import FakeTurn

TOOLS = agent_tools(ProcessTable())
REGISTRY = ToolRegistry(TOOLS)
REFUSED = "invalid arguments, nothing was done: "
# Few examples per tool: there are a dozen tools and each example is cheap but real.
EXAMPLES = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    return root.resolve()


@pytest.fixture
def turn(workspace: Path) -> FakeTurn:
    return FakeTurn(workspace_dir=workspace)


def schema_nodes(node: Any) -> list[dict[str, Any]]:
    """Every sub-schema (not the property-name maps that hold them)."""
    if not isinstance(node, dict):
        return []
    found = [node]
    for key, value in node.items():
        if key == "properties":
            for sub in value.values():
                found += schema_nodes(sub)
        elif isinstance(value, dict):
            found += schema_nodes(value)
    return found


def valid(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values ``schema`` allows. Strings are never blank: text the user reads is
    trimmed, the one place the model is stricter than the schema says."""
    kind = schema["type"]
    if kind == "object":
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        return st.fixed_dictionaries(
            {name: valid(properties[name]) for name in required},
            optional={
                # null is how models often say "left out"; it must mean the default.
                name: st.one_of(st.none(), valid(sub))
                for name, sub in properties.items()
                if name not in required
            },
        )
    if kind == "array":
        low = schema.get("minItems", 0)
        return st.lists(
            valid(schema["items"]), min_size=low, max_size=min(schema.get("maxItems", 3), low + 2)
        )
    if kind == "string":
        low = schema.get("minLength", 0)
        alphabet = string.ascii_letters + string.digits + string.punctuation
        return st.text(alphabet, min_size=max(low, 1), max_size=max(low, 1) + 20)
    if kind == "integer":
        return st.integers(min_value=schema.get("minimum"), max_value=schema.get("maximum"))
    if kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        return st.floats(
            min_value=low,
            max_value=schema.get("maximum"),
            exclude_min="exclusiveMinimum" in schema,
            allow_nan=False,
            allow_infinity=False,
        )
    assert kind == "boolean", schema
    return st.booleans()


WRONG: dict[str, list[Any]] = {
    "string": [7, 2.5, True, ["a"], {"a": 1}],
    "integer": ["3", 2.5, True, [3], {"n": 3}],
    "number": ["3", True, [3], {"n": 3}],
    "boolean": ["true", 1, 0.0, [True], {"b": True}],
    "array": ["a", 1, False, {"items": []}],
    "object": ["a", 1, True, []],
}


class WatchedTurn:
    """A turn that notes every use: a tool that ran would have read it."""

    def __init__(self) -> None:
        self.used: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.used.append(name)
        raise AttributeError(name)


async def refused(name: str, args: Any) -> str:
    """The error the model reads for this call; fails if the tool ran at all."""
    turn = WatchedTurn()
    result, is_error = await REGISTRY.run(name, args, turn)
    assert is_error, result
    assert turn.used == [], f"{name} ran: it read {turn.used}"
    error: str = result["error"]
    assert error.startswith(REFUSED), error
    assert "Traceback" not in error, error
    assert "pydantic" not in error, error
    return error


# -- the schema the model sees ----------------------------------------------------------


@pytest.mark.parametrize("tool", TOOLS, ids=lambda tool: tool.spec.name)
def test_the_schema_the_model_sees_is_derived_from_the_arguments_model(tool: Tool) -> None:
    assert tool.args is not None
    assert tool.spec.parameters == args_schema(tool.args)
    assert {spec.name: spec.parameters for spec in REGISTRY.specs()}[tool.spec.name] == (
        args_schema(tool.args)
    )


@pytest.mark.parametrize("tool", TOOLS, ids=lambda tool: tool.spec.name)
def test_the_schema_is_self_contained_and_closed(tool: Tool) -> None:
    """What both providers take: an object schema, no references, no generated titles,
    and no object that admits arguments it does not list."""
    schema = tool.spec.parameters
    assert schema["type"] == "object"
    for node in schema_nodes(schema):
        assert not {"$ref", "$defs", "title", "anyOf"} & node.keys(), node
        if node.get("type") == "object":
            assert node["additionalProperties"] is False, node
        if node.get("type") == "string":
            assert "maxLength" in node, node  # every string is bounded


@pytest.mark.parametrize("tool", TOOLS, ids=lambda tool: tool.spec.name)
@EXAMPLES
@given(data=st.data())
def test_every_call_the_schema_allows_is_accepted(tool: Tool, data: st.DataObject) -> None:
    assert tool.args is not None
    args = data.draw(valid(tool.spec.parameters))
    tool.args.model_validate(args)


# -- malformed calls: the model reads which argument, and nothing runs ------------------


@pytest.mark.parametrize("tool", TOOLS, ids=lambda tool: tool.spec.name)
@EXAMPLES
@given(data=st.data())
async def test_an_argument_of_the_wrong_type_is_named(tool: Tool, data: st.DataObject) -> None:
    properties = tool.spec.parameters["properties"]
    if not properties:
        return
    args = data.draw(valid(tool.spec.parameters))
    name = data.draw(st.sampled_from(sorted(properties)))
    args[name] = data.draw(st.sampled_from(WRONG[properties[name]["type"]]))
    error = await refused(tool.spec.name, args)
    assert f"argument '{name}' must be " in error


@pytest.mark.parametrize("tool", TOOLS, ids=lambda tool: tool.spec.name)
@EXAMPLES
@given(data=st.data())
async def test_an_unknown_argument_is_named_with_the_allowed_ones(
    tool: Tool, data: st.DataObject
) -> None:
    properties = tool.spec.parameters["properties"]
    args = data.draw(valid(tool.spec.parameters))
    extra = data.draw(st.text(min_size=1, max_size=20).filter(lambda key: key not in properties))
    args[extra] = data.draw(st.sampled_from(["x", 1, True, None, [], {}]))
    if args[extra] is None:
        return  # null means absent, so nothing is wrong
    error = await refused(tool.spec.name, args)
    assert f"unknown argument {extra!r} (allowed here: {', '.join(properties) or 'none'})" in error


@pytest.mark.parametrize("tool", TOOLS, ids=lambda tool: tool.spec.name)
async def test_a_missing_argument_is_named(tool: Tool) -> None:
    required = tool.spec.parameters.get("required", [])
    if not required:
        return
    error = await refused(tool.spec.name, {})
    for name in required:
        assert f"argument '{name}' is required" in error


@pytest.mark.parametrize("tool", TOOLS, ids=lambda tool: tool.spec.name)
@EXAMPLES
@given(data=st.data())
async def test_an_oversized_string_is_named(tool: Tool, data: st.DataObject) -> None:
    properties = tool.spec.parameters["properties"]
    strings = sorted(name for name, sub in properties.items() if sub["type"] == "string")
    if not strings:
        return
    args = data.draw(valid(tool.spec.parameters))
    name = data.draw(st.sampled_from(strings))
    limit = properties[name]["maxLength"]
    args[name] = "x" * (limit + 1)
    error = await refused(tool.spec.name, args)
    assert f"argument '{name}' is longer than {limit} characters ({limit + 1})" in error


async def test_nested_problems_are_named_by_their_place() -> None:
    error = await refused(
        "edit_files",
        {"files": [{"path": "a", "edits": [{"search": "", "replace": 3}]}, {"edits": "x"}]},
    )
    assert error == (
        REFUSED + "argument 'files[0].edits[0].search' must not be empty; "
        "argument 'files[0].edits[0].replace' must be a string, not the number 3; "
        "argument 'files[1].path' is required; "
        "argument 'files[1].edits' must be an array, not a string"
    )


async def test_numbers_are_refused_with_their_bounds() -> None:
    error = await refused("execute", {"command": "true", "timeout_s": 0})
    assert error == REFUSED + "argument 'timeout_s' must be above 0 and at most 600; got 0"
    error = await refused("read_file", {"path": "a", "offset": 3.5})
    assert error == REFUSED + "argument 'offset' must be an integer, not the number 3.5"


async def test_a_refusal_stays_short_whatever_the_model_sent() -> None:
    """Names, numbers and the count of problems are the model's; the reply is bounded."""
    error = await refused("read_file", {"path": "a", "k" * 10_000: 1, "offset": 10**1000})
    assert len(error) < 400
    assert "unknown argument 'kkkk" in error
    error = await refused("read_file", {"path": "a", **{f"extra{n}": n for n in range(1000)}})
    assert error.count("unknown argument") == 5
    assert error.endswith("; and 995 more")
    error = await refused("read_file", {"path": "a", "offset": -(10**1000)})
    assert len(error) < 300
    assert "argument 'offset' must be at least 1; got -1000" in error


async def test_arguments_that_are_not_an_object_are_refused() -> None:
    error = await refused("read_file", ["a.txt"])
    assert error == REFUSED + "the arguments must be an object, not an array"


async def test_a_whole_float_counts_as_an_integer(workspace: Path, turn: FakeTurn) -> None:
    (workspace / "n.txt").write_text("1\n2\n3\n")
    result, is_error = await REGISTRY.run(
        "read_file", {"path": "n.txt", "offset": 2.0, "limit": None}, turn
    )
    assert (is_error, result["content"], result["startLine"]) == (False, "2\n3\n", 2)


# -- what used to slip through the hand-written checks ----------------------------------


async def test_an_unknown_argument_stops_a_command_from_running(
    workspace: Path, turn: FakeTurn
) -> None:
    result, is_error = await REGISTRY.run(
        "execute", {"command": "touch ran", "cwd": "/", "background": False}, turn
    )
    assert is_error is True
    assert result["error"] == (
        REFUSED + "unknown argument 'cwd' (allowed here: command, timeout_s, background)"
    )
    assert not (workspace / "ran").exists()


async def test_a_misspelt_option_is_refused_rather_than_ignored(
    workspace: Path, turn: FakeTurn
) -> None:
    (workspace / "a.py").write_text("a = 1\n")
    edit = {"search": "a = 1", "replace": "a = 2", "replace_all": True}
    result, is_error = await REGISTRY.run(
        "edit_files", {"files": [{"path": "a.py", "edits": [edit]}]}, turn
    )
    assert is_error is True
    assert (
        "unknown argument 'files[0].edits[0].replace_all' (allowed here: search, "
        in (result["error"])
    )
    assert "replace, replaceAll)" in result["error"]
    assert (workspace / "a.py").read_text() == "a = 1\n"


async def test_an_oversized_file_is_not_written(workspace: Path, turn: FakeTurn) -> None:
    result, is_error = await REGISTRY.run(
        "write_file", {"path": "big.txt", "content": "x" * (CONTENT_MAX + 1)}, turn
    )
    assert is_error is True
    assert f"argument 'content' is longer than {CONTENT_MAX} characters" in result["error"]
    assert not (workspace / "big.txt").exists()


async def test_a_question_with_unknown_fields_is_refused(turn: FakeTurn) -> None:
    options = [{"label": "Yes", "value": "y"}, {"label": "No"}]
    result, is_error = await REGISTRY.run(
        "ask_user_question", {"questions": [{"question": "Ship?", "options": options}]}, turn
    )
    assert is_error is True
    assert "unknown argument 'questions[0].options[0].value'" in result["error"]


def _raising(exc: Exception) -> Tool:
    async def run(args: dict[str, Any], turn: Any) -> Any:
        raise exc

    spec = ToolSpec("boom", "Fails.", {"type": "object", "properties": {}})
    return Tool(spec, run)


async def test_an_unexpected_failure_names_workspace_files_as_the_sandbox_sees_them(
    workspace: Path, turn: FakeTurn
) -> None:
    inside = workspace / "src" / "gone.txt"
    registry = ToolRegistry([_raising(FileNotFoundError(2, "No such file", str(inside)))])
    result, failed = await registry.run("boom", {}, turn)
    assert failed
    assert result == {"error": "FileNotFoundError: No such file: /workspace/src/gone.txt"}


async def test_an_unexpected_failure_never_names_a_host_path(
    workspace: Path, turn: FakeTurn
) -> None:
    outside = str(workspace.parent / "secret.key")
    for exc in (
        PermissionError(13, "Permission denied", outside),
        RuntimeError(f"could not copy {workspace}/a to {workspace}/b"),
    ):
        result, failed = await ToolRegistry([_raising(exc)]).run("boom", {}, turn)
        assert failed
        assert str(workspace.parent) not in result["error"]
    result, _ = await ToolRegistry([_raising(exc)]).run("boom", {}, turn)
    assert result["error"] == "RuntimeError: could not copy /workspace/a to /workspace/b"
