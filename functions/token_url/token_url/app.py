"""The Lambda handler: the HTTP API's routes, each one call into a flow and one response. What they use
is built once per container by `wiring.py` (docs/design.md); `snapstart.py` holds the SnapStart hooks."""

from __future__ import annotations

import os
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext

from token_url import preload, request_guard, responses  # preload first: see its docstring
from token_url.cookies import BROWSER_COOKIE, SESSION_COOKIE, opaque_cookie
from token_url.error_handlers import register_error_handlers
from token_url.http_forms import read_token_callback
from token_url.models import (
    CredentialsRequest,
    CredentialsStored,
    ErrorBody,
    ErrorCode,
    LinkConfirmationRequest,
    LinkConfirmed,
    PendingLinkView,
    SessionCreateRequest,
    SessionView,
    SignedOutView,
    TokenUrlRequest,
    TokenUrlResponse,
    Unlinked,
    UnlinkRequest,
)
from token_url.observability import logger, metrics, tracer
from token_url.snapstart import register_runtime_hooks
from token_url.wiring import build_service, load_settings

service = preload.finish_init(lambda: build_service(load_settings(os.environ)))
app = APIGatewayHttpResolver(enable_validation=True)
register_error_handlers(app, app_url=lambda: service.settings.app_url)
register_runtime_hooks(service, app)


def _cookie(name: str) -> str | None:
    return opaque_cookie(app.current_event.cookies, name)


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/token-url")
def post_token_url(request: TokenUrlRequest) -> Response[TokenUrlResponse]:
    started = service.token_urls.start(
        request.intent, browser=_cookie(BROWSER_COOKIE), session_id=_cookie(SESSION_COOKIE)
    )
    body = TokenUrlResponse(token_url=started.token_url)
    return responses.json_response(HTTPStatus.OK, body, [responses.browser_cookie(started.browser)])


@app.post("/token")
def post_token() -> Response[Any]:
    event, app_url = app.current_event, service.settings.app_url
    if request_guard.refuse_untrusted_token_origin(event, service.settings):
        return responses.token_post_redirect(app_url, error=ErrorCode.UNTRUSTED_ORIGIN)
    callback = read_token_callback(
        content_type=event.headers.get("content-type", ""),
        body=event.body,
        is_base64=bool(event.is_base64_encoded),
        raw_query=event.raw_query_string,
    )
    if callback is None:
        logger.warning("Token POST malformed")
        return responses.token_post_redirect(app_url, error=ErrorCode.INVALID_REQUEST)
    outcome = service.token_post.complete(
        token=callback.token,
        nonce=callback.nonce,
        browser=_cookie(BROWSER_COOKIE),
        previous_session_id=_cookie(SESSION_COOKIE),
    )
    return responses.token_post_redirect(app_url, outcome)


@app.post("/session")
def post_session(request: SessionCreateRequest) -> Response[SessionView]:
    created = service.sessions.create_capture_session(
        access_token=request.access_token,
        expires_in=request.expires_in,
        previous_session_id=_cookie(SESSION_COOKIE),
    )
    cookie = responses.session_cookie(created.session_id, created.lifetime_seconds)
    return responses.json_response(HTTPStatus.OK, created.view, [cookie])


@app.get("/session")
def get_session() -> Response[SessionView | SignedOutView]:
    view = service.sessions.read(_cookie(SESSION_COOKIE))
    if view is None:
        return responses.json_response(HTTPStatus.UNAUTHORIZED, SignedOutView())
    return responses.json_response(HTTPStatus.OK, view)


@app.delete("/session")
def delete_session() -> Response[Any]:
    service.sessions.sign_out(_cookie(SESSION_COOKIE))
    return responses.no_content([responses.expired_session_cookie()])


@app.get("/link")
def get_link() -> Response[PendingLinkView | ErrorBody]:
    session_id = _cookie(SESSION_COOKIE)
    view = service.link.pending_link(session_id) if session_id else None
    if view is None:
        return responses.refusal(ErrorCode.NO_PENDING_LINK)
    return responses.json_response(HTTPStatus.OK, view)


@app.post("/link")
def post_link(request: LinkConfirmationRequest) -> Response[LinkConfirmed | ErrorBody]:
    outcome = service.link.decide(_cookie(SESSION_COOKIE), confirm=request.confirm)
    if outcome.decision is None:
        return responses.refusal(outcome.error or ErrorCode.SERVICE_UNAVAILABLE)
    return responses.json_response(HTTPStatus.OK, LinkConfirmed(result=outcome.decision))


@app.post("/unlink")
def post_unlink(request: UnlinkRequest) -> Response[Unlinked | ErrorBody]:
    error = service.unlink.unlink(_cookie(SESSION_COOKIE), identifier=request.identifier)
    return responses.refusal(error) if error else responses.json_response(HTTPStatus.OK, Unlinked())


@app.post("/credentials")
def post_credentials(request: CredentialsRequest) -> Response[CredentialsStored]:
    provider = service.credentials.store(identifier=request.identifier, token=request.token)
    stored = CredentialsStored(identifier=request.identifier, provider=provider)
    return responses.json_response(HTTPStatus.OK, stored)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    service.begin_invocation(event, context)
    request_guard.normalise_content_type(event)
    refusal = request_guard.refuse_unsafe_request(APIGatewayProxyEventV2(event), service.settings)
    return responses.with_security_headers(refusal or app.resolve(event, context))
