"""How the handler answers an exception a route raised: one function registers them all on the resolver.

The handlers never echo the request (a body may hold a token) and log what an operator needs."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from token_url.errors import ConfigurationProblem, ServiceUnavailable
from token_url.flows.account import AccessTokenRefused
from token_url.flows.credentials import CredentialsRefused
from token_url.flows.start import NotSignedIn
from token_url.models import ErrorCode
from token_url.observability import count, logger
from token_url.responses import error_response, json_response, token_post_redirect


def register_error_handlers(app: APIGatewayHttpResolver, *, app_url: Callable[[], str]) -> None:
    """`app_url()`: where an unexpected failure of the token POST sends the browser, read when it happens."""

    @app.exception_handler(RequestValidationError)
    def _invalid_request(error: RequestValidationError) -> Response[Any]:
        # Only where and what kind: the offending input (maybe a token) is never echoed back.
        detail = [{"loc": list(item.get("loc", ())), "type": item.get("type")} for item in error.errors()]
        return json_response(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            {
                "error": ErrorCode.INVALID_REQUEST.value,
                "message": "the request body is not valid",
                "detail": detail,
            },
        )

    @app.exception_handler(CredentialsRefused)
    def _credentials_refused(error: CredentialsRefused) -> Response[Any]:
        if error.code is ErrorCode.CONFIGURATION_ERROR:
            return error_response(HTTPStatus.BAD_GATEWAY, error.code, "Social Login refused our apiKey")
        return error_response(
            HTTPStatus.BAD_REQUEST, error.code, f"Social Login refused the token (code {error.upstream_code})"
        )

    @app.exception_handler(NotSignedIn)
    def _not_signed_in(_: NotSignedIn) -> Response[Any]:
        return error_response(
            HTTPStatus.UNAUTHORIZED, ErrorCode.UNAUTHORIZED, "linking needs a Registration session"
        )

    @app.exception_handler(AccessTokenRefused)
    def _access_token_refused(_: AccessTokenRefused) -> Response[Any]:
        # Only POST /session lets this through: the other routes hold a token Capture once accepted.
        logger.warning("Capture refused the Registration access token; no session")
        return error_response(
            HTTPStatus.UNAUTHORIZED,
            ErrorCode.INVALID_ACCESS_TOKEN,
            "Capture refused the Registration access token (invalid or expired)",
        )

    @app.exception_handler(ServiceUnavailable)
    def _unavailable(error: ServiceUnavailable) -> Response[Any]:
        logger.error("Service unavailable", extra={"dependency": error.service, "reason": error.reason})
        count("UpstreamErrors")
        return error_response(
            HTTPStatus.SERVICE_UNAVAILABLE, ErrorCode.SERVICE_UNAVAILABLE, "a service we depend on failed"
        )

    @app.exception_handler(ConfigurationProblem)
    def _misconfigured(error: ConfigurationProblem) -> Response[Any]:
        logger.error(
            "Configuration refused upstream", extra={"dependency": error.service, "reason": error.reason}
        )
        count("UpstreamErrors")
        return error_response(
            HTTPStatus.BAD_GATEWAY, ErrorCode.CONFIGURATION_ERROR, "the service is misconfigured"
        )

    @app.exception_handler(ServiceError)
    def _http_error(error: ServiceError) -> Response[Any]:
        # Powertools' own HTTP errors (no such route, ...): a plain 4xx, not an unexpected failure.
        return json_response(
            HTTPStatus(error.status_code), {"error": ErrorCode.INVALID_REQUEST.value, "message": error.msg}
        )

    @app.exception_handler(Exception)
    def _unexpected(_: Exception) -> Response[Any]:
        logger.exception("Unhandled error")
        if app.current_event.path == "/token":
            return token_post_redirect(app_url(), error=ErrorCode.SERVICE_UNAVAILABLE)
        return error_response(
            HTTPStatus.INTERNAL_SERVER_ERROR, ErrorCode.SERVICE_UNAVAILABLE, "unexpected error"
        )
