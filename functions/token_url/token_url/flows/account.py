"""The Registration account behind a session, as Capture's `/entity` shows it.

`POST /session` reads it once to verify the access token; `GET /session` shows it, reusing what it read
for a short while and falling back to the last known view when Capture cannot be asked; `POST /unlink`
reads it to check the identity is on the account and is not its last way to sign in.
"""

from __future__ import annotations

from token_url.errors import CaptureError, ConfigurationProblem, ServiceUnavailable
from token_url.flows.shared import CAPTURE_TOKEN_FIELD, log_dependency_failure
from token_url.models import AccountSnapshot, CaptureAccount, SessionRecord, SessionView
from token_url.observability import logger
from token_url.ports import Clock, IdentityCloud, SecretSealer, SessionStorage

# How long GET /session may show the account as read before, rather than ask Capture again.
ACCOUNT_VIEW_MAX_AGE_SECONDS = 60


class AccessTokenRefused(Exception):
    """Capture called the Registration access token invalid or expired (413 or 414)."""


def capture_failure(error: CaptureError) -> AccessTokenRefused | ConfigurationProblem | ServiceUnavailable:
    """What a Capture refusal of a call made with a Registration access token means for the flows."""
    if error.refuses_access_token:
        return AccessTokenRefused(error.endpoint)
    if error.refuses_configuration:
        return ConfigurationProblem("capture", f"{error.endpoint} error {error.code}")
    return ServiceUnavailable("capture", f"{error.endpoint} error {error.code}")


def read_account(client: IdentityCloud, access_token: str) -> CaptureAccount:
    """`/entity`; raises AccessTokenRefused, ConfigurationProblem or ServiceUnavailable."""
    try:
        return client.read_account(access_token=access_token)
    except CaptureError as error:
        raise capture_failure(error) from None


class SessionAccounts:
    """The account of a Registration session, read with the session's sealed access token."""

    def __init__(
        self, *, client: IdentityCloud, sessions: SessionStorage, vault: SecretSealer, clock: Clock
    ) -> None:
        self._client = client
        self._sessions = sessions
        self._vault = vault
        self._clock = clock

    def access_token(self, record: SessionRecord) -> str:
        if record.capture_token is None:
            raise AccessTokenRefused("the session holds no access token")
        return self._vault.open(record.capture_token, session_pk=record.pk, field=CAPTURE_TOKEN_FIELD)

    def read(self, record: SessionRecord, access_token: str | None = None) -> CaptureAccount:
        """The account now, with the session's access token (opened here unless the caller has it); a
        token Capture refuses is dropped from the session before AccessTokenRefused is raised."""
        try:
            return read_account(self._client, access_token or self.access_token(record))
        except AccessTokenRefused:
            self.drop_access_token(record)
            raise

    def drop_access_token(self, record: SessionRecord) -> None:
        logger.warning("Capture refused the session's Registration access token; it is dropped")
        self._sessions.drop_capture_token(record.pk)

    def keep(self, record: SessionRecord, account: AccountSnapshot, *, read_at: int) -> None:
        """Keep the account view on the session; failing to is not worth failing the request for."""
        try:
            self._sessions.keep_account_view(record.pk, account, read_at=read_at)
        except ServiceUnavailable:
            logger.warning("The account view could not be kept on the session")

    def view(self, record: SessionRecord) -> SessionView:
        """GET /session: the session, and for a Registration session the account (one /entity at most)."""
        now = self._clock.now()
        if record.capture_token is None or self._is_recent(record, now):
            return record.view()
        try:
            account = AccountSnapshot.of(self.read(record))
        except AccessTokenRefused:
            return record.model_copy(update={"capture_token": None}).view()
        except (ServiceUnavailable, ConfigurationProblem) as error:
            log_dependency_failure("Account not read; the last known view is shown", error)
            return record.view(stale=True)
        self.keep(record, account, read_at=now)
        return record.model_copy(update={"account": account}).view()

    @staticmethod
    def _is_recent(record: SessionRecord, now: int) -> bool:
        read_at = record.account_read_at
        return (
            record.account is not None
            and read_at is not None
            and now - read_at < ACCOUNT_VIEW_MAX_AGE_SECONDS
        )
