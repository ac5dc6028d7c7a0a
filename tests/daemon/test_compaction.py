"""Compaction: past the threshold a summary replaces older context for the
model, while people still see the whole history."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

from daemon import compaction, prompt, spending
from daemon.providers import Usage, make_client
from db.models import Chat, ChatMessage, CostChatDay, User
from db.vocabulary import MessageRole, Visibility
from tests.harness import scripted_model

MODEL = scripted_model()


def test_pressure_uses_prompt_tokens_over_the_context_limit() -> None:
    load = compaction.pressure(
        Usage(input_tokens=500, cache_read_tokens=150, output_tokens=9), MODEL
    )
    assert load is not None
    assert (load.usage_percent, load.context_tokens, load.due) == (65.0, 650, False)
    full = compaction.pressure(Usage(input_tokens=600, cache_write_tokens=100), MODEL)
    assert full is not None
    assert full.due
    off = compaction.pressure(Usage(input_tokens=999), replace(MODEL, compression_threshold=100))
    assert off is not None
    assert not off.due


async def test_summary_becomes_the_start_of_later_prompts(app) -> None:
    user = await User.create(username=f"c{uuid.uuid4().hex[:8]}", password_hash="x")
    chat_id = uuid.uuid4()
    await Chat.create(
        id=chat_id, owner=user, root_id=chat_id, title="t", updated_at=datetime.now(UTC)
    )
    for i in range(6):
        role = MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT
        await ChatMessage.create(
            chat_id=chat_id, role=role, parts=[{"type": "text", "text": f"m{i}"}]
        )
    load = compaction.Pressure(
        usage_percent=80.0, threshold=70, context_tokens=800, context_limit=1000
    )
    client = make_client("scripted", api_key=None, base_url=None)
    payer = spending.Payer(user.id, chat_id, chat_id)
    assert await compaction.compact(chat_id, MODEL, client, load, None, payer)

    history = await prompt.history(chat_id)
    assert len(history) == 1
    assert history[0].role == "user"
    assert history[0].parts[0].text.startswith(compaction.SUMMARY_PREFIX)  # type: ignore[union-attr]

    visible = await ChatMessage.filter(chat_id=chat_id).exclude(visibility=Visibility.MODEL)
    assert len(visible) == 6 + 2  # the whole history plus the "chat summarized" card
    card = visible[-1].parts[0]
    assert card["toolName"] == "chat_summarized"
    assert card["result"]["threshold_percent"] == 70
    assert card["result"]["usage_percent"] == 80.0
    charged = await ChatMessage.filter(chat_id=chat_id, total_cost_micros__isnull=False)
    assert len(charged) == 1
    # the summary's cost is the owner's, in the chat's rollup too
    rollup = await CostChatDay.get(chat_id=chat_id)
    assert (rollup.user_id, rollup.priced_count) == (user.id, 1)  # type: ignore[attr-defined]
    assert rollup.cost_micros == charged[0].total_cost_micros
