"""Background work: claiming pending chats, running agent turns against LLM
providers, streaming their output, and keeping the chat lifecycle moving.

Imports ``db`` only; the server starts it (in-process by default) or
``agentgql daemon`` runs it alone.
"""
