// agentgql's GraphiQL: HTTP for queries and mutations (same-origin credentials,
// so the session cookie works too), graphql-ws for subscriptions. graphql-ws reads
// connectionParams once per connection, so a different token gets a new client.
// Loaded as a file (not inline) so the page's Content-Security-Policy can forbid
// inline scripts; the page hands over its settings in a JSON data block.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("agentgql-graphiql-config").textContent);
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
        var match = /^\s*bearer\s+(\S+)\s*$/i.exec(String(headers[name]));
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
