"""Linking a social identity to the signed-in Registration account (Capture's link_account_native).

The token POST of a link either links at once or, with LINK_CONFIRMATION=on, holds the link on the
session until the user confirms or cancels it (GET and POST /link, docs/link-confirmation.md).

When link_account_native fails after the request may have reached Capture, the account is read with
/entity before answering (flows/recheck.py): the user is told `linked` if Capture holds the identity,
as it may.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from token_url.audit import AuditEventType
from token_url.errors import CaptureError, ConditionFailed, ConfigurationProblem, ServiceUnavailable
from token_url.flows.profile import ProfileReader
from token_url.flows.recheck import LINK, AccountRecheck
from token_url.flows.shared import (
    CAPTURE_TOKEN_FIELD,
    PENDING_LINK_TOKEN_FIELD,
    log_dependency_failure,
    session_key,
)
from token_url.models import (
    ErrorCode,
    LinkDecision,
    NonceRecord,
    PendingLink,
    PendingLinkView,
    Result,
    SessionRecord,
    SocialProfile,
    TokenAttempt,
    TokenResult,
)
from token_url.observability import count, count_outcome, logger
from token_url.ports import AuditPublisher, Clock, IdentityCloud, SecretSealer, SessionStorage
from token_url.settings import Settings


@dataclass(frozen=True)
class LinkConfirmation:
    """What a POST /link ended in: a decision, or an error code."""

    decision: LinkDecision | None = None
    error: ErrorCode | None = None


def _provider_host(identifier: str) -> str:
    """Who issued an identifier, for a profile without providerName: its URL's host, else the identifier."""
    return urlsplit(identifier).hostname or identifier


class Link:
    def __init__(
        self,
        *,
        settings: Settings,
        profiles: ProfileReader,
        client: IdentityCloud,
        sessions: SessionStorage,
        vault: SecretSealer,
        audit: AuditPublisher,
        clock: Clock,
        recheck: AccountRecheck,
    ) -> None:
        self._settings = settings
        self._recheck = recheck
        self._profiles = profiles
        self._client = client
        self._sessions = sessions
        self._vault = vault
        self._audit = audit
        self._clock = clock

    # ------------------------------------------------------------ the token POST of a link

    def complete(self, attempt: TokenAttempt, nonce: NonceRecord, now: int) -> TokenResult:
        """Runs inside the replay protection, like the sign-in."""
        # The session is checked before any upstream call: a signed-out browser spends no token.
        session = self._sessions.get(nonce.session, now=now) if nonce.session else None
        if session is None or session.capture_token is None:
            return TokenResult(error=ErrorCode.SESSION_EXPIRED)
        auth = self._profiles.read(attempt)
        if isinstance(auth, TokenResult):
            return auth
        if self._settings.confirms_links:
            return self._hold_for_confirmation(attempt.token, session, auth.profile, now)
        return self._link_in_capture(
            attempt.token, session, auth.profile.identifier, auth.profile.provider_name
        )

    def _link_in_capture(
        self, token: str, session: SessionRecord, identifier: str, provider: str | None
    ) -> TokenResult:
        """link_account_native with the session's Registration access token; Capture's refusals mapped."""
        if session.capture_token is None:
            return TokenResult(error=ErrorCode.SESSION_EXPIRED)
        access_token = self._vault.open(
            session.capture_token, session_pk=session.pk, field=CAPTURE_TOKEN_FIELD
        )
        try:
            self._client.link_account_native(token=token, access_token=access_token)
        except CaptureError as error:
            return self._link_refused(error, session, identifier, provider)
        except ServiceUnavailable as error:
            if not error.may_have_reached:
                raise
            # Made upstream but not heard of, the link would otherwise be answered as an outage, and the
            # user's retry would meet a spent token.
            if not self._recheck.took_effect(LINK, access_token, identifier, provider):
                raise
        return self._linked(session, identifier, provider)

    def _linked(self, session: SessionRecord, identifier: str, provider: str | None) -> TokenResult:
        # The link lives in Capture; the session's list is only what this browser is shown.
        try:
            self._sessions.add_linked(session.pk, identifier)
        except ServiceUnavailable:
            logger.warning("Linked, but the session's list of links could not be updated")
        count("Links")
        logger.info("Linked", extra={"provider": provider})
        self._audit.publish(
            AuditEventType.LINKED,
            provider=provider,
            identifier=identifier,
            session_pk=session.pk,
            account_uuid=session.account_uuid,
        )
        return TokenResult(result=Result.LINKED)

    def _link_refused(
        self, error: CaptureError, session: SessionRecord, identifier: str, provider: str | None
    ) -> TokenResult:
        if error.code == CaptureError.UNIQUE_VIOLATION:
            count("LinkConflicts")
            self._audit.publish(
                AuditEventType.LINK_REFUSED,
                outcome=ErrorCode.ALREADY_LINKED.value,
                provider=provider,
                identifier=identifier,
                session_pk=session.pk,
                account_uuid=session.account_uuid,
            )
            return TokenResult(error=ErrorCode.ALREADY_LINKED)
        if error.code in CaptureError.ACCESS_TOKEN_REFUSAL_CODES:
            self._sessions.drop_capture_token(session.pk)
            return TokenResult(error=ErrorCode.SESSION_EXPIRED)
        if error.code == CaptureError.ENGAGE_ERROR:
            count("RejectedTokens")
            return TokenResult(error=ErrorCode.TOKEN_INVALID)
        if error.code in CaptureError.CONFIGURATION_CODES:
            raise ConfigurationProblem("capture", f"link_account_native error {error.code}")
        raise ServiceUnavailable("capture", f"link_account_native error {error.code}")

    # ------------------------------------------------------------ link confirmation

    def _hold_for_confirmation(
        self, token: str, session: SessionRecord, profile: SocialProfile, now: int
    ) -> TokenResult:
        """Keep the link on the session, its token encrypted, until the user confirms it (or not)."""
        pending = PendingLink(
            provider=profile.provider_name or _provider_host(profile.identifier),
            identifier=profile.identifier,
            display_name=profile.display_name,
            token=self._vault.seal(token, session_pk=session.pk, field=PENDING_LINK_TOKEN_FIELD),
            expires_at=now + self._settings.link_confirmation_seconds,
        )
        try:
            self._sessions.hold_pending_link(session.pk, pending)  # replaces an earlier pending link
        except ConditionFailed:
            return TokenResult(error=ErrorCode.SESSION_EXPIRED)  # signed out during auth_info
        self._announce(
            AuditEventType.LINK_CONFIRMATION_REQUESTED, "Link awaits confirmation", pending, session
        )
        return TokenResult(result=Result.LINK_PENDING)

    def _announce(
        self, event: AuditEventType, message: str, pending: PendingLink, session: SessionRecord
    ) -> None:
        """A pending link's step: logged (without its identifier) and published as an audit event."""
        logger.info(message, extra={"provider": pending.provider})
        self._audit.publish(
            event,
            provider=pending.provider,
            identifier=pending.identifier,
            session_pk=session.pk,
            account_uuid=session.account_uuid,
        )

    def pending_link(self, session_id: str) -> PendingLinkView | None:
        """GET /link: the link this session holds for the user to decide on, while it is live."""
        now = self._clock.now()
        session = self._sessions.get(session_key(session_id), now=now)
        pending = session.pending_link if session else None
        return pending.view() if pending is not None and pending.is_live(now) else None

    def decide(self, session_id: str | None, *, confirm: bool) -> LinkConfirmation:
        """POST /link: link or drop the session's pending link, removed first so it is used at most once."""
        try:
            outcome = self._decide_pending_link(session_id, confirm=confirm)
        except (ServiceUnavailable, ConfigurationProblem) as error:
            outcome = LinkConfirmation(error=log_dependency_failure("Pending link not decided", error))
        label = outcome.decision or outcome.error
        count_outcome("link", label.value if label else "unknown")
        return outcome

    def _decide_pending_link(self, session_id: str | None, *, confirm: bool) -> LinkConfirmation:
        claimed = self._sessions.claim_pending_link(session_key(session_id)) if session_id else None
        pending = claimed.pending_link if claimed is not None else None
        if claimed is None or pending is None:
            return LinkConfirmation(error=ErrorCode.NO_PENDING_LINK)
        if not confirm:
            self._announce(AuditEventType.LINK_CANCELLED, "Pending link cancelled", pending, claimed)
            return LinkConfirmation(decision=LinkDecision.CANCELLED)
        now = self._clock.now()
        if not pending.is_live(now):
            # Past its expiry the Social Login token is not worth sending (nor would Capture accept it).
            count("RejectedTokens")
            return LinkConfirmation(error=ErrorCode.TOKEN_INVALID)
        if not claimed.is_live(now):
            return LinkConfirmation(error=ErrorCode.SESSION_EXPIRED)
        token = self._vault.open(pending.token, session_pk=claimed.pk, field=PENDING_LINK_TOKEN_FIELD)
        result = self._link_in_capture(token, claimed, pending.identifier, pending.provider)
        if result.error is not None:
            return LinkConfirmation(error=result.error)
        return LinkConfirmation(decision=LinkDecision.LINKED)
