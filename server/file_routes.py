"""``POST /files`` (raw bytes, for clients without multipart) and ``GET /files/{id}``.

Both authenticate exactly like GraphQL and answer errors in its shape
(``{"errors": [{"message", "extensions": {"code"}}]}``) with a matching status.
No CSRF header is needed on the upload: its Content-Type must be an image
type, which no cross-site form can send without a CORS preflight.
"""

from __future__ import annotations

import contextlib
from email.message import Message as MimeHeader
from email.utils import collapse_rfc2231_value

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from db.vocabulary import CHAT_FILE_MAX_BYTES, ErrorCode
from resolvers import files, global_id
from resolvers.context import RequestContext
from resolvers.errors import ApiError
from resolvers.permissions import require_viewer
from server.request_auth import credentials_of, resolve_token
from server.request_ids import current_request_id

_STATUS = {
    ErrorCode.BAD_USER_INPUT: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
}
IMMUTABLE = "private, max-age=31536000, immutable"
# A file opened directly (not as an <img>) is a document of our origin: nothing in
# it may run, load or reach anything, whatever its type claims.
DOWNLOAD_CSP = "default-src 'none'; sandbox"


async def _context(request: Request) -> RequestContext:
    state = await resolve_token(credentials_of(request, query_ok=True).token)
    ctx = RequestContext(request_id=current_request_id())
    ctx.viewer, ctx.token, ctx.auth_error = state.viewer, state.token, state.error
    return ctx


def _error(exc: ApiError) -> JSONResponse:
    body = {"errors": [{"message": exc.message, "extensions": exc.extensions}]}
    return JSONResponse(body, status_code=_STATUS.get(exc.code, 400))


def disposition_name(header: str | None) -> str | None:
    """The file name from ``Content-Disposition``: ``filename*`` (RFC 5987) wins
    over ``filename``; raw UTF-8 in a plain ``filename`` is accepted too."""
    if not header:
        return None
    # ASGI hands headers over as latin-1; raw UTF-8 names come back intact.
    with contextlib.suppress(UnicodeError):
        header = header.encode("latin-1").decode("utf-8")
    parsed = MimeHeader()
    parsed["content-disposition"] = header
    names = [v for k, v in parsed.get_params([], header="content-disposition") if k == "filename"]
    extended = [v for v in names if isinstance(v, tuple)]
    if extended:
        return collapse_rfc2231_value(extended[0])
    return str(names[0]) if names else None


async def upload(request: Request) -> Response:
    ctx = await _context(request)
    try:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > CHAT_FILE_MAX_BYTES:
            raise files.too_large()
        name = disposition_name(request.headers.get("content-disposition"))
        content_type = request.headers.get("content-type")
        require_viewer(ctx)  # refused before a byte of the body is read
        data = await files.read_capped(request.stream())
        meta = await files.upload_file(ctx, name, content_type, data)
    except ApiError as exc:
        return _error(exc)
    # The ChatFile's global id: what sendMessage's fileId and node(id) take.
    body = {"id": global_id.encode("ChatFile", meta.id)}
    return JSONResponse(body, status_code=201, headers={"Location": files.file_url(meta)})


async def download(request: Request) -> Response:
    ctx = await _context(request)
    try:
        blob = await files.download(ctx, request.path_params["file_id"])
    except ApiError as exc:
        return _error(exc)
    etag = f'"{blob.meta.sha256}"'
    headers = {
        "Cache-Control": IMMUTABLE,
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": DOWNLOAD_CSP,
        "Content-Disposition": files.content_disposition(blob.meta.name),
    }
    wanted = request.headers.get("if-none-match", "")
    if etag in {tag.strip() for tag in wanted.split(",")} or wanted.strip() == "*":
        return Response(status_code=304, headers=headers)
    return Response(blob.data, media_type=blob.meta.mime_type, headers=headers)


def file_routes() -> list[Route]:
    return [
        Route("/files", upload, methods=["POST"]),
        Route("/files/{file_id}", download, methods=["GET", "HEAD"]),
    ]
