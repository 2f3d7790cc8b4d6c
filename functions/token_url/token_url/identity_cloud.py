"""The Identity Cloud client: Social Login (auth_info, add_or_update_access_token) and Capture (link,
read the account with /entity, unlink).

One `requests.Session` per container, parameters only in the POST body, both error envelopes
parsed whatever the HTTP status, typed errors by numeric code, and a retry only for failures that
happen before a request leaves (a connect error), so a one-time token is never sent twice. An outage
says whether the request may have reached the upstream (`ServiceUnavailable.may_have_reached`), so the
link flow can look for a link whose reply was lost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import requests
from pydantic import ConfigDict, ValidationError
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, ReadTimeoutError
from urllib3.util.retry import Retry

from token_url.errors import CaptureError, ConfigurationProblem, ServiceUnavailable, SocialLoginError
from token_url.models import AuthInfo, CaptureAccount, LazyModel
from token_url.observability import logger, traced
from token_url.secure_values import fingerprint

SOCIAL_LOGIN = "social_login"
# Kept back from the Lambda deadline for what follows an upstream call (store, redirect).
_DEADLINE_MARGIN_SECONDS = 1.5
_MIN_CALL_SECONDS = 0.5
CAPTURE = "capture"
# The /entity attributes the service reads; `password` only to know whether there is one.
ACCOUNT_ATTRIBUTES = ("uuid", "displayName", "email", "profiles", "password")


class _SocialLoginErr(LazyModel):
    code: int
    msg: str = ""


class _SocialLoginFailure(LazyModel):
    model_config = ConfigDict(extra="ignore")
    stat: Literal["fail"]
    err: _SocialLoginErr


class _CaptureFailure(LazyModel):
    model_config = ConfigDict(extra="ignore")
    stat: Literal["error"]
    code: int
    error: str | None = None
    request_id: str | None = None
    # Some deployments name the request id request_token (docs/identity-cloud.md, "Error envelopes").
    request_token: str | None = None


@dataclass(frozen=True)
class CaptureFlow:
    client_id: str
    flow: str
    flow_version: str
    locale: str
    redirect_uri: str

    def client_parameters(self) -> dict[str, str]:
        """What every native Capture call names: the API client and the flow."""
        return {
            "client_id": self.client_id,
            "flow": self.flow,
            "flow_version": self.flow_version,
            "locale": self.locale,
        }


def new_http_session(pool_size: int = 4) -> requests.Session:
    """The one Session of a container: keep-alive pool, connect-only retries."""
    session = requests.Session()
    # connect retries happen before any byte is sent; read/status retries could re-send a token.
    retry = Retry(
        total=2, connect=2, read=0, status=0, other=0, redirect=0, allowed_methods=None, backoff_factor=0.05
    )
    adapter = HTTPAdapter(max_retries=retry, pool_connections=2, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = "token-url/0.1 (+aws-lambda)"
    return session


def _failure_reason(error: requests.RequestException) -> str:
    # With read retries off, urllib3 wraps a read timeout in MaxRetryError and requests reports
    # it as a ConnectionError; look through the wrapping so operators see "timeout".
    if isinstance(error, requests.Timeout):
        return "timeout"
    wrapped = error.args[0] if error.args else None
    if isinstance(wrapped, MaxRetryError) and isinstance(wrapped.reason, TimeoutError | ReadTimeoutError):
        return "timeout"
    return type(error).__name__


def _never_sent(error: requests.RequestException) -> bool:
    """No connection was made (refused, unresolved, connect timeout), so the request never left.

    Anything else (a read timeout, a connection reset or closed after sending) may have reached the
    upstream and taken effect there without our hearing of it.
    """
    if isinstance(error, requests.ConnectTimeout):
        return True
    wrapped = error.args[0] if error.args else None
    reason = wrapped.reason if isinstance(wrapped, MaxRetryError) else wrapped
    # urllib3's NewConnectionError and NameResolutionError are ConnectTimeoutErrors too.
    return isinstance(reason, ConnectTimeoutError)


class IdentityCloudClient:
    def __init__(
        self,
        *,
        social_login_base_url: str,
        api_key: Callable[[], str],
        http: requests.Session,
        timeout: tuple[float, float],
        capture_base_url: str | None = None,
        capture_flow: CaptureFlow | None = None,
        seconds_left: Callable[[], float | None] = lambda: None,
    ) -> None:
        """`capture_base_url` and `capture_flow` are needed only for Capture (not by the importer)."""
        self._social_login_base_url = social_login_base_url.rstrip("/")
        self._capture_base_url = capture_base_url.rstrip("/") if capture_base_url else None
        self._capture_flow = capture_flow
        self._api_key = api_key
        self._http = http
        self._timeout = timeout
        self._seconds_left = seconds_left

    def use_http_session(self, http: requests.Session) -> None:
        """Swap in a new Session (after a SnapStart restore), closing the old one's pooled connections."""
        previous, self._http = self._http, http
        previous.close()

    def close_connections(self) -> None:
        """Close the pooled connections; the Session opens new ones when next used."""
        self._http.close()

    # ------------------------------------------------------------ Social Login

    def auth_info(self, *, token: str, token_url: str) -> AuthInfo:
        api_key = self._api_key()
        body = {"apiKey": api_key, "token": token, "extended": "false", "tokenUrl": token_url}
        reply = self._social_login("auth_info", body, token_handle=fingerprint(token, salt=api_key))
        try:
            return AuthInfo.model_validate(reply)
        except ValidationError:
            # An "ok" without a usable profile is a broken upstream, not a bad user token.
            raise ServiceUnavailable(SOCIAL_LOGIN, "auth_info reply without a profile identifier") from None

    def add_or_update_access_token(self, *, identifier: str, token: str) -> None:
        api_key = self._api_key()
        body = {"apiKey": api_key, "token": token, "identifier": identifier}
        self._social_login("add_or_update_access_token", body, token_handle=fingerprint(token, salt=api_key))

    def _social_login(self, endpoint: str, body: dict[str, str], *, token_handle: str) -> dict[str, Any]:
        url = f"{self._social_login_base_url}/api/v2/{endpoint}"
        with traced(endpoint) as span:
            reply = self._post(SOCIAL_LOGIN, endpoint, url, body)
            if reply.get("stat") == "ok":
                span.outcome("ok")
                return reply
            try:
                failure = _SocialLoginFailure.model_validate(reply)
            except ValidationError:
                span.outcome("unavailable")
                raise ServiceUnavailable(
                    SOCIAL_LOGIN, f"{endpoint}: unrecognised reply", may_have_reached=True
                ) from None
            mismatch = (
                failure.err.code == SocialLoginError.AUTHENTICATION_ERROR
                and failure.err.msg.startswith("Token URL mismatch")
            )
            span.outcome(f"error_{failure.err.code}")
            logger.warning(
                "Social Login refused the call",
                extra={
                    "endpoint": endpoint,
                    "upstream_code": failure.err.code,
                    "token_url_mismatch": mismatch,
                    "token_handle": token_handle,
                },
            )
            if failure.err.code == SocialLoginError.SERVICE_UNAVAILABLE:
                raise ServiceUnavailable(SOCIAL_LOGIN, f"{endpoint}: code -1")
            raise SocialLoginError(endpoint, failure.err.code, mismatch)

    # ------------------------------------------------------------ Capture

    def link_account_native(self, *, token: str, access_token: str) -> None:
        flow = self._require_capture_flow()
        body = {
            **flow.client_parameters(),
            "redirect_uri": flow.redirect_uri,
            "token": token,
            "access_token": access_token,
        }
        self._capture("link_account_native", "/oauth/link_account_native", body)

    def read_account(self, *, access_token: str, read_timeout: float | None = None) -> CaptureAccount:
        """The account the Registration access token belongs to (`/entity`), limited to what we use."""
        self._require_capture_flow()
        body = {"access_token": access_token, "attributes": json.dumps(list(ACCOUNT_ATTRIBUTES))}
        reply = self._capture("entity", "/entity", body, read_timeout=read_timeout)
        try:
            return CaptureAccount.model_validate(reply.get("result"))
        except ValidationError:
            # An "ok" without a usable record is a broken upstream, not a bad access token.
            raise ServiceUnavailable(CAPTURE, "entity reply without a usable account") from None

    def unlink(self, *, access_token: str, identifier: str) -> None:
        """Removes a social identity from the account; Capture does not keep an account's last sign-in."""
        flow = self._require_capture_flow()
        body = {**flow.client_parameters(), "access_token": access_token, "identifier_to_remove": identifier}
        self._capture("unlink_account_native", "/oauth/unlink_account_native", body)

    def _require_capture_flow(self) -> CaptureFlow:
        if self._capture_flow is None or self._capture_base_url is None:
            raise ConfigurationProblem(CAPTURE, "this client has no Capture settings")
        return self._capture_flow

    def _capture(
        self, endpoint: str, path: str, body: dict[str, str], *, read_timeout: float | None = None
    ) -> dict[str, Any]:
        """One Capture call: the reply when `stat` is ok, else CaptureError or ServiceUnavailable."""
        with traced(endpoint) as span:
            reply = self._post(CAPTURE, endpoint, f"{self._capture_base_url}{path}", body, read_timeout)
            if reply.get("stat") == "ok":
                span.outcome("ok")
                return reply
            try:
                failure = _CaptureFailure.model_validate(reply)
            except ValidationError:
                span.outcome("unavailable")
                raise ServiceUnavailable(
                    CAPTURE, f"{endpoint}: unrecognised reply", may_have_reached=True
                ) from None
            request_id = failure.request_id or failure.request_token
            span.outcome(f"error_{failure.code}")
            logger.warning(
                "Capture refused the call",
                extra={
                    "endpoint": endpoint,
                    "upstream_code": failure.code,
                    "upstream_error": failure.error,
                    "upstream_request_id": request_id,
                },
            )
            raise CaptureError(endpoint, failure.code, failure.error, request_id)

    # ------------------------------------------------------------ transport

    def _post(
        self, service: str, endpoint: str, url: str, body: dict[str, str], read_timeout: float | None = None
    ) -> dict[str, Any]:
        started = time.perf_counter()
        timeout = self._bounded_timeout(read_timeout)
        if timeout is None:
            self._log_outage(endpoint, "no_time_left", started)
            raise ServiceUnavailable(service, f"{endpoint}: not enough time left before the Lambda deadline")
        try:
            response = self._http.post(url, data=body, timeout=timeout, allow_redirects=False)
        except requests.RequestException as error:
            reason = _failure_reason(error)
            self._log_outage(endpoint, reason, started)
            raise ServiceUnavailable(
                service, f"{endpoint}: {reason}", may_have_reached=not _never_sent(error)
            ) from None
        try:
            reply = response.json()
        except ValueError:
            reply = None
        # Decide on the envelope, never on the status alone: Social Login errors come with 400
        # (or 200), Capture errors with 200. Anything without an envelope is an outage.
        if not isinstance(reply, dict) or "stat" not in reply:
            self._log_outage(endpoint, f"http_{response.status_code}_without_envelope", started)
            raise ServiceUnavailable(
                service,
                f"{endpoint}: HTTP {response.status_code} without an API reply",
                may_have_reached=True,
            )
        return reply

    def _bounded_timeout(self, read_timeout: float | None = None) -> tuple[float, float] | None:
        """The configured timeouts, cut so the call ends before the Lambda deadline.

        Without this, a slow upstream lets Lambda kill the invocation and the browser gets a
        gateway error instead of the redirect with `service_unavailable`.
        """
        left = self._seconds_left()
        if left is None:
            return (
                self._timeout
                if read_timeout is None
                else (self._timeout[0], min(self._timeout[1], read_timeout))
            )
        budget = left - _DEADLINE_MARGIN_SECONDS
        if budget < _MIN_CALL_SECONDS:
            return None
        connect, read = self._timeout
        if read_timeout is not None:
            read = min(read, read_timeout)
        return min(connect, budget), min(read, budget)

    @staticmethod
    def _log_outage(endpoint: str, reason: str, started: float) -> None:
        logger.error(
            "Identity Cloud unavailable",
            extra={
                "endpoint": endpoint,
                "reason": reason,
                "elapsed_ms": round((time.perf_counter() - started) * 1000),
            },
        )
