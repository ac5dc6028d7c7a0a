"""The tools a turn offers the model, and running one call safely.

A tool's failure — unknown name, bad arguments, an exception, a timeout — is a
tool result with ``isError`` the model can read, never a failed turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from daemon.providers import ToolSpec

log = logging.getLogger(__name__)

ToolFunction = Callable[[dict[str, Any], Any], Awaitable[Any]]


@dataclass(frozen=True)
class Tool:
    spec: ToolSpec
    run: ToolFunction
    timeout_s: float = 120.0


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools = {tool.spec.name: tool for tool in tools}

    def specs(self) -> list[ToolSpec]:
        return [tool.spec for tool in self._tools.values()]

    async def run(self, name: str, args: dict[str, Any], turn: Any) -> tuple[Any, bool]:
        tool = self._tools.get(name)
        if tool is None:
            return {"error": f"unknown tool {name!r}"}, True
        try:
            async with asyncio.timeout(tool.timeout_s):
                return await tool.run(args, turn), False
        except TimeoutError:
            return {"error": f"{name} timed out after {tool.timeout_s:g}s"}, True
        except Exception as exc:
            log.info("tool %s failed", name, exc_info=True)
            return {"error": f"{type(exc).__name__}: {exc}"}, True
