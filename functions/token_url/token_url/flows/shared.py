"""The few pieces more than one flow uses: the clock, how sessions are keyed and their sealed fields named,
the token URL of a one-time value, ending a replaced session, and logging a failed dependency."""

from __future__ import annotations

import time
from collections.abc import Callable

from token_url.errors import ConfigurationProblem, ServiceUnavailable
from token_url.models import ErrorCode
from token_url.observability import count, logger
from token_url.ports import SessionStorage
from token_url.secure_values import digest

# The vault's encryption context names the field a ciphertext lives in: a copy in another field does not open.
CAPTURE_TOKEN_FIELD = "capture_token"  # noqa: S105 - an attribute name
CREDENTIALS_FIELD = "credentials"
PENDING_LINK_TOKEN_FIELD = "pending_link_token"  # noqa: S105 - an attribute name


class SystemClock:
    """The one clock of every flow in a container, so that a test can move time for all of them at once."""

    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self.source = source

    def now(self) -> int:
        return int(self.source())


def session_key(session_id: str) -> str:
    """A session's key in the table: the digest of its id, which is never stored."""
    return digest("session", session_id)


def token_url_for(token_endpoint: str, nonce: str) -> str:
    """The exact URL a one-time value is issued in; auth_info gets it back as tokenUrl."""
    return f"{token_endpoint}?nonce={nonce}"


def end_replaced_session(sessions: SessionStorage, pk: str) -> None:
    """Rotation: the replaced session must stop working, but failing to delete it (it expires by TTL
    anyway) must not undo a sign-in that has already happened."""
    try:
        sessions.delete(pk)
    except ServiceUnavailable:
        logger.warning("Replaced session could not be deleted; it expires by TTL")


def log_dependency_failure(what: str, error: ServiceUnavailable | ConfigurationProblem) -> ErrorCode:
    """Log and count a dependency that failed or refused our settings; the code the user is given."""
    count("UpstreamErrors")
    if isinstance(error, ServiceUnavailable):
        logger.error(f"{what}: a service is unavailable", extra={"dependency": error.service})
        return ErrorCode.SERVICE_UNAVAILABLE
    logger.error(f"{what}: configuration refused", extra={"dependency": error.service})
    return ErrorCode.CONFIGURATION_ERROR
