"""The local HTTP API gateway: events as API Gateway builds them, responses as it writes them, SigV4."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.test import Client

from devtools.gateway import (
    CorsPolicy,
    FunctionRuntime,
    Gateway,
    SigV4Verifier,
    build_event,
    reply_from_result,
)
from devtools.template import HttpRoute, http_routes, load_template
from testkit.events import is_text_media_type

TOKEN_ROUTE = HttpRoute("POST", "/token", iam=False)
CREDENTIALS_ROUTE = HttpRoute("POST", "/credentials", iam=True)
VERIFIER = SigV4Verifier("AKIDLOCAL", "local-secret", "us-east-1")


def event_for(headers: list[tuple[str, str]], body: bytes = b"", query: str = "") -> dict[str, Any]:
    return build_event(
        method="POST",
        raw_path="/token",
        raw_query=query,
        headers=headers,
        body=body,
        source_ip="127.0.0.1",
        route=TOKEN_ROUTE,
        now=1_800_000_000.0,
    )


def test_event_has_the_payload_2_0_shape() -> None:
    event = event_for(
        [("Host", "localhost:3000"), ("Content-Type", "application/json"), ("User-Agent", "ua")],
        b'{"a": 1}',
        "nonce=abc&x=1&x=2",
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "POST /token"
    assert (event["rawPath"], event["rawQueryString"]) == ("/token", "nonce=abc&x=1&x=2")
    assert event["queryStringParameters"] == {"nonce": "abc", "x": "1,2"}
    assert event["requestContext"]["http"] == {
        "method": "POST",
        "path": "/token",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "ua",
    }
    assert event["requestContext"]["domainName"] == "localhost"
    assert event["requestContext"]["timeEpoch"] == 1_800_000_000_000
    assert event["requestContext"]["time"] == "15/Jan/2027:08:00:00 +0000"
    assert (event["body"], event["isBase64Encoded"]) == ('{"a": 1}', False)
    assert "authorizer" not in event["requestContext"]


def test_headers_are_lower_case_with_duplicates_joined_and_cookies_moved_out() -> None:
    event = event_for(
        [("X-Thing", "a"), ("x-thing", "b"), ("Cookie", "a=1; b=2"), ("Cookie", "c=3")],
    )
    assert event["headers"] == {"x-thing": "a,b"}
    assert event["cookies"] == ["a=1", "b=2", "c=3"]
    assert "body" not in event


@pytest.mark.parametrize(
    ("content_type", "text"),
    [
        ("application/json", True),
        ("application/problem+json; charset=utf-8", True),
        ("text/plain", True),
        ("application/x-www-form-urlencoded", False),
        ("multipart/form-data; boundary=x", False),
        ("", False),
    ],
)
def test_only_text_bodies_arrive_as_text(content_type: str, text: bool) -> None:
    assert is_text_media_type(content_type) is text
    event = event_for([("Content-Type", content_type)], b"token=abc")
    assert event["isBase64Encoded"] is not text
    body = event["body"] if text else base64.b64decode(event["body"]).decode()
    assert body == "token=abc"


def test_a_text_body_that_is_not_utf8_arrives_base64() -> None:
    event = event_for([("Content-Type", "application/json")], b"\xff\xfe")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe"


def test_reply_writes_each_cookie_as_its_own_set_cookie_and_decodes_base64() -> None:
    reply = reply_from_result(
        {
            "statusCode": 303,
            "headers": {"Location": "https://app/", "Cache-Control": "no-store"},
            "cookies": ["a=1; Secure", "b=2; HttpOnly"],
            "body": base64.b64encode(b"hello").decode(),
            "isBase64Encoded": True,
        }
    )
    assert reply.status == 303
    assert [value for name, value in reply.headers if name == "Set-Cookie"] == [
        "a=1; Secure",
        "b=2; HttpOnly",
    ]
    assert ("Location", "https://app/") in reply.headers
    assert reply.body == b"hello"


@pytest.mark.parametrize(
    "result",
    [None, {"body": "x"}, {"statusCode": "200"}, {"statusCode": 99}, {"statusCode": 200, "body": 5}],
)
def test_a_malformed_result_is_refused(result: Any) -> None:
    with pytest.raises(ValueError, match=r"statusCode|body"):
        reply_from_result(result)


def signed_headers(
    body: str,
    *,
    secret: str = "local-secret",
    key: str = "AKIDLOCAL",
    url: str = "http://localhost/credentials",
    content_sha256: str | None = None,
) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if content_sha256 is not None:
        # Signed too: botocore signs every header but a few it names, and hashes nothing but this value.
        headers["X-Amz-Content-SHA256"] = content_sha256
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(Credentials(key, secret), "execute-api", "us-east-1").add_auth(request)
    request.headers["Host"] = "localhost"
    return {name.lower(): value for name, value in request.headers.items()}


def test_sigv4_verifier_accepts_a_correct_signature_only() -> None:
    body = '{"identifier": "x"}'
    url = "http://localhost/credentials"
    caller = VERIFIER.caller("POST", url, signed_headers(body), body.encode())
    assert caller is not None
    assert caller["accessKey"] == "AKIDLOCAL"
    assert VERIFIER.caller("POST", url, signed_headers(body), b'{"identifier": "y"}') is None
    assert VERIFIER.caller("POST", url, signed_headers(body, secret="wrong"), body.encode()) is None
    assert VERIFIER.caller("POST", url, signed_headers(body, key="AKIDOTHER"), body.encode()) is None
    assert VERIFIER.caller("POST", url + "?x=1", signed_headers(body), body.encode()) is None
    assert VERIFIER.caller("POST", url, {}, body.encode()) is None


def test_sigv4_verifier_accepts_a_declared_payload_hash_only_when_it_is_the_body_s() -> None:
    body = '{"identifier": "x"}'
    url = "http://localhost/credentials"
    declared = signed_headers(body, content_sha256=hashlib.sha256(body.encode()).hexdigest())
    assert "x-amz-content-sha256" in declared["authorization"]  # the header is among the signed ones
    assert VERIFIER.caller("POST", url, declared, body.encode()) is not None
    # The header names the signed body's hash; another body in its place is not that body.
    assert VERIFIER.caller("POST", url, declared, b'{"identifier": "y"}') is None


def test_sigv4_verifier_refuses_an_old_signature() -> None:
    body = "{}"
    headers = signed_headers(body)
    old = datetime.now(UTC) - timedelta(minutes=20)
    headers["x-amz-date"] = old.strftime("%Y%m%dT%H%M%SZ")
    assert VERIFIER.caller("POST", "http://localhost/credentials", headers, body.encode()) is None


class RecordingHandler:
    def __init__(self, result: Any = None, error: Exception | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self.result = result or {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "body": "{}",
        }
        self.error = error

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        self.contexts.append(context)
        if self.error is not None:
            raise self.error
        return self.result


APP_ORIGIN = "http://localhost:5173"
CORS = CorsPolicy.from_configuration(
    {
        "AllowCredentials": True,
        "AllowMethods": ["GET", "POST", "DELETE"],
        "AllowHeaders": ["content-type"],
        "MaxAge": 600,
    },
    [APP_ORIGIN],
)


def gateway_client(handler: Any, *, timeout_seconds: float = 15, integration_timeout: float = 30) -> Client:
    runtime = FunctionRuntime(
        handler, "fn", memory_mb=512, timeout_seconds=timeout_seconds, region="us-east-1"
    )
    gateway = Gateway(
        runtime,
        [TOKEN_ROUTE, CREDENTIALS_ROUTE],
        VERIFIER,
        CORS,
        integration_timeout_seconds=integration_timeout,
    )
    return Client(gateway)


def test_gateway_invokes_the_function_with_a_lambda_context() -> None:
    handler = RecordingHandler()
    response = gateway_client(handler).post(
        "/token?nonce=n", data="token=t", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    (event,) = handler.events
    assert event["routeKey"] == "POST /token"
    assert event["rawQueryString"] == "nonce=n"
    assert base64.b64decode(event["body"]) == b"token=t"
    context = handler.contexts[0]
    assert context.memory_limit_in_mb == 512
    assert 14_000 < context.get_remaining_time_in_millis() <= 15_000
    assert context.invoked_function_arn.endswith(":function:fn")


@pytest.mark.parametrize(("method", "path"), [("GET", "/token"), ("POST", "/unknown"), ("POST", "/token/")])
def test_gateway_answers_404_for_routes_it_does_not_have(method: str, path: str) -> None:
    handler = RecordingHandler()
    response = gateway_client(handler).open(path, method=method)
    assert (response.status_code, response.get_json()) == (404, {"message": "Not Found"})
    assert handler.events == []


def test_gateway_refuses_an_unsigned_call_to_an_iam_route_without_invoking() -> None:
    handler = RecordingHandler()
    response = gateway_client(handler).post("/credentials", data="{}", content_type="application/json")
    assert (response.status_code, response.get_json()) == (403, {"message": "Forbidden"})
    assert handler.events == []


def test_gateway_passes_the_iam_caller_of_a_signed_call() -> None:
    handler = RecordingHandler()
    body = '{"identifier": "x"}'
    headers = signed_headers(body)
    response = gateway_client(handler).post("/credentials", data=body, headers=headers)
    assert response.status_code == 200
    assert handler.events[0]["requestContext"]["authorizer"]["iam"]["accessKey"] == "AKIDLOCAL"


@pytest.mark.parametrize("sent", ['{"identifier": "x"}', '{"identifier": "swapped"}'])
def test_gateway_refuses_a_signature_over_an_unsigned_payload(sent: str) -> None:
    # Signed with UNSIGNED-PAYLOAD, the body is outside the signature: refused as sent and with a
    # body swapped in after signing.
    handler = RecordingHandler()
    headers = signed_headers('{"identifier": "x"}', content_sha256="UNSIGNED-PAYLOAD")
    response = gateway_client(handler).post("/credentials", data=sent, headers=headers)
    assert (response.status_code, response.get_json()) == (403, {"message": "Forbidden"})
    assert handler.events == []


@pytest.mark.parametrize("declared", [False, True])
def test_gateway_refuses_a_signed_request_whose_body_was_swapped_after_signing(declared: bool) -> None:
    handler = RecordingHandler()
    signed_body = '{"identifier": "x"}'
    digest = hashlib.sha256(signed_body.encode()).hexdigest() if declared else None
    headers = signed_headers(signed_body, content_sha256=digest)
    client = gateway_client(handler)
    swapped = client.post("/credentials", data='{"identifier": "swapped"}', headers=headers)
    assert (swapped.status_code, swapped.get_json()) == (403, {"message": "Forbidden"})
    assert handler.events == []
    assert client.post("/credentials", data=signed_body, headers=headers).status_code == 200
    assert handler.events[0]["body"] == signed_body


def test_gateway_turns_a_function_error_into_a_500_and_logs_only_its_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = RecordingHandler(error=RuntimeError("bad token SECRET-TOKEN-123"))
    with caplog.at_level(logging.INFO, logger="local-gateway"):
        response = gateway_client(handler).post("/token", data="token=t")
    assert (response.status_code, response.get_json()) == (500, {"message": "Internal Server Error"})
    assert b"SECRET" not in response.data
    lines = [json.loads(record.getMessage()) for record in caplog.records]
    assert any(line.get("errorType") == "RuntimeError" for line in lines)
    assert "SECRET-TOKEN-123" not in caplog.text


def test_a_function_past_its_timeout_gets_a_500_and_the_container_stays_busy_until_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()

    def hanging(event: dict[str, Any], context: Any) -> dict[str, Any]:
        release.wait(5)
        return {"statusCode": 200, "body": ""}

    client = gateway_client(hanging, timeout_seconds=0.2, integration_timeout=0.3)
    with caplog.at_level(logging.INFO, logger="local-gateway"):
        first = client.post("/token", data="token=t")
        assert (first.status_code, first.get_json()) == (500, {"message": "Internal Server Error"})
        assert "Task timed out after 0.20 seconds" in caplog.text
        # The timed-out invocation still holds the one container: the next request cannot get it.
        second = client.post("/token", data="token=t")
        assert (second.status_code, second.get_json()) == (503, {"message": "Service Unavailable"})
    release.set()
    time.sleep(0.1)
    assert client.post("/token", data="token=t").status_code == 200


def test_gateway_adds_the_forwarded_headers() -> None:
    handler = RecordingHandler()
    gateway_client(handler).post("/token", data="token=t")
    headers = handler.events[0]["headers"]
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-port"] == "80"


def test_gateway_answers_cors_preflights_for_the_app_origin_only() -> None:
    handler = RecordingHandler()
    client = gateway_client(handler)
    allowed = client.options(
        "/token-url", headers={"Origin": APP_ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert allowed.headers["Access-Control-Allow-Methods"] == "GET,POST,DELETE"
    assert allowed.headers["Access-Control-Allow-Headers"] == "content-type"
    refused = client.options(
        "/token-url", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert handler.events == []


def test_gateway_adds_cors_headers_to_responses_for_the_app_origin_only() -> None:
    handler = RecordingHandler()
    client = gateway_client(handler)
    allowed = client.post("/token", data="token=t", headers={"Origin": APP_ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    other = client.post("/token", data="token=t", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_gateway_writes_multiple_set_cookie_headers() -> None:
    handler = RecordingHandler({"statusCode": 303, "headers": {"Location": "/"}, "cookies": ["a=1", "b=2"]})
    response = gateway_client(handler).post("/token", data="token=t")
    assert response.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    assert response.status_code == 303


def test_routes_come_from_the_function_events_of_the_template() -> None:
    routes = {(route.method, route.path): route.iam for route in http_routes(load_template())}
    assert routes == {
        ("POST", "/token-url"): False,
        ("POST", "/token"): False,
        ("POST", "/session"): False,
        ("GET", "/session"): False,
        ("DELETE", "/session"): False,
        ("POST", "/credentials"): True,
        ("GET", "/health"): False,
        ("GET", "/link"): False,
        ("POST", "/link"): False,
        ("POST", "/unlink"): False,
    }
