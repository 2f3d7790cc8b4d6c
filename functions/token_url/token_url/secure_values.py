"""Random values, their one-way digests, and the sealing of a session id for replays.

Session ids, one-time values and browser bindings are 256-bit CSPRNG values, so a plain SHA-256
(with a purpose prefix, so one kind can never be looked up as another) cannot be reversed: a
secret salt would protect low-entropy inputs only, and would cost a secret fetch on every request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

OPAQUE_BYTES = 32


def new_opaque_value() -> str:
    """A 256-bit value from the OS CSPRNG, URL-safe (43 characters)."""
    return secrets.token_urlsafe(OPAQUE_BYTES)


def digest(purpose: str, value: str) -> str:
    return hashlib.sha256(f"{purpose}:{value}".encode()).hexdigest()


def _keystream(token: str, browser: str) -> bytes:
    # HMAC-SHA256 is a PRF; keyed by the 256-bit browser binding it yields one 32-byte pad per token.
    return hmac.new(browser.encode(), f"session-seal:{token}".encode(), hashlib.sha256).digest()


def seal_session_id(session_id: str, *, token: str, browser: str) -> str:
    """Hide a session id so that only a request carrying the same token and browser cookie can open it.

    Written here rather than with a cipher library: the plaintext is exactly one 32-byte random
    value and each pad is used for one value only, so XOR with a PRF output is a one-time pad and
    needs no dependency (or KMS call) on the sign-in path.
    """
    raw = base64.urlsafe_b64decode(session_id + "=")
    pad = _keystream(token, browser)
    return base64.urlsafe_b64encode(bytes(a ^ b for a, b in zip(raw, pad, strict=True))).decode()


def unseal_session_id(sealed: str, *, token: str, browser: str) -> str:
    raw = base64.urlsafe_b64decode(sealed)
    pad = _keystream(token, browser)
    opened = bytes(a ^ b for a, b in zip(raw, pad, strict=True))
    return base64.urlsafe_b64encode(opened).decode().rstrip("=")


def fingerprint(value: str, *, salt: str) -> str:
    """A short salted handle to correlate one secret across log lines without revealing it.

    The salt is a deployment secret (derived from the apiKey), so nobody holding only the logs can
    test a guessed token against a handle.
    """
    return hmac.new(salt.encode(), f"log:{value}".encode(), hashlib.sha256).hexdigest()[:12]


def session_handle(session_pk: str, *, key: str) -> str:
    """The handle audit events name a session by: an HMAC of its stored key with a deployment secret.

    Keyed by a secret (derived from the apiKey, as `fingerprint` is), so that neither the sessions
    table nor a stolen cookie lets anyone without the secret compute a handle and find its events.
    """
    return hmac.new(key.encode(), f"audit-session:{session_pk}".encode(), hashlib.sha256).hexdigest()[:32]
