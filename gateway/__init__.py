"""The AI gateway: OpenAI- and Anthropic-compatible pass-through routes.

External coding clients (Claude Code, Codex, Cursor, …) point their base URL at
agentgql and sign in with an agentgql token; each request is routed by its
``model`` to a configured provider with the deployment's (or the user's own)
key, streamed through unchanged, held and settled on the one spend path, and
logged. Imports ``db`` only; the server mounts the routes and supplies the
token check (``gateway.credentials.Authenticator``).
"""
