"""Every refusal the server writes is JSON in GraphQL's error shape.

A client reads ``errors[0].extensions.code`` whatever went wrong: a broken body,
a wrong method, an unknown route, a subscription over HTTP, a file part without
a file name or a metrics scrape without its token. None of these is a 500.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.error_responses import EXCEPTION_HANDLERS
from server.settings import Settings
from tests.conftest import make_settings
from tests.uploads import PREFLIGHT, UPLOAD, png

METRICS_TOKEN = "metrics-scrape-secret"
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(
        database_url, tmp_path_factory, metrics_token=METRICS_TOKEN, max_body_bytes=128 * 1024
    )


def form_without_file_name() -> tuple[bytes, str]:
    """A GraphQL multipart upload whose mapped part has no ``filename``: a plain field."""
    boundary = f"----agentgql{uuid.uuid4().hex}"
    parts = [
        (b'name="operations"', orjson.dumps({"query": UPLOAD, "variables": {"file": None}})),
        (b'name="map"', orjson.dumps({"0": ["variables.file"]})),
        (b'name="0"', png()),
    ]
    body = b""
    for disposition, value in parts:
        body += f"--{boundary}\r\n".encode()
        body += b"Content-Disposition: form-data; " + disposition + b"\r\n\r\n" + value + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@dataclass
class Case:
    name: str
    method: str
    path: str
    status: int
    code: str
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    auth: bool = False


def multipart(body: bytes, content_type: str) -> dict[str, str]:
    return {"Content-Type": content_type, **PREFLIGHT}


NO_NAME_BODY, NO_NAME_TYPE = form_without_file_name()
BOUNDARY = "----agentgqlbroken"

CASES = [
    Case("bad JSON", "POST", "/graphql", 400, "BAD_USER_INPUT", JSON, b"{not json"),
    Case("JSON array", "POST", "/graphql", 400, "BAD_USER_INPUT", JSON, b"[]"),
    Case("JSON string", "POST", "/graphql", 400, "BAD_USER_INPUT", JSON, b'"x"'),
    Case("JSON number", "POST", "/graphql", 400, "BAD_USER_INPUT", JSON, b"1"),
    Case("JSON null", "POST", "/graphql", 400, "BAD_USER_INPUT", JSON, b"null"),
    Case("no query", "POST", "/graphql", 400, "BAD_USER_INPUT", JSON, b"{}"),
    Case("query not a string", "POST", "/graphql", 400, "BAD_USER_INPUT", JSON, b'{"query": 1}'),
    Case(
        "variables not an object",
        "POST",
        "/graphql",
        400,
        "BAD_USER_INPUT",
        JSON,
        b'{"query": "{ viewer { user { id } } }", "variables": [1]}',
    ),
    Case(
        "subscription over HTTP",
        "POST",
        "/graphql",
        400,
        "BAD_USER_INPUT",
        JSON,
        b'{"query": "subscription { titleChanges { ... on TitleChange { chatId title } } }"}',
        auth=True,
    ),
    Case(
        "wrong content type",
        "POST",
        "/graphql",
        400,
        "BAD_USER_INPUT",
        {"Content-Type": "application/xml"},
        b"<query/>",
    ),
    Case(
        "GET without a query",
        "GET",
        "/graphql",
        400,
        "BAD_USER_INPUT",
        {"Accept": "application/json"},
    ),
    Case(
        "mutation over GET",
        "GET",
        "/graphql?query=mutation%20%7B%20logout%20%7D",
        400,
        "BAD_USER_INPUT",
        {"Accept": "application/json"},
    ),
    Case(
        "GET variables not JSON",
        "GET",
        "/graphql?query=%7B%20viewer%20%7B%20user%20%7B%20id%20%7D%20%7D%20%7D&variables=%7B",
        400,
        "BAD_USER_INPUT",
        {"Accept": "application/json"},
    ),
    Case("PUT on /graphql", "PUT", "/graphql", 405, "BAD_USER_INPUT", JSON, b"{}"),
    Case("DELETE on /healthz", "DELETE", "/healthz", 405, "BAD_USER_INPUT"),
    Case("unknown route", "GET", "/no-such-page", 404, "NOT_FOUND"),
    Case("unknown asset", "GET", "/graphiql-assets/missing.js", 404, "NOT_FOUND"),
    Case(
        "multipart without preflight header",
        "POST",
        "/graphql",
        403,
        "FORBIDDEN",
        {"Content-Type": NO_NAME_TYPE},
        NO_NAME_BODY,
    ),
    Case(
        "multipart that does not parse",
        "POST",
        "/graphql",
        400,
        "BAD_USER_INPUT",
        multipart(b"", f"multipart/form-data; boundary={BOUNDARY}"),
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{{'.encode(),
    ),
    Case(
        "multipart operations not an object",
        "POST",
        "/graphql",
        400,
        "BAD_USER_INPUT",
        multipart(b"", f"multipart/form-data; boundary={BOUNDARY}"),
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n[]\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{{}}\r\n'
            f"--{BOUNDARY}--\r\n"
        ).encode(),
    ),
    Case(
        "multipart with too many fields",
        "POST",
        "/graphql",
        400,
        "BAD_USER_INPUT",
        multipart(b"", f"multipart/form-data; boundary={BOUNDARY}"),
        "".join(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nx\r\n'
            for i in range(1001)
        ).encode()
        + f"--{BOUNDARY}--\r\n".encode(),
    ),
    Case("OPTIONS on /graphql", "OPTIONS", "/graphql", 405, "BAD_USER_INPUT"),
    Case("POST to an asset", "POST", "/graphiql-assets/graphiql.min.js", 405, "BAD_USER_INPUT"),
    Case(
        "multipart part without a file name",
        "POST",
        "/graphql",
        400,
        "BAD_USER_INPUT",
        multipart(NO_NAME_BODY, NO_NAME_TYPE),
        NO_NAME_BODY,
        auth=True,
    ),
    Case(
        "multipart sent to POST /files",
        "POST",
        "/files",
        400,
        "BAD_USER_INPUT",
        {"Content-Type": NO_NAME_TYPE},
        NO_NAME_BODY,
        auth=True,
    ),
    Case(
        "body too large",
        "POST",
        "/graphql",
        413,
        "PAYLOAD_TOO_LARGE",
        JSON,
        b'{"query": "' + b"a" * (129 * 1024) + b'"}',
    ),
    Case("file without credentials", "GET", f"/files/{uuid.uuid4()}", 401, "UNAUTHENTICATED"),
    Case("unknown file", "GET", "/files/not-an-id", 404, "NOT_FOUND", auth=True),
    Case("upload without credentials", "POST", "/files", 401, "UNAUTHENTICATED"),
    Case("metrics without token", "GET", "/metrics", 401, "UNAUTHENTICATED"),
    Case(
        "metrics with a wrong token",
        "GET",
        "/metrics",
        401,
        "UNAUTHENTICATED",
        {"Authorization": "Bearer not-the-token"},
    ),
    Case(
        "cookie post as text/plain",
        "POST",
        "/graphql",
        403,
        "FORBIDDEN",
        {"Content-Type": "text/plain", "Cookie": "agentgql_session=whatever"},
        b'{"query": "{ viewer { user { id } } }"}',
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_refusal_is_a_json_error_with_a_code(
    http: httpx.AsyncClient, admin_token: str, case: Case
) -> None:
    headers = dict(case.headers)
    if case.auth:
        headers["Authorization"] = f"Bearer {admin_token}"
    response = await http.request(case.method, case.path, headers=headers, content=case.content)
    http.cookies.clear()
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.text
    body: dict[str, Any] = response.json()
    error = body["errors"][0]
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["extensions"]["code"] == case.code, body


async def test_metrics_with_its_token_are_served(http: httpx.AsyncClient) -> None:
    response = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert "agentgql_graphql_operations_total" in response.text


async def test_metrics_refusal_asks_for_a_bearer_token(http: httpx.AsyncClient) -> None:
    response = await http.get("/metrics")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_unexpected_exception_is_a_masked_json_500() -> None:
    """Whatever still crashes answers in the same shape, without details."""

    async def crash(request: Request) -> Response:
        raise RuntimeError("secret detail")

    app = Starlette(routes=[Route("/crash", crash)], exception_handlers=EXCEPTION_HANDLERS)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/crash")
    assert response.status_code == 500
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "secret" not in response.text


async def test_foreign_origin_websocket_handshake_is_a_json_403(live_server: str) -> None:
    handshake = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Protocol": "graphql-transport-ws",
        "Origin": "https://evil.example",
    }
    async with httpx.AsyncClient(base_url=live_server) as client:
        response = await client.get("/graphql", headers=handshake)
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
