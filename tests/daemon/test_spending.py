"""What a finished daemon call is charged for when its provider reports no usage."""

from __future__ import annotations

import uuid

from daemon import spending
from daemon.providers import ModelMessage, ModelRequest
from db import spend
from db.costing import ModelPrices, Usage
from db.model_resolution import KeySource, ResolvedModel
from db.parts import TextPart
from db.vocabulary import ProviderKind

MODEL = ResolvedModel(
    model_config_id=uuid.uuid4(),
    provider_id=uuid.uuid4(),
    provider_kind=ProviderKind.OPENAI_COMPATIBLE,
    provider_display_name="Compatible",
    base_url="http://127.0.0.1:1",
    model="m",
    display_name="M",
    context_limit=100_000,
    compression_threshold=70,
    max_output_tokens=1000,
    prices=ModelPrices(input_micros=1_000_000, output_micros=2_000_000),
    key_source=KeySource.CENTRAL,
)
REQUEST = ModelRequest(
    model="m", system="be brief", messages=[ModelMessage("user", [TextPart("hello there")])]
)


def test_reported_usage_is_what_is_charged() -> None:
    usage = Usage(input_tokens=3, output_tokens=5)
    held = spend.Hold(7, 5000, 1000)
    assert spending.billed_usage(usage, held, REQUEST, MODEL) is usage


def test_no_usage_under_a_limit_is_charged_at_the_holds_worst_case() -> None:
    # A server that ignores include_usage must not make a limited user's calls free.
    held = spend.Hold(7, 5000, 1000)
    billed = spending.billed_usage(None, held, REQUEST, MODEL)
    assert billed == Usage(input_tokens=spending.input_token_bound(REQUEST), output_tokens=1000)
    charged = spending.charge(spending.Payer(uuid.uuid4(), None, None), MODEL, billed)
    assert charged.cost_micros is not None
    assert charged.cost_micros > 0


def test_no_usage_and_no_limit_is_not_counted() -> None:
    assert spending.billed_usage(None, spend.NO_HOLD, REQUEST, MODEL) is None
