"""Bulk demo data: chats full of realistic messages, written with COPY.

Used by ``agentgql seed`` and the benchmarks. COPY (not ORM inserts) is what
makes 100 000 messages take seconds; the chats' activity trigger still runs once
per statement. ANALYZE afterwards, so the planner sees the new rows.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson

from db.vocabulary import UNPINNED_RANK

_TOPICS = (
    "the failing CI build",
    "a flaky integration test",
    "the login page layout",
    "slow database queries",
    "the release notes",
    "a memory leak in the worker",
)
_FILES = ("src/app.py", "tests/test_api.py", "README.md", "db/schema.sql", "web/index.tsx")
CHAT_COLUMNS = [
    "id",
    "owner_id",
    "root_id",
    "title",
    "status",
    "plan_mode",
    "archived",
    "pin_order",
    "list_rank",
    "labels",
    "created_at",
    "updated_at",
]
MESSAGE_COLUMNS = [
    "chat_id",
    "role",
    "parts",
    "visibility",
    "compressed",
    "deleted",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "total_cost_micros",
    "runtime_ms",
    "created_by_id",
    "created_at",
]


@dataclass
class SeedResult:
    chat_ids: list[uuid.UUID]
    messages: int


def _user_parts(rng: random.Random, n: int) -> list[dict[str, object]]:
    parts: list[dict[str, object]] = [
        {"type": "text", "text": f"Step {n}: please look into {rng.choice(_TOPICS)}."}
    ]
    if rng.random() < 0.2:
        parts.append(
            {
                "type": "file-reference",
                "fileName": rng.choice(_FILES),
                "startLine": 10,
                "endLine": 24,
                "content": "def handler(request):\n    return respond(request)\n",
            }
        )
    return parts


def _assistant_parts(rng: random.Random, n: int) -> list[dict[str, object]]:
    parts: list[dict[str, object]] = []
    if rng.random() < 0.5:
        parts.append({"type": "reasoning", "text": "Let me check the relevant files first."})
    parts.append(
        {
            "type": "text",
            "text": f"I looked at {rng.choice(_FILES)} for step {n}. "
            "The problem is a missing await; here is the fix and a test that covers it.",
        }
    )
    if rng.random() < 0.3:
        parts.append(
            {
                "type": "tool-call",
                "toolCallId": f"call_{n}",
                "toolName": "read_file",
                "args": {"path": rng.choice(_FILES)},
            }
        )
    return parts


async def seed_chats(
    url: str, owner: str, chats: int, messages: int, *, seed: int = 7
) -> SeedResult:
    rng = random.Random(seed)
    conn = await asyncpg.connect(url)
    try:
        owner_id = await conn.fetchval("SELECT id FROM users WHERE username = $1", owner)
        if owner_id is None:
            raise LookupError(f"no user named {owner!r}")
        start = datetime.now(UTC) - timedelta(days=1)
        chat_rows, message_rows = [], []
        for c in range(chats):
            chat_id = uuid.uuid4()
            created = start + timedelta(seconds=c)
            title = f"Fix {rng.choice(_TOPICS)} #{c + 1}"
            chat_rows.append(
                (chat_id, owner_id, chat_id, title, "waiting", False, False, 0,
                 UNPINNED_RANK, "{}", created, created)
            )  # fmt: skip
            for m in range(messages):
                at = created + timedelta(milliseconds=m)
                if m % 2 == 0:
                    usage: tuple[int | None, ...] = (None,) * 7
                    parts, role, author = _user_parts(rng, m), "user", owner_id
                else:
                    parts, role, author = _assistant_parts(rng, m), "assistant", None
                    inp, out = rng.randint(500, 9000), rng.randint(50, 900)
                    usage = (inp, out, 0, inp // 2, 0, inp * 3 + out * 15, rng.randint(300, 9000))
                message_rows.append(
                    (chat_id, role, orjson.dumps(parts).decode(), "both", False, False,
                     *usage, author, at)
                )  # fmt: skip
        async with conn.transaction():
            await conn.copy_records_to_table("chats", records=chat_rows, columns=CHAT_COLUMNS)
            await conn.copy_records_to_table(
                "chat_messages", records=message_rows, columns=MESSAGE_COLUMNS
            )
        await conn.execute("ANALYZE chats; ANALYZE chat_messages")
        return SeedResult(chat_ids=[r[0] for r in chat_rows], messages=len(message_rows))
    finally:
        await conn.close()
