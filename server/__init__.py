"""The process: settings, the ASGI app, authentication of requests, plain HTTP
routes (health, metrics), logging and the ``agentgql`` command line."""
