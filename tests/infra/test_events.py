"""events/: every file is an HTTP API 2.0 event that gives, through lambda_handler, the outcome its name says.

The handler here is configured as `sam local invoke --env-vars events/env.json` would configure it (a
second copy of the function's app module, loaded with env.json's values), except where AWS and
Identity Cloud are: moto runs in-process (no AWS_ENDPOINT_URL), and the emulator on a free port (both
upstream URLs). Each test seeds every
event's state with devtools/sam_events.py, as `make run` does, then runs one event.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import subprocess
from collections.abc import Iterator
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model

from devtools.local_stack import KEY_ALIAS, LocalAws, StackConfig, local_function_environment
from devtools.sam_cli import sam_environment, sam_executable
from devtools.sam_events import (
    EARLIER_ATTEMPT,
    ENV_FILE,
    LINK_IDENTIFIER,
    REGISTRATION_USER_ID,
    SEEDERS,
    SIGN_IN_IDENTIFIER,
    EventWorld,
    load_events,
    seed,
)
from devtools.template import FUNCTION_ID, function_environment, table_env_vars
from emulator import DEFAULT_API_KEY, EmulatorServer, IdentityCloudEmulator, serve
from testkit.lambda_context import FakeLambdaContext
from tests.function_world import SECRET_NAME, Aws
from token_url.cookies import BROWSER_COOKIE, SESSION_COOKIE
from token_url.models import Intent
from token_url.secure_values import digest

# Every event file, and the test below that checks its outcome.
EVENT_NAMES = {
    "health",
    "token-url-sign-in",
    "token-sign-in",
    "token-link",
    "token-replayed",
    "token-missing-token",
    "token-wrong-content-type",
    "session-create",
    "session-create-wrong-content-type",
    "session-read",
    "session-delete",
    "credentials-store",
}
APP_URL = "http://localhost:3000/demo/"
SAMPLE_EVENTS_SOCIAL_LOGIN_ORIGIN = "http://127.0.0.1:3002"


@pytest.fixture(scope="module")
def env_file() -> dict[str, dict[str, str]]:
    loaded: dict[str, dict[str, str]] = json.loads(ENV_FILE.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def events_emulator_server() -> Iterator[EmulatorServer]:
    """The emulator as `make run` configures it (its default keys and flow, token URLs on localhost)."""
    server = serve(IdentityCloudEmulator(token_url_domains=["localhost"]))
    yield server
    server.shutdown()


@pytest.fixture
def events_emulator(events_emulator_server: EmulatorServer) -> IdentityCloudEmulator:
    events_emulator_server.emulator.reset()
    return events_emulator_server.emulator


@pytest.fixture(scope="module")
def sam_local_app(
    app_module: ModuleType, env_file: dict[str, dict[str, str]], events_emulator_server: EmulatorServer
) -> ModuleType:
    """The function's app module, imported anew with events/env.json's environment."""
    environment = dict(env_file[FUNCTION_ID])
    environment.pop("AWS_ENDPOINT_URL")  # moto is in-process here, not a server
    environment["SOCIAL_LOGIN_BASE_URL"] = environment["CAPTURE_BASE_URL"] = events_emulator_server.url
    # The sample token POSTs carry the Origin of make run's emulator, whose port this emulator does not have.
    environment["TOKEN_POST_ORIGINS"] = SAMPLE_EVENTS_SOCIAL_LOGIN_ORIGIN
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        spec = importlib.util.spec_from_file_location("app_as_sam_local_invoke", app_module.__file__)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return module


@pytest.fixture
def world(aws: Aws, sam_local_app: ModuleType, events_emulator: IdentityCloudEmulator) -> EventWorld:
    # The stack's secret holds the emulator's default apiKey, as `make run`'s does.
    aws.secrets.put_secret_value(SecretId=SECRET_NAME, SecretString=DEFAULT_API_KEY)
    sam_local_app.service.api_key_source.clear_cache()
    settings = sam_local_app.service.settings
    world = EventWorld.connect(
        dynamodb=aws.dynamodb,
        kms=aws.kms,
        nonces_table=settings.nonces_table,
        sessions_table=settings.sessions_table,
        key_id=settings.credentials_key_id,
        emulator=events_emulator,
        token_endpoint=settings.token_endpoint,
    )
    seed(world)
    return world


def invoke(app: ModuleType, name: str) -> dict[str, Any]:
    """Run events/<name>.json through lambda_handler, as `sam local invoke -e` does."""
    reply: dict[str, Any] = app.lambda_handler(load_events()[name].event, FakeLambdaContext())
    return reply


def redirect_query(reply: dict[str, Any]) -> dict[str, list[str]]:
    assert reply["statusCode"] == 303, reply
    location = reply["headers"]["Location"]
    assert location.startswith(APP_URL), location
    return parse_qs(urlsplit(location).query)


def set_cookies(reply: dict[str, Any]) -> dict[str, str]:
    cookies = {}
    for header in reply.get("cookies", []):
        name, _, rest = header.partition("=")
        cookies[name] = rest
    return cookies


def body(reply: dict[str, Any]) -> Any:
    raw = reply["body"]
    return json.loads(base64.b64decode(raw) if reply.get("isBase64Encoded") else raw)


# ---------------------------------------------------------------- the files themselves


def test_every_event_file_has_a_seeder_and_a_test() -> None:
    assert set(load_events()) == EVENT_NAMES
    assert set(SEEDERS) == EVENT_NAMES


@pytest.fixture(scope="module")
def sam_sample_event() -> dict[str, Any]:
    """What `sam local generate-event apigateway http-api-proxy` prints: the shape of an HTTP API event."""
    generated = subprocess.run(  # noqa: S603 - the repository's own sam
        [str(sam_executable()), "local", "generate-event", "apigateway", "http-api-proxy"],
        capture_output=True,
        text=True,
        env=sam_environment(),
        timeout=120,
        check=True,
    )
    sample: dict[str, Any] = json.loads(generated.stdout)
    return sample


# Maps whose keys are the request's own (header names, query parameters): only their values' kind is fixed.
FREE_FORM_MAPS = {"/headers", "/queryStringParameters", "/pathParameters", "/stageVariables"}


def _shape_problems(event: Any, sample: Any, path: str = "") -> list[str]:
    """Keys of `event` that the sample does not have, or whose kind of value differs."""
    problems = []
    if path in FREE_FORM_MAPS and isinstance(event, dict):
        problems += [
            f"{path}/{key} is not a string" for key, value in event.items() if not isinstance(value, str)
        ]
    elif isinstance(sample, dict) and isinstance(event, dict):
        for key, value in event.items():
            if key not in sample:
                problems.append(f"{path}/{key} is not in the sample event")
            else:
                problems += _shape_problems(value, sample[key], f"{path}/{key}")
    elif type(event) is not type(sample):
        problems.append(f"{path} is a {type(event).__name__}, the sample has a {type(sample).__name__}")
    return problems


@pytest.mark.parametrize("name", sorted(EVENT_NAMES))
def test_event_is_an_http_api_v2_event(name: str, sam_sample_event: dict[str, Any]) -> None:
    event = load_events()[name].event
    APIGatewayProxyEventV2Model.model_validate(event)
    assert event["version"] == "2.0"
    method, path = event["requestContext"]["http"]["method"], event["rawPath"]
    assert event["routeKey"] == event["requestContext"]["routeKey"] == f"{method} {path}"
    assert event["requestContext"]["http"]["path"] == path
    assert all(header == header.lower() for header in event["headers"]), "HTTP API lower-cases header names"
    # The IAM authorizer's context is the one part the sample (a JWT authorizer) cannot show.
    comparable = json.loads(json.dumps(event))
    authorizer = comparable["requestContext"].pop("authorizer", None)
    assert _shape_problems(comparable, sam_sample_event) == []
    if authorizer is not None:
        assert set(authorizer) == {"iam"}
        assert authorizer["iam"]["userArn"].startswith("arn:aws:iam::")


def test_the_shape_check_can_fail(sam_sample_event: dict[str, Any]) -> None:
    event = json.loads(json.dumps(load_events()["health"].event))
    event["requestContext"]["httpMethod"] = "GET"  # a REST API (payload 1.0) field
    event["cookies"] = "a=b"
    event["headers"]["x-count"] = 1
    assert sorted(_shape_problems(event, sam_sample_event)) == [
        "/cookies is a str, the sample has a list",
        "/headers/x-count is not a string",
        "/requestContext/httpMethod is not in the sample event",
    ]


def test_env_file_is_what_make_run_gives_the_function(
    env_file: dict[str, dict[str, str]], template: dict[str, Any]
) -> None:
    config = StackConfig.from_environ({})  # make run's defaults: PORT 3000, moto on 3001, emulator on 3002
    aws = LocalAws(
        endpoint_url=f"http://127.0.0.1:{config.moto_port}", tables=table_env_vars(template), key_id=KEY_ALIAS
    )
    expected = local_function_environment(template, config, aws, f"http://127.0.0.1:{config.emulator_port}")
    constants = {name for name, value in function_environment(template).items() if isinstance(value, str)}
    assert set(env_file) == {FUNCTION_ID}
    assert env_file[FUNCTION_ID] == {name: value for name, value in expected.items() if name not in constants}


def test_env_file_sets_only_variables_the_template_declares(
    env_file: dict[str, dict[str, str]], template: dict[str, Any]
) -> None:
    # sam local invoke ignores, silently, a variable the template does not declare.
    assert set(env_file[FUNCTION_ID]) <= set(function_environment(template))


# ---------------------------------------------------------------- outcomes


def test_health(sam_local_app: ModuleType, world: EventWorld) -> None:
    reply = invoke(sam_local_app, "health")
    assert reply["statusCode"] == 200
    assert body(reply) == {"status": "ok"}


def test_token_url_sign_in_gives_a_token_url_and_a_browser_cookie(
    sam_local_app: ModuleType, world: EventWorld
) -> None:
    reply = invoke(sam_local_app, "token-url-sign-in")
    assert reply["statusCode"] == 200, reply
    assert body(reply)["token_url"].startswith("http://localhost:3000/token?nonce=")
    assert BROWSER_COOKIE in set_cookies(reply)


def test_token_sign_in_signs_in(sam_local_app: ModuleType, world: EventWorld, aws: Aws) -> None:
    def sign_ins() -> int:
        return sum(
            item.get("identifier", {}).get("S") == SIGN_IN_IDENTIFIER for item in aws.items("SessionsTable")
        )

    before = sign_ins()
    reply = invoke(sam_local_app, "token-sign-in")
    assert redirect_query(reply) == {"result": ["signed_in"]}
    assert SESSION_COOKIE in set_cookies(reply)
    assert sign_ins() == before + 1


def test_token_link_links(
    sam_local_app: ModuleType, world: EventWorld, events_emulator: IdentityCloudEmulator
) -> None:
    assert events_emulator.linked_identities(REGISTRATION_USER_ID) == []
    reply = invoke(sam_local_app, "token-link")
    assert redirect_query(reply) == {"result": ["linked"]}
    assert events_emulator.linked_identities(REGISTRATION_USER_ID) == [LINK_IDENTIFIER]


def test_token_replayed_is_refused_without_calling_social_login(
    sam_local_app: ModuleType, world: EventWorld, events_emulator: IdentityCloudEmulator, aws: Aws
) -> None:
    sample = load_events()["token-replayed"]
    # The seeded one-time value is this event's, and an earlier attempt spent it.
    item = aws.dynamodb.get_item(TableName="NoncesTable", Key={"pk": {"S": digest("nonce", sample.nonce)}})
    assert item["Item"]["consumed_by"] == {"S": EARLIER_ATTEMPT}
    reply = invoke(sam_local_app, "token-replayed")
    assert redirect_query(reply) == {"error": ["token_url_invalid"]}
    assert set_cookies(reply) == {}
    assert events_emulator.calls_to("auth_info") == []


def test_the_replayed_event_signs_in_while_its_one_time_value_is_unspent(
    sam_local_app: ModuleType, world: EventWorld
) -> None:
    # The control of the test above: spending the value is the only reason that event is refused.
    world.one_time_value(load_events()["token-replayed"], Intent.SIGN_IN)
    assert redirect_query(invoke(sam_local_app, "token-replayed")) == {"result": ["signed_in"]}


@pytest.mark.parametrize("name", ["token-missing-token", "token-wrong-content-type"])
def test_malformed_token_posts_are_invalid_requests(
    name: str, sam_local_app: ModuleType, world: EventWorld, events_emulator: IdentityCloudEmulator
) -> None:
    reply = invoke(sam_local_app, name)
    assert redirect_query(reply) == {"error": ["invalid_request"]}
    assert events_emulator.calls == []


def test_session_create_stores_a_registration_session(
    sam_local_app: ModuleType, world: EventWorld, aws: Aws
) -> None:
    before = len(aws.items("SessionsTable"))
    reply = invoke(sam_local_app, "session-create")
    assert reply["statusCode"] == 200, reply
    view = body(reply)
    assert view["signed_in"] is True
    assert view["capture"] is True
    assert SESSION_COOKIE in set_cookies(reply)
    assert len(aws.items("SessionsTable")) == before + 1


def test_session_create_with_wrong_content_type_is_415(
    sam_local_app: ModuleType, world: EventWorld, aws: Aws
) -> None:
    before = aws.items("SessionsTable")
    reply = invoke(sam_local_app, "session-create-wrong-content-type")
    assert reply["statusCode"] == 415
    assert body(reply)["error"] == "unsupported_media_type"
    assert aws.items("SessionsTable") == before


def test_session_read_shows_the_signed_in_identity(sam_local_app: ModuleType, world: EventWorld) -> None:
    reply = invoke(sam_local_app, "session-read")
    assert reply["statusCode"] == 200, reply
    view = body(reply)
    assert (view["signed_in"], view["identifier"], view["provider"]) == (True, SIGN_IN_IDENTIFIER, "Google")


def test_session_delete_signs_out(sam_local_app: ModuleType, world: EventWorld) -> None:
    delete = load_events()["session-delete"].event
    read_the_deleted_session = {**load_events()["session-read"].event, "cookies": delete["cookies"]}

    def read_status() -> int:
        reply: dict[str, Any] = sam_local_app.lambda_handler(read_the_deleted_session, FakeLambdaContext())
        return int(reply["statusCode"])

    assert read_status() == 200
    reply = invoke(sam_local_app, "session-delete")
    assert reply["statusCode"] == 204
    assert set_cookies(reply)[SESSION_COOKIE].startswith(";")  # emptied
    assert read_status() == 401
    assert invoke(sam_local_app, "session-read")["statusCode"] == 200  # another session is untouched


def test_credentials_store_stores_the_provider_token(
    sam_local_app: ModuleType, world: EventWorld, events_emulator: IdentityCloudEmulator
) -> None:
    reply = invoke(sam_local_app, "credentials-store")
    assert reply["statusCode"] == 200, reply
    assert body(reply) == {
        "stored": True,
        "identifier": "http://www.facebook.com/profile.php?id=100000000000001",
        "provider": "Facebook",
    }
    assert events_emulator.stored_access_tokens == {
        "http://www.facebook.com/profile.php?id=100000000000001": "EAAEventFacebookUserAccessToken0001"
    }


def test_running_a_token_event_twice_replays_its_outcome(
    sam_local_app: ModuleType, world: EventWorld, events_emulator: IdentityCloudEmulator
) -> None:
    # `sam local invoke` of the same file twice is a double submit: the same outcome, one upstream call.
    assert redirect_query(invoke(sam_local_app, "token-sign-in")) == {"result": ["signed_in"]}
    assert redirect_query(invoke(sam_local_app, "token-sign-in")) == {"result": ["signed_in"]}
    assert len(events_emulator.calls_to("auth_info")) == 1
