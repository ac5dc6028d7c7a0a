"""Reading a call's usage from what the provider sent back, as it passes.

Usage is normalised by ``db.costing`` only (``usage_from_openai``,
``usage_from_anthropic``); this module finds it: in a JSON body's ``usage``, or
in a stream's final events (OpenAI chat: the usage-only chunk; Responses:
``response.completed``/``incomplete``/``failed``; Anthropic: ``message_start``
then the cumulative ``message_delta``). Only events that can carry usage are
parsed; the rest are matched as bytes, so metering costs next to nothing.

A stream cut short (the client left) never gets its final events: it is then
settled at an estimate of what was used — the input as reported
(Anthropic's ``message_start``), else its bound under a limit or an estimate
from the request's size, and one output token per generated delta.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from db.costing import Usage, usage_from_anthropic, usage_from_openai
from gateway.wire import CHAT_COMPLETIONS, MESSAGES, RESPONSES, Endpoint

# Bytes per token when only a request's size is known (a generous average for
# English and code in BPE vocabularies; the hold itself uses 1 byte per token).
BYTES_PER_TOKEN_ESTIMATE = 4
# A chat chunk that carries generated output: text, reasoning, or a tool call.
_OPENAI_OUTPUT = re.compile(
    rb'"(?:content|reasoning_content|reasoning|arguments)":\s*"[^"]|"tool_calls":\s*\['
)
_RESPONSES_USAGE_EVENTS = frozenset(
    {b"response.completed", b"response.incomplete", b"response.failed"}
)


def _loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def split_event(event: bytes) -> tuple[bytes | None, bytes]:
    """An SSE event's name and its (joined) data."""
    name: bytes | None = None
    data: list[bytes] = []
    for line in event.splitlines():
        if line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" "))
        elif line.startswith(b"event:"):
            name = line[6:].strip()
    return name, b"\n".join(data)


class UsageMeter:
    """Usage of one call, fed with the response as it passes."""

    def __init__(self, endpoint: Endpoint, request_bytes: int) -> None:
        self.endpoint = endpoint
        self.request_bytes = request_bytes
        self.usage: Usage | None = None
        self.output_events = 0

    def read_json(self, body: bytes) -> None:
        """A complete (non-streamed) response body."""
        parsed = _loads(body)
        if isinstance(parsed, dict) and isinstance(parsed.get("usage"), dict):
            self._take(parsed["usage"])

    def _take(self, raw: dict[str, Any]) -> None:
        if self.endpoint is MESSAGES:
            self.usage = usage_from_anthropic(raw, self.usage)
        else:
            self.usage = usage_from_openai(raw)

    def read_event(self, event: bytes) -> bool:
        """One SSE event (without its blank line). True when it carried generated
        output (the first such event is the call's first token)."""
        if self.endpoint is CHAT_COMPLETIONS:
            return self._chat_event(event)
        if self.endpoint is RESPONSES:
            return self._responses_event(event)
        if self.endpoint is MESSAGES:
            return self._anthropic_event(event)
        return False

    def _chat_event(self, event: bytes) -> bool:
        if b'"usage"' in event:
            _, data = split_event(event)
            parsed = _loads(data)
            if isinstance(parsed, dict) and isinstance(parsed.get("usage"), dict):
                self._take(parsed["usage"])
        if _OPENAI_OUTPUT.search(event) is not None:
            self.output_events += 1
            return True
        return False

    def _responses_event(self, event: bytes) -> bool:
        name, data = split_event(event)
        if name is None:  # some servers send the type in the data only
            parsed = _loads(data) if b'"response.' in data else None
            kind = parsed.get("type", "").encode() if isinstance(parsed, dict) else b""
        else:
            kind, parsed = name, None
        if kind in _RESPONSES_USAGE_EVENTS:
            parsed = parsed if parsed is not None else _loads(data)
            response = parsed.get("response") if isinstance(parsed, dict) else None
            if isinstance(response, dict) and isinstance(response.get("usage"), dict):
                self._take(response["usage"])
            return False
        if kind.endswith(b".delta"):
            self.output_events += 1
            return True
        return False

    def _anthropic_event(self, event: bytes) -> bool:
        name, data = split_event(event)
        if name == b"content_block_delta":
            self.output_events += 1
            return True
        if name == b"message_start":
            parsed = _loads(data)
            message = parsed.get("message") if isinstance(parsed, dict) else None
            if isinstance(message, dict) and isinstance(message.get("usage"), dict):
                self._take(message["usage"])
        elif name == b"message_delta":
            parsed = _loads(data)
            if isinstance(parsed, dict) and isinstance(parsed.get("usage"), dict):
                self._take(parsed["usage"])
        return False

    def settled_usage(self, *, complete: bool, input_bound: int, held_output: int | None) -> Usage:
        """What the call is charged for. Reported usage of a complete call as is.
        Under a limit (``held_output`` set), a call that finished without reporting
        usage is charged the worst case its hold covered, as the daemon does (a
        server that omits usage must not make calls free), and a cut one at least
        the input bound. Otherwise, estimates: the input from the request's size,
        one output token per generated delta that was relayed."""
        reported = self.usage
        if complete and reported is not None:
            return reported
        if complete and held_output is not None:
            return Usage(input_tokens=input_bound, output_tokens=held_output)
        base = reported or Usage()
        has_input = base.input_tokens + base.cache_read_tokens + base.cache_write_tokens
        if has_input:
            input_tokens = base.input_tokens
        elif held_output is not None:
            input_tokens = input_bound
        else:
            input_tokens = -(-self.request_bytes // BYTES_PER_TOKEN_ESTIMATE)
        return Usage(
            input_tokens=input_tokens,
            output_tokens=max(base.output_tokens, self.output_events),
            reasoning_tokens=base.reasoning_tokens,
            cache_read_tokens=base.cache_read_tokens,
            cache_write_tokens=base.cache_write_tokens,
        )
