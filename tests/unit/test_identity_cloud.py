"""The Identity Cloud client against the in-project emulator over loopback."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator
from typing import cast

import pytest
import requests

from emulator import EmulatorServer, Fault, IdentityCloudEmulator, serve
from tests.function_world import API_KEY as KEY
from tests.function_world import CLIENT_ID, FLOW, FLOW_VERSION, LOCALE
from tests.function_world import EMULATOR_DEFAULTS as EMULATOR_SETTINGS
from token_url.errors import CaptureError, ConfigurationProblem, ServiceUnavailable, SocialLoginError
from token_url.identity_cloud import CaptureFlow, IdentityCloudClient, new_http_session

REDIRECT_URI = "https://app.example.test/"
TOKEN_URL = "https://api.example.test/token?nonce=n0nce"
FACEBOOK_ID = "https://www.facebook.com/profile/alice"
GOOGLE_ID = "https://www.google.com/profile/alice"
REQUEST_ID = re.compile(r"^[a-z0-9]{16}$")


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    emulator_server = serve(IdentityCloudEmulator(**EMULATOR_SETTINGS))
    yield emulator_server
    emulator_server.shutdown()


@pytest.fixture
def emu(server: EmulatorServer) -> Iterator[IdentityCloudEmulator]:
    emulator = server.emulator
    emulator.reset()
    for name, value in EMULATOR_SETTINGS.items():
        setattr(emulator, name, value)
    yield emulator
    emulator.reset()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = new_http_session()
    yield session
    session.close()


def make_client(
    server: EmulatorServer,
    http: requests.Session,
    *,
    api_key: str = KEY,
    flow_version: str = FLOW_VERSION,
    read_timeout: float = 3.0,
) -> IdentityCloudClient:
    return IdentityCloudClient(
        social_login_base_url=server.url + "/",
        capture_base_url=server.url,
        capture_flow=CaptureFlow(
            client_id=CLIENT_ID,
            flow=FLOW,
            flow_version=flow_version,
            locale=LOCALE,
            redirect_uri=REDIRECT_URI,
        ),
        api_key=lambda: api_key,
        http=http,
        timeout=(1.0, read_timeout),
    )


def client_at(
    base_url: str,
    http: requests.Session,
    *,
    timeout: tuple[float, float] = (0.5, 0.5),
    seconds_left: Callable[[], float | None] = lambda: None,
) -> IdentityCloudClient:
    """A client whose Social Login and Capture are both `base_url`, with the test settings."""
    return IdentityCloudClient(
        social_login_base_url=base_url,
        capture_base_url=base_url,
        capture_flow=CaptureFlow(CLIENT_ID, FLOW, FLOW_VERSION, LOCALE, REDIRECT_URI),
        api_key=lambda: KEY,
        http=http,
        timeout=timeout,
        seconds_left=seconds_left,
    )


@pytest.fixture
def client(server: EmulatorServer, http: requests.Session, emu: IdentityCloudEmulator) -> IdentityCloudClient:
    return make_client(server, http)


# ---------------------------------------------------------------- auth_info


def test_auth_info_returns_the_profile_and_credentials(
    client: IdentityCloudClient, emu: IdentityCloudEmulator
) -> None:
    credentials = {"type": "Facebook", "accessToken": "provider-secret", "uid": "alice"}
    token = emu.issue_token(
        TOKEN_URL,
        FACEBOOK_ID,
        "Facebook",
        profile={"displayName": "Alice Example", "preferredUsername": "alice"},
        access_credentials=credentials,
    )

    info = client.auth_info(token=token, token_url=TOKEN_URL)

    assert info.profile.identifier == FACEBOOK_ID
    assert info.profile.provider_name == "Facebook"
    assert info.profile.display_name == "Alice Example"
    assert info.access_credentials == credentials
    assert emu.token_status(token) == "read"


def test_auth_info_sends_its_parameters_in_the_post_body_only(
    client: IdentityCloudClient, emu: IdentityCloudEmulator
) -> None:
    token = emu.issue_token(TOKEN_URL, FACEBOOK_ID)

    client.auth_info(token=token, token_url=TOKEN_URL)

    [call] = emu.calls_to("auth_info")
    assert call.method == "POST"
    assert call.path == "/api/v2/auth_info"
    assert call.query == {}
    assert call.form == {"apiKey": KEY, "token": token, "extended": "false", "tokenUrl": TOKEN_URL}
    assert (call.content_type or "").startswith("application/x-www-form-urlencoded")
    assert call.header("User-Agent") == "token-url/0.1 (+aws-lambda)"


@pytest.mark.parametrize("error_status", [400, 200])
def test_unknown_token_is_code_2(
    client: IdentityCloudClient, emu: IdentityCloudEmulator, error_status: int
) -> None:
    emu.social_login_error_status = error_status

    with pytest.raises(SocialLoginError) as caught:
        client.auth_info(token="f" * 40, token_url=TOKEN_URL)

    assert caught.value.endpoint == "auth_info"
    assert caught.value.code == SocialLoginError.DATA_NOT_FOUND
    assert caught.value.token_url_mismatch is False
    assert emu.calls_to("auth_info")[0].status == error_status


@pytest.mark.parametrize("error_status", [400, 200])
def test_token_url_mismatch_is_code_3_flagged_as_mismatch(
    client: IdentityCloudClient, emu: IdentityCloudEmulator, error_status: int
) -> None:
    emu.social_login_error_status = error_status
    token = emu.issue_token(TOKEN_URL, FACEBOOK_ID)

    with pytest.raises(SocialLoginError) as caught:
        client.auth_info(token=token, token_url="https://api.example.test/token?nonce=other")

    assert caught.value.code == SocialLoginError.AUTHENTICATION_ERROR
    assert caught.value.token_url_mismatch is True


@pytest.mark.parametrize("error_status", [400, 200])
def test_wrong_api_key_is_code_3_without_mismatch(
    server: EmulatorServer, http: requests.Session, emu: IdentityCloudEmulator, error_status: int
) -> None:
    emu.social_login_error_status = error_status
    token = emu.issue_token(TOKEN_URL, FACEBOOK_ID)
    client = make_client(server, http, api_key="ffffffffffffffffffffffffffffffffffffffff")

    with pytest.raises(SocialLoginError) as caught:
        client.auth_info(token=token, token_url=TOKEN_URL)

    assert caught.value.code == SocialLoginError.AUTHENTICATION_ERROR
    assert caught.value.token_url_mismatch is False
    assert emu.token_status(token) == "fresh"


def test_code_minus_1_is_service_unavailable(client: IdentityCloudClient, emu: IdentityCloudEmulator) -> None:
    emu.set_fault("auth_info", Fault.service_unavailable())
    token = emu.issue_token(TOKEN_URL, FACEBOOK_ID)

    with pytest.raises(ServiceUnavailable) as caught:
        client.auth_info(token=token, token_url=TOKEN_URL)

    assert caught.value.service == "social_login"
    assert caught.value.reason == "auth_info: code -1"
    assert len(emu.calls_to("auth_info")) == 1


@pytest.mark.parametrize(
    "fault", [Fault.http_500(), Fault.not_json(), Fault.reset()], ids=["http_500", "not_json", "reset"]
)
def test_broken_replies_are_service_unavailable_and_not_resent(
    client: IdentityCloudClient, emu: IdentityCloudEmulator, fault: Fault
) -> None:
    emu.set_fault("auth_info", fault)
    token = emu.issue_token(TOKEN_URL, FACEBOOK_ID)

    with pytest.raises(ServiceUnavailable) as caught:
        client.auth_info(token=token, token_url=TOKEN_URL)

    assert caught.value.service == "social_login"
    assert caught.value.reason.startswith("auth_info: ")
    assert [call.fault for call in emu.calls_to("auth_info")] == [fault.kind.value]


def test_slow_reply_times_out_without_a_second_send(
    server: EmulatorServer, http: requests.Session, emu: IdentityCloudEmulator
) -> None:
    client = make_client(server, http, read_timeout=0.3)
    emu.set_fault("auth_info", Fault.delay(1.0))
    token = emu.issue_token(TOKEN_URL, FACEBOOK_ID)

    with pytest.raises(ServiceUnavailable) as caught:
        client.auth_info(token=token, token_url=TOKEN_URL)

    assert caught.value.service == "social_login"
    # Reported as a timeout (the "timeout" branch of the client), not as a generic connection error.
    assert caught.value.reason == "auth_info: timeout"
    assert len(emu.calls_to("auth_info")) == 1


def test_unreachable_host_is_service_unavailable(http: requests.Session) -> None:
    with socket.socket() as probe:  # a port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = client_at(f"http://127.0.0.1:{port}", http)

    with pytest.raises(ServiceUnavailable) as caught:
        client.auth_info(token="f" * 40, token_url=TOKEN_URL)

    assert caught.value.service == "social_login"
    assert caught.value.reason == "auth_info: ConnectionError"


# ---------------------------------------------------------------- add_or_update_access_token


def test_add_or_update_access_token_stores_the_token(
    client: IdentityCloudClient, emu: IdentityCloudEmulator
) -> None:
    client.add_or_update_access_token(identifier=FACEBOOK_ID, token="provider-token-1")

    assert emu.stored_access_tokens == {FACEBOOK_ID: "provider-token-1"}
    [call] = emu.calls_to("add_or_update_access_token")
    assert call.query == {}
    assert call.form == {"apiKey": KEY, "token": "provider-token-1", "identifier": FACEBOOK_ID}


def test_add_or_update_access_token_for_an_unsupported_provider_is_code_11(
    client: IdentityCloudClient, emu: IdentityCloudEmulator
) -> None:
    with pytest.raises(SocialLoginError) as caught:
        client.add_or_update_access_token(identifier=GOOGLE_ID, token="provider-token-1")

    assert caught.value.endpoint == "add_or_update_access_token"
    assert caught.value.code == SocialLoginError.FEATURE_NOT_SUPPORTED
    assert caught.value.token_url_mismatch is False
    assert emu.stored_access_tokens == {}


# ---------------------------------------------------------------- link_account_native


def test_link_account_native_links_the_identity(
    client: IdentityCloudClient, emu: IdentityCloudEmulator
) -> None:
    access_token = emu.mint_access_token("user-1")
    token = emu.issue_token(TOKEN_URL, FACEBOOK_ID)

    assert client.link_account_native(token=token, access_token=access_token) is None

    assert emu.owner_of(FACEBOOK_ID) == "user-1"
    [call] = emu.calls_to("link_account_native")
    assert call.path == "/oauth/link_account_native"
    assert call.query == {}
    assert call.form == {
        "client_id": CLIENT_ID,
        "flow": FLOW,
        "flow_version": FLOW_VERSION,
        "locale": LOCALE,
        "redirect_uri": REDIRECT_URI,
        "token": token,
        "access_token": access_token,
    }


def link_error(client: IdentityCloudClient, *, token: str, access_token: str) -> CaptureError:
    with pytest.raises(CaptureError) as caught:
        client.link_account_native(token=token, access_token=access_token)
    assert caught.value.endpoint == "link_account_native"
    assert caught.value.request_id is not None
    assert REQUEST_ID.fullmatch(caught.value.request_id)
    return caught.value


def test_identity_linked_to_another_user_is_361(
    client: IdentityCloudClient, emu: IdentityCloudEmulator
) -> None:
    emu.link(FACEBOOK_ID, "user-2")
    error = link_error(
        client, token=emu.issue_token(TOKEN_URL, FACEBOOK_ID), access_token=emu.mint_access_token("user-1")
    )

    assert (error.code, error.error) == (CaptureError.UNIQUE_VIOLATION, "unique_violation")
    assert emu.owner_of(FACEBOOK_ID) == "user-2"


def test_unknown_access_token_is_413(client: IdentityCloudClient, emu: IdentityCloudEmulator) -> None:
    error = link_error(
        client, token=emu.issue_token(TOKEN_URL, FACEBOOK_ID), access_token="unknownaccesstoken"
    )

    assert (error.code, error.error) == (CaptureError.INVALID_ACCESS_TOKEN, "invalid_access_token")


def test_expired_access_token_is_414(client: IdentityCloudClient, emu: IdentityCloudEmulator) -> None:
    access_token = emu.mint_access_token("user-1")
    emu.expire_access_token(access_token)

    error = link_error(client, token=emu.issue_token(TOKEN_URL, FACEBOOK_ID), access_token=access_token)

    assert (error.code, error.error) == (CaptureError.ACCESS_TOKEN_EXPIRED, "access_token_expired")


@pytest.mark.parametrize("state", ["unknown", "expired"])
def test_unusable_social_token_is_400(
    client: IdentityCloudClient, emu: IdentityCloudEmulator, state: str
) -> None:
    token = "f" * 40
    if state == "expired":
        token = emu.issue_token(TOKEN_URL, FACEBOOK_ID)
        emu.expire_token(token)

    error = link_error(client, token=token, access_token=emu.mint_access_token("user-1"))

    assert (error.code, error.error) == (CaptureError.ENGAGE_ERROR, "engage_error")
    assert emu.owner_of(FACEBOOK_ID) is None


def test_client_without_login_feature_is_403(client: IdentityCloudClient, emu: IdentityCloudEmulator) -> None:
    emu.client_has_login_feature = False

    error = link_error(
        client, token=emu.issue_token(TOKEN_URL, FACEBOOK_ID), access_token=emu.mint_access_token("user-1")
    )

    assert (error.code, error.error) == (CaptureError.PERMISSION_ERROR, "permission_error")


def test_unknown_flow_version_is_500(
    server: EmulatorServer, http: requests.Session, emu: IdentityCloudEmulator
) -> None:
    client = make_client(server, http, flow_version="20200101000000000000")

    error = link_error(
        client, token=emu.issue_token(TOKEN_URL, FACEBOOK_ID), access_token=emu.mint_access_token("user-1")
    )

    assert (error.code, error.error) == (CaptureError.UNEXPECTED_ERROR, "unexpected_error")


@pytest.mark.parametrize(
    ("fault", "code", "name"),
    [
        (Fault.capture_error(100, "missing_argument", "missing arguments: token"), 100, "missing_argument"),
        (Fault.capture_error(), 510, "api_limit_error"),
    ],
)
def test_capture_error_envelope_is_parsed(
    client: IdentityCloudClient, emu: IdentityCloudEmulator, fault: Fault, code: int, name: str
) -> None:
    emu.set_fault("link_account_native", fault)

    error = link_error(
        client, token=emu.issue_token(TOKEN_URL, FACEBOOK_ID), access_token=emu.mint_access_token("user-1")
    )

    assert (error.code, error.error) == (code, name)
    assert emu.owner_of(FACEBOOK_ID) is None


def test_capture_outage_is_service_unavailable(
    client: IdentityCloudClient, emu: IdentityCloudEmulator
) -> None:
    emu.set_fault("link_account_native", Fault.http_500())

    with pytest.raises(ServiceUnavailable) as caught:
        client.link_account_native(
            token=emu.issue_token(TOKEN_URL, FACEBOOK_ID), access_token=emu.mint_access_token("user-1")
        )

    assert caught.value.service == "capture"
    assert len(emu.calls_to("link_account_native")) == 1


@pytest.mark.parametrize(
    "fault",
    [Fault.http_500(), Fault.not_json(), Fault.reset(), Fault.late_reply(1.0), Fault.delay(1.0)],
    ids=["http_500", "not_json", "reset_after_sending", "late_reply", "slow_reply"],
)
def test_a_capture_outage_after_sending_says_the_call_may_have_reached_capture(
    server: EmulatorServer, http: requests.Session, emu: IdentityCloudEmulator, fault: Fault
) -> None:
    """The link flow then reads the account to learn whether the link was made."""
    client = make_client(server, http, read_timeout=0.3)
    emu.set_fault("link_account_native", fault)

    with pytest.raises(ServiceUnavailable) as caught:
        client.link_account_native(
            token=emu.issue_token(TOKEN_URL, FACEBOOK_ID), access_token=emu.mint_access_token("user-1")
        )

    assert caught.value.may_have_reached is True
    assert len(emu.calls_to("link_account_native")) == 1


class _Refusing:
    """A requests Session whose every POST raises `error`, as requests does when no connection is made."""

    def __init__(self, error: requests.RequestException) -> None:
        self.error = error

    def post(self, url: str, **kwargs: object) -> requests.Response:
        raise self.error


def test_a_call_that_never_left_says_it_did_not_reach_capture(http: requests.Session) -> None:
    with socket.socket() as probe:  # a port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sessions = {
        "refused": http,
        "connect_timeout": cast(requests.Session, _Refusing(requests.ConnectTimeout("connect timed out"))),
    }
    for how, session in sessions.items():
        client = client_at(f"http://127.0.0.1:{port}", session)

        with pytest.raises(ServiceUnavailable) as caught:
            client.link_account_native(token="f" * 40, access_token="some-access-token")

        assert caught.value.may_have_reached is False, how


def test_a_call_not_started_for_want_of_time_says_it_did_not_reach_capture(
    server: EmulatorServer, http: requests.Session, emu: IdentityCloudEmulator
) -> None:
    client = client_at(server.url, http, timeout=(1.0, 1.0), seconds_left=lambda: 1.0)

    with pytest.raises(ServiceUnavailable) as caught:
        client.link_account_native(token="f" * 40, access_token="some-access-token")

    assert caught.value.may_have_reached is False
    assert emu.calls == []


# ---------------------------------------------------------------- /entity and unlink_account_native


def test_read_account_sends_the_access_token_and_the_attributes_in_the_body(
    client: IdentityCloudClient, emu: IdentityCloudEmulator
) -> None:
    emu.create_user("user-1", display_name="Alice Example", email="alice@example.test")
    emu.link(FACEBOOK_ID, "user-1")
    emu.link(GOOGLE_ID, "user-1")
    access_token = emu.mint_access_token("user-1")

    account = client.read_account(access_token=access_token)

    [call] = emu.calls_to("entity")
    assert call.path == "/entity"
    assert call.query == {}
    assert call.form == {
        "access_token": access_token,
        "attributes": '["uuid", "displayName", "email", "profiles", "password"]',
    }
    assert account.uuid == emu.account("user-1")["uuid"]
    assert (account.display_name, account.email, account.has_password) == (
        "Alice Example",
        "alice@example.test",
        True,
    )
    assert [(p.identifier, p.domain, p.provider) for p in account.profiles] == [
        (FACEBOOK_ID, "facebook.com", "Facebook"),
        (GOOGLE_ID, "google.com", "Google"),
    ]


def test_read_account_of_an_account_without_a_password_or_identities(
    client: IdentityCloudClient, emu: IdentityCloudEmulator
) -> None:
    emu.create_user("user-1", has_password=False)

    account = client.read_account(access_token=emu.mint_access_token("user-1"))

    assert account.has_password is False
    assert account.profiles == []


def test_read_account_keeps_no_password_value(
    client: IdentityCloudClient, emu: IdentityCloudEmulator
) -> None:
    access_token = emu.mint_access_token("user-1")
    stored_password = emu.account("user-1")["password"]
    assert stored_password

    account = client.read_account(access_token=access_token)

    assert account.has_password is True
    assert stored_password not in repr(account)
    assert stored_password not in account.model_dump_json()


def test_unlink_sends_its_six_parameters_in_the_body_and_removes_the_identity(
    client: IdentityCloudClient, emu: IdentityCloudEmulator
) -> None:
    emu.link(FACEBOOK_ID, "user-1")
    emu.link(GOOGLE_ID, "user-1")
    access_token = emu.mint_access_token("user-1")

    assert client.unlink(access_token=access_token, identifier=FACEBOOK_ID) is None

    [call] = emu.calls_to("unlink_account_native")
    assert call.path == "/oauth/unlink_account_native"
    assert call.query == {}
    assert call.form == {
        "client_id": CLIENT_ID,
        "flow": FLOW,
        "flow_version": FLOW_VERSION,
        "locale": LOCALE,
        "access_token": access_token,
        "identifier_to_remove": FACEBOOK_ID,
    }
    assert emu.linked_identities("user-1") == [GOOGLE_ID]
    assert [p.identifier for p in client.read_account(access_token=access_token).profiles] == [GOOGLE_ID]


def capture_call(client: IdentityCloudClient, endpoint: str, access_token: str) -> None:
    if endpoint == "entity":
        client.read_account(access_token=access_token)
    else:
        client.unlink(access_token=access_token, identifier=FACEBOOK_ID)


def refused(client: IdentityCloudClient, endpoint: str, access_token: str) -> CaptureError:
    with pytest.raises(CaptureError) as caught:
        capture_call(client, endpoint, access_token)
    assert caught.value.endpoint == endpoint
    assert caught.value.request_id is not None
    assert REQUEST_ID.fullmatch(caught.value.request_id)
    assert access_token not in str(caught.value)
    return caught.value


ACCOUNT_CALLS = pytest.mark.parametrize("endpoint", ["entity", "unlink_account_native"])


@ACCOUNT_CALLS
def test_account_calls_with_an_unknown_access_token_are_413(
    client: IdentityCloudClient, emu: IdentityCloudEmulator, endpoint: str
) -> None:
    emu.link(FACEBOOK_ID, "user-1")

    error = refused(client, endpoint, "unknownaccesstoken")

    assert (error.code, error.error) == (CaptureError.INVALID_ACCESS_TOKEN, "invalid_access_token")
    assert emu.owner_of(FACEBOOK_ID) == "user-1"


@ACCOUNT_CALLS
def test_account_calls_with_an_expired_access_token_are_414(
    client: IdentityCloudClient, emu: IdentityCloudEmulator, endpoint: str
) -> None:
    emu.link(FACEBOOK_ID, "user-1")
    access_token = emu.mint_access_token("user-1")
    emu.expire_access_token(access_token)

    error = refused(client, endpoint, access_token)

    assert (error.code, error.error) == (CaptureError.ACCESS_TOKEN_EXPIRED, "access_token_expired")
    assert emu.owner_of(FACEBOOK_ID) == "user-1"


def test_unlinking_an_identity_not_on_the_account_is_200(
    client: IdentityCloudClient, emu: IdentityCloudEmulator
) -> None:
    emu.link(FACEBOOK_ID, "user-2")

    error = refused(client, "unlink_account_native", emu.mint_access_token("user-1"))

    assert (error.code, error.error) == (CaptureError.INVALID_ARGUMENT, "invalid_argument")
    assert emu.owner_of(FACEBOOK_ID) == "user-2"


def test_unlink_by_a_client_without_login_feature_is_403(
    client: IdentityCloudClient, emu: IdentityCloudEmulator
) -> None:
    emu.client_has_login_feature = False
    emu.link(FACEBOOK_ID, "user-1")

    error = refused(client, "unlink_account_native", emu.mint_access_token("user-1"))

    assert (error.code, error.error) == (CaptureError.PERMISSION_ERROR, "permission_error")
    assert emu.owner_of(FACEBOOK_ID) == "user-1"


def test_unlink_with_an_unknown_flow_version_is_500(
    server: EmulatorServer, http: requests.Session, emu: IdentityCloudEmulator
) -> None:
    client = make_client(server, http, flow_version="20200101000000000000")
    emu.link(FACEBOOK_ID, "user-1")

    error = refused(client, "unlink_account_native", emu.mint_access_token("user-1"))

    assert (error.code, error.error) == (CaptureError.UNEXPECTED_ERROR, "unexpected_error")
    assert emu.owner_of(FACEBOOK_ID) == "user-1"


@ACCOUNT_CALLS
@pytest.mark.parametrize(
    "fault",
    [Fault.capture_error(100, "missing_argument", "missing arguments: access_token"), Fault.capture_error()],
    ids=["missing_argument", "api_limit_error"],
)
def test_account_calls_parse_the_capture_error_envelope(
    client: IdentityCloudClient, emu: IdentityCloudEmulator, endpoint: str, fault: Fault
) -> None:
    emu.link(FACEBOOK_ID, "user-1")
    emu.set_fault(endpoint, fault)

    error = refused(client, endpoint, emu.mint_access_token("user-1"))

    assert (error.code, error.error) == (fault.code, fault.error)
    assert emu.owner_of(FACEBOOK_ID) == "user-1"


@ACCOUNT_CALLS
@pytest.mark.parametrize(
    "fault", [Fault.http_500(), Fault.not_json(), Fault.reset()], ids=["http_500", "not_json", "reset"]
)
def test_account_call_outages_are_service_unavailable_and_not_resent(
    client: IdentityCloudClient, emu: IdentityCloudEmulator, endpoint: str, fault: Fault
) -> None:
    emu.link(FACEBOOK_ID, "user-1")
    access_token = emu.mint_access_token("user-1")
    emu.set_fault(endpoint, fault)

    with pytest.raises(ServiceUnavailable) as caught:
        capture_call(client, endpoint, access_token)

    assert caught.value.service == "capture"
    assert caught.value.reason.startswith(f"{endpoint}: ")
    assert access_token not in str(caught.value)
    assert [call.fault for call in emu.calls_to(endpoint)] == [fault.kind.value]


class _CannedReply:
    """A requests Session whose every POST answers HTTP 200 with the given JSON."""

    def __init__(self, reply: object) -> None:
        self.reply = reply

    def post(self, url: str, **kwargs: object) -> requests.Response:
        response = requests.Response()
        response.status_code = 200
        response._content = json.dumps(self.reply).encode()
        return response


@pytest.mark.parametrize(
    "reply",
    [
        {"stat": "ok"},
        {"stat": "ok", "result": None},
        {"stat": "ok", "result": {"displayName": "no uuid"}},
        {"stat": "ok", "result": {"uuid": "u-1", "profiles": [{"domain": "google.com"}]}},
        {"stat": "error", "error": "no code"},
    ],
)
def test_entity_reply_without_a_usable_account_is_service_unavailable(reply: dict[str, object]) -> None:
    client = client_at("http://127.0.0.1:9", cast(requests.Session, _CannedReply(reply)), timeout=(1.0, 1.0))

    with pytest.raises(ServiceUnavailable) as caught:
        client.read_account(access_token="canned-access-token")

    assert caught.value.service == "capture"
    assert caught.value.reason.startswith("entity")


@pytest.mark.parametrize(
    "call",
    [
        lambda client: client.link_account_native(token="f" * 40, access_token="some-access-token"),
        lambda client: client.read_account(access_token="some-access-token"),
        lambda client: client.unlink(access_token="some-access-token", identifier=FACEBOOK_ID),
    ],
    ids=["link_account_native", "entity", "unlink_account_native"],
)
def test_capture_calls_without_capture_settings_are_a_configuration_problem(
    server: EmulatorServer,
    http: requests.Session,
    emu: IdentityCloudEmulator,
    call: Callable[[IdentityCloudClient], object],
) -> None:
    client = IdentityCloudClient(
        social_login_base_url=server.url, api_key=lambda: KEY, http=http, timeout=(1.0, 1.0)
    )

    with pytest.raises(ConfigurationProblem) as caught:
        call(client)

    assert caught.value.service == "capture"
    assert emu.calls == []


# ---------------------------------------------------------------- connection reuse


def test_one_session_reuses_one_connection_for_every_call(
    client: IdentityCloudClient, emu: IdentityCloudEmulator
) -> None:
    for _ in range(5):
        client.auth_info(token=emu.issue_token(TOKEN_URL, FACEBOOK_ID), token_url=TOKEN_URL)
        client.add_or_update_access_token(identifier=FACEBOOK_ID, token="provider-token")
    with pytest.raises(SocialLoginError):
        client.auth_info(token="f" * 40, token_url=TOKEN_URL)
    with pytest.raises(CaptureError):
        client.link_account_native(token="f" * 40, access_token="unknownaccesstoken")

    assert len(emu.calls) == 12
    assert emu.connections_accepted == 1
    assert len({call.remote_port for call in emu.calls}) == 1


@pytest.mark.parametrize(
    ("seconds_left", "expected"),
    [(None, (2.0, 6.0)), (30.0, (2.0, 6.0)), (3.0, (1.5, 1.5)), (4.5, (2.0, 3.0)), (1.9, None)],
)
def test_timeouts_are_cut_to_the_lambda_deadline(
    seconds_left: float | None, expected: tuple[float, float] | None
) -> None:
    client = IdentityCloudClient(
        social_login_base_url="http://127.0.0.1:9",
        capture_base_url="http://127.0.0.1:9",
        capture_flow=CaptureFlow("c" * 32, "standard", "1", "en-US", "https://app.example/"),
        api_key=lambda: "k" * 40,
        http=new_http_session(),
        timeout=(2.0, 6.0),
        seconds_left=lambda: seconds_left,
    )
    assert client._bounded_timeout() == expected


def test_an_account_read_may_be_given_a_shorter_read_timeout_than_configured(
    server: EmulatorServer, http: requests.Session, emu: IdentityCloudEmulator
) -> None:
    """A repeated read after a lost link reply must end within the time the flow judged it has."""
    client = make_client(server, http, read_timeout=3.0)
    emu.set_fault("entity", Fault.delay(1.0))
    access_token = emu.mint_access_token("user-1")

    with pytest.raises(ServiceUnavailable) as caught:
        client.read_account(access_token=access_token, read_timeout=0.3)
    assert caught.value.reason == "entity: timeout"

    emu.clear_faults("entity")
    assert client.read_account(access_token=access_token).uuid  # the configured timeout otherwise
