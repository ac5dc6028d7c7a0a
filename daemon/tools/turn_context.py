"""What a workspace tool reads from its call: the turn it runs in and its arguments.

Tools depend on this protocol rather than on the daemon's turn class, so they stay
testable with a plain dataclass. Every refusal is a ``ToolError`` whose message is
written for the model: it says what went wrong and what to do instead.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Protocol

from daemon.tool_registry import ToolError
from daemon.workspace_backend import WorkspaceBackend
from db.chat_events import ChatEvents


class ToolTurn(Protocol):
    """The parts of a running turn that workspace tools use."""

    @property
    def chat_id(self) -> uuid.UUID: ...

    @property
    def owner_id(self) -> uuid.UUID: ...

    @property
    def workspace_dir(self) -> Path | None: ...

    @property
    def plan_mode(self) -> bool: ...

    @property
    def plan_path(self) -> str | None:
        """The chat's own plan file: an absolute path inside the workspace."""
        ...


def require_str(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str):
        raise ToolError(f"argument {name!r} is required and must be a string")
    return value


def optional_int(
    args: dict[str, Any], name: str, default: int, *, minimum: int, maximum: int | None = None
) -> int:
    value = args.get(name)
    if value is None:
        return default
    # JSON has one number type: accept 3.0 but not 3.5 (or true, which Python calls an int).
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ToolError(f"argument {name!r} must be an integer")
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and at most {maximum}"
        raise ToolError(f"argument {name!r} must be at least {minimum}{upper}; got {value}")
    return value


def optional_number(
    args: dict[str, Any],
    name: str,
    default: float,
    *,
    minimum: float,
    maximum: float,
    exclusive_minimum: bool = False,
) -> float:
    value = args.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolError(f"argument {name!r} must be a number")
    too_small = value <= minimum if exclusive_minimum else value < minimum
    if too_small or value > maximum:
        lower = "above" if exclusive_minimum else "at least"
        raise ToolError(
            f"argument {name!r} must be {lower} {minimum:g} and at most {maximum:g}; got {value}"
        )
    return float(value)


def optional_bool(args: dict[str, Any], name: str, default: bool) -> bool:
    value = args.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ToolError(f"argument {name!r} must be true or false")
    return value


class AgentTurn(ToolTurn, Protocol):
    """What the chat-level tools (workspaces, plans, sub-agents) also use.

    ``workspace_id``, ``workspace_dir`` and ``plan_path`` are assignable:
    create_workspace binds a workspace in the middle of a turn.
    """

    model_config_id: uuid.UUID | None
    root_id: uuid.UUID | None
    workspace_id: uuid.UUID | None
    workspace_dir: Path | None
    plan_path: str | None
    events: ChatEvents | None
    backend: WorkspaceBackend | None
