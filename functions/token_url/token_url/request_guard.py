"""The guard in front of the resolver: stage, IAM callers, same-origin and JSON rules, before any body is
parsed or validated. It must run before the resolver, because Powertools validates a body before any
middleware runs. Also here: the token POST's check of where the token comes from."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import content_types
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from token_url.http_forms import InvalidForm, decode_body
from token_url.iam_callers import allowed as iam_caller_allowed
from token_url.models import ErrorBody, ErrorCode
from token_url.observability import count, logger
from token_url.settings import Settings

MAX_JSON_BYTES = 16 * 1024
# JSON routes a browser page calls to change state: same-origin and JSON only (docs/security.md, row 6).
BROWSER_STATE_ROUTES = {
    ("POST", "/token-url"),
    ("POST", "/session"),
    ("DELETE", "/session"),
    ("POST", "/link"),
    ("POST", "/unlink"),
}
JSON_BODY_ROUTES = {
    ("POST", "/token-url"),
    ("POST", "/session"),
    ("POST", "/credentials"),
    ("POST", "/link"),
    ("POST", "/unlink"),
}
# Routes for servers, never for browsers or anonymous callers (docs/security.md, row 11).
IAM_ROUTES = {("POST", "/credentials")}
# Posted cross-site by design (Social Login's page posts the token); judged by its trusted origins
# (refuse_untrusted_token_origin) and its one-time value instead (docs/security.md, row 12).
CROSS_SITE_ROUTES = {("POST", "/token")}
# Every route that changes state must be in one of the three sets above: a test holds the resolver's
# routes to that, so a new route cannot slip past the guard unchecked.
# The template deploys the HTTP API's `$default` stage only; a path under any other stage is not ours.
_DEPLOYED_STAGE = "$default"

Refusal = tuple[HTTPStatus, ErrorCode, str]


def route_key(event: APIGatewayProxyEventV2) -> tuple[str, str]:
    """Method and path exactly as the resolver routes them (Powertools strips a named stage from rawPath).

    The guard must judge the very route that will run, or `/prod/credentials` would be routed to
    `/credentials` while the guard looked up `/prod/credentials` and found nothing to check.
    """
    return event.request_context.http.method.upper(), event.path


def normalise_content_type(event: dict[str, Any]) -> None:
    """Media types are case-insensitive but Powertools compares them as written; parameters
    (a multipart boundary) are case-sensitive and stay as sent."""
    headers = event.get("headers")
    if isinstance(headers, dict) and isinstance(headers.get("content-type"), str):
        media_type, separator, parameters = headers["content-type"].partition(";")
        headers["content-type"] = media_type.strip().lower() + separator + parameters


def refuse_unsafe_request(event: APIGatewayProxyEventV2, settings: Settings) -> dict[str, Any] | None:
    """The refusal to answer instead of routing the request, or None to route it."""
    refusal = _refusal(event, settings)
    if refusal is None:
        return None
    status, code, message = refusal
    return {
        "statusCode": int(status),
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": ErrorBody(error=code, message=message).model_dump_json(),
        "isBase64Encoded": False,
    }


def _refusal(event: APIGatewayProxyEventV2, settings: Settings) -> Refusal | None:
    if event.request_context.stage != _DEPLOYED_STAGE:
        return HTTPStatus.NOT_FOUND, ErrorCode.INVALID_REQUEST, "no such stage"
    route = route_key(event)
    headers = {name.lower(): value for name, value in (event.headers or {}).items()}
    if route in IAM_ROUTES and not _has_iam_caller(event):
        # IAM authorization guards these routes in the deployed API; an event without an IAM
        # caller means the route was exposed without it, so refuse rather than trust the gateway.
        return HTTPStatus.FORBIDDEN, ErrorCode.FORBIDDEN, "this route requires IAM authorization"
    if route in IAM_ROUTES and not _iam_caller_listed(event, settings):
        return HTTPStatus.FORBIDDEN, ErrorCode.FORBIDDEN, "this IAM caller may not use this route"
    if route in BROWSER_STATE_ROUTES and headers.get("origin") != settings.app_origin:
        return HTTPStatus.FORBIDDEN, ErrorCode.FORBIDDEN, "origin not allowed"
    if route not in JSON_BODY_ROUTES and not (route == ("DELETE", "/session") and event.body):
        return None
    return _json_body_refusal(event, headers)


def _json_body_refusal(event: APIGatewayProxyEventV2, headers: dict[str, str]) -> Refusal | None:
    if headers.get("content-type", "").split(";", 1)[0].strip().lower() != "application/json":
        return HTTPStatus.UNSUPPORTED_MEDIA_TYPE, ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send application/json"
    if len(event.body or "") > MAX_JSON_BYTES:
        return HTTPStatus.REQUEST_ENTITY_TOO_LARGE, ErrorCode.INVALID_REQUEST, "body too large"
    if not _well_formed_json(event):
        return HTTPStatus.BAD_REQUEST, ErrorCode.INVALID_REQUEST, "body is not well-formed UTF-8 JSON"
    return None


def _has_iam_caller(event: APIGatewayProxyEventV2) -> bool:
    authorizer = event.raw_event.get("requestContext", {}).get("authorizer") or {}
    iam = authorizer.get("iam") or {}
    return bool(isinstance(iam, dict) and (iam.get("userArn") or iam.get("accessKey")))


def _iam_caller_listed(event: APIGatewayProxyEventV2, settings: Settings) -> bool:
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


def refuse_untrusted_token_origin(event: APIGatewayProxyEventV2, settings: Settings) -> bool:
    """Log and count a token POST whose `Origin` names a site the token may not come from; True if so.

    Without this, a page of the attacker's could auto-submit a token issued for a leaked token URL, and
    the victim's browser would attach the SameSite=None binding cookie. A POST without `Origin` (no
    browser, or a very old one) is left to the one-time value and its binding. Checked by the route,
    first, before the body or the one-time value is read: a forged POST must not spend the value.
    """
    origin = event.headers.get("origin")
    if origin is None or origin in settings.trusted_token_post_origins:
        return False
    logger.warning("Token POST from an untrusted origin", extra={"origin": origin[:200]})
    count("UntrustedOrigins")
    return True
