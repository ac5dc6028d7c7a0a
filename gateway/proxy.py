"""The gateway's request path: token → model → hold → provider → relay → settle + log.

Bodies go upstream unchanged but for the model id (the config's provider-side
name), the output cap when the budget is tight, and, for OpenAI chat streams,
``stream_options.include_usage`` so a stream can be costed at all. Only a short
allow-list of request headers is forwarded (never cookies or the agentgql
token); the provider key is added here. Upstream errors pass through with their
status, with the key scrubbed from the body in case the provider echoed it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import orjson
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from db import spend
from db.ai_request_logs import RequestLogEntry, record
from db.costing import Usage
from db.model_resolution import ResolvedModel
from db.models import User
from db.vocabulary import NIL_UUID, ProviderKind
from gateway import routing
from gateway.client_detection import detect_client, session_id
from gateway.credentials import Authenticator, TokenRefused, authenticate_request
from gateway.relay import CLIENT_STALL_S, RelayOutcome, RelayResponse
from gateway.usage_meter import UsageMeter
from gateway.wire import (
    ANTHROPIC_VERSION,
    CHAT_COMPLETIONS,
    COUNT_TOKENS,
    MESSAGES,
    RESPONSES,
    Endpoint,
    Wire,
    error_response,
)

# Request headers a provider may need from the client; everything else stays here.
FORWARDED_HEADERS = (
    "content-type", "accept", "user-agent", "anthropic-version", "anthropic-beta",
    "openai-beta", "idempotency-key",
)  # fmt: skip
# Response headers that describe our hop, not the provider's answer.
DROPPED_RESPONSE_HEADERS = frozenset(
    {
        "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
        "content-length", "content-encoding", "set-cookie", "server", "date",
        "proxy-authenticate", "proxy-authorization",
    }
)  # fmt: skip
REDACTED = b"[REDACTED]"
# Providers add a tool-use system prompt of their own when tools are sent (Anthropic
# documents up to 346 tokens): not in the request's bytes, so added to the input
# bound, as in daemon/spending.py.
TOOLS_OVERHEAD_TOKENS = 512
USER_AGENT_MAX = 512
MAX_CHOICES = 1024


@dataclass
class GatewaySettings:
    """Upstream timeouts: ``read`` is the longest silence between two chunks."""

    connect_timeout: float = 10.0
    read_timeout: float = 600.0
    # Gateway holds are not renewed by a worker's heartbeat: they live as long as
    # the longest call may, then the sweep returns them.
    hold_ttl: timedelta = timedelta(hours=2)
    error_body_max: int = 1 << 20
    # How long a routing decision is reused (``routing.RouteCache``); 0: never.
    route_cache_s: float = 5.0
    # How long a send may wait on a client that reads nothing before it is let go.
    client_stall_s: float = CLIENT_STALL_S

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.read_timeout, connect=self.connect_timeout)


@dataclass
class Call:
    """One request in flight: who, what, where, and its clock."""

    user: User
    endpoint: Endpoint
    model: ResolvedModel
    client: str
    user_agent: str | None
    session_id: str | None
    stream: bool
    started_at: datetime
    t0: float
    # An upper bound of the prompt's tokens: its bytes (every BPE token is at
    # least one byte), plus the tools' overhead, at most the model's context.
    input_bound: int = 0
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def entry(
        self,
        status: int,
        *,
        usage: Usage | None = None,
        cost_micros: int | None = None,
        ended_at: float | None = None,
        first_token_at: float | None = None,
    ) -> RequestLogEntry:
        end = ended_at if ended_at is not None else time.perf_counter()
        ttft = None if first_token_at is None else int((first_token_at - self.t0) * 1000)
        return RequestLogEntry(
            user_id=self.user.id,
            client=self.client,
            user_agent=self.user_agent,
            session_id=self.session_id,
            provider=self.model.provider_kind.value,
            model=self.model.model,
            model_config_id=self.model.model_config_id,
            endpoint=self.endpoint.name,
            stream=self.stream,
            status=status,
            started_at=self.started_at,
            duration_ms=int((end - self.t0) * 1000),
            time_to_first_token_ms=ttft,
            usage=usage,
            cost_micros=cost_micros,
        )

    def charge(self, usage: Usage) -> spend.Charge:
        """Chat-less spend: its own line per model, rolled up under the nil chat."""
        return spend.Charge(
            user_id=self.user.id,
            usage=usage,
            prices=self.model.prices,
            model_config_id=self.model.model_config_id,
            provider=self.model.provider_kind.value,
            model=self.model.model,
            chat_id=NIL_UUID,
        )


def scrub(body: bytes, secrets: tuple[str, ...]) -> bytes:
    for secret in secrets:
        if secret:
            body = body.replace(secret.encode(), REDACTED)
    return body


def _response_headers(upstream: httpx.Response) -> list[tuple[bytes, bytes]]:
    return [
        (name.lower(), value)
        for name, value in upstream.headers.raw
        if name.decode("latin-1").lower() not in DROPPED_RESPONSE_HEADERS
    ]


def _requested_output(body: dict[str, Any], endpoint: Endpoint) -> int | None:
    for name in endpoint.max_tokens_fields:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _choices(body: dict[str, Any], endpoint: Endpoint) -> int:
    """How many answers a chat request asks for (``n``): each may write the cap.
    Lenient servers read ``"4"`` or ``4.0`` as 4, so those count too."""
    if endpoint is not CHAT_COMPLETIONS:
        return 1
    value = body.get("n")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return 1
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 1:
        return math.ceil(min(value, MAX_CHOICES))
    return 1


def _cap_field(endpoint: Endpoint, kind: ProviderKind) -> str:
    if endpoint is CHAT_COMPLETIONS and kind is ProviderKind.OPENAI_COMPATIBLE:
        return "max_tokens"  # compatible servers know the older name
    return endpoint.max_tokens_fields[0]


class Gateway:
    """The routes and the one upstream HTTP client they share."""

    def __init__(self, authenticate: Authenticator, settings: GatewaySettings | None = None):
        self.authenticate = authenticate
        self.settings = settings or GatewaySettings()
        self._http: httpx.AsyncClient | None = None
        self.route_cache = routing.RouteCache()

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self._endpoint(CHAT_COMPLETIONS), methods=["POST"]),
            Route("/v1/responses", self._endpoint(RESPONSES), methods=["POST"]),
            Route("/v1/messages", self._endpoint(MESSAGES), methods=["POST"]),
            Route("/v1/messages/count_tokens", self._endpoint(COUNT_TOKENS), methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
        ]

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:  # created in the serving loop, on first use
            # Idle connections are dropped before a server's usual 5 s keep-alive
            # would close them under a request (a POST is never retried blindly).
            limits = httpx.Limits(
                max_connections=1000, max_keepalive_connections=200, keepalive_expiry=4.0
            )
            self._http = httpx.AsyncClient(limits=limits, timeout=self.settings.timeout())
        return self._http

    def _endpoint(self, endpoint: Endpoint) -> Any:
        async def handle(request: Request) -> Response:
            return await self.handle(request, endpoint)

        return handle

    async def models(self, request: Request) -> Response:
        """``GET /v1/models`` in the caller's format (Anthropic's SDK sends
        ``anthropic-version``): what the caller can use right now."""
        wire = Wire.ANTHROPIC if "anthropic-version" in request.headers else Wire.OPENAI
        try:
            user = await authenticate_request(request.headers, self.authenticate)
        except TokenRefused as exc:
            return error_response(wire, 401, str(exc), "invalid_api_key", retry=False)
        listed = await routing.usable_models(user.id, wire)
        if wire is Wire.ANTHROPIC:
            data = [
                {
                    "type": "model",
                    "id": m.config.model,
                    "display_name": m.config.display_name,
                    "created_at": m.config.created_at.isoformat(),
                }
                for m in listed
            ]
            ids = [d["id"] for d in data]
            return JSONResponse(
                {
                    "data": data,
                    "has_more": False,
                    "first_id": ids[0] if ids else None,
                    "last_id": ids[-1] if ids else None,
                }
            )
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {
                        "id": m.config.model,
                        "object": "model",
                        "created": int(m.config.created_at.timestamp()),
                        "owned_by": m.kind.value,
                    }
                    for m in listed
                ],
            }
        )

    async def handle(self, request: Request, endpoint: Endpoint) -> Response:
        t0 = time.perf_counter()
        started_at = datetime.now(UTC)
        wire = endpoint.wire
        try:
            user = await authenticate_request(request.headers, self.authenticate)
        except TokenRefused as exc:
            return error_response(wire, 401, str(exc), "invalid_api_key", retry=False)
        raw = await request.body()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return error_response(wire, 400, "The request body must be a JSON object.")
        name = body.get("model")
        if not isinstance(name, str) or not name.strip():
            return error_response(wire, 400, "model: required (a model name or config id).")
        try:
            target = await self.route_cache.route(
                name.strip(),
                endpoint,
                user.id,
                request.app.state.secrets,
                self.settings.route_cache_s,
            )
        except routing.RoutingError as exc:
            return error_response(wire, exc.status, exc.message, exc.code, retry=False)
        headers = request.headers
        ua = headers.get("user-agent")
        call = Call(
            user=user,
            endpoint=endpoint,
            model=target.model,
            client=detect_client(headers),
            user_agent=ua[:USER_AGENT_MAX] if ua else None,
            session_id=session_id(headers, body),
            stream=body.get("stream") is True,
            started_at=started_at,
            t0=t0,
            secrets=tuple(s for s in (target.model.api_key,) if s),
        )
        tools = TOOLS_OVERHEAD_TOKENS if body.get("tools") else 0
        call.input_bound = min(len(raw) + tools, max(target.model.context_limit, 1))
        held: spend.Hold | None = None
        if endpoint.generates:
            try:
                held = await self._hold(call, body)
            except spend.UsageLimitExceeded as exc:
                await record(call.entry(429), None, None)
                return self._limit_response(wire, exc)
            except spend.UnpricedModel as exc:
                await record(call.entry(403), None, None)
                return error_response(wire, 403, str(exc), "unpriced_model", retry=False)
        strip = False
        if endpoint is CHAT_COMPLETIONS and call.stream:
            options = body.get("stream_options")
            options = dict(options) if isinstance(options, dict) else {}
            strip = options.get("include_usage") is not True
            body["stream_options"] = {**options, "include_usage": True}
        body["model"] = target.model.model
        handed_over = False
        try:
            response = await self._forward(call, target, body, request, held, len(raw), strip)
            handed_over = True
            return response
        finally:
            if not handed_over:  # cancelled (the client left) before the provider answered
                with anyio.CancelScope(shield=True):
                    await spend.release(held)

    async def _hold(self, call: Call, body: dict[str, Any]) -> spend.Hold:
        """Reserve the worst case; a tight budget lowers the request's output cap."""
        model = call.model
        requested = _requested_output(body, call.endpoint)
        wanted = requested
        if model.max_output_tokens is not None:
            wanted = min(wanted or model.max_output_tokens, model.max_output_tokens)
        choices = _choices(body, call.endpoint)
        if choices > 1:  # the hold covers every answer; the cap is each one's share
            wanted = (wanted or spend.DEFAULT_OUTPUT_TOKENS) * choices
        held = await spend.hold(
            call.user.id,
            model.prices,
            model=model.display_name,
            input_tokens=call.input_bound,
            max_output_tokens=wanted,
            worker_id=None,
            ttl=self.settings.hold_ttl,
        )
        cap = held.max_output_tokens
        # Under a limit the cap is always sent, as the daemon does: a request without
        # one would let the provider write past the tokens the hold covers.
        if held.id is not None and cap is not None:
            cap = max(cap // choices, 1)
            present = [f for f in call.endpoint.max_tokens_fields if f in body]
            for name in present or [_cap_field(call.endpoint, model.provider_kind)]:
                body[name] = cap
        return held

    def _limit_response(self, wire: Wire, exc: spend.UsageLimitExceeded) -> Response:
        facts = exc.facts
        wait = max(int((facts.resets_at - datetime.now(UTC)).total_seconds()), 0)
        return error_response(
            wire,
            429,
            str(exc),
            "usage_limit_exceeded",
            retry=False,
            headers={"retry-after": str(wait)},
            spentMicros=facts.spent_micros,
            reservedMicros=facts.reserved_micros,
            limitMicros=facts.limit_micros,
            resetsAt=facts.resets_at.isoformat(),
            source=facts.source.name,
            period=facts.period.name,
        )

    def _upstream_headers(self, call: Call, headers: Headers) -> dict[str, str]:
        out = {name: headers[name] for name in FORWARDED_HEADERS if name in headers}
        out["content-type"] = "application/json"
        key = call.model.api_key
        if call.endpoint.wire is Wire.ANTHROPIC:
            out.setdefault("anthropic-version", ANTHROPIC_VERSION)
            if key:
                out["x-api-key"] = key
        elif key:
            out["authorization"] = f"Bearer {key}"
        return out

    async def _forward(
        self,
        call: Call,
        target: routing.Target,
        body: dict[str, Any],
        request: Request,
        held: spend.Hold | None,
        size: int,
        strip: bool,
    ) -> Response:
        wire = call.endpoint.wire
        client = self._client()
        upstream_request = client.build_request(
            "POST",
            target.url,
            content=orjson.dumps(body),
            headers=self._upstream_headers(call, request.headers),
            params=str(request.query_params),
            timeout=self.settings.timeout(),
        )
        try:
            upstream = await client.send(upstream_request, stream=True)
        except httpx.TimeoutException:
            await record(call.entry(504), held, None)
            return error_response(wire, 504, "The provider did not answer in time.", "timeout")
        except httpx.HTTPError as exc:
            await record(call.entry(502), held, None)
            reason = type(exc).__name__
            return error_response(wire, 502, f"The provider cannot be reached ({reason}).")
        meter = UsageMeter(call.endpoint, size)
        status = upstream.status_code
        content_type = upstream.headers.get("content-type", "")
        if status < 400 and content_type.startswith("text/event-stream"):

            async def finish(outcome: RelayOutcome) -> None:
                await self._settle(call, held, meter, status, outcome)

            return RelayResponse(
                upstream,
                _response_headers(upstream),
                meter,
                finish,
                strip_usage_chunk=strip,
                stall_timeout=self.settings.client_stall_s,
            )
        try:
            content = await self._read(upstream, status)
        except httpx.HTTPError:
            await upstream.aclose()
            await record(call.entry(502), held, None)
            return error_response(wire, 502, "The provider broke off its answer.")
        if status >= 400:
            await record(call.entry(status), held, None)
            content = scrub(content, call.secrets)
        elif not call.endpoint.generates:
            await record(call.entry(status), held, None)
        else:
            meter.read_json(content)
            ended = RelayOutcome(True, False, None, time.perf_counter())
            await self._settle(call, held, meter, status, ended)
        headers = dict(
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in _response_headers(upstream)
        )
        return Response(content, status, headers=headers)

    async def _read(self, upstream: httpx.Response, status: int) -> bytes:
        """The whole body of a JSON answer (an error's is bounded)."""
        try:
            if status < 400:
                return await upstream.aread()
            chunks: list[bytes] = []
            seen = 0
            async for chunk in upstream.aiter_bytes():
                chunks.append(chunk)
                seen += len(chunk)
                if seen >= self.settings.error_body_max:
                    break
            return b"".join(chunks)[: self.settings.error_body_max]
        finally:
            await upstream.aclose()

    async def _settle(
        self,
        call: Call,
        held: spend.Hold | None,
        meter: UsageMeter,
        status: int,
        outcome: RelayOutcome,
    ) -> None:
        held_output = None  # no limit applied: nothing was held
        if held is not None and held.id is not None:
            held_output = held.max_output_tokens or 0
        usage = meter.settled_usage(
            complete=outcome.complete, input_bound=call.input_bound, held_output=held_output
        )
        charge = call.charge(usage)
        entry = call.entry(
            status,
            usage=usage,
            cost_micros=charge.cost_micros,
            ended_at=outcome.ended_at,
            first_token_at=outcome.first_token_at,
        )
        await record(entry, held, charge)
