"""The token POST of a sign-in: a new session for the profile the token names."""

from __future__ import annotations

import json

from token_url.audit import AuditEventType
from token_url.flows.profile import ProfileReader
from token_url.flows.shared import CREDENTIALS_FIELD, end_replaced_session, session_key
from token_url.models import NonceRecord, Result, SessionRecord, TokenAttempt, TokenResult
from token_url.observability import count, logger
from token_url.ports import AuditPublisher, SecretSealer, SessionStorage
from token_url.secure_values import new_opaque_value, seal_session_id
from token_url.settings import Settings


class SignIn:
    def __init__(
        self,
        *,
        settings: Settings,
        profiles: ProfileReader,
        sessions: SessionStorage,
        vault: SecretSealer,
        audit: AuditPublisher,
    ) -> None:
        self._settings = settings
        self._profiles = profiles
        self._sessions = sessions
        self._vault = vault
        self._audit = audit

    def complete(self, attempt: TokenAttempt, nonce: NonceRecord, now: int) -> TokenResult:
        """Runs inside the replay protection: a replay returns the recorded result and publishes nothing."""
        auth = self._profiles.read(attempt)
        if isinstance(auth, TokenResult):
            return auth
        session_id = new_opaque_value()
        pk = session_key(session_id)
        credentials = None
        if auth.access_credentials:
            credentials = self._vault.seal(
                json.dumps(auth.access_credentials), session_pk=pk, field=CREDENTIALS_FIELD
            )
        expires_at = now + self._settings.session_ttl_seconds
        self._sessions.put(
            SessionRecord(
                pk=pk,
                identifier=auth.profile.identifier,
                provider=auth.profile.provider_name,
                display_name=auth.profile.display_name,
                credentials=credentials,
                created_at=now,
                expires_at=expires_at,
            )
        )
        if nonce.session is not None:
            end_replaced_session(self._sessions, nonce.session)  # the browser's previous session ends
        count("SignIns")
        logger.info("Signed in", extra={"provider": auth.profile.provider_name})
        self._audit.publish(
            AuditEventType.SIGNED_IN,
            provider=auth.profile.provider_name,
            identifier=auth.profile.identifier,
            session_pk=pk,
        )
        return TokenResult(
            result=Result.SIGNED_IN,
            sealed_session=seal_session_id(session_id, token=attempt.token, browser=attempt.browser),
            session_expires_at=expires_at,
        )
