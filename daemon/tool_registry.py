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


class ToolError(Exception):
    """A refusal or failure the model can act on; the message is what it reads."""


@dataclass(frozen=True)
class Tool:
    spec: ToolSpec
    run: ToolFunction
    timeout_s: float = 120.0


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools = {tool.spec.name: tool for tool in tools}

    def names(self) -> frozenset[str]:
        return frozenset(self._tools)

    def specs(self, allowed: Callable[[str], bool] | None = None) -> list[ToolSpec]:
        """The tools to offer; ``allowed`` narrows them (the chat's mode)."""
        return [t.spec for t in self._tools.values() if allowed is None or allowed(t.spec.name)]

    async def run(
        self,
        name: str,
        args: dict[str, Any],
        turn: Any,
        refusal: Callable[[str], str | None] | None = None,
    ) -> tuple[Any, bool]:
        """Run one call; ``refusal`` says why a known tool may not run here."""
        tool = self._tools.get(name)
        if tool is None:
            return {"error": f"unknown tool {name!r}"}, True
        reason = refusal(name) if refusal is not None else None
        if reason is not None:
            return {"error": reason}, True
        try:
            async with asyncio.timeout(tool.timeout_s):
                return await tool.run(args, turn), False
        except TimeoutError:
            return {"error": f"{name} timed out after {tool.timeout_s:g}s"}, True
        except ToolError as exc:
            return {"error": str(exc)}, True
        except Exception as exc:
            log.info("tool %s failed", name, exc_info=True)
            return {"error": f"{type(exc).__name__}: {exc}"}, True
