"""Sessions the site asks for: one from a Capture sign-in (POST /session), read it, sign out."""

from __future__ import annotations

from dataclasses import dataclass

from token_url.audit import AuditEventType
from token_url.flows.shared import CAPTURE_TOKEN_FIELD, end_replaced_session, session_key
from token_url.models import SessionRecord, SessionView
from token_url.ports import AuditPublisher, Clock, SecretSealer, SessionStorage
from token_url.secure_values import new_opaque_value


@dataclass(frozen=True)
class NewSession:
    session_id: str
    view: SessionView
    expires_at: int


class Sessions:
    def __init__(
        self, *, sessions: SessionStorage, vault: SecretSealer, audit: AuditPublisher, clock: Clock
    ) -> None:
        self._sessions = sessions
        self._vault = vault
        self._audit = audit
        self._clock = clock

    def create_capture_session(
        self, *, access_token: str, expires_in: int, previous_session_id: str | None
    ) -> NewSession:
        """A session holding the Registration access token (sealed); the browser's previous one ends."""
        now = self._clock.now()
        session_id = new_opaque_value()
        pk = session_key(session_id)
        record = SessionRecord(
            pk=pk,
            capture_token=self._vault.seal(access_token, session_pk=pk, field=CAPTURE_TOKEN_FIELD),
            created_at=now,
            expires_at=now + expires_in,
        )
        self._sessions.put(record)
        if previous_session_id:
            end_replaced_session(self._sessions, session_key(previous_session_id))
        self._audit.publish(AuditEventType.SESSION_CREATED, session_pk=pk)
        return NewSession(session_id=session_id, view=record.view(), expires_at=record.expires_at)

    def read(self, session_id: str) -> SessionView | None:
        record = self._sessions.get(session_key(session_id), now=self._clock.now())
        return record.view() if record else None

    def sign_out(self, session_id: str) -> None:
        pk = session_key(session_id)
        ended = self._sessions.delete(pk)
        # An expired or missing session means nobody was signed in: nothing changed, nothing to publish.
        if ended is not None and ended.is_live(self._clock.now()):
            self._audit.publish(
                AuditEventType.SIGNED_OUT, provider=ended.provider, identifier=ended.identifier, session_pk=pk
            )
