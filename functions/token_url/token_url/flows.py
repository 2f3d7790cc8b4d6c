"""The service's flows: start a token URL, complete it (sign in or link), sessions, stored credentials.

Nothing here knows about HTTP: the handler turns these calls and their outcomes into responses.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from aws_lambda_powertools.utilities.typing import LambdaContext

from token_url.audit import AuditEventType, AuditTrail
from token_url.errors import CaptureError, ConfigurationProblem, ServiceUnavailable, SocialLoginError
from token_url.identity_cloud import IdentityCloudClient
from token_url.models import (
    AuthInfo,
    ErrorCode,
    Intent,
    LinkDecision,
    NonceRecord,
    PendingLink,
    PendingLinkView,
    Result,
    SessionRecord,
    SessionView,
    SocialProfile,
    TokenAttempt,
    TokenResult,
    credential_provider,
)
from token_url.observability import count, count_outcome, logger
from token_url.secure_values import digest, new_opaque_value, seal_session_id, unseal_session_id
from token_url.settings import Settings
from token_url.store import ConditionFailed, NonceStore, SessionStore
from token_url.vault import Vault

CAPTURE_TOKEN_FIELD = "capture_token"  # noqa: S105 - an attribute name
CREDENTIALS_FIELD = "credentials"
PENDING_LINK_TOKEN_FIELD = "pending_link_token"  # noqa: S105 - an attribute name
# Time kept back from the Lambda deadline when waiting for a duplicate request to finish.
_DEADLINE_MARGIN_MS = 2500
_IN_PROGRESS_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0)

# Social Login codes that mean the token itself is no good (docs/identity-cloud.md, "Error envelopes").
_REJECTED_TOKEN_CODES = {
    SocialLoginError.INVALID_PARAMETER,
    SocialLoginError.DATA_NOT_FOUND,
    5,  # mapping exists
    7,  # account upgrade needed
    8,  # missing third-party credentials
    9,  # third-party credentials revoked
    SocialLoginError.FEATURE_NOT_SUPPORTED,
}
_CAPTURE_CONFIGURATION_CODES = {
    CaptureError.MISSING_ARGUMENT,
    CaptureError.INVALID_ARGUMENT,
    CaptureError.PERMISSION_ERROR,
    CaptureError.UNEXPECTED_ERROR,
}


def _delays_until_deadline() -> Iterator[float]:
    yield from _IN_PROGRESS_DELAYS[:5]
    while True:
        yield 0.5


def _provider_host(identifier: str) -> str:
    """Who issued an identifier, for a profile without providerName: its URL's host, else the identifier."""
    return urlsplit(identifier).hostname or identifier


def _dependency_failure(what: str, error: ServiceUnavailable | ConfigurationProblem) -> ErrorCode:
    """Log and count a dependency that failed or refused our settings; the code the user is given."""
    count("UpstreamErrors")
    if isinstance(error, ServiceUnavailable):
        logger.error(f"{what}: a service is unavailable", extra={"dependency": error.service})
        return ErrorCode.SERVICE_UNAVAILABLE
    logger.error(f"{what}: configuration refused", extra={"dependency": error.service})
    return ErrorCode.CONFIGURATION_ERROR


class NotSignedIn(Exception):
    """A link was asked for by a browser whose session holds no Registration access token."""


@dataclass(frozen=True)
class StartedTokenUrl:
    token_url: str
    browser: str  # the browser-binding value to (re)set as a cookie


@dataclass(frozen=True)
class TokenOutcome:
    result: Result | None
    error: ErrorCode | None
    session_id: str | None = None
    session_expires_at: int | None = None


@dataclass(frozen=True)
class LinkConfirmation:
    """What a POST /link ended in: a decision, or an error code."""

    decision: LinkDecision | None = None
    error: ErrorCode | None = None


@dataclass(frozen=True)
class NewSession:
    session_id: str
    view: SessionView
    expires_at: int


def session_key(session_id: str) -> str:
    return digest("session", session_id)


class TokenUrlService:
    def __init__(
        self,
        *,
        settings: Settings,
        client: IdentityCloudClient,
        sessions: SessionStore,
        nonces: NonceStore,
        vault: Vault,
        idempotency_store: BasePersistenceLayer,
        audit: AuditTrail,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._client = client
        self._sessions = sessions
        self._nonces = nonces
        self._vault = vault
        self._audit = audit
        self._clock = clock
        self._sleep = sleep
        self._context: LambdaContext | None = None
        # The result of the flow that ran in this thread, for when saving it as the idempotent result fails.
        self._finished = threading.local()
        self._idempotency_config = IdempotencyConfig(
            event_key_jmespath="attempt_key",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=settings.replay_window_seconds,
        )
        # Idempotency wraps the flow, not the resolver: the resolver turns errors into ordinary
        # responses, which would be cached; here an exception (an outage) leaves no record behind.
        self._complete_once = idempotent_function(
            data_keyword_argument="attempt",
            config=self._idempotency_config,
            persistence_store=idempotency_store,
            output_serializer=PydanticSerializer(model=TokenResult),
        )(self._complete)

    def register_context(self, context: LambdaContext) -> None:
        self._context = context
        self._idempotency_config.register_lambda_context(context)

    def _now(self) -> int:
        return int(self._clock())

    def token_url(self, nonce: str) -> str:
        """The exact URL a one-time value is issued in; auth_info gets it back as tokenUrl."""
        return f"{self._settings.token_endpoint}?nonce={nonce}"

    # ------------------------------------------------------------ POST /token-url

    def start_token_url(
        self, intent: Intent, *, browser: str | None, session_id: str | None
    ) -> StartedTokenUrl:
        now = self._now()
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
        return StartedTokenUrl(token_url=self.token_url(nonce), browser=browser)

    # ------------------------------------------------------------ POST /token

    def complete_token(
        self, *, token: str, nonce: str, browser: str, previous_session_id: str | None = None
    ) -> TokenOutcome:
        attempt = TokenAttempt(
            attempt_key=digest("attempt", f"{token}|{nonce}|{browser}"),
            token=token,
            nonce=nonce,
            browser=browser,
        )
        self._finished.result = None
        try:
            result = self._complete_waiting_for_duplicates(attempt)
        except (ServiceUnavailable, ConfigurationProblem) as error:
            code = _dependency_failure("Token not completed", error)
            return self._counted(TokenOutcome(result=None, error=code))
        except IdempotencyPersistenceLayerError:
            count("UpstreamErrors")
            result = self._finished.result
            if result is None:
                logger.exception("Token not completed: idempotency store unavailable")
                return self._counted(TokenOutcome(result=None, error=ErrorCode.SERVICE_UNAVAILABLE))
            # The flow took effect (a session exists, a link is made); only recording the result for
            # replays failed. The user gets the outcome; a replay of this very submission meets the
            # in-progress record until the invocation's deadline, then finds the token spent.
            logger.warning("Token completed, but its idempotency record could not be saved")
            self._retire(attempt)
        self._finished.result = None  # it holds a sealed session: not kept past this call
        if result is None:
            return self._counted(TokenOutcome(result=None, error=ErrorCode.REQUEST_IN_PROGRESS))
        if result.error is not None:
            return self._counted(TokenOutcome(result=None, error=result.error))
        session_id = None
        if result.sealed_session is not None:
            session_id = unseal_session_id(result.sealed_session, token=token, browser=browser)
            if previous_session_id and previous_session_id != session_id:
                self._forget_session(previous_session_id)
        return self._counted(
            TokenOutcome(
                result=result.result,
                error=None,
                session_id=session_id,
                session_expires_at=result.session_expires_at,
            )
        )

    def _retire(self, attempt: TokenAttempt) -> None:
        # Without a completed record, a replay after the in-progress record expires would run the flow
        # again (a second session, if the application's tokens are not one-time): end the value instead.
        try:
            self._nonces.retire(pk=digest("nonce", attempt.nonce), attempt_key=attempt.attempt_key)
        except (ServiceUnavailable, ConditionFailed):
            logger.warning("Token URL one-time value could not be retired; it expires by itself")

    @staticmethod
    def _counted(outcome: TokenOutcome) -> TokenOutcome:
        label = outcome.result or outcome.error
        count_outcome("token", label.value if label else "unknown")
        return outcome

    def _complete_waiting_for_duplicates(self, attempt: TokenAttempt) -> TokenResult | None:
        """Run the flow once; a concurrent duplicate waits for the first one's result instead.

        It waits as long as the Lambda deadline allows (or the fixed schedule, without a context).
        """
        delays = _IN_PROGRESS_DELAYS if self._context is None else _delays_until_deadline()
        for delay in itertools.chain((0.0,), delays):
            if delay:
                if not self._time_left_for(delay):
                    break
                self._sleep(delay)
            try:
                result: TokenResult = self._complete_once(attempt=attempt)
            except IdempotencyAlreadyInProgressError:
                continue
            return result
        logger.warning("Duplicate token submission still in progress")
        return None

    def _time_left_for(self, delay: float) -> bool:
        if self._context is None:
            return True
        return self._context.get_remaining_time_in_millis() - delay * 1000 > _DEADLINE_MARGIN_MS

    def _complete(self, attempt: TokenAttempt) -> TokenResult:
        result = self._complete_once_unrecorded(attempt)
        self._finished.result = result  # in case Powertools then fails to save it (see complete_token)
        return result

    def _complete_once_unrecorded(self, attempt: TokenAttempt) -> TokenResult:
        now = self._now()
        try:
            nonce = self._nonces.consume(
                pk=digest("nonce", attempt.nonce),
                browser=digest("browser", attempt.browser),
                attempt_key=attempt.attempt_key,
                now=now,
            )
        except ConditionFailed:
            logger.warning("Token URL one-time value refused (unknown, used, expired or another browser's)")
            count("RejectedTokens")
            return TokenResult(error=ErrorCode.TOKEN_URL_INVALID)
        if nonce.intent is Intent.SIGN_IN:
            return self._sign_in(attempt, nonce, now)
        return self._link(attempt, nonce, now)

    def _read_profile(self, attempt: TokenAttempt) -> AuthInfo | TokenResult:
        try:
            return self._client.auth_info(token=attempt.token, token_url=self.token_url(attempt.nonce))
        except SocialLoginError as error:
            if error.token_url_mismatch or error.code in _REJECTED_TOKEN_CODES:
                count("RejectedTokens")
                return TokenResult(error=ErrorCode.TOKEN_INVALID)
            if error.is_provider_outage:
                raise ServiceUnavailable("social_login", f"provider error {error.code}") from None
            raise ConfigurationProblem("social_login", f"auth_info error {error.code}") from None

    def _sign_in(self, attempt: TokenAttempt, nonce: NonceRecord, now: int) -> TokenResult:
        auth = self._read_profile(attempt)
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
            self._forget_session_key(nonce.session)  # rotation: the browser's previous session ends
        count("SignIns")
        logger.info("Signed in", extra={"provider": auth.profile.provider_name})
        # Inside the idempotent flow: a replay returns the recorded result and publishes nothing.
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

    def _link(self, attempt: TokenAttempt, nonce: NonceRecord, now: int) -> TokenResult:
        # The session is checked before any upstream call: a signed-out browser spends no token.
        session = self._sessions.get(nonce.session, now=now) if nonce.session else None
        if session is None or session.capture_token is None:
            return TokenResult(error=ErrorCode.SESSION_EXPIRED)
        auth = self._read_profile(attempt)
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
        # The link lives in Capture; the session's list is only what this browser is shown.
        try:
            self._sessions.add_linked(session.pk, identifier)
        except ServiceUnavailable:
            logger.warning("Linked, but the session's list of links could not be updated")
        count("Links")
        logger.info("Linked", extra={"provider": provider})
        self._audit.publish(
            AuditEventType.LINKED, provider=provider, identifier=identifier, session_pk=session.pk
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
            )
            return TokenResult(error=ErrorCode.ALREADY_LINKED)
        if error.code in {CaptureError.INVALID_ACCESS_TOKEN, CaptureError.ACCESS_TOKEN_EXPIRED}:
            self._sessions.drop_capture_token(session.pk)
            return TokenResult(error=ErrorCode.SESSION_EXPIRED)
        if error.code == CaptureError.ENGAGE_ERROR:
            count("RejectedTokens")
            return TokenResult(error=ErrorCode.TOKEN_INVALID)
        if error.code in _CAPTURE_CONFIGURATION_CODES:
            raise ConfigurationProblem("capture", f"link_account_native error {error.code}")
        raise ServiceUnavailable("capture", f"link_account_native error {error.code}")

    # ------------------------------------------------------------ link confirmation (GET and POST /link)

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
        logger.info("Link awaits confirmation", extra={"provider": pending.provider})
        self._audit.publish(
            AuditEventType.LINK_CONFIRMATION_REQUESTED,
            provider=pending.provider,
            identifier=pending.identifier,
            session_pk=session.pk,
        )
        return TokenResult(result=Result.LINK_PENDING)

    def pending_link(self, session_id: str) -> PendingLinkView | None:
        now = self._now()
        session = self._sessions.get(session_key(session_id), now=now)
        pending = session.pending_link if session else None
        return pending.view() if pending is not None and pending.is_live(now) else None

    def confirm_link(self, session_id: str | None, *, confirm: bool) -> LinkConfirmation:
        """Link or drop the session's pending link; it is removed first, so it is used at most once."""
        try:
            outcome = self._decide_pending_link(session_id, confirm=confirm)
        except (ServiceUnavailable, ConfigurationProblem) as error:
            outcome = LinkConfirmation(error=_dependency_failure("Pending link not decided", error))
        label = outcome.decision or outcome.error
        count_outcome("link", label.value if label else "unknown")
        return outcome

    def _decide_pending_link(self, session_id: str | None, *, confirm: bool) -> LinkConfirmation:
        claimed = self._sessions.claim_pending_link(session_key(session_id)) if session_id else None
        pending = claimed.pending_link if claimed is not None else None
        if claimed is None or pending is None:
            return LinkConfirmation(error=ErrorCode.NO_PENDING_LINK)
        if not confirm:
            logger.info("Pending link cancelled", extra={"provider": pending.provider})
            self._audit.publish(
                AuditEventType.LINK_CANCELLED,
                provider=pending.provider,
                identifier=pending.identifier,
                session_pk=claimed.pk,
            )
            return LinkConfirmation(decision=LinkDecision.CANCELLED)
        now = self._now()
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

    # ------------------------------------------------------------ sessions

    def create_capture_session(
        self, *, access_token: str, expires_in: int, previous_session_id: str | None
    ) -> NewSession:
        now = self._now()
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
            self._forget_session(previous_session_id)
        self._audit.publish(AuditEventType.SESSION_CREATED, session_pk=pk)
        return NewSession(session_id=session_id, view=record.view(), expires_at=record.expires_at)

    def read_session(self, session_id: str) -> SessionView | None:
        record = self._sessions.get(session_key(session_id), now=self._now())
        return record.view() if record else None

    def sign_out(self, session_id: str) -> None:
        pk = session_key(session_id)
        ended = self._sessions.delete(pk)
        if ended is not None and ended.is_live(self._now()):  # else nobody was signed in: nothing changed
            self._audit.publish(
                AuditEventType.SIGNED_OUT, provider=ended.provider, identifier=ended.identifier, session_pk=pk
            )

    def _forget_session(self, session_id: str) -> None:
        self._forget_session_key(session_key(session_id))

    def _forget_session_key(self, pk: str) -> None:
        # Rotation: the replaced session must stop working, but failing to delete it (it expires
        # by TTL anyway) must not undo a sign-in that has already happened.
        try:
            self._sessions.delete(pk)
        except ServiceUnavailable:
            logger.warning("Replaced session could not be deleted; it expires by TTL")

    # ------------------------------------------------------------ POST /credentials

    def store_credentials(self, *, identifier: str, token: str) -> None:
        self._client.add_or_update_access_token(identifier=identifier, token=token)
        self._audit.publish(
            AuditEventType.CREDENTIALS_STORED, provider=credential_provider(identifier), identifier=identifier
        )
