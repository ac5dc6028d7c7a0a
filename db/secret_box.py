"""Encrypting secrets at rest (provider API keys) under the deployment secret.

Fernet (AES-128-CBC + HMAC-SHA256, random IV, timestamped) with a key derived
from the settings secret by HKDF-SHA256, so the stored secret itself is never
used directly as a cipher key and other purposes can derive their own keys.
Ciphertexts are ASCII tokens, safe in a text column.

Changing the deployment secret makes stored keys undecryptable: they must be
entered again (``decrypt`` raises ``SecretBoxError``).
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"agentgql secret box v1: provider api keys"
_SALT = b"agentgql"


class SecretBoxError(Exception):
    """A ciphertext that this deployment's secret cannot open."""


class SecretBox:
    __slots__ = ("_fernet",)

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the secret must not be empty")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(
            secret.encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode()
        except (InvalidToken, UnicodeError, ValueError):
            # No detail: the exception must not carry key material into logs.
            raise SecretBoxError("the stored secret cannot be decrypted") from None

    def __repr__(self) -> str:
        return "SecretBox(<hidden>)"
