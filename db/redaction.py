"""Secrets out of debug bodies, before anything is written.

Debug runs keep what the daemon sent to a model and what came back, and both
carry whatever the conversation and its tools carried: keys read from files,
headers a command printed. Everything goes through ``redact`` on its way to the
debug tables, the request and the response alike (one tool once redacted only
the response and stored the request in clear).

Two rules, applied to every JSON value:

- **By key**: the value of a key whose name (case and separators ignored)
  contains ``secret``, ``password``/``passwd``, ``authorization``, ``credential``,
  ``apikey`` (``api_key``, ``api-key``, ``x-api-key``), ``privatekey``,
  ``cookie`` or ``token`` is replaced whole. Usage counters and limits stay:
  a key naming ``tokens`` (plural: ``input_tokens``, ``max_tokens``,
  ``x-ratelimit-remaining-tokens``) is kept, and so is a number under any
  ``token`` key (a count is not a credential).
- **By shape**, inside every string: ``sk-…`` provider keys, ``Bearer …`` and
  ``Basic …`` credentials, JWTs, agentgql tokens (``agq_…``), GitHub, Slack,
  AWS and Google key formats, PEM private key blocks, the password of a URL's
  user info, ``key=value`` / ``key: value`` pairs with a sensitive key name,
  and long high-entropy runs (32+ characters mixing upper case, lower case and
  digits, ≥ 4 bits of entropy per character).

A body that is not JSON (a provider's HTML error page, a truncated stream) is
replaced whole by ``redact_body``: it cannot be searched reliably.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

import orjson

REDACTED = "[REDACTED]"

_SENSITIVE_KEY_PARTS = (
    "secret",
    "password",
    "passwd",
    "authorization",
    "credential",
    "apikey",
    "privatekey",
    "cookie",
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]")

# Credentials recognised by their shape wherever they appear in text, each with
# the literals one of which it must contain (a cheap test before the scan).
_SHAPES = (
    (("sk-",), re.compile(r"\bsk-[A-Za-z0-9][A-Za-z0-9_\-]{14,}")),  # OpenAI, Anthropic
    (("agq_",), re.compile(r"\bagq_[A-Za-z0-9_\-]{16,}")),  # agentgql API and session tokens
    # JWT. Starts only where a run of its characters starts: "\b" also allowed one
    # after every "-" of a run, each rescanning the rest of it (quadratic in "eyJ-eyJ-…").
    (
        ("eyJ",),
        re.compile(
            r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*"
        ),
    ),
    (
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"),
    ),
    (("xox",), re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}")),  # Slack
    (("AKIA", "ASIA"), re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),  # AWS access key ids
    (("AIza",), re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}")),  # Google API keys
    # A PEM private key, header to footer: its base64 lines are split by "/" into
    # runs too short for the entropy rule. The body stops at the first character
    # that is not base64, a header line's or an escaped newline's (linear).
    (
        ("PRIVATE KEY",),
        re.compile(
            r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
            r"(?:[A-Za-z0-9+/=\s:,.\\]|-(?!----))*+"
            r"(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----)?"
        ),
    ),
)
# The password of a URL's user info ("postgres://app:<password>@db/app").
_URL_PASSWORD = re.compile(r"(://[^\s/?#@:]*+:)[^\s/?#@]++(?=@)")
# "<scheme> <credential>": the scheme stays, the credential goes. A Basic
# credential is base64 with a digit, "+", "/" or "=" in it ("basic functionality" stays).
_SCHEMES = re.compile(
    r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=\-]{8,}"
    r"|\b(basic)(\s+)(?=[A-Za-z0-9+/]*[0-9+/=])[A-Za-z0-9+/]{8,}={0,2}"
)
# "api_key=…", "password: …", "Authorization: …", "Cookie: …" in free text (env files,
# headers, URLs).
_PAIRS = re.compile(
    r"(?i)(?<![a-z0-9])((?:x-)?(?:api[_\-]?key|access[_\-]?token|refresh[_\-]?token|"
    r"auth[_\-]?token|(?:set-)?cookie|secret(?:[_\-]?access)?(?:[_\-]?key)?|client[_\-]?secret|password|passwd|authorization|"
    r"credentials?|token)[\"']?\s*[:=]\s*[\"']?)((?:bearer\s+|basic\s+)?[^\s\"'&,;]{4,})"
)
_PAIR_WORDS = ("key", "token", "secret", "passw", "authorization", "credential", "cookie")
# Candidates for the entropy rule: long runs without separators.
_RUNS = re.compile(r"[A-Za-z0-9_\-+=]{32,}")
_ENTROPY_BITS = 4.0


def sensitive_key(key: str) -> bool:
    """Whether a value under ``key`` is a credential (see the module doc)."""
    name = _NOT_ALNUM.sub("", key.lower())
    if any(part in name for part in _SENSITIVE_KEY_PARTS):
        return True
    return "token" in name and "tokens" not in name


def _counter_key(key: str) -> bool:
    """``token`` keys whose numbers are counts, not credentials."""
    return "token" in _NOT_ALNUM.sub("", key.lower())


def _entropy(text: str) -> float:
    counts = Counter(text)
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


def _high_entropy(run: str) -> bool:
    return (
        any(c.isupper() for c in run)
        and any(c.islower() for c in run)
        and any(c.isdigit() for c in run)
        and _entropy(run) >= _ENTROPY_BITS
    )


def _scrub_run(match: re.Match[str]) -> str:
    run = match.group(0)
    return REDACTED if _high_entropy(run) else run


def _scheme(match: re.Match[str]) -> str:
    scheme, space = match.group(1, 2) if match.group(1) else match.group(3, 4)
    return f"{scheme}{space}{REDACTED}"


def redact_text(text: str) -> str:
    """``text`` with every credential-shaped substring replaced."""
    if len(text) < 8:
        return text
    for needles, shape in _SHAPES:
        if any(needle in text for needle in needles):
            text = shape.sub(REDACTED, text)
    if "://" in text and "@" in text:
        text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    lower = text.lower()
    if "bearer" in lower or "basic" in lower:
        text = _SCHEMES.sub(_scheme, text)
    if any(word in lower for word in _PAIR_WORDS):
        text = _PAIRS.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    return _RUNS.sub(_scrub_run, text)


def redact(value: Any) -> Any:
    """A redacted copy of a JSON value (dicts, lists, strings, numbers…)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            if sensitive_key(name) and item is not None:
                numeric = isinstance(item, int | float) and not isinstance(item, bool)
                out[name] = item if numeric and _counter_key(name) else REDACTED
            else:
                out[name] = redact(item)
        return out
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def redact_body(body: str | bytes | None) -> Any:
    """A raw body (an error page, a provider's reply): parsed and redacted when
    it is JSON, else replaced whole with a note of its size."""
    if body is None:
        return None
    raw = body.encode() if isinstance(body, str) else body
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return f"{REDACTED} (a body that is not JSON, {len(raw)} bytes)"
    return redact(parsed)
