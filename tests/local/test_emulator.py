"""The Identity Cloud emulator, over real loopback HTTP, against the vendor documents it copies."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests

from emulator import (
    API_ENDPOINTS,
    ENTITY_ATTRIBUTES,
    PROVIDERS,
    EmulatorServer,
    Fault,
    FaultKind,
    IdentityCloudEmulator,
    ProviderInfo,
    serve,
)
from emulator.profiles import profile_domain
from token_url.models import PROVIDER_BY_DOMAIN, provider_for_domain

API_KEY = "k" * 40
CLIENT_ID = "c" * 32
FLOW = "standard"
FLOW_VERSION = "20190618143040022299"
LOCALE = "en-US"
TOKEN_URL = "https://api.example/token?nonce=n0nce"
TIMEOUT = 5


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(clock: FakeClock) -> IdentityCloudEmulator:
    return IdentityCloudEmulator(
        api_key=API_KEY,
        capture_client_id=CLIENT_ID,
        flow=FLOW,
        flow_version=FLOW_VERSION,
        locale=LOCALE,
        clock=clock,
    )


@pytest.fixture
def server(emu: IdentityCloudEmulator) -> Iterator[EmulatorServer]:
    srv = serve(emu)
    yield srv
    srv.shutdown()


@pytest.fixture
def url(server: EmulatorServer) -> str:
    return server.url


def auth_info(url: str, **params: str) -> requests.Response:
    return requests.post(f"{url}/api/v2/auth_info", data=params, timeout=TIMEOUT)


def add_or_update(url: str, **params: str) -> requests.Response:
    return requests.post(f"{url}/api/v2/add_or_update_access_token", data=params, timeout=TIMEOUT)


def link_params(**overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "client_id": CLIENT_ID,
        "flow": FLOW,
        "flow_version": FLOW_VERSION,
        "locale": LOCALE,
        "redirect_uri": "http://localhost",
        "token": None,
        "access_token": None,
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def link(url: str, **overrides: str | None) -> requests.Response:
    return requests.post(f"{url}/oauth/link_account_native", data=link_params(**overrides), timeout=TIMEOUT)


def sl_error(response: requests.Response, status: int = 400) -> tuple[int, str]:
    assert response.status_code == status
    body = response.json()
    assert body["stat"] == "fail"
    assert set(body) == {"stat", "err"}
    return body["err"]["code"], body["err"]["msg"]


def capture_error(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert body["stat"] == "error"
    assert re.fullmatch(r"[a-z0-9]{16}", body["request_id"])
    return body


class FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.body_attrs: dict[str, str | None] = {}
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"method": a.get("method"), "action": a.get("action"), "fields": {}})
        elif tag == "input" and self.forms:
            self.forms[-1]["fields"][a.get("name")] = {"value": a.get("value"), "type": a.get("type")}
        elif tag == "body":
            self.body_attrs = a
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def parse_html(text: str) -> FormParser:
    parser = FormParser()
    parser.feed(text)
    return parser


# ---------------------------------------------------------------------------------------- auth_info


def test_auth_info_success_google_shape(emu: IdentityCloudEmulator, url: str) -> None:
    identifier = "https://www.google.com/profiles/123456789123456789123"
    token = emu.issue_token(token_url=TOKEN_URL, identifier=identifier, provider="Google")
    assert re.fullmatch(r"[0-9a-f]{40}", token)
    r = auth_info(url, apiKey=API_KEY, token=token, tokenUrl=TOKEN_URL)
    assert r.status_code == 200
    body = r.json()
    assert body["stat"] == "ok"
    profile = body["profile"]
    assert profile["identifier"] == identifier
    assert profile["providerName"] == "Google"
    for key in ("displayName", "preferredUsername", "email", "verifiedEmail", "name", "url"):
        assert key in profile
    assert set(body["accessCredentials"]) == {"oauthToken", "oauthTokenSecret", "scopes", "type"}
    assert "merged_poco" not in body


@pytest.mark.parametrize(
    ("provider", "identifier", "fields"),
    [
        (
            "Facebook",
            "http://www.facebook.com/profile.php?id=1234",
            {"accessToken", "expires", "uid", "type"},
        ),
        ("Twitter", "https://twitter.com/profile/sam", {"oauthToken", "oauthTokenSecret", "type"}),
        ("LinkedIn", "https://www.linkedin.com/profile/sam", {"oauthToken", "oauthTokenSecret", "type"}),
        (
            "Amazon",
            "https://www.amazon.com/profile/1",
            {"accessToken", "uid", "expires", "refreshToken", "scopes"},
        ),
        ("Microsoft Account", "https://login.live.com/profile/1", {"eact", "type"}),
    ],
)
def test_auth_info_access_credentials_by_provider(
    emu: IdentityCloudEmulator, url: str, provider: str, identifier: str, fields: set[str]
) -> None:
    token = emu.issue_token(token_url=TOKEN_URL, identifier=identifier, provider=provider)
    body = auth_info(url, apiKey=API_KEY, token=token).json()
    assert body["profile"]["providerName"] == provider
    assert set(body["accessCredentials"]) == fields


def test_facebook_uid_comes_from_identifier(emu: IdentityCloudEmulator, url: str) -> None:
    token = emu.issue_token(TOKEN_URL, "http://www.facebook.com/profile.php?id=1234")
    body = auth_info(url, apiKey=API_KEY, token=token).json()
    assert body["profile"]["providerName"] == "Facebook"
    assert body["accessCredentials"]["uid"] == "1234"


def test_auth_info_custom_profile_and_credentials(emu: IdentityCloudEmulator, url: str) -> None:
    token = emu.issue_token(
        TOKEN_URL,
        "https://example.org/openid/u1",
        "OpenID",
        profile={"displayName": "Only Name"},
        access_credentials={"type": "Custom"},
    )
    body = auth_info(url, apiKey=API_KEY, token=token).json()
    assert body["profile"] == {
        "displayName": "Only Name",
        "identifier": "https://example.org/openid/u1",
        "providerName": "OpenID",
    }
    assert body["accessCredentials"] == {"type": "Custom"}


def test_auth_info_extended_adds_merged_poco(emu: IdentityCloudEmulator, url: str) -> None:
    token = emu.issue_token(TOKEN_URL)
    body = auth_info(url, apiKey=API_KEY, token=token, extended="true").json()
    assert body["stat"] == "ok"
    assert body["merged_poco"]["emails"][0]["value"] == body["profile"]["email"]


def test_auth_info_extended_false_has_no_merged_poco(emu: IdentityCloudEmulator, url: str) -> None:
    body = auth_info(url, apiKey=API_KEY, token=emu.issue_token(TOKEN_URL), extended="false").json()
    assert body["stat"] == "ok"
    assert "merged_poco" not in body


def test_auth_info_invalid_extended_is_code_1(emu: IdentityCloudEmulator, url: str) -> None:
    token = emu.issue_token(TOKEN_URL)
    assert sl_error(auth_info(url, apiKey=API_KEY, token=token, extended="yes")) == (
        1,
        "Invalid parameter: extended",
    )
    assert emu.token_status(token) == "fresh"


def test_auth_info_multipart_body(emu: IdentityCloudEmulator, url: str) -> None:
    token = emu.issue_token(TOKEN_URL)
    files = {"apiKey": (None, API_KEY), "token": (None, token), "tokenUrl": (None, TOKEN_URL)}
    r = requests.post(f"{url}/api/v2/auth_info", files=files, timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.json()["stat"] == "ok"
    assert (emu.calls_to("auth_info")[0].content_type or "").startswith("multipart/form-data")


def test_auth_info_chunked_body(emu: IdentityCloudEmulator, url: str) -> None:
    token = emu.issue_token(TOKEN_URL)
    chunks = iter([f"apiKey={API_KEY}&".encode(), f"token={token}".encode()])
    r = requests.post(
        f"{url}/api/v2/auth_info",
        data=chunks,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=TIMEOUT,
    )
    assert r.json()["stat"] == "ok"


def test_auth_info_params_in_query_string_are_not_read(emu: IdentityCloudEmulator, url: str) -> None:
    token = emu.issue_token(TOKEN_URL)
    r = requests.post(f"{url}/api/v2/auth_info", params={"apiKey": API_KEY, "token": token}, timeout=TIMEOUT)
    code, msg = sl_error(r)
    assert code == 0
    assert msg.startswith("Missing parameter")
    call = emu.calls_to("auth_info")[-1]
    assert call.query == {"apiKey": API_KEY, "token": token}
    assert call.form == {}
    assert emu.token_status(token) == "fresh"


def test_auth_info_json_body_is_no_parameters(emu: IdentityCloudEmulator, url: str) -> None:
    token = emu.issue_token(TOKEN_URL)
    r = requests.post(f"{url}/api/v2/auth_info", json={"apiKey": API_KEY, "token": token}, timeout=TIMEOUT)
    assert sl_error(r)[0] == 0


@pytest.mark.parametrize("missing", ["apiKey", "token"])
def test_auth_info_missing_parameter(emu: IdentityCloudEmulator, url: str, missing: str) -> None:
    params = {"apiKey": API_KEY, "token": emu.issue_token(TOKEN_URL)}
    del params[missing]
    assert sl_error(auth_info(url, **params)) == (0, f"Missing parameter: {missing}")


def test_auth_info_wrong_api_key_is_code_3_and_keeps_token(emu: IdentityCloudEmulator, url: str) -> None:
    token = emu.issue_token(TOKEN_URL)
    assert sl_error(auth_info(url, apiKey="x" * 40, token=token)) == (3, "Authentication error")
    assert auth_info(url, apiKey=API_KEY, token=token).json()["stat"] == "ok"


def test_auth_info_unknown_token_is_code_2(url: str) -> None:
    assert sl_error(auth_info(url, apiKey=API_KEY, token="0" * 40)) == (2, "Data not found")


def test_auth_info_expired_token_is_code_2(emu: IdentityCloudEmulator, url: str, clock: FakeClock) -> None:
    token = emu.issue_token(TOKEN_URL)
    clock.now += 299
    assert emu.token_status(token) == "fresh"
    clock.now += 1
    assert sl_error(auth_info(url, apiKey=API_KEY, token=token))[0] == 2
    other = emu.issue_token(TOKEN_URL)
    emu.expire_token(other)
    assert sl_error(auth_info(url, apiKey=API_KEY, token=other))[0] == 2


def test_auth_info_one_time_token(emu: IdentityCloudEmulator, url: str) -> None:
    token = emu.issue_token(TOKEN_URL)
    assert auth_info(url, apiKey=API_KEY, token=token).json()["stat"] == "ok"
    assert sl_error(auth_info(url, apiKey=API_KEY, token=token)) == (2, "Data not found")


def test_auth_info_reusable_tokens_setting(emu: IdentityCloudEmulator, url: str) -> None:
    emu.one_time_tokens = False
    token = emu.issue_token(TOKEN_URL)
    for _ in range(3):
        assert auth_info(url, apiKey=API_KEY, token=token).json()["stat"] == "ok"


@pytest.mark.parametrize(
    "given",
    [
        "https://api.example/token?nonce=other",
        "https://api.example/token?nonce=n0nce&x=1",
        "https://api.example/token/?nonce=n0nce",
        "https://API.example/token?nonce=n0nce",
        "http://api.example/token?nonce=n0nce",
        "",
    ],
)
def test_auth_info_token_url_mismatch(emu: IdentityCloudEmulator, url: str, given: str) -> None:
    token = emu.issue_token(TOKEN_URL)
    code, msg = sl_error(auth_info(url, apiKey=API_KEY, token=token, tokenUrl=given))
    assert code == 3
    assert msg.startswith("Token URL mismatch")
    # the token is burnt: even the right URL is refused afterwards
    assert sl_error(auth_info(url, apiKey=API_KEY, token=token, tokenUrl=TOKEN_URL))[0] == 2


def test_auth_info_error_status_200_for_older_deployments(emu: IdentityCloudEmulator, url: str) -> None:
    emu.social_login_error_status = 200
    assert sl_error(auth_info(url, apiKey=API_KEY, token="0" * 40), status=200) == (2, "Data not found")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_api_endpoints_are_post_only(url: str, method: str) -> None:
    paths = ("/api/v2/auth_info", "/api/v2/add_or_update_access_token", "/oauth/link_account_native")
    assert set(paths) < set(API_ENDPOINTS)
    for path in API_ENDPOINTS:
        assert requests.request(method, url + path, timeout=TIMEOUT).status_code == 405


# ------------------------------------------------------------------------------------ add_or_update


@pytest.mark.parametrize(
    "identifier",
    [
        "http://www.facebook.com/profile.php?id=123456789123456789123",
        "https://facebook.com/u/1",
        "https://www.renren.com/profile/1",
        "https://soundcloud.com/sam",
        "https://api.soundcloud.com/users/1",
        "https://foursquare.com/user/1",
    ],
)
def test_add_or_update_access_token_success(emu: IdentityCloudEmulator, url: str, identifier: str) -> None:
    r = add_or_update(url, apiKey=API_KEY, token="provider-token-1", identifier=identifier)
    assert r.status_code == 200
    assert r.json() == {"stat": "ok"}
    assert emu.stored_access_tokens == {identifier: "provider-token-1"}


@pytest.mark.parametrize("missing", ["apiKey", "token", "identifier"])
def test_add_or_update_missing_parameter(url: str, missing: str) -> None:
    params = {"apiKey": API_KEY, "token": "t", "identifier": "https://www.facebook.com/x"}
    del params[missing]
    assert sl_error(add_or_update(url, **params)) == (0, f"Missing parameter: {missing}")


def test_add_or_update_wrong_api_key(emu: IdentityCloudEmulator, url: str) -> None:
    r = add_or_update(url, apiKey="z" * 40, token="t", identifier="https://www.facebook.com/x")
    assert sl_error(r)[0] == 3
    assert emu.stored_access_tokens == {}


@pytest.mark.parametrize("identifier", ["www.facebook.com/x", "ftp://facebook.com/x", "facebook", "https://"])
def test_add_or_update_identifier_not_url(url: str, identifier: str) -> None:
    r = add_or_update(url, apiKey=API_KEY, token="t", identifier=identifier)
    assert sl_error(r) == (1, "Invalid parameter: identifier")


@pytest.mark.parametrize(
    "identifier",
    [
        "https://www.google.com/profiles/1",
        "https://twitter.com/sam",
        "https://evilfacebook.com/x",
        "https://facebook.com.evil.example/x",
    ],
)
def test_add_or_update_unsupported_provider_is_code_11(url: str, identifier: str) -> None:
    assert sl_error(add_or_update(url, apiKey=API_KEY, token="t", identifier=identifier))[0] == 11


def test_add_or_update_query_params_not_read(emu: IdentityCloudEmulator, url: str) -> None:
    params = {"apiKey": API_KEY, "token": "t", "identifier": "https://www.facebook.com/x"}
    r = requests.post(f"{url}/api/v2/add_or_update_access_token", params=params, timeout=TIMEOUT)
    assert sl_error(r)[0] == 0
    assert emu.stored_access_tokens == {}


# ------------------------------------------------------------------------------ link_account_native


@pytest.fixture
def user_token(emu: IdentityCloudEmulator) -> str:
    return emu.mint_access_token("user-1")


def test_link_success(emu: IdentityCloudEmulator, url: str, user_token: str) -> None:
    identifier = "https://www.google.com/profiles/42"
    token = emu.issue_token(TOKEN_URL, identifier)
    r = link(url, token=token, access_token=user_token)
    assert r.status_code == 200
    assert r.json() == {"stat": "ok"}
    assert emu.owner_of(identifier) == "user-1"
    assert emu.linked_identities("user-1") == [identifier]
    assert len(user_token) >= 20


def test_link_missing_all_arguments(url: str) -> None:
    r = requests.post(f"{url}/oauth/link_account_native", timeout=TIMEOUT)
    body = capture_error(r)
    assert body["code"] == 100
    assert body["error"] == "missing_argument"
    assert body["error_description"] == (
        "missing arguments: access_token, client_id, flow, flow_version, locale, redirect_uri, token"
    )


def test_link_missing_one_argument(emu: IdentityCloudEmulator, url: str, user_token: str) -> None:
    token = emu.issue_token(TOKEN_URL)
    body = capture_error(link(url, token=token, access_token=user_token, flow=None))
    assert (body["code"], body["error_description"]) == (100, "missing arguments: flow")
    assert emu.token_status(token) == "fresh"


def test_link_params_in_query_string_are_not_read(
    emu: IdentityCloudEmulator, url: str, user_token: str
) -> None:
    token = emu.issue_token(TOKEN_URL)
    params = link_params(token=token, access_token=user_token)
    r = requests.post(f"{url}/oauth/link_account_native", params=params, timeout=TIMEOUT)
    assert capture_error(r)["code"] == 100
    assert emu.owner_of(emu.calls_to("link_account_native")[0].query["token"]) is None
    assert emu.token_status(token) == "fresh"


def test_link_unknown_client(emu: IdentityCloudEmulator, url: str, user_token: str) -> None:
    body = capture_error(
        link(url, client_id="x" * 32, token=emu.issue_token(TOKEN_URL), access_token=user_token)
    )
    assert (body["code"], body["error"]) == (200, "invalid_argument")


def test_link_client_without_login_feature(emu: IdentityCloudEmulator, url: str, user_token: str) -> None:
    emu.client_has_login_feature = False
    body = capture_error(link(url, token=emu.issue_token(TOKEN_URL), access_token=user_token))
    assert body["code"] == 403
    assert body["error"] == "permission_error"
    assert body["error_description"] == "This client does not support log in and registration."


@pytest.mark.parametrize(
    "override",
    [
        {"flow": "other"},
        {"flow_version": "20000101000000000000"},
        {"flow_version": "HEAD"},
        {"locale": "fr-FR"},
    ],
)
def test_link_bad_flow(
    emu: IdentityCloudEmulator, url: str, user_token: str, override: dict[str, str]
) -> None:
    body = capture_error(link(url, token=emu.issue_token(TOKEN_URL), access_token=user_token, **override))
    assert (body["code"], body["error"]) == (500, "unexpected_error")
    assert body["error_description"].startswith("could not find a flow named")


def test_link_head_rejected_even_if_configured(clock: FakeClock) -> None:
    emu = IdentityCloudEmulator(API_KEY, CLIENT_ID, flow_version="HEAD", clock=clock)
    with serve(emu) as srv:
        r = link(
            srv.url,
            flow_version="HEAD",
            token=emu.issue_token(TOKEN_URL),
            access_token=emu.mint_access_token("u"),
        )
        assert capture_error(r)["code"] == 500


@pytest.mark.parametrize("redirect_uri", ["localhost", "ftp://example.com", "//example.com", "HTTPS://x"])
def test_link_bad_redirect_uri(
    emu: IdentityCloudEmulator, url: str, user_token: str, redirect_uri: str
) -> None:
    r = link(url, redirect_uri=redirect_uri, token=emu.issue_token(TOKEN_URL), access_token=user_token)
    body = capture_error(r)
    assert (body["code"], body["error"]) == (200, "invalid_argument")


def test_link_unknown_access_token_is_413(emu: IdentityCloudEmulator, url: str) -> None:
    token = emu.issue_token(TOKEN_URL)
    body = capture_error(link(url, token=token, access_token="nope" * 6))
    assert (body["code"], body["error"], body["error_description"]) == (
        413,
        "invalid_access_token",
        "invalid access token",
    )
    assert emu.token_status(token) == "fresh"  # the token check was not reached


def test_link_expired_access_token_is_414(
    emu: IdentityCloudEmulator, url: str, user_token: str, clock: FakeClock
) -> None:
    emu.expire_access_token(user_token)
    body = capture_error(link(url, token=emu.issue_token(TOKEN_URL), access_token=user_token))
    assert (body["code"], body["error"]) == (414, "access_token_expired")
    short = emu.mint_access_token("user-2", expires_in=10)
    clock.now += 10
    assert capture_error(link(url, token=emu.issue_token(TOKEN_URL), access_token=short))["code"] == 414


def test_link_unknown_or_expired_social_token_is_400(
    emu: IdentityCloudEmulator, url: str, user_token: str, clock: FakeClock
) -> None:
    body = capture_error(link(url, token="0" * 40, access_token=user_token))
    assert (body["code"], body["error"]) == (400, "engage_error")
    assert body["error_description"] == "Unexpected HTTP status code from server: 400"
    token = emu.issue_token(TOKEN_URL)
    clock.now += 300
    assert capture_error(link(url, token=token, access_token=user_token))["code"] == 400


def test_link_accepts_token_after_auth_info_then_consumes_it(
    emu: IdentityCloudEmulator, url: str, user_token: str
) -> None:
    token = emu.issue_token(TOKEN_URL)
    assert auth_info(url, apiKey=API_KEY, token=token, tokenUrl=TOKEN_URL).json()["stat"] == "ok"
    assert emu.token_status(token) == "read"
    assert link(url, token=token, access_token=user_token).json() == {"stat": "ok"}
    assert emu.token_status(token) == "consumed"
    assert capture_error(link(url, token=token, access_token=emu.mint_access_token("user-2")))["code"] == 400


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ((True, False), "linked"),  # documented: the native endpoints take a token after auth_info
        ((True, True), "refused"),  # unconfirmed: oneTimeUseTokens spends it for Capture too
        ((False, True), "linked"),  # reusable tokens are never spent by a read
    ],
)
def test_link_after_auth_info_under_each_model_of_one_time_tokens(
    emu: IdentityCloudEmulator, url: str, user_token: str, model: tuple[bool, bool], expected: str
) -> None:
    emu.one_time_tokens, emu.auth_info_spends_token_for_capture = model
    identifier = "https://www.facebook.com/profile/read-once"
    token = emu.issue_token(TOKEN_URL, identifier)
    assert auth_info(url, apiKey=API_KEY, token=token, tokenUrl=TOKEN_URL).json()["stat"] == "ok"
    reply = link(url, token=token, access_token=user_token)
    if expected == "linked":
        assert reply.json() == {"stat": "ok"}
        assert emu.linked_identities("user-1") == [identifier]
    else:
        assert capture_error(reply)["error"] == "engage_error"
        assert emu.linked_identities("user-1") == []


def test_a_token_auth_info_never_read_links_under_either_model(
    emu: IdentityCloudEmulator, url: str, user_token: str
) -> None:
    emu.auth_info_spends_token_for_capture = True
    token = emu.issue_token(TOKEN_URL)
    assert link(url, token=token, access_token=user_token).json() == {"stat": "ok"}


def test_link_consumed_token_is_gone_for_auth_info_too(
    emu: IdentityCloudEmulator, url: str, user_token: str
) -> None:
    emu.one_time_tokens = False
    token = emu.issue_token(TOKEN_URL)
    assert link(url, token=token, access_token=user_token).json() == {"stat": "ok"}
    assert sl_error(auth_info(url, apiKey=API_KEY, token=token))[0] == 2


@pytest.mark.parametrize("owner", ["user-1", "someone-else"])
def test_link_unique_violation(emu: IdentityCloudEmulator, url: str, user_token: str, owner: str) -> None:
    identifier = "https://www.facebook.com/profile/dup"
    emu.link(identifier, owner)
    token = emu.issue_token(TOKEN_URL, identifier)
    body = capture_error(link(url, token=token, access_token=user_token))
    assert body["code"] == 361
    assert body["error"] == "unique_violation"
    assert body["error_description"] == "that account already exists"
    assert body["message"] == "That account is already in use."
    assert emu.owner_of(identifier) == owner
    # a failed attempt that reached the token check consumed the token
    assert capture_error(link(url, token=token, access_token=user_token))["code"] == 400


def test_link_check_order(emu: IdentityCloudEmulator, url: str) -> None:
    # a bad client_id beats a bad flow, a bad flow beats a bad access token, which beats a bad token
    assert capture_error(link(url, client_id="x", flow="x", token="x", access_token="x"))["code"] == 200
    assert capture_error(link(url, flow="x", redirect_uri="x", token="x", access_token="x"))["code"] == 500
    assert capture_error(link(url, redirect_uri="x", token="x", access_token="x"))["code"] == 200
    assert capture_error(link(url, token="x", access_token="x"))["code"] == 413


def test_python_link_helper_refuses_relinking(emu: IdentityCloudEmulator) -> None:
    emu.link("https://twitter.com/a", "u1")
    emu.link("https://twitter.com/a", "u1")
    with pytest.raises(ValueError, match="already linked"):
        emu.link("https://twitter.com/a", "u2")


# ------------------------------------------------------------------ /entity and unlink_account_native


def entity(url: str, **params: str) -> requests.Response:
    return requests.post(f"{url}/entity", data=params, timeout=TIMEOUT)


def unlink_params(**overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "client_id": CLIENT_ID,
        "flow": FLOW,
        "flow_version": FLOW_VERSION,
        "locale": LOCALE,
        "access_token": None,
        "identifier_to_remove": None,
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def unlink(url: str, **overrides: str | None) -> requests.Response:
    return requests.post(
        f"{url}/oauth/unlink_account_native", data=unlink_params(**overrides), timeout=TIMEOUT
    )


def entity_record(url: str, access_token: str, **params: str) -> dict[str, Any]:
    r = entity(url, access_token=access_token, **params)
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    assert set(body) == {"stat", "result"}
    assert body["stat"] == "ok"
    record: dict[str, Any] = body["result"]
    return record


FACEBOOK_ALICE = "https://www.facebook.com/profile/alice"
GOOGLE_ALICE = "https://www.google.com/profile/alice"


def test_entity_returns_the_users_record_with_its_linked_identities(
    emu: IdentityCloudEmulator, url: str, user_token: str
) -> None:
    emu.create_user("user-1", display_name="Alice Example", email="alice@example.test")
    token = emu.issue_token(TOKEN_URL, FACEBOOK_ALICE, profile={"displayName": "Alice on Facebook"})
    assert link(url, token=token, access_token=user_token).json() == {"stat": "ok"}
    emu.link(GOOGLE_ALICE, "user-1")

    record = entity_record(url, user_token)

    assert set(record) == set(ENTITY_ATTRIBUTES)
    assert uuid.UUID(record["uuid"])
    assert (record["displayName"], record["email"]) == ("Alice Example", "alice@example.test")
    assert isinstance(record["password"], str)
    assert record["password"]
    facebook, google = record["profiles"]
    assert (facebook["identifier"], facebook["domain"]) == (FACEBOOK_ALICE, "facebook.com")
    assert facebook["profile"]["displayName"] == "Alice on Facebook"
    assert facebook["profile"]["providerName"] == "Facebook"
    assert (google["identifier"], google["domain"]) == (GOOGLE_ALICE, "google.com")
    assert google["profile"]["identifier"] == GOOGLE_ALICE
    assert record == emu.account("user-1")


def test_entity_attributes_limit_the_record(emu: IdentityCloudEmulator, url: str, user_token: str) -> None:
    emu.link(GOOGLE_ALICE, "user-1")

    record = entity_record(url, user_token, attributes=json.dumps(["uuid", "profiles", "password"]))

    assert set(record) == {"uuid", "profiles", "password"}
    assert [p["identifier"] for p in record["profiles"]] == [GOOGLE_ALICE]


def test_users_have_a_password_unless_created_without(emu: IdentityCloudEmulator, url: str) -> None:
    emu.create_user("social-only", has_password=False)

    with_password = entity_record(url, emu.mint_access_token("demo-user-1"))
    without = entity_record(url, emu.mint_access_token("social-only"))

    assert with_password["password"]
    assert (with_password["displayName"], with_password["email"]) == (
        "demo-user-1",
        "demo-user-1@example.com",
    )
    assert without["password"] is None
    assert with_password["uuid"] != without["uuid"]
    assert with_password["profiles"] == without["profiles"] == []


def test_a_user_keeps_its_uuid_and_identities_when_recreated(emu: IdentityCloudEmulator, url: str) -> None:
    emu.link(GOOGLE_ALICE, "user-1")
    before = emu.account("user-1")

    emu.create_user("user-1", has_password=False)

    after = entity_record(url, emu.mint_access_token("user-1"))
    assert (after["uuid"], after["id"], after["profiles"]) == (
        before["uuid"],
        before["id"],
        before["profiles"],
    )
    assert after["password"] is None


def test_entity_missing_access_token_is_100_and_the_query_string_is_not_read(
    url: str, user_token: str
) -> None:
    body = capture_error(entity(url))
    assert (body["code"], body["error"], body["error_description"]) == (
        100,
        "missing_argument",
        "missing arguments: access_token",
    )
    r = requests.post(f"{url}/entity", params={"access_token": user_token}, timeout=TIMEOUT)
    assert capture_error(r)["code"] == 100


@pytest.mark.parametrize(
    "attributes", ["uuid", "{}", '"uuid"', "[1]", '["uuid", null]', '["uuid", "nickname"]', "[uuid]"]
)
def test_entity_refuses_attributes_that_are_not_a_list_of_known_names(
    url: str, user_token: str, attributes: str
) -> None:
    body = capture_error(entity(url, access_token=user_token, attributes=attributes))
    assert (body["code"], body["error"]) == (200, "invalid_argument")


def test_entity_unknown_access_token_is_413(url: str) -> None:
    body = capture_error(entity(url, access_token="nope" * 6))
    assert (body["code"], body["error"]) == (413, "invalid_access_token")


def test_entity_expired_access_token_is_414(
    emu: IdentityCloudEmulator, url: str, user_token: str, clock: FakeClock
) -> None:
    emu.expire_access_token(user_token)
    assert capture_error(entity(url, access_token=user_token))["code"] == 414
    short = emu.mint_access_token("user-2", expires_in=10)
    clock.now += 10
    body = capture_error(entity(url, access_token=short))
    assert (body["code"], body["error"]) == (414, "access_token_expired")


def test_unlink_removes_the_identity_from_the_record(
    emu: IdentityCloudEmulator, url: str, user_token: str
) -> None:
    emu.link(FACEBOOK_ALICE, "user-1")
    emu.link(GOOGLE_ALICE, "user-1")

    r = unlink(url, access_token=user_token, identifier_to_remove=FACEBOOK_ALICE)

    assert r.status_code == 200
    assert r.json() == {"stat": "ok"}
    assert emu.owner_of(FACEBOOK_ALICE) is None
    assert [p["identifier"] for p in entity_record(url, user_token)["profiles"]] == [GOOGLE_ALICE]


def test_an_unlinked_identity_can_be_linked_again(
    emu: IdentityCloudEmulator, url: str, user_token: str
) -> None:
    first = emu.issue_token(TOKEN_URL, FACEBOOK_ALICE)
    assert link(url, token=first, access_token=user_token).json() == {"stat": "ok"}
    assert unlink(url, access_token=user_token, identifier_to_remove=FACEBOOK_ALICE).json() == {"stat": "ok"}

    other_user = emu.mint_access_token("user-2")
    again = emu.issue_token(TOKEN_URL, FACEBOOK_ALICE)
    assert link(url, token=again, access_token=other_user).json() == {"stat": "ok"}

    assert emu.owner_of(FACEBOOK_ALICE) == "user-2"
    assert entity_record(url, user_token)["profiles"] == []
    assert [p["identifier"] for p in entity_record(url, other_user)["profiles"]] == [FACEBOOK_ALICE]


def test_unlink_lets_an_account_lose_its_last_way_to_sign_in(emu: IdentityCloudEmulator, url: str) -> None:
    emu.create_user("social-only", has_password=False)
    emu.link(GOOGLE_ALICE, "social-only")
    access_token = emu.mint_access_token("social-only")

    assert unlink(url, access_token=access_token, identifier_to_remove=GOOGLE_ALICE).json() == {"stat": "ok"}

    record = entity_record(url, access_token)
    assert (record["password"], record["profiles"]) == (None, [])


def test_unlink_missing_all_arguments(url: str) -> None:
    body = capture_error(requests.post(f"{url}/oauth/unlink_account_native", timeout=TIMEOUT))
    assert (body["code"], body["error"]) == (100, "missing_argument")
    assert body["error_description"] == (
        "missing arguments: access_token, client_id, flow, flow_version, identifier_to_remove, locale"
    )


@pytest.mark.parametrize("missing", ["client_id", "flow", "flow_version", "locale", "access_token"])
def test_unlink_missing_one_argument(
    emu: IdentityCloudEmulator, url: str, user_token: str, missing: str
) -> None:
    emu.link(GOOGLE_ALICE, "user-1")
    params = {"access_token": user_token, "identifier_to_remove": GOOGLE_ALICE, missing: None}
    body = capture_error(unlink(url, **params))
    assert (body["code"], body["error_description"]) == (100, f"missing arguments: {missing}")
    assert emu.owner_of(GOOGLE_ALICE) == "user-1"


def test_unlink_params_in_query_string_are_not_read(
    emu: IdentityCloudEmulator, url: str, user_token: str
) -> None:
    emu.link(GOOGLE_ALICE, "user-1")
    params = unlink_params(access_token=user_token, identifier_to_remove=GOOGLE_ALICE)
    r = requests.post(f"{url}/oauth/unlink_account_native", params=params, timeout=TIMEOUT)
    assert capture_error(r)["code"] == 100
    assert emu.owner_of(GOOGLE_ALICE) == "user-1"


def test_unlink_unknown_client(emu: IdentityCloudEmulator, url: str, user_token: str) -> None:
    emu.link(GOOGLE_ALICE, "user-1")
    body = capture_error(
        unlink(url, client_id="x" * 32, access_token=user_token, identifier_to_remove=GOOGLE_ALICE)
    )
    assert (body["code"], body["error"]) == (200, "invalid_argument")
    assert emu.owner_of(GOOGLE_ALICE) == "user-1"


def test_unlink_client_without_login_feature(emu: IdentityCloudEmulator, url: str, user_token: str) -> None:
    emu.client_has_login_feature = False
    emu.link(GOOGLE_ALICE, "user-1")
    body = capture_error(unlink(url, access_token=user_token, identifier_to_remove=GOOGLE_ALICE))
    assert (body["code"], body["error"]) == (403, "permission_error")
    assert emu.owner_of(GOOGLE_ALICE) == "user-1"


@pytest.mark.parametrize(
    "override",
    [
        {"flow": "other"},
        {"flow_version": "20000101000000000000"},
        {"flow_version": "HEAD"},
        {"locale": "fr-FR"},
    ],
)
def test_unlink_bad_flow(
    emu: IdentityCloudEmulator, url: str, user_token: str, override: dict[str, str]
) -> None:
    emu.link(GOOGLE_ALICE, "user-1")
    body = capture_error(unlink(url, access_token=user_token, identifier_to_remove=GOOGLE_ALICE, **override))
    assert (body["code"], body["error"]) == (500, "unexpected_error")
    assert body["error_description"].startswith("could not find a flow named")
    assert emu.owner_of(GOOGLE_ALICE) == "user-1"


def test_unlink_unknown_access_token_is_413(emu: IdentityCloudEmulator, url: str) -> None:
    emu.link(GOOGLE_ALICE, "user-1")
    body = capture_error(unlink(url, access_token="nope" * 6, identifier_to_remove=GOOGLE_ALICE))
    assert (body["code"], body["error"]) == (413, "invalid_access_token")
    assert emu.owner_of(GOOGLE_ALICE) == "user-1"


def test_unlink_expired_access_token_is_414(
    emu: IdentityCloudEmulator, url: str, user_token: str, clock: FakeClock
) -> None:
    emu.link(GOOGLE_ALICE, "user-1")
    short = emu.mint_access_token("user-1", expires_in=10)
    clock.now += 10
    body = capture_error(unlink(url, access_token=short, identifier_to_remove=GOOGLE_ALICE))
    assert (body["code"], body["error"]) == (414, "access_token_expired")
    assert emu.owner_of(GOOGLE_ALICE) == "user-1"


@pytest.mark.parametrize("owner", [None, "someone-else"])
def test_unlink_an_identity_not_on_the_account_is_200(
    emu: IdentityCloudEmulator, url: str, user_token: str, owner: str | None
) -> None:
    if owner is not None:
        emu.link(GOOGLE_ALICE, owner)
    body = capture_error(unlink(url, access_token=user_token, identifier_to_remove=GOOGLE_ALICE))
    assert (body["code"], body["error"]) == (200, "invalid_argument")
    assert emu.owner_of(GOOGLE_ALICE) == owner


def test_unlink_check_order(emu: IdentityCloudEmulator, url: str) -> None:
    # like link: a bad client_id beats a bad flow, which beats a bad access token, which beats the identifier
    assert (
        capture_error(unlink(url, client_id="x", flow="x", access_token="x", identifier_to_remove="x"))[
            "code"
        ]
        == 200
    )
    assert capture_error(unlink(url, flow="x", access_token="x", identifier_to_remove="x"))["code"] == 500
    assert capture_error(unlink(url, access_token="x", identifier_to_remove="x"))["code"] == 413


@pytest.mark.parametrize(
    ("endpoint", "call"),
    [
        ("entity", lambda url, access_token: entity(url, access_token=access_token)),
        (
            "unlink_account_native",
            lambda url, access_token: unlink(
                url, access_token=access_token, identifier_to_remove=GOOGLE_ALICE
            ),
        ),
    ],
)
def test_faults_on_the_account_endpoints(
    emu: IdentityCloudEmulator,
    url: str,
    user_token: str,
    endpoint: str,
    call: Callable[[str, str], requests.Response],
) -> None:
    emu.link(GOOGLE_ALICE, "user-1")
    emu.set_fault(endpoint, Fault.http_500())
    emu.add_fault(endpoint, Fault.capture_error(510, "api_limit_error"))
    emu.add_fault(endpoint, Fault.not_json())
    assert call(url, user_token).status_code == 500
    assert capture_error(call(url, user_token))["code"] == 510
    with pytest.raises(requests.JSONDecodeError):
        call(url, user_token).json()
    assert emu.owner_of(GOOGLE_ALICE) == "user-1"  # a faulted unlink removed nothing
    assert call(url, user_token).json()["stat"] == "ok"
    assert [c.fault for c in emu.calls_to(endpoint)] == ["http_500", "capture_error", "not_json", None]
    emu.set_fault("*", Fault.reset())
    with pytest.raises(requests.ConnectionError):
        call(url, user_token)


def test_account_endpoints_faults_over_http_and_call_counts(
    emu: IdentityCloudEmulator, url: str, user_token: str
) -> None:
    for endpoint in ("entity", "unlink_account_native"):
        r = requests.post(
            f"{url}/_emulator/faults", json={"endpoint": endpoint, "kind": "http_500"}, timeout=TIMEOUT
        )
        assert r.json() == {"stat": "ok"}
    assert entity(url, access_token=user_token).status_code == 500
    assert unlink(url, access_token=user_token, identifier_to_remove=GOOGLE_ALICE).status_code == 500
    entity(url, access_token=user_token)
    counts = requests.get(f"{url}/_emulator/calls", timeout=TIMEOUT).json()["calls"]
    assert (counts["entity"], counts["unlink_account_native"]) == (2, 1)


def test_emulator_access_tokens_can_create_a_user_without_a_password(url: str) -> None:
    r = requests.post(
        f"{url}/_emulator/access_tokens",
        json={
            "user_id": "social-only",
            "has_password": False,
            "display_name": "Sam",
            "email": "sam@example.test",
        },
        timeout=TIMEOUT,
    )
    record = entity_record(url, r.json()["access_token"])
    assert (record["password"], record["displayName"], record["email"]) == (None, "Sam", "sam@example.test")
    for bad in ({"has_password": "no"}, {"display_name": 1}, {"email": ["x"]}):
        refused = requests.post(
            f"{url}/_emulator/access_tokens", json={"user_id": "u", **bad}, timeout=TIMEOUT
        )
        assert refused.status_code == 400


def test_reset_forgets_users(emu: IdentityCloudEmulator) -> None:
    emu.create_user("user-1", display_name="Alice", has_password=False)
    emu.link(GOOGLE_ALICE, "user-1")
    emu.reset()
    record = emu.account("user-1")
    assert (record["displayName"], record["profiles"]) == ("user-1", [])
    assert record["password"] is not None


@pytest.mark.parametrize("info", list(PROVIDERS.values()), ids=list(PROVIDERS))
def test_the_functions_domain_to_provider_table_agrees_with_the_emulators_providers(
    info: ProviderInfo,
) -> None:
    identifier = "https://" + info.host + "/profile/someone"
    assert profile_domain(identifier) == info.domain
    assert provider_for_domain(info.domain) == info.name


def test_the_functions_domain_table_has_exactly_the_emulators_providers() -> None:
    assert {info.domain: info.name for info in PROVIDERS.values()} == PROVIDER_BY_DOMAIN


# ------------------------------------------------------------------------------------------- faults


def test_fault_http_500_html_then_recovers(emu: IdentityCloudEmulator, url: str) -> None:
    token = emu.issue_token(TOKEN_URL)
    emu.set_fault("auth_info", Fault.http_500())
    r = auth_info(url, apiKey=API_KEY, token=token)
    assert r.status_code == 500
    assert r.headers["Content-Type"].startswith("text/html")
    assert "<html" in r.text
    assert emu.token_status(token) == "fresh"  # the fault replaced the handling
    assert auth_info(url, apiKey=API_KEY, token=token).json()["stat"] == "ok"
    assert [c.fault for c in emu.calls_to("auth_info")] == ["http_500", None]


def test_fault_not_json(emu: IdentityCloudEmulator, url: str, user_token: str) -> None:
    emu.set_fault("link_account_native", Fault.not_json())
    r = link(url, token=emu.issue_token(TOKEN_URL), access_token=user_token)
    assert r.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        r.json()


def test_fault_delay_then_normal_answer(emu: IdentityCloudEmulator, url: str) -> None:
    emu.set_fault("auth_info", Fault.delay(0.4))
    start = time.monotonic()
    r = auth_info(url, apiKey=API_KEY, token=emu.issue_token(TOKEN_URL))
    assert time.monotonic() - start >= 0.4
    assert r.json()["stat"] == "ok"


def test_fault_late_reply_acts_at_once_and_answers_late(
    emu: IdentityCloudEmulator, url: str, user_token: str
) -> None:
    identifier = "https://www.google.com/profiles/43"
    emu.set_fault("link_account_native", Fault.late_reply(1.5))
    params = link_params(token=emu.issue_token(TOKEN_URL, identifier), access_token=user_token)
    with pytest.raises(requests.Timeout):
        requests.post(f"{url}/oauth/link_account_native", data=params, timeout=0.3)
    # The link was made before the answer was held back: a client that timed out finds it.
    assert emu.owner_of(identifier) == "user-1"
    assert [c.fault for c in emu.calls_to("link_account_native")] == ["late_reply"]


def test_fault_delay_makes_client_time_out(emu: IdentityCloudEmulator, url: str) -> None:
    emu.set_fault("auth_info", Fault.delay(1.5))
    with pytest.raises(requests.Timeout):
        requests.post(
            f"{url}/api/v2/auth_info",
            data={"apiKey": API_KEY, "token": emu.issue_token(TOKEN_URL)},
            timeout=0.3,
        )


def test_fault_reset_closes_without_response(emu: IdentityCloudEmulator, url: str) -> None:
    emu.set_fault("add_or_update_access_token", Fault.reset())
    with pytest.raises(requests.ConnectionError):
        add_or_update(url, apiKey=API_KEY, token="t", identifier="https://www.facebook.com/x")
    call = emu.calls_to("add_or_update_access_token")[0]
    assert (call.fault, call.status) == ("reset", None)
    assert add_or_update(url, apiKey=API_KEY, token="t", identifier="https://www.facebook.com/x").ok


def test_fault_service_unavailable(emu: IdentityCloudEmulator, url: str) -> None:
    emu.set_fault("auth_info", Fault.service_unavailable())
    r = auth_info(url, apiKey=API_KEY, token=emu.issue_token(TOKEN_URL))
    assert sl_error(r) == (-1, "Service temporarily unavailable")


def test_fault_capture_error(emu: IdentityCloudEmulator, url: str, user_token: str) -> None:
    emu.set_fault("link_account_native", Fault.capture_error(510, "api_limit_error"))
    body = capture_error(link(url, token=emu.issue_token(TOKEN_URL), access_token=user_token))
    assert (body["code"], body["error"]) == (510, "api_limit_error")


def test_fault_times_and_until_cleared(emu: IdentityCloudEmulator, url: str) -> None:
    emu.set_fault("auth_info", Fault.http_500(times=2))
    assert [auth_info(url).status_code for _ in range(3)] == [500, 500, 400]
    emu.set_fault("auth_info", Fault.http_500(times=None))
    assert [auth_info(url).status_code for _ in range(4)] == [500] * 4
    emu.clear_faults()
    assert auth_info(url).status_code == 400


def test_fault_queue_and_wildcard(emu: IdentityCloudEmulator, url: str) -> None:
    emu.set_fault("auth_info", Fault.http_500())
    emu.add_fault("auth_info", Fault.not_json())
    assert auth_info(url).status_code == 500
    assert auth_info(url).headers["Content-Type"].startswith("text/html")
    assert auth_info(url).status_code == 400
    emu.set_fault("*", Fault.service_unavailable(times=2))
    assert sl_error(add_or_update(url))[0] == -1
    assert sl_error(auth_info(url))[0] == -1
    assert sl_error(auth_info(url))[0] == 0


def test_fault_only_on_its_endpoint(emu: IdentityCloudEmulator, url: str) -> None:
    emu.set_fault("link_account_native", Fault.http_500())
    assert sl_error(auth_info(url))[0] == 0
    assert link(url).status_code == 500
    assert capture_error(link(url))["code"] == 100


def test_fault_unknown_endpoint_name(emu: IdentityCloudEmulator) -> None:
    with pytest.raises(ValueError, match="unknown endpoint"):
        emu.set_fault("authinfo", Fault.http_500())
    with pytest.raises(ValueError, match="times"):
        Fault.http_500(times=0)


# --------------------------------------------------------------------------- recording, connections


def test_calls_are_recorded(emu: IdentityCloudEmulator, url: str) -> None:
    requests.post(
        f"{url}/api/v2/auth_info?trace=1",
        data={"apiKey": API_KEY, "token": "t"},
        headers={"User-Agent": "token-url-test"},
        timeout=TIMEOUT,
    )
    link(url)
    [call] = emu.calls_to("auth_info")
    assert call.method == "POST"
    assert call.path == "/api/v2/auth_info"
    assert call.content_type == "application/x-www-form-urlencoded"
    assert call.form == {"apiKey": API_KEY, "token": "t"}
    assert call.query == {"trace": "1"}
    assert call.header("user-agent") == "token-url-test"
    assert call.status == 400
    assert [c.endpoint for c in emu.calls] == ["auth_info", "link_account_native"]


def test_reset_forgets_everything(emu: IdentityCloudEmulator, url: str, user_token: str) -> None:
    token = emu.issue_token(TOKEN_URL)
    emu.link("https://twitter.com/x", "user-1")
    emu.set_fault("auth_info", Fault.http_500(times=None))
    auth_info(url)
    emu.reset()
    assert emu.calls == []
    assert emu.linked_identities("user-1") == []
    assert emu.connections_accepted == 0
    assert emu.token_status(token) is None
    assert sl_error(auth_info(url, apiKey=API_KEY, token=token))[0] == 2
    assert capture_error(link(url, token=emu.issue_token(TOKEN_URL), access_token=user_token))["code"] == 413


def test_connection_counting_with_and_without_keep_alive(
    emu: IdentityCloudEmulator, server: EmulatorServer, url: str
) -> None:
    with requests.Session() as session:
        for _ in range(3):
            r = session.post(
                f"{url}/api/v2/auth_info", data={"apiKey": API_KEY, "token": "t"}, timeout=TIMEOUT
            )
            assert sl_error(r)[0] == 2
    assert emu.connections_accepted == 1
    assert len({c.remote_port for c in emu.calls}) == 1
    for _ in range(3):
        auth_info(url)
    assert emu.connections_accepted == 4
    assert server.connections_accepted == 4
    with requests.Session() as session:
        for _ in range(2):
            session.post(f"{url}/api/v2/auth_info", headers={"Connection": "close"}, timeout=TIMEOUT)
    assert emu.connections_accepted == 6


def test_connections_are_counted_by_the_host_of_their_first_request(
    emu: IdentityCloudEmulator, url: str
) -> None:
    port = url.rsplit(":", 1)[1]
    with requests.Session() as social, requests.Session() as capture:
        for _ in range(3):
            social.post(f"{url}/api/v2/auth_info", data={"apiKey": API_KEY, "token": "t"}, timeout=TIMEOUT)
            capture.post(f"http://localhost:{port}/oauth/link_account_native", timeout=TIMEOUT)
    with requests.Session() as admin:
        reply = admin.get(f"{url}/_emulator/connections", headers={"Host": "admin"}, timeout=TIMEOUT).json()
    assert reply == {"accepted": 3, "by_host": {f"127.0.0.1:{port}": 1, f"localhost:{port}": 1, "admin": 1}}
    emu.reset()
    assert emu.connections_by_host == {}


def test_reset_fault_breaks_only_that_connection(emu: IdentityCloudEmulator, url: str) -> None:
    emu.set_fault("auth_info", Fault.reset())
    with requests.Session() as session:
        with pytest.raises(requests.ConnectionError):
            session.post(f"{url}/api/v2/auth_info", data={"apiKey": API_KEY}, timeout=TIMEOUT)
        assert sl_error(session.post(f"{url}/api/v2/auth_info", timeout=TIMEOUT))[0] == 0
    assert emu.connections_accepted == 2


def test_shutdown_stops_serving(emu: IdentityCloudEmulator) -> None:
    srv = serve(emu)
    session = requests.Session()
    assert session.post(f"{srv.url}/api/v2/auth_info", timeout=TIMEOUT).status_code == 400
    srv.shutdown()
    with pytest.raises(requests.ConnectionError):
        session.post(f"{srv.url}/api/v2/auth_info", timeout=TIMEOUT)
    srv.shutdown()  # idempotent


def test_app_is_plain_wsgi(emu: IdentityCloudEmulator) -> None:
    token = emu.issue_token(TOKEN_URL)
    r = emu.app.test_client().post("/api/v2/auth_info", data={"apiKey": API_KEY, "token": token})
    assert r.status_code == 200
    assert r.get_json()["stat"] == "ok"


# ------------------------------------------------------------------------------------ browser pages


@pytest.mark.parametrize(
    ("provider", "name", "host"),
    [
        ("google", "Google", "www.google.com"),
        ("facebook", "Facebook", "www.facebook.com"),
        ("twitter", "Twitter", "twitter.com"),
        ("linkedin", "LinkedIn", "www.linkedin.com"),
    ],
)
def test_provider_sign_in_posts_token_to_token_url(
    emu: IdentityCloudEmulator, url: str, provider: str, name: str, host: str
) -> None:
    token_url = "https://app.example/token?nonce=a&b=<x>"
    r = requests.get(f"{url}/{provider}/start", params={"token_url": token_url}, timeout=TIMEOUT)
    assert r.status_code == 200
    page = parse_html(r.text)
    assert page.title == f"Sign in with {name}"
    [form] = page.forms
    assert form["method"] == "post"
    assert form["action"] == f"/{provider}/callback"
    assert form["fields"]["token_url"]["value"] == token_url
    assert form["fields"]["user"]["value"] == "alice"

    fields = {k: v["value"] for k, v in form["fields"].items()}
    r = requests.post(f"{url}{form['action']}", data=fields, timeout=TIMEOUT)
    assert r.status_code == 200
    page = parse_html(r.text)
    [form] = page.forms
    assert form["method"] == "post"
    assert form["action"] == token_url
    assert set(form["fields"]) == {"token"}
    assert "submit()" in (page.body_attrs.get("onload") or "")
    token = form["fields"]["token"]["value"]
    assert re.fullmatch(r"[0-9a-f]{40}", token)

    body = auth_info(url, apiKey=API_KEY, token=token, tokenUrl=token_url).json()
    assert body["stat"] == "ok"
    assert body["profile"]["identifier"] == f"https://{host}/profile/alice"
    assert body["profile"]["providerName"] == name


def test_provider_callback_with_get_redirect(emu: IdentityCloudEmulator, url: str) -> None:
    emu.post_to_token_url = False
    r = requests.post(
        f"{url}/google/callback",
        data={"token_url": TOKEN_URL, "user": "bob"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert r.status_code == 302
    location = r.headers["Location"]
    assert location.startswith(TOKEN_URL + "&token=")
    token = location.rsplit("=", 1)[1]
    assert auth_info(url, apiKey=API_KEY, token=token, tokenUrl=TOKEN_URL).json()["stat"] == "ok"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/google/start", 400),
        ("/google/start?token_url=" + quote("javascript:alert(1)"), 400),
        ("/google/start?token_url=" + quote("/relative"), 400),
        ("/myspacebook/start?token_url=" + quote(TOKEN_URL), 404),
    ],
)
def test_provider_start_rejects(url: str, path: str, status: int) -> None:
    assert requests.get(url + path, timeout=TIMEOUT).status_code == status


@pytest.mark.parametrize("user", ["", "a b", "../x", "x" * 65])
def test_provider_callback_rejects_bad_user(emu: IdentityCloudEmulator, url: str, user: str) -> None:
    r = requests.post(f"{url}/google/callback", data={"token_url": TOKEN_URL, "user": user}, timeout=TIMEOUT)
    assert r.status_code == 400


def test_token_url_allow_list(emu: IdentityCloudEmulator, url: str) -> None:
    emu.token_url_domains = ("app.example",)
    ok = requests.get(
        f"{url}/google/start", params={"token_url": "https://www.app.example/t"}, timeout=TIMEOUT
    )
    bad = requests.get(f"{url}/google/start", params={"token_url": "https://evil.example/t"}, timeout=TIMEOUT)
    assert (ok.status_code, bad.status_code) == (200, 400)
    r = requests.post(
        f"{url}/google/callback", data={"token_url": "https://evil.example/t", "user": "a"}, timeout=TIMEOUT
    )
    assert r.status_code == 400


# ------------------------------------------------------------------------------- /_emulator helpers


def test_emulator_access_token_endpoint(emu: IdentityCloudEmulator, url: str) -> None:
    r = requests.post(
        f"{url}/_emulator/access_tokens", json={"user_id": "demo-1", "expires_in": 60}, timeout=TIMEOUT
    )
    assert r.status_code == 200
    access_token = r.json()["access_token"]
    identifier = "https://twitter.com/profile/demo"
    token = emu.issue_token(TOKEN_URL, identifier)
    assert link(url, token=token, access_token=access_token).json() == {"stat": "ok"}
    assert emu.owner_of(identifier) == "demo-1"
    links = requests.get(f"{url}/_emulator/links", params={"user_id": "demo-1"}, timeout=TIMEOUT).json()
    assert links["identifiers"] == [identifier]
    assert requests.post(f"{url}/_emulator/access_tokens", json={}, timeout=TIMEOUT).status_code == 400


def test_emulator_tokens_faults_reset_endpoints(emu: IdentityCloudEmulator, url: str) -> None:
    r = requests.post(
        f"{url}/_emulator/tokens", json={"token_url": TOKEN_URL, "provider": "Facebook"}, timeout=TIMEOUT
    )
    token = r.json()["token"]
    assert urlsplit(r.json()["identifier"]).hostname == "www.facebook.com"
    r = requests.post(
        f"{url}/_emulator/faults",
        json={"endpoint": "auth_info", "kind": "http_500", "times": 1},
        timeout=TIMEOUT,
    )
    assert r.json() == {"stat": "ok"}
    assert auth_info(url, apiKey=API_KEY, token=token).status_code == 500
    assert auth_info(url, apiKey=API_KEY, token=token).json()["stat"] == "ok"
    bad = requests.post(
        f"{url}/_emulator/faults", json={"endpoint": "auth_info", "kind": "nope"}, timeout=TIMEOUT
    )
    assert bad.status_code == 400
    assert requests.post(f"{url}/_emulator/reset", timeout=TIMEOUT).json() == {"stat": "ok"}
    assert emu.token_status(token) is None


def test_emulator_tokens_endpoint_gives_access_credentials_of_any_size(url: str) -> None:
    credentials = {"type": "OAuth", "oauthToken": "t" * 60 * 1024}
    issued = requests.post(
        f"{url}/_emulator/tokens",
        json={"token_url": TOKEN_URL, "provider": "Facebook", "access_credentials": credentials},
        timeout=TIMEOUT,
    ).json()
    body = auth_info(url, apiKey=API_KEY, token=issued["token"]).json()
    assert body["accessCredentials"] == credentials
    bad = requests.post(
        f"{url}/_emulator/tokens",
        json={"token_url": TOKEN_URL, "access_credentials": "not an object"},
        timeout=TIMEOUT,
    )
    assert bad.status_code == 400


def test_fault_kinds_are_stable_strings() -> None:
    assert {k.value for k in FaultKind} == {
        "http_500",
        "not_json",
        "delay",
        "late_reply",
        "reset",
        "service_unavailable",
        "social_login_error",
        "capture_error",
    }


def test_fault_social_login_error(emu: IdentityCloudEmulator, url: str) -> None:
    emu.set_fault("add_or_update_access_token", Fault.social_login_error(8))
    assert sl_error(add_or_update(url)) == (8, "Error injected by the emulator")
    assert sl_error(add_or_update(url))[0] == 0  # one call only: the next is checked as usual (no params)


def test_admin_calls_counts_calls_per_endpoint(emu: IdentityCloudEmulator, url: str) -> None:
    add_or_update(url)
    add_or_update(url)
    auth_info(url)
    counts = requests.get(f"{url}/_emulator/calls", timeout=TIMEOUT).json()["calls"]
    assert (counts["add_or_update_access_token"], counts["auth_info"]) == (2, 1)
