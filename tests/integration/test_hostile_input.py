"""docs/security.md, row 10: any body, header, cookie or query gets a 4xx or error redirect, never a 5xx."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testkit.browser import Browser
from testkit.events import http_event
from testkit.lambda_context import FakeLambdaContext
from testkit.logs import LogLines
from testkit.sites import APP_ORIGIN, APP_URL
from tests.function_world import Aws
from tests.integration.flows_support import GOOGLE_ID
from tests.support import HOSTILE_CONTENT_TYPES, HOSTILE_ROUTES
from token_url.cookies import BROWSER_COOKIE, SESSION_COOKIE

text = st.text(max_size=300)
content_types = st.sampled_from(HOSTILE_CONTENT_TYPES)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=10,
)
bodies = st.one_of(
    st.none(),
    text,
    json_values.map(json.dumps),
    st.fixed_dictionaries({"intent": text | st.integers(), "access_token": text | st.integers()}).map(
        json.dumps
    ),
    st.lists(st.tuples(st.sampled_from(["token", "nonce", "x"]), text), max_size=5).map(
        lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)
    ),
)


# CI runs this many events; `make soak` runs more (FUZZ_EXAMPLES).
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
header_names = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"), min_size=1
)
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]) | st.text(max_size=10)
any_route = st.sampled_from(HOSTILE_ROUTES) | st.tuples(
    methods, st.text(max_size=60).map(lambda path: "/" + path)
)


@st.composite
def hostile_events(draw: st.DrawFn) -> dict[str, Any]:
    method, path = draw(any_route)
    body = draw(bodies)
    use_base64 = draw(st.booleans())
    event = http_event(
        method,
        path,
        body=body,
        headers={
            **draw(st.dictionaries(header_names, text, max_size=4)),
            "Content-Type": draw(content_types),
            "Origin": draw(st.sampled_from([APP_ORIGIN, "https://evil.example", "null"])),
        },
        cookies=draw(
            st.lists(
                st.sampled_from([f"{SESSION_COOKIE}=", f"{BROWSER_COOKIE}="]).map(
                    lambda name: name + draw(text.filter(lambda v: ";" not in v))
                ),
                max_size=3,
            )
        ),
        query=draw(st.sampled_from(["", "nonce=" + "A" * 43, "nonce=x&nonce=y", "nonce=%ff%fe"]) | text),
        base64_body=use_base64,
        iam=draw(st.booleans()),
    )
    if use_base64 and draw(st.booleans()):
        event["body"] = draw(text)  # not base64 at all
    return event


@settings(
    max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(event=hostile_events())
def test_no_hostile_event_gets_a_5xx_or_an_unhandled_error(
    handler: Any, function_logs: LogLines, event: dict[str, Any]
) -> None:
    response = handler(event, FakeLambdaContext())
    assert response["statusCode"] < 500, (event, response)
    if event["rawPath"] == "/token" and event["requestContext"]["http"]["method"] == "POST":
        assert response["statusCode"] == 303
        assert response["headers"]["Location"].startswith(APP_URL + "?")
    assert not [line for line in function_logs.lines if "Unhandled error" in line]


def test_malformed_token_posts_are_invalid_request_and_spend_nothing(
    browser: Browser, emulator: Any, aws: Aws
) -> None:
    url = browser.start("sign_in")
    query = url.split("?", 1)[1]
    cookies = browser.cookies_for(cross_site=True)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    bad = [
        http_event("POST", "/token", body="", headers=form, cookies=cookies, query=query),
        http_event(
            "POST", "/token", body="token=a&token=b" + "c" * 40, headers=form, cookies=cookies, query=query
        ),
        http_event("POST", "/token", body="token=" + "x" * 9000, headers=form, cookies=cookies, query=query),
        http_event("POST", "/token", body="token=%ff%fe", headers=form, cookies=cookies, query=query),
        http_event(
            "POST", "/token", body="token=abc", headers=form, cookies=cookies, query=query
        ),  # too short
        http_event(
            "POST",
            "/token",
            body='{"token": "' + "a" * 40 + '"}',
            headers={"Content-Type": "application/json"},
            cookies=cookies,
            query=query,
        ),
    ]
    not_base64 = http_event(
        "POST", "/token", body="token=" + "a" * 40, headers=form, cookies=cookies, query=query
    )
    not_base64["isBase64Encoded"] = True
    not_base64["body"] = "***"
    bad.append(not_base64)
    for event in bad:
        reply = browser.send(event)
        assert reply.status == 303
        assert reply.location == f"{APP_URL}?error=invalid_request", event["body"]
    assert emulator.calls == []
    # Nothing was spent: the one-time value still works.
    assert browser.submit_token(url, emulator.issue_token(url, GOOGLE_ID)).outcome == {"result": "signed_in"}


def test_malformed_cookies_count_as_no_cookie(browser: Browser, emulator: Any) -> None:
    url = browser.start("sign_in")
    token = emulator.issue_token(url, GOOGLE_ID)
    binding = browser.cookie(BROWSER_COOKIE)
    query = url.split("?", 1)[1]
    body = base64.b64encode(f"token={token}".encode()).decode()
    for cookies in (
        [f"{BROWSER_COOKIE}={binding}", f"{BROWSER_COOKIE}={binding}x"],
        [f"{BROWSER_COOKIE}=short"],
    ):
        event = http_event(
            "POST", "/token", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"},
            cookies=cookies, query=query,
        )  # fmt: skip
        event["isBase64Encoded"] = True
        assert browser.send(event).outcome == {"error": "token_url_invalid"}
    assert emulator.calls == []


def test_invalid_json_bodies_are_422_and_echo_no_input(browser: Browser) -> None:
    secret_looking = "secret-capture-token-" + "z" * 20
    for payload in ({"access_token": 12345}, {"access_token": secret_looking, "expires_in": "soon"}, {}, []):
        reply = browser.page_json("POST", "/session", payload)
        assert reply.status == 422
        assert reply.json()["error"] == "invalid_request"
        assert secret_looking not in reply.body
    reply = browser.page_json("POST", "/token-url", {"intent": "link", "extra": 1})
    assert reply.status == 422
    reply = browser.send(
        http_event(
            "POST",
            "/session",
            body="{not json",
            headers={"Origin": APP_ORIGIN, "Content-Type": "application/json"},
        )
    )
    assert reply.status == 400  # not JSON at all: refused before validation
    reply = browser.page_json("POST", "/session", {"access_token": "x" * 20000})
    assert reply.status == 413


def test_json_that_breaks_parsers_is_400_not_500(browser: Browser, function_logs: LogLines) -> None:
    hostile = [
        "[" * 5000 + "]" * 5000,
        '{"intent": 1' + "0" * 5000 + "}",
        '{"intent":"link","intent":"sign_in"}',
    ]
    for path in ("/token-url", "/session"):
        for body in hostile:
            reply = browser.send(
                http_event(
                    "POST",
                    path,
                    body=body,
                    headers={"Origin": APP_ORIGIN, "Content-Type": "application/json"},
                )
            )
            assert reply.status == 400, (path, body[:40], reply.body)
            assert reply.json()["error"] == "invalid_request"
    assert not [line for line in function_logs.lines if "Unhandled error" in line]


def test_media_type_is_case_insensitive(browser: Browser) -> None:
    reply = browser.send(
        http_event(
            "POST",
            "/token-url",
            body='{"intent": "sign_in"}',
            headers={"Origin": APP_ORIGIN, "Content-Type": "Application/JSON; Charset=UTF-8"},
        )
    )
    assert reply.status == 200, reply.body


def test_non_ascii_cookie_values_count_as_no_cookie(
    browser: Browser, emulator: Any, function_logs: LogLines
) -> None:
    url = browser.start("sign_in")
    token = emulator.issue_token(url, GOOGLE_ID)
    event = http_event(
        "POST",
        "/token",
        body=f"token={token}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        cookies=[f"{BROWSER_COOKIE}={'é' * 43}"],
        query=url.split("?", 1)[1],
    )
    assert browser.send(event).outcome == {"error": "token_url_invalid"}
    reply = browser.send(
        http_event(
            "POST",
            "/token-url",
            body='{"intent": "sign_in"}',
            headers={"Origin": APP_ORIGIN, "Content-Type": "application/json"},
            cookies=[f"{BROWSER_COOKIE}={'é' * 43}"],
        )
    )
    assert reply.status == 200
    assert "é" not in "".join(reply.set_cookies)
    assert not [line for line in function_logs.lines if "Unhandled error" in line]
