"""Extension hooks per streamed result, without the generic machinery each time.

For every frame of every subscription Strawberry builds an ``on_stream_result``
context (walking all extensions for the hook) and awaits every extension's
``get_results``. With 500 subscribers of a chat that runs 500 times per event
for hooks that mostly do nothing here. This runner works out once per operation
which extensions define either hook: extensions keeping the default (empty)
``get_results`` are skipped, and when none defines ``on_stream_result`` every
frame gets one shared no-op context. Whatever an extension does define runs as
before.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, cast

from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext
from strawberry.types.execution import StreamExecutionResult

from schema.engine.strawberry_compat import SchemaExtensionsRunner, StreamResultContextManager

_NO_HOOKS = contextlib.nullcontext()


def _defines(extension: SchemaExtension, hook: str) -> bool:
    return getattr(type(extension), hook) is not getattr(SchemaExtension, hook)


class ExtensionsRunner(SchemaExtensionsRunner):
    def __init__(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension] | None = None
    ) -> None:
        super().__init__(execution_context, extensions)
        self._with_results = [e for e in self.extensions if _defines(e, "get_results")]
        self._stream_hooks = any(_defines(e, "on_stream_result") for e in self.extensions)

    def on_stream_result(self, result: StreamExecutionResult) -> StreamResultContextManager:
        if self._stream_hooks:
            return super().on_stream_result(result)
        # Used only as ``async with``, which a nullcontext supports as well.
        return cast(StreamResultContextManager, _NO_HOOKS)

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for extension in self._with_results:
            results = extension.get_results()
            if not isinstance(results, dict) and inspect.isawaitable(results):
                results = await results
            data.update(results)
        data.update(ctx.extensions_results)
        return data
