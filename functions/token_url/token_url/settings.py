"""Configuration: read from the environment once, at start, and validated.

A bad or missing value stops the function at init with one line naming the variable, so an
operator sees the cause in the first log line instead of a failure on the first sign-in.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from functools import cached_property
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from token_url import iam_callers

_LOOPBACK_HOSTS = {"localhost"}
# An EventBridge bus name, or its ARN (PutEvents accepts either).
_EVENT_BUS = (
    r"^([A-Za-z0-9._/-]{1,256}"
    r"|arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/[A-Za-z0-9._/-]{1,256})$"
)


class ConfigurationError(RuntimeError):
    """The function's environment is unusable; the message names the variable."""


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _absolute_url(value: str, *, allow_path: bool) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    # Plain http is only for the local stack and tests: anything public must be https.
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("must use https (http is accepted only for loopback hosts)")
    if parts.fragment or (parts.query and not allow_path):
        raise ValueError("must not have a query or fragment")
    if not allow_path and parts.path not in {"", "/"}:
        raise ValueError("must be a base URL without a path")
    return value.rstrip("/") if not allow_path else value


def serialized_origin(url: str) -> str:
    """A URL's origin as a browser serialises it in `Origin` (RFC 6454): lower-case host, no default port."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default_port = {"https": 443, "http": 80}[parts.scheme]
    port = f":{parts.port}" if parts.port not in (None, default_port) else ""
    return f"{parts.scheme}://{host}{port}"


# Browsers send `Origin: null` from sandboxed frames and data: documents, which any page can create.
NULL_ORIGIN = "null"


def origin_entry(value: str) -> str:
    """One TOKEN_POST_ORIGINS entry: an origin (scheme, host, optional port) or the literal `null`."""
    entry = value.strip()
    if entry == NULL_ORIGIN:
        return entry
    try:
        parts = urlsplit(entry)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError(f"{entry!r} is not an origin") from None
    if (
        parts.scheme not in {"https", "http"}
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        raise ValueError(f"{entry!r} is not an origin (scheme://host[:port], no path)")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(f"{entry!r} must use https (http is accepted only for loopback hosts)")
    return serialized_origin(entry)


def base_url(value: str) -> str:
    """An Identity Cloud or API base URL, checked as the function checks its own (and the importer)."""
    return _absolute_url(value, allow_path=False)


class Settings(BaseModel):
    """Every setting of the function. Field names are the environment variable names, lower-cased."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    social_login_base_url: str
    social_login_api_key_secret: str = Field(min_length=1)
    capture_base_url: str
    capture_client_id: str = Field(pattern=r"^[A-Za-z0-9]{8,64}$")
    capture_flow: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    capture_flow_version: str = Field(pattern=r"^[A-Za-z0-9-]{1,64}$")
    capture_locale: str = Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    capture_redirect_uri: str
    public_base_url: str
    app_url: str
    sessions_table: str = Field(min_length=3, max_length=255)
    nonces_table: str = Field(min_length=3, max_length=255)
    idempotency_table: str = Field(min_length=3, max_length=255)
    credentials_key_id: str = Field(min_length=1)
    audit_event_bus: str = Field(pattern=_EVENT_BUS)
    session_ttl_seconds: int = Field(default=12 * 3600, ge=300, le=7 * 24 * 3600)
    token_url_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    replay_window_seconds: int = Field(default=600, ge=60, le=3600)
    upstream_connect_timeout: float = Field(default=2.0, gt=0, le=10)
    upstream_read_timeout: float = Field(default=6.0, gt=0, le=20)
    secret_max_age_seconds: int = Field(default=300, ge=0, le=3600)
    # None: the origins of SOCIAL_LOGIN_BASE_URL and APP_URL (see `trusted_token_post_origins`).
    token_post_origins: tuple[str, ...] | None = None
    credentials_callers: tuple[str, ...] = ()
    """IAM principals allowed on POST /credentials; empty: any the IAM authorizer lets through."""

    # ---- link confirmation (docs/link-confirmation.md)
    link_confirmation: Literal["off", "on"] = "off"
    # Social Login tokens are short-lived: a pending link cannot wait long for the user's click.
    link_confirmation_seconds: int = Field(default=120, ge=30, le=300)

    @field_validator("social_login_base_url", "capture_base_url", "public_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return base_url(value)

    @field_validator("token_post_origins", mode="before")
    @classmethod
    def _origin_list(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        if not value.strip():
            return None  # empty means unset, as `sam local invoke` passes a variable without a value
        entries = [entry for entry in value.split(",") if entry.strip()]
        if not entries:
            raise ValueError("must list at least one origin (unset it for the default)")
        return tuple(origin_entry(entry) for entry in entries)

    @field_validator("credentials_callers", mode="before")
    @classmethod
    def _callers(cls, value: object) -> object:
        if isinstance(value, str):
            return iam_callers.parse(value)
        if isinstance(value, list | tuple):
            return tuple(iam_callers.principal(str(entry)) for entry in value)
        return value

    @field_validator("app_url")
    @classmethod
    def _app_url(cls, value: str) -> str:
        return _absolute_url(value, allow_path=True)

    @field_validator("capture_redirect_uri")
    @classmethod
    def _redirect_uri(cls, value: str) -> str:
        # Capture checks only the prefix (docs/identity-cloud.md, "link_account_native"); it never goes there.
        if not value.startswith(("http:", "https:")):
            raise ValueError("must begin with http: or https:")
        return value

    @field_validator("capture_flow_version")
    @classmethod
    def _not_head(cls, value: str) -> str:
        if value.upper() == "HEAD":
            raise ValueError("link_account_native does not accept HEAD; give the version number")
        return value

    @model_validator(mode="after")
    def _replay_covers_token_url(self) -> Settings:
        # A result must stay replayable as long as its one-time value can be re-consumed by the
        # same attempt, or a late replay would run the flow (and call upstream) a second time.
        if self.replay_window_seconds < self.token_url_ttl_seconds:
            raise ValueError("must be at least TOKEN_URL_TTL_SECONDS")
        return self

    @cached_property
    def app_origin(self) -> str:
        """APP_URL's origin as a browser serialises it in `Origin`: lower-case host, no default port."""
        return serialized_origin(self.app_url)

    @cached_property
    def trusted_token_post_origins(self) -> frozenset[str]:
        """The `Origin` values a token POST may carry: Social Login's pages and the site's own (popups)."""
        if self.token_post_origins is not None:
            return frozenset(self.token_post_origins)
        return frozenset({serialized_origin(self.social_login_base_url), self.app_origin})

    @property
    def confirms_links(self) -> bool:
        """A link token is held for the user to confirm on the site's page instead of linking at once."""
        return self.link_confirmation == "on"

    @cached_property
    def token_endpoint(self) -> str:
        return f"{self.public_base_url}/token"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        values = {name: environ[name.upper()] for name in cls.model_fields if name.upper() in environ}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            first = error.errors()[0]
            variable = str(first["loc"][0]).upper() if first["loc"] else "REPLAY_WINDOW_SECONDS"
            reason = (
                "is not set" if first["type"] == "missing" else first["msg"].removeprefix("Value error, ")
            )
            raise ConfigurationError(f"configuration error: {variable} {reason}") from None
