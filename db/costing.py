"""Usage normalised once, and what it costs.

Every model call — a chat step, a title, a compaction, an explore child, a gateway
request — reports ``Usage`` in one convention, whatever its wire format:
``input_tokens`` are the *uncached* input tokens, cache reads and writes are
counted apart, and ``reasoning_tokens`` are a part of ``output_tokens``.
OpenAI counts cached tokens inside ``prompt_tokens``; Anthropic counts cache
reads and writes outside ``input_tokens``: both are mapped here and nowhere else,
so no caller can count a cached token twice.

Cost is integer micro-USD rounded *up* from the four prices (micro-USD per
million tokens). A model without input or output price is unpriced: its cost is
``None``, never 0. A missing cache price falls back to the input price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

TOKENS_PER_PRICE_UNIT = 1_000_000


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one model call, normalised across providers."""

    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def context_tokens(self) -> int:
        """What the prompt occupied in the context window (for compaction)."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens


class PricedConfig(Protocol):
    input_price_micros: int | None
    output_price_micros: int | None
    cache_read_price_micros: int | None
    cache_write_price_micros: int | None


@dataclass(frozen=True, slots=True)
class ModelPrices:
    """Micro-USD per million tokens; ``None`` is "not priced"."""

    input_micros: int | None = None
    output_micros: int | None = None
    cache_read_micros: int | None = None
    cache_write_micros: int | None = None

    @classmethod
    def of(cls, config: PricedConfig) -> ModelPrices:
        return cls(
            input_micros=config.input_price_micros,
            output_micros=config.output_price_micros,
            cache_read_micros=config.cache_read_price_micros,
            cache_write_micros=config.cache_write_price_micros,
        )

    @property
    def priced(self) -> bool:
        return self.input_micros is not None and self.output_micros is not None

    def effective(self) -> tuple[int, int, int, int]:
        """(input, output, cache read, cache write) with cache prices filled in;
        only for a priced model."""
        if self.input_micros is None or self.output_micros is None:
            raise ValueError("the model is not priced")
        read = self.cache_read_micros if self.cache_read_micros is not None else self.input_micros
        write = (
            self.cache_write_micros if self.cache_write_micros is not None else self.input_micros
        )
        return self.input_micros, self.output_micros, read, write

    def worst_input_micros(self) -> int:
        """The dearest price an input token can be billed at (plain, read or write)."""
        inp, _, read, write = self.effective()
        return max(inp, read, write)


def cost_numerator(prices: ModelPrices, usage: Usage) -> int:
    """Σ tokens × price: micro-USD × 10⁶, exact in integers."""
    inp, out, read, write = prices.effective()
    return (
        usage.input_tokens * inp
        + usage.output_tokens * out
        + usage.cache_read_tokens * read
        + usage.cache_write_tokens * write
    )


def cost_micros(prices: ModelPrices, usage: Usage) -> int | None:
    """The call's cost in micro-USD, rounded up; ``None`` when unpriced."""
    if not prices.priced:
        return None
    return -(-cost_numerator(prices, usage) // TOKENS_PER_PRICE_UNIT)


def micros_for_tokens(tokens: int, price_micros: int) -> int:
    """What ``tokens`` cost at one price, rounded up (in integers: a float
    quotient of a large product can round below the true value)."""
    return -(-tokens * price_micros // TOKENS_PER_PRICE_UNIT)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _section(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = body.get(key)
    return value if isinstance(value, Mapping) else {}


def usage_from_openai(body: Mapping[str, Any]) -> Usage:
    """An OpenAI ``usage`` object: Chat Completions (``prompt_tokens``…) or
    Responses (``input_tokens``…). Cached tokens are inside the prompt count."""
    if "prompt_tokens" in body or "completion_tokens" in body:
        prompt, output = _count(body.get("prompt_tokens")), _count(body.get("completion_tokens"))
        prompt_details = _section(body, "prompt_tokens_details")
        output_details = _section(body, "completion_tokens_details")
    else:
        prompt, output = _count(body.get("input_tokens")), _count(body.get("output_tokens"))
        prompt_details = _section(body, "input_tokens_details")
        output_details = _section(body, "output_tokens_details")
    # DeepSeek-style compatible servers name cache hits at the top level instead.
    cache_read = _count(prompt_details.get("cached_tokens")) or _count(
        body.get("prompt_cache_hit_tokens")
    )
    cache_write = _count(prompt_details.get("cache_write_tokens"))
    return Usage(
        input_tokens=max(prompt - cache_read - cache_write, 0),
        output_tokens=output,
        reasoning_tokens=min(_count(output_details.get("reasoning_tokens")), output),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def usage_from_anthropic(body: Mapping[str, Any], before: Usage | None = None) -> Usage:
    """An Anthropic ``usage`` object; cache reads and writes are outside
    ``input_tokens``. Streams send usage twice (``message_start`` then a
    cumulative ``message_delta``): each count is the larger of ``body``'s and
    ``before``'s. Cumulative counts never shrink, and compatible servers send 0
    for the input side of ``message_delta`` (or of ``message_start``): taking it
    as a replacement would bill a call's prompt at nothing."""
    base = before or Usage()

    def pick(key: str, old: int) -> int:
        return max(_count(body.get(key)), old)

    details = _section(body, "output_tokens_details")
    output = pick("output_tokens", base.output_tokens)
    reasoning = max(_count(details.get("thinking_tokens")), base.reasoning_tokens)
    return Usage(
        input_tokens=pick("input_tokens", base.input_tokens),
        output_tokens=output,
        reasoning_tokens=min(reasoning, output),
        cache_read_tokens=pick("cache_read_input_tokens", base.cache_read_tokens),
        cache_write_tokens=pick("cache_creation_input_tokens", base.cache_write_tokens),
    )
