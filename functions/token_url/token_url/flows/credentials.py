"""POST /credentials: a server stores a provider access token for an identifier (Social Login
add_or_update_access_token)."""

from __future__ import annotations

from token_url.audit import AuditEventType
from token_url.errors import ServiceUnavailable, SocialLoginError, SocialLoginRefusal
from token_url.models import ErrorCode, credential_provider
from token_url.ports import AuditPublisher, IdentityCloud


class CredentialsRefused(Exception):
    """Social Login refused to store them: our apiKey (CONFIGURATION_ERROR) or the token (REJECTED)."""

    def __init__(self, code: ErrorCode, upstream_code: int) -> None:
        super().__init__(f"Social Login error {upstream_code}")
        self.code = code
        self.upstream_code = upstream_code


class StoreCredentials:
    def __init__(self, *, client: IdentityCloud, audit: AuditPublisher) -> None:
        self._client = client
        self._audit = audit

    def store(self, *, identifier: str, token: str) -> str:
        """The provider the credentials were stored for ("" when unknown).

        Raises CredentialsRefused, or ServiceUnavailable when the provider behind Social Login failed.
        """
        try:
            self._client.add_or_update_access_token(identifier=identifier, token=token)
        except SocialLoginError as error:
            refusal = error.refusal
            if refusal is SocialLoginRefusal.PROVIDER_OUTAGE:
                raise ServiceUnavailable("social_login", f"provider error {error.code}") from None
            if refusal is SocialLoginRefusal.OUR_CONFIGURATION:
                raise CredentialsRefused(ErrorCode.CONFIGURATION_ERROR, error.code) from None
            # The token, or a code we do not know: the caller's to look into.
            raise CredentialsRefused(ErrorCode.REJECTED, error.code) from None
        provider = credential_provider(identifier)
        self._audit.publish(AuditEventType.CREDENTIALS_STORED, provider=provider, identifier=identifier)
        return provider or ""
