"""What the handler answers: JSON bodies and errors, the cookies it sets, the token POST's redirects to
APP_URL, and the security headers on every response."""

from __future__ import annotations

import time
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.shared.cookies import Cookie, SameSite

from token_url.cookies import BROWSER_COOKIE, BROWSER_COOKIE_MAX_AGE, SESSION_COOKIE
from token_url.flows.token_post import TokenOutcome
from token_url.models import ErrorBody, ErrorCode, Result

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
# The refusals of GET and POST /link (docs/link-confirmation.md) and POST /unlink (docs/http-contract.md).
_REFUSALS = {
    ErrorCode.NO_PENDING_LINK: (HTTPStatus.NOT_FOUND, "there is no pending link to confirm"),
    ErrorCode.UNAUTHORIZED: (HTTPStatus.UNAUTHORIZED, "unlinking needs a Registration session"),
    ErrorCode.NOT_LINKED: (HTTPStatus.NOT_FOUND, "that identity is not linked to this account"),
    ErrorCode.LAST_SIGN_IN_METHOD: (
        HTTPStatus.CONFLICT,
        "the account has no password and this is its only social identity: it is its one way to sign in",
    ),
    ErrorCode.ALREADY_LINKED: (HTTPStatus.CONFLICT, "that identity is already linked to another account"),
    ErrorCode.REQUEST_IN_PROGRESS: (
        HTTPStatus.CONFLICT,
        "another unlink of this account is in progress; try again when it has finished",
    ),
    ErrorCode.SESSION_EXPIRED: (HTTPStatus.UNAUTHORIZED, "the Registration session has ended"),
    ErrorCode.TOKEN_INVALID: (
        HTTPStatus.BAD_REQUEST,
        "the social sign-in expired or was refused; link again",
    ),
    ErrorCode.SERVICE_UNAVAILABLE: (HTTPStatus.SERVICE_UNAVAILABLE, "a service we depend on failed"),
    ErrorCode.CONFIGURATION_ERROR: (HTTPStatus.INTERNAL_SERVER_ERROR, "the service is misconfigured"),
}


# ---------------------------------------------------------------- cookies


def _host_cookie(name: str, value: str, max_age: int, same_site: SameSite) -> Cookie:
    # __Host- cookies: Secure, Path=/ and no Domain, so no subdomain can set or read them.
    return Cookie(
        name=name, value=value, path="/", secure=True, http_only=True, max_age=max_age, same_site=same_site
    )


def session_cookie(session_id: str, max_age: int) -> Cookie:
    return _host_cookie(SESSION_COOKIE, session_id, max_age, SameSite.LAX_MODE)


def expired_session_cookie() -> Cookie:
    return session_cookie("", 0)


def browser_cookie(value: str) -> Cookie:
    return _host_cookie(BROWSER_COOKIE, value, BROWSER_COOKIE_MAX_AGE, SameSite.NONE_MODE)


# ---------------------------------------------------------------- JSON


def json_response(status: HTTPStatus, body: Any, cookies: list[Cookie] | None = None) -> Response[Any]:
    payload = body.model_dump(mode="json") if hasattr(body, "model_dump") else body
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=payload, cookies=cookies or []
    )


def error_response(status: HTTPStatus, code: ErrorCode, message: str) -> Response[Any]:
    return json_response(status, ErrorBody(error=code, message=message))


def refusal(code: ErrorCode) -> Response[Any]:
    """A JSON route's refusal that a flow returned as its outcome."""
    status, message = _REFUSALS.get(code, _REFUSALS[ErrorCode.SERVICE_UNAVAILABLE])
    return error_response(status, code, message)


def no_content(cookies: list[Cookie]) -> Response[Any]:
    return Response(status_code=HTTPStatus.NO_CONTENT, body="", cookies=cookies)


# ---------------------------------------------------------------- the token POST's redirects


def app_redirect_url(app_url: str, **query: str) -> str:
    """APP_URL with the outcome added to its query: the only place the token POST ever sends a browser."""
    parts = urlsplit(app_url)
    merged = parse_qs(parts.query, keep_blank_values=True)
    merged.update({key: [value] for key, value in query.items()})
    return urlunsplit(parts._replace(query=urlencode(merged, doseq=True)))


def token_post_redirect(
    app_url: str, outcome: TokenOutcome | None = None, *, error: ErrorCode | None = None
) -> Response[Any]:
    cookies: list[Cookie] = []
    if outcome is not None and outcome.result is Result.LINK_PENDING:
        location = app_redirect_url(app_url, confirm="link")  # the page asks the user, then calls POST /link
    elif outcome is not None and outcome.result is not None:
        location = app_redirect_url(app_url, result=outcome.result.value)
        if outcome.session_id is not None and outcome.session_expires_at is not None:
            max_age = max(outcome.session_expires_at - int(time.time()), 0)
            cookies.append(session_cookie(outcome.session_id, max_age))
    else:
        code = error or (outcome.error if outcome else None) or ErrorCode.SERVICE_UNAVAILABLE
        location = app_redirect_url(app_url, error=code.value)
    return Response(
        status_code=HTTPStatus.SEE_OTHER, headers={"Location": location}, cookies=cookies, body=""
    )


def with_security_headers(response: dict[str, Any]) -> dict[str, Any]:
    response.setdefault("headers", {}).update(SECURITY_HEADERS)
    return response
