"""The tools a turn offers the model, and running one call safely.

A tool declares its arguments once, as a ``ToolArgs`` model: the JSON schema the
model sees is derived from it, and every call is validated against it before the
tool runs, so the schema and the checks cannot drift apart. A tool's failure —
unknown name, bad arguments, an exception, a timeout — is a tool result with
``isError`` the model can read, never a failed turn.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator

from daemon.providers import ToolSpec
from db.vocabulary import WORKSPACE_MOUNT

log = logging.getLogger(__name__)

ToolFunction = Callable[[dict[str, Any], Any], Awaitable[Any]]

# How many argument problems one refusal lists; the rest are counted.
_PROBLEMS_SHOWN = 5
# Names and numbers come from the model; a refusal quotes at most this much of each.
_QUOTED_MAX = 80


class ToolError(Exception):
    """A refusal or failure the model can act on; the message is what it reads."""


def _whole_number(value: Any) -> Any:
    """JSON has one number type: 3.0 is the integer 3 (3.5 and true stay refused)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]


class ToolArgs(BaseModel):
    """The base of every tool's arguments.

    Strict: a field gets exactly the JSON type its schema names ("3" is not a
    number, 1 is not true), and a field the schema does not list is refused
    rather than silently ignored. A null counts as absent, as models often send
    it for an optional argument they mean to leave out.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


Args = TypeVar("Args", bound=ToolArgs)


def args_schema(model: type[ToolArgs]) -> dict[str, Any]:
    """The JSON schema the model sees: ``$ref``s inlined, no generated titles.

    Self-contained and plain, which both the OpenAI and the Anthropic tool
    formats accept, and fewer tokens in every request.
    """
    raw = model.model_json_schema()
    definitions = raw.pop("$defs", {})
    raw.pop("description", None)  # the tool's own description says it
    schema: dict[str, Any] = _inline(raw, definitions)
    return schema


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = definitions[node["$ref"].rsplit("/", 1)[-1]]
        rest = {key: value for key, value in node.items() if key != "$ref"}
        return _inline({**target, **rest}, definitions)
    compact: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key == "properties":
            compact[key] = {name: _inline(sub, definitions) for name, sub in value.items()}
        else:
            compact[key] = _inline(value, definitions)
    return compact


def parse_args(model: type[Args], schema: dict[str, Any], raw: Any) -> Args:
    """``raw`` validated against ``model``; a ToolError names every bad field."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = list(dict.fromkeys(_problem(schema, error) for error in exc.errors()))
        shown = "; ".join(problems[:_PROBLEMS_SHOWN])
        hidden = len(problems) - _PROBLEMS_SHOWN
        more = f"; and {hidden} more" if hidden > 0 else ""
        raise ToolError(f"invalid arguments, nothing was done: {shown}{more}") from None


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "an array",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "dict_type": "an object",
}
_BOUNDS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _problem(schema: dict[str, Any], error: Any) -> str:
    """One validation error as a sentence: which argument, and what is wrong."""
    loc: tuple[str | int, ...] = error["loc"]
    kind: str = error["type"]
    value = error.get("input")
    field = _field_schema(schema, loc)
    name = repr(_clip(_dotted(loc)))
    if kind == "missing":
        return f"argument {name} is required"
    if kind == "extra_forbidden":
        allowed = ", ".join(_field_schema(schema, loc[:-1]).get("properties", {})) or "none"
        return f"unknown argument {name} (allowed here: {allowed})"
    if kind in _EXPECTED:
        return _subject(loc, f"must be {_EXPECTED[kind]}, not {_json_kind(value)}")
    if kind in _BOUNDS:
        got = _clip(repr(value))
        return f"argument {name} must be {_range(field, 'minimum', 'maximum')}; got {got}"
    if kind == "string_too_short" and field.get("minLength") == 1:
        return f"argument {name} must not be empty"
    if kind == "string_too_long":
        length = len(value) if isinstance(value, str) else "more"
        return f"argument {name} is longer than {field.get('maxLength')} characters ({length})"
    if kind == "string_too_short":
        return f"argument {name} must be at least {field.get('minLength')} characters long"
    if kind in {"too_short", "too_long"}:
        count = len(value) if isinstance(value, list) else "another number of"
        return (
            f"argument {name} must hold {_range(field, 'minItems', 'maxItems')} items, not {count}"
        )
    if kind == "value_error":
        return _subject(loc, str(error["ctx"]["error"]))
    return _subject(loc, str(error["msg"]).lower())


def _subject(loc: tuple[str | int, ...], text: str) -> str:
    return f"argument {_clip(_dotted(loc))!r} {text}" if loc else f"the arguments {text}"


def _clip(text: str) -> str:
    return text if len(text) <= _QUOTED_MAX else f"{text[:_QUOTED_MAX]}…"


def _dotted(loc: tuple[str | int, ...]) -> str:
    """``('files', 0, 'edits')`` as ``files[0].edits``, the way the schema nests."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def _field_schema(schema: dict[str, Any], loc: tuple[str | int, ...]) -> dict[str, Any]:
    node = schema
    for part in loc:
        if isinstance(part, int):
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(part, {})
    return node


def _range(field: dict[str, Any], low: str, high: str) -> str:
    """A schema's bounds in words: "above 0 and at most 600", "1 to 10"."""
    lower = _bound(field, low, f"exclusive{low[0].upper()}{low[1:]}", "at least", "above")
    upper = _bound(field, high, f"exclusive{high[0].upper()}{high[1:]}", "at most", "below")
    if low == "minItems" and lower and upper:
        return f"{field[low]} to {field[high]}"
    return " and ".join(part for part in (lower, upper) if part) or "in range"


def _bound(field: dict[str, Any], key: str, exclusive: str, word: str, strict_word: str) -> str:
    if key in field:
        return f"{word} {field[key]:g}"
    if exclusive in field:
        return f"{strict_word} {field[exclusive]:g}"
    return ""


def _json_kind(value: Any) -> str:
    """What the model sent, in JSON's words (no string or array: it may be huge)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"the number {_clip(repr(value))}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


@dataclass(frozen=True)
class Tool:
    """One tool; ``args`` is the model its schema came from (``declare``)."""

    spec: ToolSpec
    run: ToolFunction
    timeout_s: float = 120.0
    args: type[ToolArgs] | None = None

    @classmethod
    def declare(
        cls,
        name: str,
        description: str,
        args: type[Args],
        run: Callable[[Args, Any], Awaitable[Any]],
        timeout_s: float = 120.0,
    ) -> Tool:
        """A tool whose schema is ``args``'s and whose ``run`` validates first."""
        spec = ToolSpec(name=name, description=description, parameters=args_schema(args))

        async def checked(raw: dict[str, Any], turn: Any) -> Any:
            return await run(parse_args(args, spec.parameters, raw), turn)

        return cls(spec=spec, run=checked, timeout_s=timeout_s, args=args)


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools = {tool.spec.name: tool for tool in tools}

    def names(self) -> frozenset[str]:
        return frozenset(self._tools)

    def tools(self) -> list[Tool]:
        return list(self._tools.values())

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
            return {"error": unexpected_error_text(exc, getattr(turn, "workspace_dir", None))}, True


def unexpected_error_text(exc: Exception, workspace_dir: Path | None) -> str:
    """What the model reads of a tool's unexpected failure: never a host path.

    An ``OSError`` names its files; those inside the workspace are shown as the
    sandbox sees them, any other is left out. Other messages have the workspace's
    host directory replaced the same way.
    """
    kind = type(exc).__name__
    roots = _host_roots(workspace_dir)
    if isinstance(exc, OSError) and exc.strerror:
        shown = [_in_sandbox(str(f), roots) for f in (exc.filename, exc.filename2) if f]
        names = [f for f in shown if f is not None]
        return f"{kind}: {exc.strerror}" + "".join(f": {n}" for n in names)
    text = str(exc)
    for root in roots:
        text = text.replace(root, WORKSPACE_MOUNT)
    return f"{kind}: {text}"


def _host_roots(workspace_dir: Path | None) -> list[str]:
    if workspace_dir is None:
        return []
    given = str(workspace_dir)
    real = os.path.realpath(given)
    return sorted({given, real}, key=len, reverse=True)


def _in_sandbox(path: str, roots: list[str]) -> str | None:
    for root in roots:
        if path == root or path.startswith(root + "/"):
            return WORKSPACE_MOUNT + path[len(root) :]
    return None if os.path.isabs(path) else path
