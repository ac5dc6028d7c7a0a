"""Bulk demo data: chats full of realistic messages, written with COPY.

Used by ``agentgql seed`` and the benchmarks. COPY (not ORM inserts) is what
makes 100 000 messages take seconds; the chats' activity trigger still runs once
per statement. ANALYZE afterwards, so the planner sees the new rows.

``seed_costed_history`` (``agentgql seed --costed``) makes a year of spend for the
cost benchmarks: generated inside PostgreSQL, rollups rebuilt set-based.
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


# ---------------------------------------------------------------- costed history
# Model configs the costed history is billed to, made on first use under the
# offline SCRIPTED provider and left disabled, so no real chat ever picks them.
# (model, display name, input, output, cache read, cache write) in micro-USD per
# million tokens; NULL prices = unpriced, as an admin who forgot to price it.
SEED_MODELS = (
    ("seed-small", "Seeded history (small)", 1_000_000, 5_000_000, 100_000, 1_250_000),
    ("seed-large", "Seeded history (large)", 3_000_000, 15_000_000, 300_000, 3_750_000),
    ("seed-unpriced", "Seeded history (unpriced)", None, None, None, None),
)
SECONDS_BETWEEN_MESSAGES = 15

_SEED_PROVIDER = """
INSERT INTO providers (id, kind, display_name, enabled, central_key_enabled,
  user_keys_allowed, central_key_fallback, created_at, updated_at)
VALUES (gen_random_uuid(), 'scripted', 'Scripted', true, true, false, false, now(), now())
ON CONFLICT (kind) DO NOTHING
"""
_SEED_MODEL = """
INSERT INTO model_configs (id, provider_id, model, display_name, enabled, is_default, deleted,
  context_limit, compression_threshold, input_price_micros, output_price_micros,
  cache_read_price_micros, cache_write_price_micros, created_at, updated_at)
SELECT gen_random_uuid(), p.id, $1::varchar, $2::varchar, false, false, false, 200000, 70,
  $3::bigint, $4::bigint, $5::bigint, $6::bigint, now(), now()
FROM providers p WHERE p.kind = 'scripted' AND NOT EXISTS (
  SELECT 1 FROM model_configs m WHERE m.provider_id = p.id AND m.model = $1::varchar)
"""
_SEED_MODEL_IDS = """
SELECT m.model, m.id FROM model_configs m JOIN providers p ON p.id = m.provider_id
WHERE p.kind = 'scripted' AND m.model = ANY($1::text[])
"""
_SEEDED_CHATS = """
CREATE TEMP TABLE seeded_chats (id uuid PRIMARY KEY, n int, created_at timestamptz,
  config_id uuid) ON COMMIT DROP
"""
# Chats spread evenly over the span; every 25th on the unpriced model, every
# third on the large one, the rest on the small one.
_PLAN_CHATS = """
INSERT INTO seeded_chats (id, n, created_at, config_id)
SELECT gen_random_uuid(), n,
  $1::timestamptz + make_interval(secs => n * $2::float8 / $3::int),
  CASE WHEN n % 25 = 24 THEN $6::uuid WHEN n % 3 = 0 THEN $5::uuid ELSE $4::uuid END
FROM generate_series(0, $3::int - 1) n
"""
_INSERT_CHATS = f"""
INSERT INTO chats (id, owner_id, root_id, title, status, plan_mode, archived, pin_order,
  list_rank, labels, model_config_id, created_at, updated_at)
SELECT id, $1::uuid, id, 'Costed history #' || (n + 1), 'waiting', false, false, 0,
  {UNPINNED_RANK}, '{{}}'::jsonb, config_id, created_at, created_at
FROM seeded_chats
"""
# Alternating user and assistant messages; each assistant message carries
# usage, the model's prices copied onto it and its cost rounded up, exactly as
# db.costing computes it (NULL when the model is unpriced).
_INSERT_MESSAGES = f"""
INSERT INTO chat_messages (chat_id, role, parts, visibility, compressed, deleted,
  input_tokens, output_tokens, reasoning_tokens, cache_read_tokens, cache_write_tokens,
  total_cost_micros, input_price_micros, output_price_micros, cache_read_price_micros,
  cache_write_price_micros, runtime_ms, created_by_id, model_config_id, created_at)
SELECT u.chat_id, CASE WHEN u.assistant THEN 'assistant' ELSE 'user' END,
  jsonb_build_array(jsonb_build_object('type', 'text', 'text', CASE WHEN u.assistant
    THEN 'Step ' || u.m || ': fixed the missing await and added a test.'
    ELSE 'Step ' || u.m || ': please look into the failing CI build.' END)),
  'both', false, false,
  u.inp, u.outp, u.reas, u.cr, u.cw,
  CASE WHEN u.assistant AND mc.input_price_micros IS NOT NULL
    AND mc.output_price_micros IS NOT NULL THEN
    (u.inp::bigint * mc.input_price_micros + u.outp::bigint * mc.output_price_micros
     + u.cr::bigint * coalesce(mc.cache_read_price_micros, mc.input_price_micros)
     + u.cw::bigint * coalesce(mc.cache_write_price_micros, mc.input_price_micros)
     + 999999) / 1000000 END,
  CASE WHEN u.assistant THEN mc.input_price_micros END,
  CASE WHEN u.assistant THEN mc.output_price_micros END,
  CASE WHEN u.assistant THEN mc.cache_read_price_micros END,
  CASE WHEN u.assistant THEN mc.cache_write_price_micros END,
  CASE WHEN u.assistant THEN 300 + (u.r1 * 8700)::int END,
  CASE WHEN u.assistant THEN NULL ELSE $1::uuid END,
  CASE WHEN u.assistant THEN u.config_id END,
  u.created_at + make_interval(secs => u.m * {SECONDS_BETWEEN_MESSAGES})
FROM (
  SELECT c.id AS chat_id, c.config_id, c.created_at, m, m % 2 = 1 AS assistant,
    r1, CASE WHEN m % 2 = 1 THEN 200 + (r1 * 8800)::int END AS inp,
    CASE WHEN m % 2 = 1 THEN 50 + (r2 * 950)::int END AS outp,
    CASE WHEN m % 2 = 1 THEN (r2 * 200)::int END AS reas,
    CASE WHEN m % 2 = 1 THEN (r3 * 30000)::int END AS cr,
    CASE WHEN m % 2 = 1 THEN (r1 * r3 * 4000)::int END AS cw
  FROM seeded_chats c CROSS JOIN generate_series(0, $2::int - 1) m
    CROSS JOIN LATERAL (SELECT random() + m * 0 AS r1, random() AS r2, random() AS r3) r
) u JOIN model_configs mc ON mc.id = u.config_id
"""
# The rollups for the new messages only, set-based as the 0008 migration's
# backfill: aggregated once per (chat, day, model), then added to each rollup
# (``settle`` adds per message; the sums are the same).
_LEDGER = """
CREATE TEMP TABLE seeded_ledger ON COMMIT DROP AS
SELECT c.owner_id, m.chat_id, c.root_id,
  coalesce(m.model_config_id, '00000000-0000-0000-0000-000000000000'::uuid) AS config_id,
  (m.created_at AT TIME ZONE 'UTC')::date AS day,
  sum(coalesce(m.total_cost_micros, 0)) AS cost, count(m.total_cost_micros) AS priced,
  count(*) - count(m.total_cost_micros) AS unpriced,
  sum(coalesce(m.input_tokens, 0)) AS inp, sum(coalesce(m.output_tokens, 0)) AS outp,
  sum(coalesce(m.reasoning_tokens, 0)) AS reas, sum(coalesce(m.cache_read_tokens, 0)) AS cr,
  sum(coalesce(m.cache_write_tokens, 0)) AS cw
FROM seeded_chats s JOIN chats c ON c.id = s.id JOIN chat_messages m ON m.chat_id = s.id
WHERE m.role = 'assistant' AND m.input_tokens IS NOT NULL
GROUP BY 1, 2, 3, 4, 5
"""
_SUMS = """cost_micros = d.cost_micros + EXCLUDED.cost_micros,
  priced_count = d.priced_count + EXCLUDED.priced_count,
  unpriced_count = d.unpriced_count + EXCLUDED.unpriced_count,
  input_tokens = d.input_tokens + EXCLUDED.input_tokens,
  output_tokens = d.output_tokens + EXCLUDED.output_tokens,
  reasoning_tokens = d.reasoning_tokens + EXCLUDED.reasoning_tokens,
  cache_read_tokens = d.cache_read_tokens + EXCLUDED.cache_read_tokens,
  cache_write_tokens = d.cache_write_tokens + EXCLUDED.cache_write_tokens"""
_COLUMNS = """cost_micros, priced_count, unpriced_count, input_tokens, output_tokens,
  reasoning_tokens, cache_read_tokens, cache_write_tokens"""
_AGGREGATES = (
    "sum(cost), sum(priced), sum(unpriced), sum(inp), sum(outp), sum(reas), sum(cr), sum(cw)"
)
_ROLLUPS = (
    f"""INSERT INTO cost_user_days AS d (user_id, day, {_COLUMNS})
SELECT owner_id, day, {_AGGREGATES} FROM seeded_ledger GROUP BY owner_id, day
ON CONFLICT (user_id, day) DO UPDATE SET {_SUMS}""",
    f"""INSERT INTO cost_model_days AS d (user_id, day, model_config_id, provider, model,
  {_COLUMNS})
SELECT l.owner_id, l.day, l.config_id, coalesce(max(p.kind), 'unknown'),
  coalesce(max(mc.model), 'unknown'), {_AGGREGATES}
FROM seeded_ledger l LEFT JOIN model_configs mc ON mc.id = l.config_id
  LEFT JOIN providers p ON p.id = mc.provider_id
GROUP BY l.owner_id, l.day, l.config_id
ON CONFLICT (user_id, day, model_config_id) DO UPDATE SET {_SUMS}""",
    f"""INSERT INTO cost_chat_days AS d (user_id, chat_id, root_chat_id, day, {_COLUMNS})
SELECT owner_id, chat_id, root_id, day, {_AGGREGATES}
FROM seeded_ledger GROUP BY owner_id, chat_id, root_id, day
ON CONFLICT (chat_id, day, user_id) DO UPDATE SET {_SUMS}""",
    """INSERT INTO spend_counters AS c (user_id, period, period_start, spent_micros,
  reserved_micros)
SELECT owner_id, period, start, sum(cost), 0 FROM (
  SELECT owner_id, cost, p.period,
    date_trunc(p.period, day::timestamp) AT TIME ZONE 'UTC' AS start
  FROM seeded_ledger CROSS JOIN (VALUES ('day'), ('week'), ('month')) p(period)
) periods GROUP BY owner_id, period, start
ON CONFLICT (user_id, period, period_start) DO UPDATE SET
  spent_micros = c.spent_micros + EXCLUDED.spent_micros""",
)


async def _seed_model_ids(conn: asyncpg.Connection) -> list[uuid.UUID]:
    await conn.execute(_SEED_PROVIDER)
    for model in SEED_MODELS:
        await conn.execute(_SEED_MODEL, *model)
    found = dict(await conn.fetch(_SEED_MODEL_IDS, [m[0] for m in SEED_MODELS]))
    return [found[m[0]] for m in SEED_MODELS]


async def seed_costed_history(
    url: str, owner: str, chats: int, messages: int, *, days: int = 365
) -> SeedResult:
    """``chats`` chats of ``messages`` messages each, spread over the last
    ``days`` days, with their spend recorded as the model calls would have.

    Generated inside PostgreSQL (``generate_series``), not in Python, and the
    rollups rebuilt set-based for the new messages only, so a million messages
    take tens of seconds rather than a million ``settle`` round trips.
    """
    if chats < 1 or messages < 1 or days < 1:
        raise ValueError("chats, messages and days must be at least 1")
    conn = await asyncpg.connect(url)
    try:
        owner_id = await conn.fetchval("SELECT id FROM users WHERE username = $1", owner)
        if owner_id is None:
            raise LookupError(f"no user named {owner!r}")
        # The last chat's last message lands just before now.
        last = timedelta(seconds=SECONDS_BETWEEN_MESSAGES * messages + 60)
        span = timedelta(days=days) - last
        start = datetime.now(UTC) - timedelta(days=days)
        async with conn.transaction():
            small, large, unpriced = await _seed_model_ids(conn)
            await conn.execute(_SEEDED_CHATS)
            await conn.execute(
                _PLAN_CHATS, start, max(span.total_seconds(), 0.0), chats, small, large, unpriced
            )
            await conn.execute(_INSERT_CHATS, owner_id)
            await conn.execute(_INSERT_MESSAGES, owner_id, messages)
            await conn.execute(_LEDGER)
            for statement in _ROLLUPS:
                await conn.execute(statement)
            chat_ids = [r["id"] for r in await conn.fetch("SELECT id FROM seeded_chats ORDER BY n")]
        await conn.execute(
            "ANALYZE chats; ANALYZE chat_messages; ANALYZE cost_user_days; "
            "ANALYZE cost_model_days; ANALYZE cost_chat_days; ANALYZE spend_counters"
        )
        return SeedResult(chat_ids=chat_ids, messages=chats * messages)
    finally:
        await conn.close()
