"""Secrets at rest: Fernet under a key derived from the deployment secret."""

from __future__ import annotations

import pytest

from db.secret_box import SecretBox, SecretBoxError

KEY = "sk-test-0123456789abcdef"


def test_round_trip_and_ciphertext_hides_the_plaintext() -> None:
    box = SecretBox("deployment secret")
    token = box.encrypt(KEY)
    assert token != KEY
    assert KEY not in token
    assert token.isascii()
    assert box.decrypt(token) == KEY


def test_each_encryption_is_fresh() -> None:
    box = SecretBox("deployment secret")
    first, second = box.encrypt(KEY), box.encrypt(KEY)
    assert first != second
    assert box.decrypt(first) == box.decrypt(second) == KEY


def test_same_secret_opens_what_another_instance_sealed() -> None:
    token = SecretBox("deployment secret").encrypt(KEY)
    assert SecretBox("deployment secret").decrypt(token) == KEY


def test_another_secret_cannot_open_it() -> None:
    token = SecretBox("deployment secret").encrypt(KEY)
    with pytest.raises(SecretBoxError) as caught:
        SecretBox("another secret").decrypt(token)
    assert KEY not in str(caught.value)
    assert caught.value.__cause__ is None


@pytest.mark.parametrize("broken", ["", "not a token", "gAAAAA" + "A" * 80, "é"])
def test_garbage_or_tampered_tokens_are_refused(broken: str) -> None:
    box = SecretBox("deployment secret")
    with pytest.raises(SecretBoxError):
        box.decrypt(broken)
    token = box.encrypt(KEY)
    flipped = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    with pytest.raises(SecretBoxError):
        box.decrypt(flipped)


def test_unicode_round_trip() -> None:
    box = SecretBox("ünïcode sécret")
    assert box.decrypt(box.encrypt("ключ-🔑")) == "ключ-🔑"


def test_empty_secret_is_refused_and_repr_hides_everything() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        SecretBox("")
    box = SecretBox("deployment secret")
    assert "deployment" not in repr(box)
    assert repr(box) == "SecretBox(<hidden>)"
