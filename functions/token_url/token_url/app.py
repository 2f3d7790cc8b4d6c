"""Lambda handler: routing, request parsing and HTTP responses. The flows live in flows.py."""

from __future__ import annotations

import json
import os
import re
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import boto3
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from token_url.api_key import ApiKeySource
from token_url.audit import AuditTrail, request_caller
from token_url.cookies import BROWSER_COOKIE, BROWSER_COOKIE_MAX_AGE, SESSION_COOKIE
from token_url.errors import ConfigurationProblem, ServiceUnavailable, SocialLoginError
from token_url.flows import NotSignedIn, TokenOutcome, TokenUrlService
from token_url.http_forms import InvalidForm, decode_body, parse_form, single_value
from token_url.iam_callers import allowed as iam_caller_allowed
from token_url.identity_cloud import CaptureFlow, IdentityCloudClient, new_http_session
from token_url.models import (
    CredentialsRequest,
    CredentialsStored,
    ErrorBody,
    ErrorCode,
    LinkConfirmationRequest,
    LinkConfirmed,
    PendingLinkView,
    Result,
    SessionCreateRequest,
    SessionView,
    SignedOutView,
    TokenCallback,
    TokenUrlRequest,
    TokenUrlResponse,
    credential_provider,
)
from token_url.observability import count, logger, metrics, tracer
from token_url.settings import ConfigurationError, Settings
from token_url.store import NonceStore, SessionStore
from token_url.vault import Vault

MAX_JSON_BYTES = 16 * 1024
_OPAQUE = re.compile(r"[A-Za-z0-9_-]{43}")
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
# JSON routes a browser page calls to change state: same-origin and JSON only (docs/security.md, row 6).
_BROWSER_STATE_ROUTES = {
    ("POST", "/token-url"),
    ("POST", "/session"),
    ("DELETE", "/session"),
    ("POST", "/link"),
}
_JSON_BODY_ROUTES = {
    ("POST", "/token-url"),
    ("POST", "/session"),
    ("POST", "/credentials"),
    ("POST", "/link"),
}
# Routes for servers, never for browsers or anonymous callers (docs/security.md, row 11).
_IAM_ROUTES = {("POST", "/credentials")}

# ---------------------------------------------------------------- start: configuration and clients, once

try:
    settings = Settings.from_environ(os.environ)
except ConfigurationError as config_error:
    logger.error(str(config_error))
    raise


class Deadline:
    """The current invocation's deadline, for the upstream client's timeouts."""

    def __init__(self) -> None:
        self.context: LambdaContext | None = None

    def seconds_left(self) -> float | None:
        return None if self.context is None else self.context.get_remaining_time_in_millis() / 1000


deadline = Deadline()
_aws_config = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
_dynamodb = boto3.client("dynamodb", config=_aws_config)
_http = new_http_session()
api_key_source = ApiKeySource(
    secrets_client=boto3.client("secretsmanager", config=_aws_config),
    secret_id=settings.social_login_api_key_secret,
    max_age=settings.secret_max_age_seconds,
)
# Its own timeouts and no botocore retry: AuditTrail retries, within the deadline, after the outcome is set.
_events_config = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 1})
audit_trail = AuditTrail(
    client=boto3.client("events", config=_events_config),
    bus_name=settings.audit_event_bus,
    handle_key=api_key_source,
    seconds_left=deadline.seconds_left,
)
service = TokenUrlService(
    settings=settings,
    client=IdentityCloudClient(
        social_login_base_url=settings.social_login_base_url,
        capture_base_url=settings.capture_base_url,
        capture_flow=CaptureFlow(
            client_id=settings.capture_client_id,
            flow=settings.capture_flow,
            flow_version=settings.capture_flow_version,
            locale=settings.capture_locale,
            redirect_uri=settings.capture_redirect_uri,
        ),
        api_key=api_key_source,
        http=_http,
        timeout=(settings.upstream_connect_timeout, settings.upstream_read_timeout),
        seconds_left=deadline.seconds_left,
    ),
    sessions=SessionStore(client=_dynamodb, table=settings.sessions_table),
    nonces=NonceStore(client=_dynamodb, table=settings.nonces_table),
    vault=Vault(kms_client=boto3.client("kms", config=_aws_config), key_id=settings.credentials_key_id),
    idempotency_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=_dynamodb),
    audit=audit_trail,
)

app = APIGatewayHttpResolver(enable_validation=True)


# ---------------------------------------------------------------- helpers


def _cookies() -> dict[str, str]:
    """Request cookies; a name sent twice is ambiguous, so it counts as absent."""
    seen: dict[str, list[str]] = {}
    for raw in app.current_event.cookies or []:
        name, _, value = raw.strip().partition("=")
        seen.setdefault(name, []).append(value)
    return {name: values[0] for name, values in seen.items() if len(values) == 1}


def _opaque_cookie(name: str) -> str | None:
    value = _cookies().get(name)
    return value if value is not None and _OPAQUE.fullmatch(value) else None


def _host_cookie(name: str, value: str, max_age: int, same_site: SameSite) -> Cookie:
    # __Host- cookies: Secure, Path=/ and no Domain, so no subdomain can set or read them.
    return Cookie(
        name=name, value=value, path="/", secure=True, http_only=True, max_age=max_age, same_site=same_site
    )


def _session_cookie(session_id: str, max_age: int) -> Cookie:
    return _host_cookie(SESSION_COOKIE, session_id, max_age, SameSite.LAX_MODE)


def _expired_session_cookie() -> Cookie:
    return _session_cookie("", 0)


def _browser_cookie(value: str) -> Cookie:
    return _host_cookie(BROWSER_COOKIE, value, BROWSER_COOKIE_MAX_AGE, SameSite.NONE_MODE)


def _json(status: HTTPStatus, body: Any, cookies: list[Cookie] | None = None) -> Response[Any]:
    payload = body.model_dump(mode="json") if hasattr(body, "model_dump") else body
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=payload, cookies=cookies or []
    )


def _error(status: HTTPStatus, code: ErrorCode, message: str) -> Response[Any]:
    return _json(status, ErrorBody(error=code, message=message))


def _app_redirect(**query: str) -> str:
    """APP_URL with the outcome added to its query: the only place the token POST ever sends a browser."""
    parts = urlsplit(settings.app_url)
    merged = parse_qs(parts.query, keep_blank_values=True)
    merged.update({key: [value] for key, value in query.items()})
    return urlunsplit(parts._replace(query=urlencode(merged, doseq=True)))


def _redirect(outcome: TokenOutcome | None = None, *, error: ErrorCode | None = None) -> Response[Any]:
    cookies: list[Cookie] = []
    if outcome is not None and outcome.result is Result.LINK_PENDING:
        location = _app_redirect(confirm="link")  # the page asks the user, then calls POST /link
    elif outcome is not None and outcome.result is not None:
        location = _app_redirect(result=outcome.result.value)
        if outcome.session_id is not None and outcome.session_expires_at is not None:
            max_age = max(outcome.session_expires_at - int(time.time()), 0)
            cookies.append(_session_cookie(outcome.session_id, max_age))
    else:
        code = error or (outcome.error if outcome else None) or ErrorCode.SERVICE_UNAVAILABLE
        location = _app_redirect(error=code.value)
    return Response(
        status_code=HTTPStatus.SEE_OTHER, headers={"Location": location}, cookies=cookies, body=""
    )


# ---------------------------------------------------------------- routes


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/token-url")
def post_token_url(request: TokenUrlRequest) -> Response[TokenUrlResponse]:
    started = service.start_token_url(
        request.intent, browser=_opaque_cookie(BROWSER_COOKIE), session_id=_opaque_cookie(SESSION_COOKIE)
    )
    return _json(
        HTTPStatus.OK, TokenUrlResponse(token_url=started.token_url), [_browser_cookie(started.browser)]
    )


def _untrusted_token_origin(event: APIGatewayProxyEventV2) -> str | None:
    """The token POST's `Origin` when it names a site the token may not come from, else None.

    Without this, a page of the attacker's could auto-submit a token issued for a leaked token URL, and
    the victim's browser would attach the SameSite=None binding cookie. A POST without `Origin` (no
    browser, or a very old one) is left to the one-time value and its binding.
    """
    origin = event.headers.get("origin")
    if origin is None or origin in settings.trusted_token_post_origins:
        return None
    return origin


@app.post("/token")
def post_token() -> Response[Any]:
    event = app.current_event
    # First, before the body or the one-time value is read: a forged POST must not spend the value.
    untrusted = _untrusted_token_origin(event)
    if untrusted is not None:
        logger.warning("Token POST from an untrusted origin", extra={"origin": untrusted[:200]})
        count("UntrustedOrigins")
        return _redirect(error=ErrorCode.UNTRUSTED_ORIGIN)
    try:
        fields = parse_form(
            event.headers.get("content-type", ""),
            decode_body(event.body, is_base64=bool(event.is_base64_encoded)),
        )
        token = single_value(fields, "token")
        query = parse_qs(event.raw_query_string or "", keep_blank_values=True, max_num_fields=20)
        nonces = query.get("nonce", [])
        if token is None:
            raise InvalidForm("no token")
        callback = TokenCallback.model_validate(
            {"token": token, "nonce": nonces[0] if len(nonces) == 1 else None}, strict=False
        )
    except (InvalidForm, ValueError):
        logger.warning("Token POST malformed")
        return _redirect(error=ErrorCode.INVALID_REQUEST)
    browser = _opaque_cookie(BROWSER_COOKIE)
    if callback.nonce is None or browser is None:
        # Checked before any upstream call: without both halves of the binding the token is never sent.
        logger.warning(
            "Token POST without its one-time value or browser binding",
            extra={"has_nonce": callback.nonce is not None, "has_browser_cookie": browser is not None},
        )
        count("RejectedTokens")
        return _redirect(error=ErrorCode.TOKEN_URL_INVALID)
    outcome = service.complete_token(
        token=callback.token,
        nonce=callback.nonce,
        browser=browser,
        previous_session_id=_opaque_cookie(SESSION_COOKIE),
    )
    return _redirect(outcome)


@app.post("/session")
def post_session(request: SessionCreateRequest) -> Response[SessionView]:
    created = service.create_capture_session(
        access_token=request.access_token,
        expires_in=request.expires_in,
        previous_session_id=_opaque_cookie(SESSION_COOKIE),
    )
    return _json(HTTPStatus.OK, created.view, [_session_cookie(created.session_id, request.expires_in)])


@app.get("/session")
def get_session() -> Response[SessionView | SignedOutView]:
    session_id = _opaque_cookie(SESSION_COOKIE)
    view = service.read_session(session_id) if session_id else None
    if view is None:
        return _json(HTTPStatus.UNAUTHORIZED, SignedOutView())
    return _json(HTTPStatus.OK, view)


@app.delete("/session")
def delete_session() -> Response[Any]:
    session_id = _opaque_cookie(SESSION_COOKIE)
    if session_id:
        service.sign_out(session_id)
    return Response(status_code=HTTPStatus.NO_CONTENT, body="", cookies=[_expired_session_cookie()])


# ---- link confirmation (docs/link-confirmation.md)

_LINK_REFUSALS = {
    ErrorCode.NO_PENDING_LINK: (HTTPStatus.NOT_FOUND, "there is no pending link to confirm"),
    ErrorCode.ALREADY_LINKED: (HTTPStatus.CONFLICT, "that identity is already linked to another account"),
    ErrorCode.SESSION_EXPIRED: (HTTPStatus.UNAUTHORIZED, "the Registration session has ended"),
    ErrorCode.TOKEN_INVALID: (
        HTTPStatus.BAD_REQUEST,
        "the social sign-in expired or was refused; link again",
    ),
    ErrorCode.SERVICE_UNAVAILABLE: (HTTPStatus.SERVICE_UNAVAILABLE, "a service we depend on failed"),
    ErrorCode.CONFIGURATION_ERROR: (HTTPStatus.INTERNAL_SERVER_ERROR, "the service is misconfigured"),
}


@app.get("/link")
def get_link() -> Response[PendingLinkView | ErrorBody]:
    session_id = _opaque_cookie(SESSION_COOKIE)
    view = service.pending_link(session_id) if session_id else None
    if view is None:
        return _link_error(ErrorCode.NO_PENDING_LINK)
    return _json(HTTPStatus.OK, view)


@app.post("/link")
def post_link(request: LinkConfirmationRequest) -> Response[LinkConfirmed | ErrorBody]:
    outcome = service.confirm_link(_opaque_cookie(SESSION_COOKIE), confirm=request.confirm)
    if outcome.decision is None:
        return _link_error(outcome.error or ErrorCode.SERVICE_UNAVAILABLE)
    return _json(HTTPStatus.OK, LinkConfirmed(result=outcome.decision))


def _link_error(code: ErrorCode) -> Response[Any]:
    status, message = _LINK_REFUSALS.get(code, _LINK_REFUSALS[ErrorCode.SERVICE_UNAVAILABLE])
    return _error(status, code, message)


# ---- server routes


class CredentialsRefused(Exception):
    def __init__(self, status: HTTPStatus, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@app.post("/credentials")
def post_credentials(request: CredentialsRequest) -> Response[CredentialsStored]:
    try:
        service.store_credentials(identifier=request.identifier, token=request.token)
    except SocialLoginError as error:
        if error.is_provider_outage:
            raise ServiceUnavailable("social_login", f"provider error {error.code}") from None
        if error.refuses_configuration:
            raise CredentialsRefused(
                HTTPStatus.BAD_GATEWAY, ErrorCode.CONFIGURATION_ERROR, "Social Login refused our apiKey"
            ) from None
        raise CredentialsRefused(
            HTTPStatus.BAD_REQUEST, ErrorCode.REJECTED, f"Social Login refused the token (code {error.code})"
        ) from None
    provider = credential_provider(request.identifier) or ""
    return _json(HTTPStatus.OK, CredentialsStored(identifier=request.identifier, provider=provider))


# ---------------------------------------------------------------- errors


@app.exception_handler(RequestValidationError)
def _invalid_request(error: RequestValidationError) -> Response[Any]:
    # Only where and what kind: the offending input (maybe a token) is never echoed back.
    detail = [{"loc": list(item.get("loc", ())), "type": item.get("type")} for item in error.errors()]
    return _json(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        {
            "error": ErrorCode.INVALID_REQUEST.value,
            "message": "the request body is not valid",
            "detail": detail,
        },
    )


@app.exception_handler(CredentialsRefused)
def _credentials_refused(error: CredentialsRefused) -> Response[Any]:
    return _error(error.status, error.code, error.message)


@app.exception_handler(NotSignedIn)
def _not_signed_in(_: NotSignedIn) -> Response[Any]:
    return _error(HTTPStatus.UNAUTHORIZED, ErrorCode.UNAUTHORIZED, "linking needs a Registration session")


@app.exception_handler(ServiceUnavailable)
def _unavailable(error: ServiceUnavailable) -> Response[Any]:
    logger.error("Service unavailable", extra={"dependency": error.service, "reason": error.reason})
    count("UpstreamErrors")
    return _error(
        HTTPStatus.SERVICE_UNAVAILABLE, ErrorCode.SERVICE_UNAVAILABLE, "a service we depend on failed"
    )


@app.exception_handler(ConfigurationProblem)
def _misconfigured(error: ConfigurationProblem) -> Response[Any]:
    logger.error(
        "Configuration refused upstream", extra={"dependency": error.service, "reason": error.reason}
    )
    count("UpstreamErrors")
    return _error(HTTPStatus.BAD_GATEWAY, ErrorCode.CONFIGURATION_ERROR, "the service is misconfigured")


@app.exception_handler(ServiceError)
def _http_error(error: ServiceError) -> Response[Any]:
    # Powertools' own HTTP errors (no such route, ...): a plain 4xx, not an unexpected failure.
    return _json(
        HTTPStatus(error.status_code), {"error": ErrorCode.INVALID_REQUEST.value, "message": error.msg}
    )


@app.exception_handler(Exception)
def _unexpected(_: Exception) -> Response[Any]:
    logger.exception("Unhandled error")
    if app.current_event.path == "/token":
        return _redirect(error=ErrorCode.SERVICE_UNAVAILABLE)
    return _error(HTTPStatus.INTERNAL_SERVER_ERROR, ErrorCode.SERVICE_UNAVAILABLE, "unexpected error")


# ---------------------------------------------------------------- the guard in front of the resolver


def _has_iam_caller(event: APIGatewayProxyEventV2) -> bool:
    authorizer = event.raw_event.get("requestContext", {}).get("authorizer") or {}
    iam = authorizer.get("iam") or {}
    return bool(isinstance(iam, dict) and (iam.get("userArn") or iam.get("accessKey")))


def _iam_caller_listed(event: APIGatewayProxyEventV2) -> bool:
    """CREDENTIALS_CALLERS, when set, narrows the IAM routes to its principals (docs/deploy-hardening.md)."""
    if not settings.credentials_callers:
        return True
    authorizer = event.raw_event.get("requestContext", {}).get("authorizer") or {}
    caller = (authorizer.get("iam") or {}).get("userArn")
    if isinstance(caller, str) and iam_caller_allowed(caller, settings.credentials_callers):
        return True
    logger.warning("IAM caller not in CREDENTIALS_CALLERS", extra={"caller_arn": str(caller)})
    return False


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def _well_formed_json(event: APIGatewayProxyEventV2) -> bool:
    """The body must be UTF-8 JSON without duplicated keys before the resolver parses it.

    Parsed here first because Powertools turns only JSONDecodeError into a 4xx: deep nesting
    (RecursionError) or a huge integer (ValueError) would otherwise end in a 500.
    """
    try:
        text = decode_body(event.body, is_base64=bool(event.is_base64_encoded)).decode("utf-8")
        if text:
            json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except (InvalidForm, ValueError, RecursionError):
        return False
    return True


# The template deploys the HTTP API's `$default` stage only; a path under any other stage is not ours.
_DEPLOYED_STAGE = "$default"


def route_key(event: APIGatewayProxyEventV2) -> tuple[str, str]:
    """Method and path exactly as the resolver routes them (Powertools strips a named stage from rawPath).

    The guard must judge the very route that will run, or `/prod/credentials` would be routed to
    `/credentials` while the guard looked up `/prod/credentials` and found nothing to check.
    """
    return event.request_context.http.method.upper(), event.path


def _refusal(event: APIGatewayProxyEventV2) -> tuple[HTTPStatus, ErrorCode, str] | None:
    if event.request_context.stage != _DEPLOYED_STAGE:
        return HTTPStatus.NOT_FOUND, ErrorCode.INVALID_REQUEST, "no such stage"
    route = route_key(event)
    headers = {name.lower(): value for name, value in (event.headers or {}).items()}
    if route in _IAM_ROUTES and not _has_iam_caller(event):
        # IAM authorization guards these routes in the deployed API; an event without an IAM
        # caller means the route was exposed without it, so refuse rather than trust the gateway.
        return HTTPStatus.FORBIDDEN, ErrorCode.FORBIDDEN, "this route requires IAM authorization"
    if route in _IAM_ROUTES and not _iam_caller_listed(event):
        return HTTPStatus.FORBIDDEN, ErrorCode.FORBIDDEN, "this IAM caller may not use this route"
    if route in _BROWSER_STATE_ROUTES and headers.get("origin") != settings.app_origin:
        return HTTPStatus.FORBIDDEN, ErrorCode.FORBIDDEN, "origin not allowed"
    if route not in _JSON_BODY_ROUTES and not (route == ("DELETE", "/session") and event.body):
        return None
    if headers.get("content-type", "").split(";", 1)[0].strip().lower() != "application/json":
        return HTTPStatus.UNSUPPORTED_MEDIA_TYPE, ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send application/json"
    if len(event.body or "") > MAX_JSON_BYTES:
        return HTTPStatus.REQUEST_ENTITY_TOO_LARGE, ErrorCode.INVALID_REQUEST, "body too large"
    if not _well_formed_json(event):
        return HTTPStatus.BAD_REQUEST, ErrorCode.INVALID_REQUEST, "body is not well-formed UTF-8 JSON"
    return None


def _refuse_unsafe_request(event: APIGatewayProxyEventV2) -> dict[str, Any] | None:
    """Same-origin, IAM and content-type checks, before the resolver parses or validates any body."""
    refusal = _refusal(event)
    if refusal is None:
        return None
    status, code, message = refusal
    return {
        "statusCode": int(status),
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": ErrorBody(error=code, message=message).model_dump_json(),
        "isBase64Encoded": False,
    }


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    service.register_context(context)
    deadline.context = context
    audit_trail.register_caller(request_caller(event))
    headers = event.get("headers")
    if isinstance(headers, dict) and isinstance(headers.get("content-type"), str):
        # Media types are case-insensitive but Powertools compares them as written; parameters
        # (a multipart boundary) are case-sensitive and stay as sent.
        media_type, separator, parameters = headers["content-type"].partition(";")
        headers["content-type"] = media_type.strip().lower() + separator + parameters
    response = _refuse_unsafe_request(APIGatewayProxyEventV2(event)) or app.resolve(event, context)
    response.setdefault("headers", {}).update(SECURITY_HEADERS)
    return response
