"""The event hub of agentgql: typed event kinds and payloads, channels, the
broadcast backends (memory, Redis, Postgres) and bounded per-subscriber queues.

The bus carries small JSON strings between processes; everything above it sees
typed payloads. Nothing here reads or writes the database: from ``db`` only the
shared vocabulary is used, so every other package can depend on this one.
"""
