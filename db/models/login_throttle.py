"""Failed sign-ins per username and per client address, shared by every replica.

A row is written only when an attempt fails (or, for sign-up, is made), so the
table holds what attackers and unlucky typists did in the last hour; rows older
than that are treated as forgotten and purged as new failures arrive.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class ThrottleKind(StrEnum):
    """What a throttle row counts."""

    USERNAME = "username"  # failed logins naming this (lower-cased) username
    ADDRESS = "address"  # failed logins from this client address (IPv6: its /64)
    SIGNUP = "signup"  # sign-up attempts from this client address


class LoginThrottle(Model):
    id = fields.BigIntField(primary_key=True)
    kind = fields.CharEnumField(ThrottleKind, max_length=16)
    key = fields.CharField(max_length=100)
    failures = fields.IntField(default=0)
    # Attempts before this moment are refused without checking the password.
    blocked_until = fields.DatetimeField(null=True)
    # The last counted attempt; older than the forget window means a fresh start.
    updated_at = fields.DatetimeField()

    class Meta:
        table = "login_throttles"
        unique_together = (("kind", "key"),)
        indexes = (("updated_at",),)
