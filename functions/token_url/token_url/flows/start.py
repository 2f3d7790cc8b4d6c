"""POST /token-url: issue a token URL, its one-time value bound to this browser (and, to link, a session)."""

from __future__ import annotations

from dataclasses import dataclass

from token_url.flows.shared import session_key, token_url_for
from token_url.models import Intent, NonceRecord
from token_url.ports import Clock, NonceStorage, SessionStorage
from token_url.secure_values import digest, new_opaque_value
from token_url.settings import Settings


class NotSignedIn(Exception):
    """A link was asked for by a browser whose session holds no Registration access token."""


@dataclass(frozen=True)
class StartedTokenUrl:
    token_url: str
    browser: str  # the browser-binding value to (re)set as a cookie


class StartTokenUrl:
    def __init__(
        self, *, settings: Settings, sessions: SessionStorage, nonces: NonceStorage, clock: Clock
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._nonces = nonces
        self._clock = clock

    def start(self, intent: Intent, *, browser: str | None, session_id: str | None) -> StartedTokenUrl:
        """NotSignedIn for a link without a Registration session; the browser binding is kept or made."""
        now = self._clock.now()
        # For a sign-in, the session this browser had is recorded too, so the sign-in can end it
        # even though the cross-site token POST will not carry the SameSite=Lax session cookie.
        session_pk = session_key(session_id) if session_id else None
        if intent is Intent.LINK:
            session = self._sessions.get(session_pk, now=now) if session_pk else None
            if session is None or session.capture_token is None:
                raise NotSignedIn
        browser = browser or new_opaque_value()
        nonce = new_opaque_value()
        self._nonces.put(
            NonceRecord(
                pk=digest("nonce", nonce),
                intent=intent,
                browser=digest("browser", browser),
                session=session_pk,
                created_at=now,
                expires_at=now + self._settings.token_url_ttl_seconds,
            )
        )
        return StartedTokenUrl(token_url=token_url_for(self._settings.token_endpoint, nonce), browser=browser)
