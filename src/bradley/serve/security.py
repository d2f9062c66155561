"""Tokens for the arena service: random, shown once, stored as SHA-256 digests.

Tokens are ``secrets.token_urlsafe(32)`` (256 bits from the OS generator). A
fast unsalted hash is the right store for such tokens: salting and slow key
derivation (bcrypt, scrypt) exist to slow down guessing of *low-entropy*
passwords, whereas a 256-bit random token cannot be guessed or found in a
dictionary however fast the hash is; a digest lets the server find the token's
row by an indexed lookup, and a leaked database does not reveal usable tokens.
Comparisons use :func:`hmac.compare_digest` (constant time).

>>> token = new_token()
>>> len(token) >= 43
True
>>> digest = hash_token(token)
>>> token_matches(token, digest), token_matches(token + "x", digest)
(True, False)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["new_token", "hash_token", "token_matches", "bearer_token", "check_admin_token"]

TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 256
MIN_ADMIN_TOKEN_LENGTH = 32


def new_token() -> str:
    """A fresh random token (URL-safe text, 256 bits of entropy)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """Hex SHA-256 digest of a token (what the database stores)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, digest: str) -> bool:
    """Whether ``token`` hashes to ``digest``, compared in constant time."""
    return hmac.compare_digest(hash_token(token).encode("ascii"), digest.encode("ascii"))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None.

    >>> bearer_token("Bearer abc"), bearer_token("Basic abc"), bearer_token(None)
    ('abc', None, None)
    """
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or len(value) > MAX_TOKEN_LENGTH:
        return None
    return value


def check_admin_token(token: str) -> str:
    """``token`` if it is acceptable as a given admin token (32 to 256 characters), else ValueError.

    >>> check_admin_token("x" * 32) == "x" * 32
    True
    >>> try:
    ...     check_admin_token("hunter2")
    ... except ValueError as exc:
    ...     print(str(exc)[:57])
    the admin token must be 32 to 256 characters long (got 7)
    """
    if not MIN_ADMIN_TOKEN_LENGTH <= len(token) <= MAX_TOKEN_LENGTH:
        raise ValueError(f"the admin token must be {MIN_ADMIN_TOKEN_LENGTH} to {MAX_TOKEN_LENGTH} characters long "
                         f"(got {len(token)}); make one with: "
                         'python -c "import secrets; print(secrets.token_urlsafe(32))"')
    return token
