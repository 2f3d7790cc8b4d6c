"""A local stand-in for API Gateway's HTTP API in front of the function.

Each HTTP request becomes a payload format 2.0 event, shaped as API Gateway builds it (lower-case
headers with duplicates joined by commas, the Cookie header moved to `cookies`, text bodies as they
are and any other body base64-encoded, `requestContext` with the route key, source IP and time), and
`lambda_handler` is invoked in-process with a Lambda-like context. Its result is written back as API
Gateway does: status, headers, one `Set-Cookie` per entry of `cookies`, the body (base64-decoded if
flagged).

Like API Gateway, and unlike a plain WSGI wrapper:
- only the routes declared as the function's `HttpApi` events in the template exist; any other method
  or path gets `404 {"message":"Not Found"}` without invoking the function;
- a route with the `AWS_IAM` authorizer needs a valid SigV4 signature (service `execute-api`) made
  with the stack's credentials, or it gets `403 {"message":"Forbidden"}`; a valid one puts the caller
  in `requestContext.authorizer.iam`;
- CORS as the template's `CorsConfiguration` says: preflights answered by the gateway, and the
  allow headers added to responses for an allowed `Origin`;
- the function runs one invocation at a time (one warm container), within the template's timeout;
  an exception, a timeout or a malformed result gives `500 {"message":"Internal Server Error"}`, and
  a request that waits longer than API Gateway's 30 s integration timeout for the container gets 503.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.wrappers import Request, Response

from devtools.template import HttpRoute
from testkit.events import http_event
from testkit.lambda_context import ACCOUNT_ID, FakeLambdaContext

LambdaHandler = Callable[[dict[str, Any], Any], Any]

API_ID = "local"
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
INTEGRATION_TIMEOUT_SECONDS = 30.0  # API Gateway's limit on waiting for an integration
SIGV4_MAX_SKEW_SECONDS = 15 * 60
LOCAL_CALLER_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/local-caller"
"""The IAM caller every correctly signed request is, as CREDENTIALS_CALLERS would list it."""

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, *SignedHeaders=(?P<signed>[a-z0-9;-]+), *Signature=(?P<signature>[0-9a-f]{64})"
)

_log = logging.getLogger("local-gateway")


@dataclass(frozen=True)
class FunctionRuntime:
    """What the gateway needs to invoke the function as Lambda would."""

    handler: LambdaHandler
    function_name: str
    memory_mb: int
    timeout_seconds: float
    region: str


class SigV4Verifier:
    """Checks an `execute-api` SigV4 signature made with one known key pair, as the IAM authorizer does."""

    def __init__(self, access_key_id: str, secret_access_key: str, region: str) -> None:
        self._access_key_id = access_key_id
        self._credentials = Credentials(access_key_id, secret_access_key)
        self._region = region

    def caller(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any] | None:
        """The `authorizer.iam` of a correctly signed request, or None."""
        match = _AUTHORIZATION.fullmatch(headers.get("authorization", "").strip())
        amz_date = headers.get("x-amz-date", "")
        if match is None or not re.fullmatch(r"\d{8}T\d{6}Z", amz_date):
            return None
        if (
            match["key"] != self._access_key_id
            or match["service"] != "execute-api"
            or match["region"] != self._region
            or match["date"] != amz_date[:8]
        ):
            return None
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if abs((datetime.now(UTC) - signed_at).total_seconds()) > SIGV4_MAX_SKEW_SECONDS:
            return None
        signed_names = match["signed"].split(";")
        if "host" not in signed_names or any(name not in headers for name in signed_names):
            return None
        if not _declares_the_body(headers, body):
            return None
        request = AWSRequest(
            method=method, url=url, headers={name: headers[name] for name in signed_names}, data=body
        )
        request.context["timestamp"] = amz_date
        signer = SigV4Auth(self._credentials, "execute-api", self._region)
        string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
        expected = signer.signature(string_to_sign, request)
        if not hmac.compare_digest(expected, match["signature"]):
            return None
        return {
            "accessKey": self._access_key_id,
            "accountId": ACCOUNT_ID,
            "callerId": "AIDALOCALSTACKCALLER",
            "principalOrgId": None,
            "userArn": LOCAL_CALLER_ARN,
            "userId": "AIDALOCALSTACKCALLER",
        }


def _declares_the_body(headers: Mapping[str, str], body: bytes) -> bool:
    """No `x-amz-content-sha256`, or exactly the body's SHA-256 (docs/deploy-hardening.md).

    botocore's canonical request takes the payload hash from that header when it is present, so
    `UNSIGNED-PAYLOAD` (or another body's hash) would leave this body out of the signature, and a
    captured request could be replayed with another body. API Gateway documents unsigned payloads
    for no execute-api route; they are refused.
    """
    declared = headers.get("x-amz-content-sha256")
    return declared is None or hmac.compare_digest(declared, hashlib.sha256(body).hexdigest())


def build_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    source_ip: str,
    route: HttpRoute,
    iam_caller: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The payload format 2.0 event API Gateway sends for this request (the test kit's builder)."""
    return http_event(
        method,
        raw_path,
        body=body or None,
        headers=headers,
        query=raw_query,
        base64_body=None,  # as API Gateway decides: text media types as text
        iam=iam_caller or False,
        route_key=route.key,
        source_ip=source_ip,
        user_agent="",
        api_id=API_ID,
        now=now,
    )


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    function_request_id: str | None = None
    """The invocation's request id; None when the gateway answered without invoking the function."""


@dataclass(frozen=True)
class CorsPolicy:
    """An HTTP API `CorsConfiguration`, with its allowed origins resolved."""

    allow_origins: frozenset[str]
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    allow_credentials: bool
    max_age: int | None

    @classmethod
    def from_configuration(cls, configuration: Mapping[str, Any], allow_origins: Iterable[str]) -> CorsPolicy:
        max_age = configuration.get("MaxAge")
        return cls(
            allow_origins=frozenset(allow_origins),
            allow_methods=tuple(str(method).upper() for method in configuration.get("AllowMethods", [])),
            allow_headers=tuple(str(header).lower() for header in configuration.get("AllowHeaders", [])),
            allow_credentials=bool(configuration.get("AllowCredentials", False)),
            max_age=int(max_age) if max_age is not None else None,
        )

    def _allow(self, origin: str) -> list[tuple[str, str]]:
        headers = [("Access-Control-Allow-Origin", origin)]
        if self.allow_credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        return headers

    def preflight(self, origin: str | None, method: str) -> list[tuple[str, str]]:
        """Headers of the gateway's own answer to a preflight; none for an origin or method not allowed."""
        if origin not in self.allow_origins or method.upper() not in self.allow_methods:
            return []
        headers = self._allow(origin)
        headers.append(("Access-Control-Allow-Methods", ",".join(self.allow_methods)))
        if self.allow_headers:
            headers.append(("Access-Control-Allow-Headers", ",".join(self.allow_headers)))
        if self.max_age is not None:
            headers.append(("Access-Control-Max-Age", str(self.max_age)))
        return headers

    def response_headers(self, origin: str | None) -> list[tuple[str, str]]:
        return self._allow(origin) if origin in self.allow_origins and origin is not None else []


def reply_from_result(result: Any) -> HttpReply:
    """The HTTP response API Gateway makes of a payload 2.0 function result; ValueError if malformed."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # API Gateway would infer a 200 JSON response; this function always returns the full shape.
        raise ValueError("the function returned no statusCode")
    status = result["statusCode"]
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"bad statusCode {status!r}")
    headers = [(str(name), str(value)) for name, value in (result.get("headers") or {}).items()]
    headers += [("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or []]
    raw_body = result.get("body") or ""
    if not isinstance(raw_body, str):
        raise ValueError("body must be a string")
    try:
        body = (
            base64.b64decode(raw_body, validate=True) if result.get("isBase64Encoded") else raw_body.encode()
        )
    except binascii.Error as exc:
        raise ValueError("body flagged base64 is not base64") from exc
    return HttpReply(status, headers, body)


def _gateway_error(status: int, message: str, function_request_id: str | None = None) -> HttpReply:
    body = json.dumps({"message": message}).encode()
    return HttpReply(status, [("Content-Type", "application/json")], body, function_request_id)


def _log_line(level: str, **fields: Any) -> None:
    _log.log(logging.getLevelName(level), json.dumps({"level": level, "service": "local-gateway", **fields}))


class Gateway:
    """A WSGI application: the HTTP API of the template's routes, invoking the function in-process."""

    def __init__(
        self,
        runtime: FunctionRuntime,
        routes: Iterable[HttpRoute],
        verifier: SigV4Verifier,
        cors: CorsPolicy | None = None,
        *,
        integration_timeout_seconds: float = INTEGRATION_TIMEOUT_SECONDS,
    ) -> None:
        self._runtime = runtime
        self._integration_timeout = integration_timeout_seconds
        self._routes = {(route.method, route.path): route for route in routes}
        self._verifier = verifier
        self._cors = cors
        # One warm container: invocations run one at a time, as in a single Lambda execution environment.
        self._container = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        started = time.monotonic()
        reply = self.handle(request)
        access: dict[str, Any] = {
            "method": request.method,
            "path": request.path,  # never the query: the token URL's carries the one-time value
            "status": reply.status,
            "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
        }
        if reply.function_request_id is not None:
            access["function_request_id"] = reply.function_request_id
        _log_line("INFO", **access)
        response = Response(reply.body, status=reply.status)
        response.headers.clear()
        for name, value in reply.headers:
            response.headers.add(name, value)
        return response(environ, start_response)

    def handle(self, request: Request) -> HttpReply:
        origin = request.headers.get("Origin")
        preflight_method = request.headers.get("Access-Control-Request-Method")
        if self._cors is not None and request.method == "OPTIONS" and preflight_method:
            return HttpReply(204, self._cors.preflight(origin, preflight_method), b"")
        reply = self._route(request)
        if self._cors is not None:
            reply.headers.extend(self._cors.response_headers(origin))
        return reply

    def _route(self, request: Request) -> HttpReply:
        raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.full_path
        raw_path, _, raw_query = str(raw_uri).partition("?")
        route = self._routes.get((request.method, raw_path))
        if route is None:
            return _gateway_error(404, "Not Found")
        body = request.get_data(cache=False)
        if len(body) > MAX_BODY_BYTES:
            return _gateway_error(413, "Request Entity Too Large")
        source_ip = request.remote_addr or "127.0.0.1"
        headers = list(request.headers.items())
        headers += [
            ("X-Forwarded-For", source_ip),
            ("X-Forwarded-Proto", request.scheme),
            ("X-Forwarded-Port", str(request.environ.get("SERVER_PORT", ""))),
        ]
        iam_caller = None
        if route.iam:
            lowered = {name.lower(): value for name, value in request.headers.items()}
            signed_url = f"http://{lowered.get('host', 'localhost')}{raw_uri}"
            iam_caller = self._verifier.caller(request.method, signed_url, lowered, body)
            if iam_caller is None:
                return _gateway_error(403, "Forbidden")
        event = build_event(
            method=request.method,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=headers,
            body=body,
            source_ip=source_ip,
            route=route,
            iam_caller=iam_caller,
        )
        return self.invoke(event)

    def invoke(self, event: dict[str, Any]) -> HttpReply:
        """Run the function on the one container, within its timeout; the HTTP reply of its result."""
        runtime = self._runtime
        if not self._container.acquire(timeout=self._integration_timeout):
            return _gateway_error(503, "Service Unavailable")
        context = FakeLambdaContext(
            function_name=runtime.function_name,
            memory_mb=runtime.memory_mb,
            timeout_seconds=runtime.timeout_seconds,
            region=runtime.region,
        )
        request_id = context.aws_request_id
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["result"] = runtime.handler(event, context)
            except Exception as exc:  # Lambda reports an unhandled error; API Gateway answers 500
                outcome["error"] = exc
            finally:
                self._container.release()  # a timed-out invocation keeps the container busy until it ends

        worker = threading.Thread(target=run, name=f"invocation-{request_id}", daemon=True)
        worker.start()
        worker.join(runtime.timeout_seconds)
        if worker.is_alive():
            _log_line(
                "ERROR",
                message=f"Task timed out after {runtime.timeout_seconds:.2f} seconds",
                function_request_id=request_id,
            )
            return _gateway_error(500, "Internal Server Error", request_id)
        if "error" in outcome:
            # The type only: an exception's message may quote a token or a key.
            _log_line(
                "ERROR",
                message="the function raised",
                errorType=type(outcome["error"]).__name__,
                function_request_id=request_id,
            )
            return _gateway_error(500, "Internal Server Error", request_id)
        try:
            reply = reply_from_result(outcome["result"])
        except ValueError as exc:
            _log_line("ERROR", message=f"malformed function result: {exc}", function_request_id=request_id)
            return _gateway_error(500, "Internal Server Error", request_id)
        return replace(reply, function_request_id=request_id)
