"""Persistence for agentgql: Tortoise models, migrations, the embedded cluster,
query helpers and the shared vocabulary (enums, error codes, limits).

Nothing here imports the GraphQL layer, the daemon or the server, so every other
package can depend on it.
"""
