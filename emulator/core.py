"""The Identity Cloud emulator: its state, the Python-level test helpers, and the Flask app.

Endpoints (see docs/identity-cloud.md for the behaviour they copy):

* ``POST /api/v2/auth_info`` and ``POST /api/v2/add_or_update_access_token`` (Social Login);
* ``POST /oauth/link_account_native``, ``POST /oauth/unlink_account_native`` and ``POST /entity`` (Capture);
* ``GET /<provider>/start?token_url=...`` and ``POST /<provider>/callback`` (browser sign-in, for demos);
* ``/_emulator/...``: helpers for a dev stack or a benchmark running the emulator out of process.

Parameters of the upstream endpoints are read only from a form body (urlencoded or multipart), never
from the query string, exactly as the vendor documents.
"""

from __future__ import annotations

import hmac
import json
import math
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, g, request

from emulator import pages
from emulator.faults import DEFAULT_NOT_JSON_BODY, Fault, FaultKind
from emulator.profiles import (
    PROVIDERS,
    default_access_credentials,
    default_profile,
    identifier_for,
    merged_poco,
    profile_domain,
    provider_by_identifier,
    provider_by_name,
)

DEFAULT_API_KEY = "a" * 40
DEFAULT_CLIENT_ID = "c" * 32
DEFAULT_FLOW = "standard"
DEFAULT_FLOW_VERSION = "20190618143040022299"
DEFAULT_LOCALE = "en-US"

API_ENDPOINTS: dict[str, str] = {
    "/api/v2/auth_info": "auth_info",
    "/api/v2/add_or_update_access_token": "add_or_update_access_token",
    "/oauth/link_account_native": "link_account_native",
    "/oauth/unlink_account_native": "unlink_account_native",
    "/entity": "entity",
}
"""Path -> endpoint name of the emulated upstream APIs (the names faults and ``calls_to`` use)."""

ALL_ENDPOINTS = "*"
"""``set_fault("*", ...)``: the fault applies to whichever upstream API endpoint is called next."""

LINK_REQUIRED = ("access_token", "client_id", "flow", "flow_version", "locale", "redirect_uri", "token")
UNLINK_REQUIRED = ("access_token", "client_id", "flow", "flow_version", "identifier_to_remove", "locale")
ENTITY_ATTRIBUTES = ("id", "uuid", "displayName", "email", "password", "profiles", "created", "lastUpdated")
"""The attributes of the emulator's user records (``/entity`` refuses any other name in ``attributes``)."""
ADD_OR_UPDATE_DOMAINS = ("facebook.com", "renren.com", "soundcloud.com", "foursquare.com")
RESET_ENVIRON_KEY = "emulator.reset_connection"
_USER_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_REQUEST_ID_ALPHABET = string.ascii_lowercase + string.digits
_USER_UUID_NAMESPACE = uuid.UUID("6f1c3a52-4d0e-4b8f-9a51-2f7d8c3e9b10")
_RECORD_TIMESTAMP = "2024-01-01 00:00:00.000000 +0000"


class EmulatorConnectionReset(ConnectionResetError):
    """Raised out of the WSGI app so that the server drops the connection without any response."""


@dataclass
class RecordedCall:
    endpoint: str
    """``auth_info``, ``link_account_native``, ``add_or_update_access_token``, ``provider_start``, ..."""
    method: str
    path: str
    content_type: str | None
    form: dict[str, str]
    """Body parameters (first value of each name); empty for other content types."""
    query: dict[str, str]
    """Query-string parameters (never read as API parameters)."""
    headers: dict[str, str]
    remote_port: int | None = None
    """Client port: calls with the same port came over the same TCP connection."""
    at: float = field(default_factory=time.time)
    fault: str | None = None
    """The FaultKind applied to this call, if any."""
    status: int | None = None
    """HTTP status answered (None when the connection was reset)."""

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


@dataclass
class _SocialToken:
    token: str
    token_url: str
    identifier: str
    provider: str
    profile: dict[str, Any]
    access_credentials: dict[str, Any] | None
    expires_at: float
    read_by_auth_info: bool = False
    consumed: bool = False


@dataclass
class _AccessToken:
    user_id: str
    expires_at: float


@dataclass
class _User:
    """A Registration user record: what ``/entity`` returns besides the linked identities."""

    user_id: str
    number: int
    display_name: str
    email: str
    password: str | None
    """A stand-in for the stored hash; None when the account has no password (social sign-in only)."""

    @property
    def uuid(self) -> str:
        return str(uuid.uuid5(_USER_UUID_NAMESPACE, self.user_id))


@dataclass
class _ActiveFault:
    fault: Fault
    remaining: int | None


class _ResetMiddleware:
    """Turns a RESET fault (flagged in the environ by a view) into a dropped connection."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        result = self.wsgi_app(environ, start_response)
        if environ.get(RESET_ENVIRON_KEY):
            close = getattr(result, "close", None)
            if close is not None:
                close()
            raise EmulatorConnectionReset("emulator fault: connection reset")
        return result


def _json_response(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def _html_response(body: str, status: int = 200) -> Response:
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _host_in(host: str, domains: Iterable[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in (d.lower() for d in domains))


class IdentityCloudEmulator:
    """In-process emulator of Identity Cloud Social Login + Capture, as strict as the vendor docs."""

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        capture_client_id: str = DEFAULT_CLIENT_ID,
        *,
        flow: str = DEFAULT_FLOW,
        flow_version: str = DEFAULT_FLOW_VERSION,
        locale: str = DEFAULT_LOCALE,
        client_has_login_feature: bool = True,
        social_login_error_status: int = 400,
        one_time_tokens: bool = True,
        auth_info_spends_token_for_capture: bool = False,
        token_ttl_seconds: float = 300,
        post_to_token_url: bool = True,
        token_url_domains: Iterable[str] | None = None,
        page_stylesheet_url: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Plain attributes: tests may change them between calls.
        self.api_key = api_key
        self.capture_client_id = capture_client_id
        self.flow = flow
        self.flow_version = flow_version
        self.locale = locale
        self.client_has_login_feature = client_has_login_feature
        self.social_login_error_status = social_login_error_status
        self.one_time_tokens = one_time_tokens
        """The Social Login application's oneTimeUseTokens: auth_info reads a token once."""
        self.auth_info_spends_token_for_capture = auth_info_spends_token_for_capture
        """Unconfirmed model: with one_time_tokens, a token auth_info has read is spent for Capture too.

        False (the default) is what the vendor documents: Capture's native endpoints take the token
        after its profile was read. True models the opposite, which no vendor page rules out.
        """
        self.token_ttl_seconds = token_ttl_seconds
        self.post_to_token_url = post_to_token_url
        """True: the callback page form-POSTs the token to the token URL; False: 302 with ?token=."""
        self.token_url_domains = tuple(token_url_domains) if token_url_domains is not None else None
        """Allow list of token URL hosts for the browser sign-in (subdomains included); None: any."""
        self.page_stylesheet_url = page_stylesheet_url
        """A stylesheet the provider pages link (the local stack gives the demo's); None: unstyled."""
        self.clock = clock

        self._lock = threading.RLock()
        self._tokens: dict[str, _SocialToken] = {}
        self._access_tokens: dict[str, _AccessToken] = {}
        self._links: dict[str, str] = {}
        self._linked_profiles: dict[str, dict[str, Any]] = {}
        self._users: dict[str, _User] = {}
        self._stored_access_tokens: dict[str, str] = {}
        self._calls: list[RecordedCall] = []
        self._faults: dict[str, list[_ActiveFault]] = {}
        self._connections = 0
        self._connection_hosts: dict[str, int] = {}
        self.app = self._build_app()

    # ------------------------------------------------------------------ test helpers

    def issue_token(
        self,
        token_url: str,
        identifier: str | None = None,
        provider: str | None = None,
        profile: dict[str, Any] | None = None,
        access_credentials: dict[str, Any] | None = None,
        *,
        ttl_seconds: float | None = None,
        token: str | None = None,
    ) -> str:
        """Issue a 40-hex-char Social Login token bound to ``token_url`` (as after a provider sign-in).

        ``token`` gives the token a known value (the files in events/ carry fixed tokens); it replaces
        an earlier token of that value.

        ``provider`` defaults to the one of the identifier's host ("Google" if there is no identifier either);
        ``profile``/``access_credentials`` default to provider-specific values like the vendor's examples.
        A given ``profile`` replaces the default one (identifier and providerName are filled in if absent).
        """
        if identifier is None:
            info = provider_by_name(provider) if provider else PROVIDERS["google"]
            info = info or PROVIDERS["google"]
            identifier = identifier_for(info, str(secrets.randbelow(10**21)).zfill(21))
        if provider is None:
            info = provider_by_identifier(identifier)
            provider = info.name if info else "OpenID"
        if profile is None:
            full_profile = default_profile(identifier, provider)
        else:
            full_profile = dict(profile)
            full_profile.setdefault("identifier", identifier)
            full_profile.setdefault("providerName", provider)
        if access_credentials is None:
            access_credentials = default_access_credentials(identifier, provider)
        ttl = self.token_ttl_seconds if ttl_seconds is None else ttl_seconds
        token = token or secrets.token_hex(20)
        with self._lock:
            self._tokens[token] = _SocialToken(
                token=token,
                token_url=token_url,
                identifier=identifier,
                provider=provider,
                profile=full_profile,
                access_credentials=dict(access_credentials) if access_credentials is not None else None,
                expires_at=self.clock() + ttl,
            )
        return token

    def expire_token(self, token: str) -> None:
        """Make a Social Login token expired (auth_info: code 2; link_account_native: 400 engage_error)."""
        with self._lock:
            self._tokens[token].expires_at = -math.inf

    def token_status(self, token: str) -> str | None:
        """``fresh``, ``read`` (by auth_info), ``consumed`` (by a link), ``expired``; None if unknown."""
        with self._lock:
            t = self._tokens.get(token)
            if t is None:
                return None
            if t.consumed:
                return "consumed"
            if self.clock() >= t.expires_at:
                return "expired"
            return "read" if t.read_by_auth_info else "fresh"

    def create_user(
        self,
        user_id: str,
        *,
        display_name: str | None = None,
        email: str | None = None,
        has_password: bool = True,
    ) -> None:
        """Create (or replace) the Registration user ``user_id``; its linked identities stay.

        A user an access token is minted for without this gets the defaults: its id as display name,
        ``<id>@example.com`` and a password.
        """
        with self._lock:
            existing = self._users.get(user_id)
            self._users[user_id] = _User(
                user_id=user_id,
                number=existing.number if existing else len(self._users) + 1,
                display_name=display_name if display_name is not None else user_id,
                email=email if email is not None else f"{user_id}@example.com",
                password=f"$2a$10${secrets.token_urlsafe(40)}" if has_password else None,
            )

    def account(self, user_id: str) -> dict[str, Any]:
        """The user's full record, as ``/entity`` returns it without ``attributes``."""
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                self.create_user(user_id)
                user = self._users[user_id]
            profiles = [
                {
                    "id": number,
                    "domain": profile_domain(identifier),
                    "identifier": identifier,
                    "profile": json.loads(json.dumps(self._linked_profiles[identifier])),
                }
                for number, identifier in enumerate(self.linked_identities(user_id), start=1)
            ]
            return {
                "id": user.number,
                "uuid": user.uuid,
                "displayName": user.display_name,
                "email": user.email,
                "password": user.password,
                "profiles": profiles,
                "created": _RECORD_TIMESTAMP,
                "lastUpdated": _RECORD_TIMESTAMP,
            }

    def mint_access_token(self, user_id: str, expires_in: float = 3600, *, token: str | None = None) -> str:
        """A Registration (Capture) access token for ``user_id`` (of the value ``token``, if given)."""
        token = token or "".join(secrets.choice(_REQUEST_ID_ALPHABET) for _ in range(24))
        with self._lock:
            if user_id not in self._users:
                self.create_user(user_id)
            self._access_tokens[token] = _AccessToken(user_id=user_id, expires_at=self.clock() + expires_in)
        return token

    def expire_access_token(self, access_token: str) -> None:
        """Make a Registration access token expired: the Capture endpoints then answer 414."""
        with self._lock:
            self._access_tokens[access_token].expires_at = -math.inf

    def link(self, identifier: str, user_id: str) -> None:
        """Record a pre-existing link of a social identity to a user."""
        with self._lock:
            owner = self._links.get(identifier)
            if owner is not None and owner != user_id:
                raise ValueError(f"{identifier} is already linked to {owner}")
            self._record_link(identifier, user_id, None)

    def _record_link(self, identifier: str, user_id: str, profile: dict[str, Any] | None) -> None:
        if profile is None:
            info = provider_by_identifier(identifier)
            profile = default_profile(identifier, info.name if info else "OpenID")
        self._links[identifier] = user_id
        self._linked_profiles[identifier] = dict(profile)

    def linked_identities(self, user_id: str) -> list[str]:
        with self._lock:
            return [ident for ident, owner in self._links.items() if owner == user_id]

    def owner_of(self, identifier: str) -> str | None:
        with self._lock:
            return self._links.get(identifier)

    @property
    def stored_access_tokens(self) -> dict[str, str]:
        """identifier -> provider token stored by add_or_update_access_token."""
        with self._lock:
            return dict(self._stored_access_tokens)

    @property
    def calls(self) -> list[RecordedCall]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, endpoint: str) -> list[RecordedCall]:
        with self._lock:
            return [c for c in self._calls if c.endpoint == endpoint]

    def set_fault(self, endpoint: str, fault: Fault) -> None:
        """Replace the faults of ``endpoint`` (an API endpoint name, or ``"*"``) with ``fault``."""
        self._check_endpoint(endpoint)
        with self._lock:
            self._faults[endpoint] = [_ActiveFault(fault, fault.times)]

    def add_fault(self, endpoint: str, fault: Fault) -> None:
        """Queue ``fault`` after the endpoint's current faults (e.g. 500, then reset, then normal)."""
        self._check_endpoint(endpoint)
        with self._lock:
            self._faults.setdefault(endpoint, []).append(_ActiveFault(fault, fault.times))

    def clear_faults(self, endpoint: str | None = None) -> None:
        with self._lock:
            if endpoint is None:
                self._faults.clear()
            else:
                self._faults.pop(endpoint, None)

    def reset(self) -> None:
        """Forget calls, tokens, access tokens, users, links, stored provider tokens, faults, connections."""
        with self._lock:
            self._tokens.clear()
            self._access_tokens.clear()
            self._users.clear()
            self._links.clear()
            self._linked_profiles.clear()
            self._stored_access_tokens.clear()
            self._calls.clear()
            self._faults.clear()
            self._connections = 0
            self._connection_hosts.clear()

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted by the server(s) serving this emulator (see ``serve``)."""
        with self._lock:
            return self._connections

    def note_connection_accepted(self) -> None:
        """Called by the server for every accepted TCP connection."""
        with self._lock:
            self._connections += 1

    @property
    def connections_by_host(self) -> dict[str, int]:
        """Connections by the Host header of their first request: one upstream host per client pool."""
        with self._lock:
            return dict(self._connection_hosts)

    def note_connection_host(self, host: str) -> None:
        """Called by the server with the Host header of each connection's first request."""
        with self._lock:
            self._connection_hosts[host] = self._connection_hosts.get(host, 0) + 1

    @staticmethod
    def _check_endpoint(endpoint: str) -> None:
        if endpoint != ALL_ENDPOINTS and endpoint not in API_ENDPOINTS.values():
            raise ValueError(
                f"unknown endpoint {endpoint!r}; use one of {sorted(API_ENDPOINTS.values())} or '*'"
            )

    def _take_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            for key in (endpoint, ALL_ENDPOINTS):
                queue = self._faults.get(key)
                if not queue:
                    continue
                active = queue[0]
                if active.remaining is not None:
                    active.remaining -= 1
                    if active.remaining <= 0:
                        queue.pop(0)
                return active.fault
        return None

    # ------------------------------------------------------------------ envelopes

    def _social_login_error(self, code: int, msg: str) -> Response:
        return _json_response(
            {"stat": "fail", "err": {"code": code, "msg": msg}}, self.social_login_error_status
        )

    @staticmethod
    def _capture_error(code: int, error: str, description: str, **extra: Any) -> Response:
        request_id = "".join(secrets.choice(_REQUEST_ID_ALPHABET) for _ in range(16))
        payload: dict[str, Any] = {
            "stat": "error",
            "code": code,
            "error_description": description,
            "error": error,
            "request_id": request_id,
        }
        payload.update(extra)
        return _json_response(payload, 200)

    # ------------------------------------------------------------------ Flask app

    def _build_app(self) -> Flask:
        app = Flask("emulator")
        app.before_request(self._before_request)
        app.after_request(self._after_request)

        def post_only(rule: str, endpoint: str, view: Callable[..., Response]) -> None:
            app.add_url_rule(rule, endpoint, view, methods=["POST"], provide_automatic_options=False)

        post_only("/api/v2/auth_info", "auth_info", self._auth_info)
        post_only("/api/v2/add_or_update_access_token", "add_or_update_access_token", self._add_or_update)
        post_only("/oauth/link_account_native", "link_account_native", self._link_account_native)
        post_only("/oauth/unlink_account_native", "unlink_account_native", self._unlink_account_native)
        post_only("/entity", "entity", self._entity)
        app.add_url_rule("/<provider>/start", "provider_start", self._provider_start, methods=["GET"])
        post_only("/<provider>/callback", "provider_callback", self._provider_callback)
        post_only("/_emulator/access_tokens", "emulator_access_tokens", self._admin_access_tokens)
        post_only("/_emulator/tokens", "emulator_tokens", self._admin_tokens)
        post_only("/_emulator/reset", "emulator_reset", self._admin_reset)
        app.add_url_rule(
            "/_emulator/faults",
            "emulator_faults",
            self._admin_faults,
            methods=["POST", "DELETE"],
            provide_automatic_options=False,
        )
        app.add_url_rule("/_emulator/links", "emulator_links", self._admin_links, methods=["GET"])
        app.add_url_rule("/_emulator/calls", "emulator_calls", self._admin_calls, methods=["GET"])
        app.add_url_rule(
            "/_emulator/connections", "emulator_connections", self._admin_connections, methods=["GET"]
        )
        app.wsgi_app = _ResetMiddleware(app.wsgi_app)  # type: ignore[method-assign]
        return app

    def _before_request(self) -> Response | None:
        name = API_ENDPOINTS.get(request.path) or request.endpoint or "unknown"
        params = dict(request.form.items())
        remote_port = request.environ.get("REMOTE_PORT")
        call = RecordedCall(
            endpoint=name,
            method=request.method,
            path=request.path,
            content_type=request.headers.get("Content-Type"),
            form=params,
            query=dict(request.args.items()),
            headers=dict(request.headers.items()),
            remote_port=int(remote_port) if remote_port is not None else None,
        )
        with self._lock:
            self._calls.append(call)
        g.call = call
        g.params = params
        if name not in API_ENDPOINTS.values() or request.routing_exception is not None:
            return None
        fault = self._take_fault(name)
        if fault is None:
            return None
        call.fault = fault.kind.value
        return self._apply_fault(fault)

    def _apply_fault(self, fault: Fault) -> Response | None:
        match fault.kind:
            case FaultKind.DELAY:
                time.sleep(fault.seconds)
                return None
            case FaultKind.LATE_REPLY:
                g.late_reply_seconds = fault.seconds  # slept in _after_request, once the view has acted
                return None
            case FaultKind.HTTP_500:
                return _html_response(pages.http_500_page(), 500)
            case FaultKind.NOT_JSON:
                return _html_response(fault.body if fault.body is not None else DEFAULT_NOT_JSON_BODY, 200)
            case FaultKind.RESET:
                request.environ[RESET_ENVIRON_KEY] = True
                return Response(b"", status=500)
            case FaultKind.SERVICE_UNAVAILABLE:
                return self._social_login_error(-1, "Service temporarily unavailable")
            case FaultKind.SOCIAL_LOGIN_ERROR:
                return self._social_login_error(fault.code, "Error injected by the emulator")
            case FaultKind.CAPTURE_ERROR:
                return self._capture_error(fault.code, fault.error, fault.description)
        raise AssertionError(f"unhandled fault {fault.kind}")  # pragma: no cover

    def _after_request(self, response: Response) -> Response:
        call: RecordedCall | None = g.get("call")
        if call is not None and not request.environ.get(RESET_ENVIRON_KEY):
            call.status = response.status_code
        late_by = g.get("late_reply_seconds")
        if late_by is not None:
            time.sleep(late_by)
        return response

    @staticmethod
    def _params() -> dict[str, str]:
        params: dict[str, str] = g.params
        return params

    # ------------------------------------------------------------------ Social Login

    def _auth_info(self) -> Response:
        p = self._params()
        for name in ("apiKey", "token"):
            if not p.get(name):
                return self._social_login_error(0, f"Missing parameter: {name}")
        if not hmac.compare_digest(p["apiKey"].encode(), self.api_key.encode()):
            return self._social_login_error(3, "Authentication error")
        extended = p.get("extended")
        if extended is not None and extended not in ("true", "false"):
            return self._social_login_error(1, "Invalid parameter: extended")
        token_url = p.get("tokenUrl")
        with self._lock:
            t = self._tokens.get(p["token"])
            if (
                t is None
                or t.consumed
                or self.clock() >= t.expires_at
                or (self.one_time_tokens and t.read_by_auth_info)
            ):
                return self._social_login_error(2, "Data not found")
            if token_url is not None and token_url != t.token_url:
                # A token presented for another URL is burnt: it cannot be replayed afterwards.
                t.consumed = True
                return self._social_login_error(
                    3, f"Token URL mismatch: expected {t.token_url!r}, got {token_url!r}"
                )
            t.read_by_auth_info = True
            body: dict[str, Any] = {"stat": "ok", "profile": json.loads(json.dumps(t.profile))}
            if t.access_credentials is not None:
                body["accessCredentials"] = dict(t.access_credentials)
            if extended == "true":
                body["merged_poco"] = merged_poco(t.profile)
        return _json_response(body)

    def _add_or_update(self) -> Response:
        p = self._params()
        for name in ("apiKey", "token", "identifier"):
            if not p.get(name):
                return self._social_login_error(0, f"Missing parameter: {name}")
        if not hmac.compare_digest(p["apiKey"].encode(), self.api_key.encode()):
            return self._social_login_error(3, "Authentication error")
        identifier = p["identifier"]
        if not _is_http_url(identifier):
            return self._social_login_error(1, "Invalid parameter: identifier")
        if not _host_in(urlsplit(identifier).hostname or "", ADD_OR_UPDATE_DOMAINS):
            return self._social_login_error(11, "Provider or identifier does not support this feature")
        with self._lock:
            self._stored_access_tokens[identifier] = p["token"]
        return _json_response({"stat": "ok"})

    # ------------------------------------------------------------------ Capture

    def _link_account_native(self) -> Response:
        p = self._params()
        refusal = self._missing_arguments(p, LINK_REQUIRED) or self._refused_client_or_flow(p)
        if refusal is not None:
            return refusal
        if not p["redirect_uri"].startswith(("http:", "https:")):
            return self._capture_error(
                200, "invalid_argument", "redirect_uri must begin with http: or https:"
            )
        with self._lock:
            now = self.clock()
            user_id = self._live_access_token_user(p["access_token"], now)
            if isinstance(user_id, Response):
                return user_id
            t = self._tokens.get(p["token"])
            if t is None or t.consumed or now >= t.expires_at or self._spent_for_capture(t):
                return self._capture_error(
                    400, "engage_error", "Unexpected HTTP status code from server: 400"
                )
            t.consumed = True
            if t.identifier in self._links:
                return self._capture_error(
                    361,
                    "unique_violation",
                    "that account already exists",
                    message="That account is already in use.",
                )
            self._record_link(t.identifier, user_id, t.profile)
        return _json_response({"stat": "ok"})

    def _unlink_account_native(self) -> Response:
        p = self._params()
        refusal = self._missing_arguments(p, UNLINK_REQUIRED) or self._refused_client_or_flow(p)
        if refusal is not None:
            return refusal
        identifier = p["identifier_to_remove"]
        with self._lock:
            user_id = self._live_access_token_user(p["access_token"], self.clock())
            if isinstance(user_id, Response):
                return user_id
            # Unconfirmed: the code Capture gives for an identifier that is not on the account.
            if self._links.get(identifier) != user_id:
                return self._capture_error(
                    200, "invalid_argument", "identifier_to_remove is not linked to this account"
                )
            # Capture lets an account lose its last way to sign in: so does the emulator.
            del self._links[identifier]
            self._linked_profiles.pop(identifier, None)
        return _json_response({"stat": "ok"})

    def _entity(self) -> Response:
        """``/entity`` with an access token: the user's record (``type_name`` is then not needed)."""
        p = self._params()
        refusal = self._missing_arguments(p, ("access_token",))
        if refusal is not None:
            return refusal
        attributes = self._requested_attributes(p.get("attributes"))
        if isinstance(attributes, Response):
            return attributes
        with self._lock:
            user_id = self._live_access_token_user(p["access_token"], self.clock())
            if isinstance(user_id, Response):
                return user_id
            record = self.account(user_id)
        if attributes is not None:
            record = {name: record[name] for name in attributes}
        return _json_response({"stat": "ok", "result": record})

    def _requested_attributes(self, raw: str | None) -> list[str] | Response | None:
        """``attributes``: a JSON array of attribute names, or absent for the whole record."""
        if raw is None:
            return None
        try:
            names = json.loads(raw)
        except ValueError:
            names = None
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            return self._capture_error(200, "invalid_argument", "attributes must be a JSON array of names")
        unknown = [name for name in names if name not in ENTITY_ATTRIBUTES]
        if unknown:
            return self._capture_error(200, "invalid_argument", f"unknown attributes: {', '.join(unknown)}")
        return names

    def _missing_arguments(self, p: dict[str, str], required: Iterable[str]) -> Response | None:
        missing = [name for name in required if not p.get(name)]
        if not missing:
            return None
        return self._capture_error(100, "missing_argument", f"missing arguments: {', '.join(missing)}")

    def _live_access_token_user(self, access_token: str, now: float) -> str | Response:
        """The user a live Registration access token belongs to, or the 413/414 refusal (under the lock)."""
        access = self._access_tokens.get(access_token)
        if access is None:
            return self._capture_error(413, "invalid_access_token", "invalid access token")
        if now >= access.expires_at:
            return self._capture_error(414, "access_token_expired", "access token expired")
        return access.user_id

    def _refused_client_or_flow(self, p: dict[str, str]) -> Response | None:
        """The native endpoints' checks of ``client_id``, then ``flow``, ``flow_version`` and ``locale``."""
        if p["client_id"] != self.capture_client_id:
            return self._capture_error(200, "invalid_argument", "client_id is not valid")
        if not self.client_has_login_feature:
            return self._capture_error(
                403, "permission_error", "This client does not support log in and registration."
            )
        flow, flow_version, locale = p["flow"], p["flow_version"], p["locale"]
        if flow_version == "HEAD" or (flow, flow_version, locale) != (
            self.flow,
            self.flow_version,
            self.locale,
        ):
            return self._capture_error(
                500,
                "unexpected_error",
                f"could not find a flow named '{flow}' with version '{flow_version}' and locale '{locale}'",
            )
        return None

    def _spent_for_capture(self, token: _SocialToken) -> bool:
        return self.one_time_tokens and self.auth_info_spends_token_for_capture and token.read_by_auth_info

    # ------------------------------------------------------------------ browser sign-in

    def _check_token_url(self, token_url: str | None) -> str | None:
        """An error message if ``token_url`` cannot be a token URL, else None."""
        if not token_url:
            return "Missing token_url"
        if not _is_http_url(token_url):
            return "token_url must be an http(s) URL"
        host = urlsplit(token_url).hostname or ""
        if self.token_url_domains is not None and not _host_in(host, self.token_url_domains):
            return f"token_url domain {host!r} is not on this application's allow list"
        return None

    def _provider_start(self, provider: str) -> Response:
        info = PROVIDERS.get(provider)
        if info is None:
            return _html_response(
                pages.error_page(404, f"Unknown provider {provider!r}", self.page_stylesheet_url), 404
            )
        token_url = request.args.get("token_url")
        problem = self._check_token_url(token_url)
        if problem is not None or token_url is None:
            return _html_response(
                pages.error_page(400, problem or "Missing token_url", self.page_stylesheet_url), 400
            )
        return _html_response(
            pages.start_page(info.slug, info.name, token_url, stylesheet=self.page_stylesheet_url)
        )

    def _provider_callback(self, provider: str) -> Response:
        info = PROVIDERS.get(provider)
        if info is None:
            return _html_response(
                pages.error_page(404, f"Unknown provider {provider!r}", self.page_stylesheet_url), 404
            )
        p = self._params()
        token_url = p.get("token_url")
        problem = self._check_token_url(token_url)
        if problem is not None or token_url is None:
            return _html_response(
                pages.error_page(400, problem or "Missing token_url", self.page_stylesheet_url), 400
            )
        user = p.get("user", "")
        if not _USER_RE.fullmatch(user):
            return _html_response(
                pages.error_page(400, "user must be 1-64 of A-Z a-z 0-9 . _ -", self.page_stylesheet_url), 400
            )
        token = self.issue_token(token_url, identifier_for(info, user), info.name)
        if not self.post_to_token_url:
            separator = "&" if urlsplit(token_url).query else ("" if token_url.endswith("?") else "?")
            response = Response(status=302)
            response.headers["Location"] = f"{token_url}{separator}token={token}"
            response.headers["Cache-Control"] = "no-store"
            return response
        return _html_response(pages.token_post_page(token_url, token, self.page_stylesheet_url))

    # ------------------------------------------------------------------ /_emulator helpers

    @staticmethod
    def _json_body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else {}

    def _admin_access_tokens(self) -> Response:
        data = self._json_body()
        user_id = data.get("user_id")
        expires_in = data.get("expires_in", 3600)
        if not isinstance(user_id, str) or not user_id:
            return _json_response({"error": "user_id (string) is required"}, 400)
        if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
            return _json_response({"error": "expires_in must be a number"}, 400)
        has_password = data.get("has_password")
        if has_password is not None and not isinstance(has_password, bool):
            return _json_response({"error": "has_password must be true or false"}, 400)
        display_name, email = data.get("display_name"), data.get("email")
        if any(value is not None and not isinstance(value, str) for value in (display_name, email)):
            return _json_response({"error": "display_name and email must be strings"}, 400)
        if has_password is not None or display_name is not None or email is not None:
            self.create_user(
                user_id,
                display_name=display_name,
                email=email,
                has_password=True if has_password is None else has_password,
            )
        token = self.mint_access_token(user_id, expires_in)
        return _json_response({"access_token": token, "expires_in": expires_in})

    def _admin_tokens(self) -> Response:
        data = self._json_body()
        token_url = data.get("token_url")
        identifier = data.get("identifier")
        provider = data.get("provider")
        if not isinstance(token_url, str) or not token_url:
            return _json_response({"error": "token_url (string) is required"}, 400)
        if identifier is not None and not isinstance(identifier, str):
            return _json_response({"error": "identifier must be a string"}, 400)
        if provider is not None and not isinstance(provider, str):
            return _json_response({"error": "provider must be a string"}, 400)
        # Any size, as a provider may return: the dev stack can sign in with credentials KMS Encrypt refuses.
        access_credentials = data.get("access_credentials")
        if access_credentials is not None and not isinstance(access_credentials, dict):
            return _json_response({"error": "access_credentials must be an object"}, 400)
        token = self.issue_token(token_url, identifier, provider, access_credentials=access_credentials)
        with self._lock:
            issued_identifier = self._tokens[token].identifier
        return _json_response({"token": token, "identifier": issued_identifier})

    def _admin_reset(self) -> Response:
        self.reset()
        return _json_response({"stat": "ok"})

    def _admin_faults(self) -> Response:
        if request.method == "DELETE":
            self.clear_faults()
            return _json_response({"stat": "ok"})
        data = self._json_body()
        endpoint = data.pop("endpoint", None)
        try:
            if not isinstance(endpoint, str):
                raise ValueError("endpoint (string) is required")
            self.add_fault(endpoint, Fault.from_dict(data))
        except (TypeError, ValueError) as exc:
            return _json_response({"error": str(exc)}, 400)
        return _json_response({"stat": "ok"})

    def _admin_calls(self) -> Response:
        """How many calls each upstream endpoint received (no parameters: they hold secrets)."""
        counts: dict[str, int] = {}
        for call in self.calls:
            counts[call.endpoint] = counts.get(call.endpoint, 0) + 1
        return _json_response({"calls": counts})

    def _admin_connections(self) -> Response:
        """Accepted TCP connections, in all and by the Host header of each one's first request."""
        return _json_response({"accepted": self.connections_accepted, "by_host": self.connections_by_host})

    def _admin_links(self) -> Response:
        user_id = request.args.get("user_id")
        if not user_id:
            return _json_response({"error": "user_id is required"}, 400)
        return _json_response({"user_id": user_id, "identifiers": self.linked_identities(user_id)})
