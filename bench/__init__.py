"""Benchmarks that run the GraphQL path and a raw baseline in one run.

``python -m bench NAME`` prepares a fresh database, starts the agentgql server
and a bare Starlette + asyncpg baseline as separate uvicorn processes, drives
both from a third process in alternating rounds and prints the ratio. Every
performance claim in this project is one of these runs (see ARCHITECTURE.md).
"""
