"""The step the sign-in and the link share: auth_info reads who the Social Login token is for."""

from __future__ import annotations

from token_url.errors import ConfigurationProblem, ServiceUnavailable, SocialLoginError, SocialLoginRefusal
from token_url.flows.shared import token_url_for
from token_url.models import AuthInfo, ErrorCode, TokenAttempt, TokenResult
from token_url.observability import count
from token_url.ports import IdentityCloud


class ProfileReader:
    def __init__(self, *, client: IdentityCloud, token_endpoint: str) -> None:
        self._client = client
        self._token_endpoint = token_endpoint

    def read(self, attempt: TokenAttempt) -> AuthInfo | TokenResult:
        """The profile, or a TokenResult when Social Login refused the token.

        Raises ServiceUnavailable (the provider failed) or ConfigurationProblem (our settings, or a code
        we do not know: auth_info is our call, so an unknown refusal is ours to fix).
        """
        token_url = token_url_for(self._token_endpoint, attempt.nonce)
        try:
            return self._client.auth_info(token=attempt.token, token_url=token_url)
        except SocialLoginError as error:
            refusal = error.refusal
            if refusal is SocialLoginRefusal.THE_TOKEN:
                count("RejectedTokens")
                return TokenResult(error=ErrorCode.TOKEN_INVALID)
            if refusal is SocialLoginRefusal.PROVIDER_OUTAGE:
                raise ServiceUnavailable("social_login", f"provider error {error.code}") from None
            raise ConfigurationProblem("social_login", f"auth_info error {error.code}") from None
