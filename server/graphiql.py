"""The GraphiQL page, served with its assets from this package (no CDN).

Strawberry's built-in GraphiQL loads React and GraphiQL from a CDN, which breaks
on air-gapped hosts and leaks every visit to a third party. This module serves a
pinned copy of the browser builds (see ``graphiql/LICENSES.txt``) and a page that
runs queries over HTTP and subscriptions over graphql-transport-ws, forwarding the
bearer token typed into GraphiQL's headers editor as ``connection_init``'s
``authToken``.
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

# The fetcher: HTTP for queries and mutations (same-origin credentials, so the
# session cookie works too), graphql-ws for subscriptions. graphql-ws reads
# connectionParams once per connection, so a different token gets a new client.
_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>agentgql · GraphiQL</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="__ASSETS__/graphiql.min.css">
<style>html, body, #graphiql { height: 100%; margin: 0; overflow: hidden; }</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="__ASSETS__/react.production.min.js"></script>
<script src="__ASSETS__/react-dom.production.min.js"></script>
<script src="__ASSETS__/graphql-ws.min.js"></script>
<script src="__ASSETS__/graphiql.min.js"></script>
<script>
(function () {
  "use strict";
  var config = __AGENTGQL_GRAPHIQL_CONFIG__;
  var wsUrl = new URL(config.endpoint, window.location.href);
  wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
  wsUrl.hash = "";

  function sameOriginFetch(input, init) {
    return window.fetch(input, Object.assign({}, init, { credentials: "same-origin" }));
  }

  function bearerToken(headers) {
    if (!headers || typeof headers !== "object") return undefined;
    for (var name in headers) {
      if (Object.prototype.hasOwnProperty.call(headers, name) &&
          name.toLowerCase() === "authorization") {
        var match = /^\\s*bearer\\s+(\\S+)\\s*$/i.exec(String(headers[name]));
        return match ? match[1] : undefined;
      }
    }
    return undefined;
  }

  var current = null;
  function fetcherFor(token) {
    if (current && current.token === token) return current.fetcher;
    if (current) current.client.dispose();
    var client = graphqlWs.createClient({
      url: wsUrl.href,
      connectionParams: function () { return { authToken: token }; }
    });
    current = {
      token: token,
      client: client,
      fetcher: GraphiQL.createFetcher({
        url: config.endpoint,
        wsClient: client,
        fetch: sameOriginFetch
      })
    };
    return current.fetcher;
  }

  function fetcher(params, opts) {
    return fetcherFor(bearerToken(opts && opts.headers))(params, opts);
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: config.defaultQuery,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false
    })
  );
})();
</script>
</body>
</html>
""".replace("__ASSETS__", ASSETS_PATH)


def _script_json(value: object) -> str:
    """JSON that is also safe inside an inline ``<script>`` element."""
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def graphiql_html(endpoint_path: str) -> str:
    """The GraphiQL page for the GraphQL endpoint at ``endpoint_path``."""
    config = {"endpoint": endpoint_path, "defaultQuery": DEFAULT_QUERY}
    return _TEMPLATE.replace(_CONFIG_PLACEHOLDER, _script_json(config))


def graphiql_assets_route() -> Mount:
    """Serves the bundled GraphiQL, React and graphql-ws files under ``ASSETS_PATH``."""
    return Mount(ASSETS_PATH, app=StaticFiles(directory=ASSETS_DIR))
