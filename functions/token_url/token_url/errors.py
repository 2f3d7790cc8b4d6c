"""Exceptions shared by the client, the store and the flows. Messages never carry a secret."""

from __future__ import annotations

from enum import Enum


class ServiceUnavailable(Exception):
    """An outside service (Identity Cloud, DynamoDB, KMS, Secrets Manager) failed or timed out.

    `may_have_reached`: the request may have reached the service and taken effect there (a read timeout,
    a connection lost after sending, a reply that is no API answer); False when it certainly did not
    (no connection, no time left to start it). Only a caller whose call changes something needs it.
    """

    def __init__(self, service: str, reason: str, *, may_have_reached: bool = False) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason
        self.may_have_reached = may_have_reached


class ConfigurationProblem(Exception):
    """The upstream refused our own settings (apiKey, client, flow): only an operator can fix it."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason


class ConditionFailed(Exception):
    """A conditional write did not apply (the item is missing, expired, used, or not ours)."""


class SocialLoginRefusal(Enum):
    """What a Social Login error code says, whichever endpoint answered it."""

    PROVIDER_OUTAGE = "provider_outage"  # the provider behind Social Login failed: try again later
    OUR_CONFIGURATION = "our_configuration"  # our apiKey or application was refused
    THE_TOKEN = "the_token"  # noqa: S105 - a name; the token itself is no good (or was issued for another token URL)
    UNRECOGNISED = "unrecognised"  # none of the above: each caller decides whose fault it is


class SocialLoginError(Exception):
    """Social Login answered `{"stat": "fail", "err": {"code": N, ...}}` (HTTP 400, or 200 on older apps)."""

    SERVICE_UNAVAILABLE = -1
    MISSING_PARAMETER = 0
    INVALID_PARAMETER = 1
    DATA_NOT_FOUND = 2
    AUTHENTICATION_ERROR = 3
    FACEBOOK_ERROR = 4
    PROVIDER_ERROR = 6
    APP_NOT_CONFIGURED = 10
    FEATURE_NOT_SUPPORTED = 11
    # What a code says about the call, whichever endpoint answered it (docs/identity-cloud.md); the
    # function and the importer both decide on these.
    PROVIDER_OUTAGE_CODES = frozenset({FACEBOOK_ERROR, PROVIDER_ERROR})
    CONFIGURATION_CODES = frozenset({AUTHENTICATION_ERROR, APP_NOT_CONFIGURED})
    # Mapping exists (5), account upgrade needed (7), third-party credentials missing (8) or revoked (9).
    TOKEN_REFUSAL_CODES = frozenset({INVALID_PARAMETER, DATA_NOT_FOUND, 5, 7, 8, 9, FEATURE_NOT_SUPPORTED})

    def __init__(self, endpoint: str, code: int, token_url_mismatch: bool) -> None:
        super().__init__(f"{endpoint}: Social Login error {code}")
        self.endpoint = endpoint
        self.code = code
        self.token_url_mismatch = token_url_mismatch

    @property
    def is_provider_outage(self) -> bool:
        """The provider behind Social Login failed: worth trying again later."""
        return self.code in self.PROVIDER_OUTAGE_CODES

    @property
    def refuses_configuration(self) -> bool:
        """Our apiKey or application was refused (code 3 is also a token URL mismatch, which is not)."""
        return self.code in self.CONFIGURATION_CODES and not self.token_url_mismatch

    @property
    def refusal(self) -> SocialLoginRefusal:
        """The one reading of a code that the flows map to their outcomes."""
        if self.token_url_mismatch or self.code in self.TOKEN_REFUSAL_CODES:
            return SocialLoginRefusal.THE_TOKEN
        if self.is_provider_outage:
            return SocialLoginRefusal.PROVIDER_OUTAGE
        if self.refuses_configuration:
            return SocialLoginRefusal.OUR_CONFIGURATION
        return SocialLoginRefusal.UNRECOGNISED


class CaptureError(Exception):
    """Capture answered `{"stat": "error", "code": N, "error": name, ...}` (always HTTP 200)."""

    MISSING_ARGUMENT = 100
    INVALID_ARGUMENT = 200
    UNIQUE_VIOLATION = 361
    ENGAGE_ERROR = 400
    PERMISSION_ERROR = 403
    INVALID_ACCESS_TOKEN = 413
    ACCESS_TOKEN_EXPIRED = 414
    UNEXPECTED_ERROR = 500
    API_LIMIT_ERROR = 510
    # What a code says about a call made with a Registration access token (docs/http-contract.md): the
    # token is no longer good, or our own client or flow settings were refused; any other code is an outage.
    ACCESS_TOKEN_REFUSAL_CODES = frozenset({INVALID_ACCESS_TOKEN, ACCESS_TOKEN_EXPIRED})
    CONFIGURATION_CODES = frozenset({MISSING_ARGUMENT, INVALID_ARGUMENT, PERMISSION_ERROR, UNEXPECTED_ERROR})

    def __init__(self, endpoint: str, code: int, error: str | None, request_id: str | None) -> None:
        super().__init__(f"{endpoint}: Capture error {code} ({error})")
        self.endpoint = endpoint
        self.code = code
        self.error = error
        self.request_id = request_id

    @property
    def refuses_access_token(self) -> bool:
        """The Registration access token is invalid or expired: the user signs in to Registration again."""
        return self.code in self.ACCESS_TOKEN_REFUSAL_CODES

    @property
    def refuses_configuration(self) -> bool:
        return self.code in self.CONFIGURATION_CODES
