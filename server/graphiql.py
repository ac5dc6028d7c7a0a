"""The GraphiQL page, served with its assets from this package (no CDN).

Strawberry's built-in GraphiQL loads React and GraphiQL from a CDN, which breaks
on air-gapped hosts and leaks every visit to a third party. This module serves a
pinned copy of the browser builds (see ``graphiql/LICENSES.txt``) and a page that
runs queries over HTTP and subscriptions over graphql-transport-ws, forwarding the
bearer token typed into GraphiQL's headers editor as ``connection_init``'s
``authToken``. The page is served under a Content-Security-Policy that allows
scripts from this server only.
"""

from __future__ import annotations

import json
from pathlib import Path

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

ASSETS_PATH = "/graphiql-assets"
ASSETS_DIR = Path(__file__).parent / "graphiql"
DEFAULT_QUERY = "{ viewer { user { username } } }"

_CONFIG_PLACEHOLDER = "__AGENTGQL_GRAPHIQL_CONFIG__"

# No inline script or style: the page's code is agentgql-graphiql.js (next to the
# vendored builds) and its settings travel in a JSON data block, which browsers
# never execute. That lets the policy below forbid inline scripts outright.
_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>agentgql · GraphiQL</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="__ASSETS__/graphiql.min.css">
<link rel="stylesheet" href="__ASSETS__/agentgql-graphiql.css">
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script id="agentgql-graphiql-config" type="application/json">__AGENTGQL_GRAPHIQL_CONFIG__</script>
<script src="__ASSETS__/react.production.min.js"></script>
<script src="__ASSETS__/react-dom.production.min.js"></script>
<script src="__ASSETS__/graphql-ws.min.js"></script>
<script src="__ASSETS__/graphiql.min.js"></script>
<script src="__ASSETS__/agentgql-graphiql.js"></script>
</body>
</html>
""".replace("__ASSETS__", ASSETS_PATH)

# Scripts and styles from this server only; fetches and WebSockets to it only
# ('self' covers ws:/wss: on the same host); GraphiQL's fonts and icons are data:
# URLs inside its stylesheet. React sets inline styles through the DOM, which
# style-src does not govern.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _script_json(value: object) -> str:
    """JSON that is also safe inside a ``<script>`` data block."""
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def graphiql_html(endpoint_path: str) -> str:
    """The GraphiQL page for the GraphQL endpoint at ``endpoint_path``."""
    config = {"endpoint": endpoint_path, "defaultQuery": DEFAULT_QUERY}
    return _TEMPLATE.replace(_CONFIG_PLACEHOLDER, _script_json(config))


def graphiql_assets_route() -> Mount:
    """Serves the bundled GraphiQL, React and graphql-ws files under ``ASSETS_PATH``."""
    return Mount(ASSETS_PATH, app=StaticFiles(directory=ASSETS_DIR))
