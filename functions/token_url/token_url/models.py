"""Every shape that crosses a boundary: requests, responses, upstream replies, stored items, outcomes."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

# 256-bit values from secrets.token_urlsafe(32): session ids, one-time values, browser bindings.
OpaqueValue = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]
# Social Login tokens are 40 characters; accept a little more so a format change is not an outage.
SocialLoginToken = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,128}$")]
PrintableSecret = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]+$", min_length=1, max_length=4096)]


class LazyModel(BaseModel):
    """Every shape's base: pydantic builds its validator on first use, not at import, so init builds none
    and a first request only the ones its route needs (docs/performance.md#init). The SnapStart warm-up
    builds them all before the snapshot (`build_every_model`)."""

    model_config = ConfigDict(defer_build=True)


def build_every_model() -> int:
    """Build every LazyModel subclass now; how many were built."""
    pending = list(LazyModel.__subclasses__())
    built = 0
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if not model.__pydantic_complete__:
            model.model_rebuild()
            built += 1
    return built


class Intent(StrEnum):
    SIGN_IN = "sign_in"
    LINK = "link"


class Result(StrEnum):
    SIGNED_IN = "signed_in"
    LINKED = "linked"
    # Link confirmation on: the link waits on the session for the user's POST /link.
    LINK_PENDING = "link_pending"


class LinkDecision(StrEnum):
    """What a POST /link ended in when it succeeded."""

    LINKED = "linked"
    CANCELLED = "cancelled"


class ErrorCode(StrEnum):
    """The `error` values of the token redirect and the JSON routes (documented in the README)."""

    INVALID_REQUEST = "invalid_request"
    TOKEN_URL_INVALID = "token_url_invalid"  # noqa: S105 - an error code
    UNTRUSTED_ORIGIN = "untrusted_origin"
    TOKEN_INVALID = "token_invalid"  # noqa: S105 - an error code
    ALREADY_LINKED = "already_linked"
    SESSION_EXPIRED = "session_expired"
    SERVICE_UNAVAILABLE = "service_unavailable"
    CONFIGURATION_ERROR = "configuration_error"
    REQUEST_IN_PROGRESS = "request_in_progress"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    REJECTED = "rejected"
    NO_PENDING_LINK = "no_pending_link"
    INVALID_ACCESS_TOKEN = "invalid_access_token"  # noqa: S105 - an error code
    NOT_LINKED = "not_linked"
    LAST_SIGN_IN_METHOD = "last_sign_in_method"


# ---------------------------------------------------------------- requests from the browser / servers


class _StrictRequest(LazyModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenUrlRequest(_StrictRequest):
    intent: Intent


class SessionCreateRequest(_StrictRequest):
    access_token: PrintableSecret
    # Registration access tokens live an hour by default; a day is the longest we hold one.
    expires_in: int = Field(default=3600, ge=60, le=86400, strict=True)


SUPPORTED_CREDENTIAL_PROVIDERS: dict[str, str] = {
    "facebook.com": "Facebook",
    "renren.com": "RenRen",
    "soundcloud.com": "Soundcloud",
    "foursquare.com": "Foursquare",
}


def credential_provider(identifier: str) -> str | None:
    """Provider of an identifier add_or_update_access_token supports (docs/identity-cloud.md), or None."""
    parts = urlsplit(identifier)
    host = (parts.hostname or "").lower()
    if parts.scheme not in {"http", "https"}:
        return None
    for domain, name in SUPPORTED_CREDENTIAL_PROVIDERS.items():
        if host == domain or host.endswith("." + domain):
            return name
    return None


class CredentialsRequest(_StrictRequest):
    identifier: Annotated[str, StringConstraints(min_length=8, max_length=2048)]
    token: PrintableSecret

    @field_validator("identifier")
    @classmethod
    def _supported_provider(cls, value: str) -> str:
        if credential_provider(value) is None:
            supported = ", ".join(SUPPORTED_CREDENTIAL_PROVIDERS.values())
            raise ValueError(f"must be the profile URL of a supported provider ({supported})")
        return value


class LinkConfirmationRequest(_StrictRequest):
    confirm: bool = Field(strict=True)


class UnlinkRequest(_StrictRequest):
    identifier: Annotated[str, StringConstraints(min_length=1, max_length=2048)]


class TokenCallback(_StrictRequest):
    """The form Social Login posts to the token URL, plus the one-time value from its query."""

    token: SocialLoginToken
    nonce: OpaqueValue | None


# ---------------------------------------------------------------- responses


class TokenUrlResponse(LazyModel):
    token_url: str


class LinkedIdentity(LazyModel):
    """A social identity on the Registration account: its profile URL and the provider's name."""

    identifier: str
    provider: str


class AccountSummary(LazyModel):
    """Who is signed in to Registration."""

    uuid: str
    display_name: str | None
    email: str | None


class SessionView(LazyModel):
    signed_in: Literal[True] = True
    # A social sign-in's profile; null for a Registration session.
    identifier: str | None
    provider: str | None
    # A Registration session: `capture` is true, `account` and `linked` are the account as Capture holds
    # it, and `stale` says Capture could not be asked, so they are the last known view.
    capture: bool
    account: AccountSummary | None = None
    linked: list[LinkedIdentity] = Field(default_factory=list)
    stale: bool = False
    expires_at: str


class SignedOutView(LazyModel):
    signed_in: Literal[False] = False


class PendingLinkView(LazyModel):
    provider: str
    identifier: str
    display_name: str | None
    expires_at: str


class LinkConfirmed(LazyModel):
    result: LinkDecision


class ErrorBody(LazyModel):
    error: ErrorCode
    message: str


class Unlinked(LazyModel):
    result: Literal["unlinked"] = "unlinked"


class CredentialsStored(LazyModel):
    stored: Literal[True] = True
    identifier: str
    provider: str


# ---------------------------------------------------------------- upstream (Identity Cloud)


class SocialProfile(LazyModel):
    """The parts of auth_info's profile the service keeps; the rest is left upstream."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    identifier: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    provider_name: str | None = Field(default=None, alias="providerName", max_length=200)
    display_name: str | None = Field(default=None, alias="displayName", max_length=500)


class AuthInfo(LazyModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    profile: SocialProfile
    # A secret: encrypted before it is stored, never logged or returned.
    access_credentials: dict[str, Any] | None = Field(default=None, alias="accessCredentials")


# Capture's profile `domain` -> the provider name auth_info gives (`providerName`). The emulator's
# providers are checked against this table; a domain missing from it is shown as it is.
PROVIDER_BY_DOMAIN: dict[str, str] = {
    "google.com": "Google",
    "facebook.com": "Facebook",
    "twitter.com": "Twitter",
    "linkedin.com": "LinkedIn",
    "orkut.com": "Orkut",
    "amazon.com": "Amazon",
    "disqus.com": "Disqus",
    "flickr.com": "Flickr",
    "myspace.com": "MySpace",
    "me.yahoo.com": "Yahoo!",
    "plus.google.com": "Google+",
    "instagram.com": "Instagram",
    "mixi.jp": "Mixi",
    "mydigipass.com": "MYDIGIPASS.COM",
    "paypal.com": "PayPal",
    "qq.com": "QQ",
    "renren.com": "RenRen",
    "soundcloud.com": "SoundCloud",
    "weibo.com": "Sina Weibo",
    "tumblr.com": "tumblr",
    "vk.com": "VK",
    "login.live.com": "Microsoft Account",
    "xing.com": "Xing",
    "foursquare.com": "Foursquare",
}


def provider_for_domain(domain: str) -> str:
    """The provider name of a Capture profile's `domain`, or the domain itself when it is not known."""
    return PROVIDER_BY_DOMAIN.get(domain.lower(), domain)


class CaptureProfile(LazyModel):
    """One social identity on a Capture account (an element of `/entity`'s `profiles`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    identifier: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    domain: Annotated[str, StringConstraints(max_length=253)]

    @property
    def provider(self) -> str:
        return provider_for_domain(self.domain)


class CaptureAccount(LazyModel):
    """The signed-in user's Capture record, as `/entity` returns it: only what the service needs.

    The `password` attribute is read only to know whether the account has one; its value is dropped.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    uuid: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    display_name: str | None = Field(default=None, alias="displayName", max_length=500)
    email: str | None = Field(default=None, max_length=320)
    profiles: list[CaptureProfile] = Field(default_factory=list)
    has_password: bool = False

    @model_validator(mode="before")
    @classmethod
    def _password_as_a_flag(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if "password" not in data:
            return data
        fields = {name: value for name, value in data.items() if name != "password"}
        fields["has_password"] = data["password"] not in (None, "")
        return fields

    @field_validator("profiles", mode="before")
    @classmethod
    def _no_profiles_is_an_empty_list(cls, value: Any) -> Any:
        return [] if value is None else value


# ---------------------------------------------------------------- stored items


def _iso_utc(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).isoformat().replace("+00:00", "Z")


class PendingLink(LazyModel):
    """A link read by auth_info and held on the session until the user confirms or cancels it."""

    provider: str
    identifier: str
    display_name: str | None = None
    token: str  # the Social Login token: a KMS ciphertext, base64, bound to the session and field
    expires_at: int

    def is_live(self, now: int) -> bool:
        return self.expires_at > now

    def view(self) -> PendingLinkView:
        return PendingLinkView(
            provider=self.provider,
            identifier=self.identifier,
            display_name=self.display_name,
            expires_at=_iso_utc(self.expires_at),
        )


class AccountSnapshot(LazyModel):
    """The Registration account as `/entity` last showed it, kept on the session to be shown again."""

    uuid: str
    display_name: str | None = None
    email: str | None = None
    linked: list[LinkedIdentity] = Field(default_factory=list)

    @classmethod
    def of(cls, account: CaptureAccount) -> AccountSnapshot:
        return cls(
            uuid=account.uuid,
            display_name=account.display_name,
            email=account.email,
            linked=[LinkedIdentity(identifier=p.identifier, provider=p.provider) for p in account.profiles],
        )

    def summary(self) -> AccountSummary:
        return AccountSummary(uuid=self.uuid, display_name=self.display_name, email=self.email)


class SessionRecord(LazyModel):
    """One browser session, keyed by the SHA-256 of its id (the id itself is never stored)."""

    pk: str
    identifier: str | None = None
    provider: str | None = None
    display_name: str | None = None
    # Sealed by vault.Vault (envelope encryption): the Registration access token, the accessCredentials.
    capture_token: str | None = None
    credentials: str | None = None
    # A Registration session: the account the access token was verified for, and the account view
    # last read from Capture with when it was read (None: out of date, read it again).
    account_uuid: str | None = None
    account: AccountSnapshot | None = None
    account_read_at: int | None = None
    pending_link: PendingLink | None = None
    created_at: int
    expires_at: int

    def is_live(self, now: int) -> bool:
        return self.expires_at > now

    def view(self, *, stale: bool = False) -> SessionView:
        # Without its access token (Capture refused it) the account is no longer shown.
        account = self.account if self.capture_token is not None else None
        return SessionView(
            identifier=self.identifier,
            provider=self.provider,
            capture=self.capture_token is not None,
            account=account.summary() if account else None,
            linked=account.linked if account else [],
            stale=stale and account is not None,
            expires_at=_iso_utc(self.expires_at),
        )


class NonceRecord(LazyModel):
    """A one-time value carried in a token URL, keyed by its SHA-256."""

    pk: str
    intent: Intent
    browser: str  # SHA-256 of the browser-binding cookie
    session: str | None = None  # pk of the session that started a link
    created_at: int
    expires_at: int
    consumed_by: str | None = None


# ---------------------------------------------------------------- flow input and output


class TokenAttempt(LazyModel):
    """One submission of a Social Login token to the token URL.

    Only `attempt_key` (a hash of token, one-time value and browser binding) is used by the
    idempotency layer, so a replay from another browser has another key and cannot read the result.
    """

    attempt_key: str
    token: SocialLoginToken
    nonce: OpaqueValue
    browser: OpaqueValue


class TokenResult(LazyModel):
    """What a token submission ended in; cached by idempotency, so it holds nothing usable in clear."""

    result: Result | None = None
    error: ErrorCode | None = None
    # Sign-in only: the new session id, sealed with a key only the submitting browser's request yields.
    sealed_session: str | None = None
    session_expires_at: int | None = None
