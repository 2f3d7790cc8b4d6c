"""Fixtures: the Identity Cloud emulator on loopback, moto for AWS, and the handler configured for both."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient

# Before anything builds a boto3 client: fake credentials, a region, and no real endpoint.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "token-url-test",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "TokenUrl",
        "POWERTOOLS_SERVICE_NAME": "token-url",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)

from moto import mock_aws  # moto before the handler builds its clients

from devtools.audit_events import AUDIT_BUS, AUDIT_QUEUE, drain, provision_audit_bus
from devtools.template import create_tables, load_template
from emulator import DEFAULT_API_KEY, IdentityCloudEmulator, serve
from tests.leak_guard import LeakGuard, LogLines
from tests.stack_support import RunningStack, start_stack
from tests.support import APP_ORIGIN, APP_URL, PROVIDER_ORIGIN, PUBLIC_BASE_URL, Browser

API_KEY = "a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0"
CLIENT_ID = "12345abcde12345abcde12345abcde12"
FLOW = "standard"
FLOW_VERSION = "20190618143040022299"
LOCALE = "en-US"
SECRET_NAME = "token-url/social-login-api-key"
KEY_ALIAS = "alias/token-url-credentials"
EMULATOR_DEFAULTS = {
    "api_key": API_KEY,
    "capture_client_id": CLIENT_ID,
    "flow": FLOW,
    "flow_version": FLOW_VERSION,
    "locale": LOCALE,
    "client_has_login_feature": True,
    "social_login_error_status": 400,
    "one_time_tokens": True,
    "auth_info_spends_token_for_capture": False,
}


def function_environment(emulator_url: str) -> dict[str, str]:
    return {
        "SOCIAL_LOGIN_BASE_URL": emulator_url,
        "SOCIAL_LOGIN_API_KEY_SECRET": SECRET_NAME,
        "CAPTURE_BASE_URL": emulator_url,
        "CAPTURE_CLIENT_ID": CLIENT_ID,
        "CAPTURE_FLOW": FLOW,
        "CAPTURE_FLOW_VERSION": FLOW_VERSION,
        "CAPTURE_LOCALE": LOCALE,
        "CAPTURE_REDIRECT_URI": "https://app.example.test/",
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "APP_URL": APP_URL,
        "SESSIONS_TABLE": "SessionsTable",
        "NONCES_TABLE": "NoncesTable",
        "IDEMPOTENCY_TABLE": "IdempotencyTable",
        "CREDENTIALS_KEY_ID": KEY_ALIAS,
        # Social Login's pages are on its own domain in production, not on the emulator's loopback port.
        "TOKEN_POST_ORIGINS": f"{PROVIDER_ORIGIN},{APP_ORIGIN}",
        "AUDIT_EVENT_BUS": AUDIT_BUS,
        # Short upstream timeouts keep the slow-upstream tests fast.
        "UPSTREAM_CONNECT_TIMEOUT": "1",
        "UPSTREAM_READ_TIMEOUT": "1",
    }


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[Any]:
    emulator = IdentityCloudEmulator(**EMULATOR_DEFAULTS)
    server = serve(emulator)
    yield server
    server.shutdown()


@pytest.fixture
def emulator(emulator_server: Any) -> Iterator[IdentityCloudEmulator]:
    emulator: IdentityCloudEmulator = emulator_server.emulator
    emulator.reset()
    for name, value in EMULATOR_DEFAULTS.items():
        setattr(emulator, name, value)
    yield emulator
    emulator.reset()


@pytest.fixture(scope="session")
def app_module(emulator_server: Any) -> ModuleType:
    os.environ.update(function_environment(emulator_server.url))
    from token_url import app  # noqa: PLC0415 - the handler reads its settings at import, so after the env is set

    return app


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@dataclass
class Aws:
    dynamodb: Any
    kms: Any
    secrets: Any
    key_id: str
    events: Any
    sqs: Any
    audit_queue_url: str
    """The `token-url-audit` queue, subscribed to the audit bus as the local stack's is."""

    def items(self, table: str) -> list[dict[str, Any]]:
        return list(self.dynamodb.scan(TableName=table)["Items"])

    def audit_events(self) -> list[dict[str, Any]]:
        """The audit events delivered since the last call, each the whole EventBridge event."""
        return drain(self.sqs, self.audit_queue_url)


@pytest.fixture(autouse=True)
def leak_guard(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[LeakGuard]:
    """Fails the test if a secret it used reaches a log, an annotation, output, a body or a stored item."""
    guard = LeakGuard()
    guard.learn(API_KEY, DEFAULT_API_KEY)
    issue_token, mint_access_token = (
        IdentityCloudEmulator.issue_token,
        IdentityCloudEmulator.mint_access_token,
    )

    def issuing(emulator: IdentityCloudEmulator, *args: Any, **kwargs: Any) -> str:
        token = issue_token(emulator, *args, **kwargs)
        guard.learn(token)
        guard.learn_credentials(emulator._tokens[token].access_credentials)
        return token

    def minting(emulator: IdentityCloudEmulator, *args: Any, **kwargs: Any) -> str:
        access_token = mint_access_token(emulator, *args, **kwargs)
        guard.learn(access_token)
        return access_token

    monkeypatch.setattr(IdentityCloudEmulator, "issue_token", issuing)
    monkeypatch.setattr(IdentityCloudEmulator, "mint_access_token", minting)
    make_api_call = BaseClient._make_api_call

    def publishing(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation == "PutEvents":  # every audit event, as it leaves for EventBridge
            guard.learn_published(params.get("Entries", []))
        return make_api_call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", publishing)
    service_logger = logging.getLogger("token-url")
    powertools_handler = next(iter(service_logger.handlers), None)
    capture = LogLines(guard.log_lines, powertools_handler.formatter if powertools_handler else None)
    service_logger.addHandler(capture)
    # And what any library logs (botocore, urllib3, ...); the function's own lines already came above.
    library_capture = LogLines(guard.log_lines, None)
    library_capture.addFilter(lambda record: record.name != "token-url")
    logging.getLogger().addHandler(library_capture)
    if "token_url.observability" in sys.modules:  # imported by the tests that use the function
        span = sys.modules["token_url.observability"].Span
        outcome = span.outcome

        def annotating(self: Any, value: str) -> None:
            guard.annotations.append(value)
            outcome(self, value)

        monkeypatch.setattr(span, "outcome", annotating)
    yield guard
    service_logger.removeHandler(capture)
    logging.getLogger().removeHandler(library_capture)
    printed = capsys.readouterr()
    guard.printed.extend([printed.out, printed.err])
    leaks = guard.leaks()
    assert leaks == [], "\n".join(leaks)


@pytest.fixture
def aws(app_module: ModuleType, template: dict[str, Any], leak_guard: LeakGuard) -> Iterator[Aws]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        create_tables(dynamodb, template)
        secrets = boto3.client("secretsmanager")
        secrets.create_secret(Name=SECRET_NAME, SecretString=API_KEY)
        kms = boto3.client("kms")
        key_id = kms.create_key(Description="token-url test credentials key")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=KEY_ALIAS, TargetKeyId=key_id)
        events, sqs = boto3.client("events"), boto3.client("sqs")
        queues = provision_audit_bus(events, sqs, queues=(AUDIT_QUEUE,))
        app_module.service.api_key_source.clear_cache()
        resources = Aws(
            dynamodb=dynamodb,
            kms=kms,
            secrets=secrets,
            key_id=key_id,
            events=events,
            sqs=sqs,
            audit_queue_url=queues[AUDIT_QUEUE],
        )
        yield resources
        app_module.service.api_key_source.clear_cache()
        for table in dynamodb.list_tables()["TableNames"]:
            leak_guard.learn_items(resources.items(table))


@pytest.fixture
def handler(aws: Aws, emulator: IdentityCloudEmulator, app_module: ModuleType, leak_guard: LeakGuard) -> Any:
    """lambda_handler, with every reply shown to the leak guard."""

    def handle(event: dict[str, Any], context: Any) -> Any:
        leak_guard.learn_request(event)
        response = app_module.lambda_handler(event, context)
        leak_guard.learn_response(response)
        return response

    return handle


@pytest.fixture
def browser(handler: Any) -> Browser:
    return Browser(handler, "alice")


class LogCapture(logging.Handler):
    """Every line the function logs, formatted exactly as Powertools writes it to CloudWatch."""

    def __init__(self, formatter: logging.Formatter | None) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        if formatter is not None:
            self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def function_logs(app_module: ModuleType) -> Iterator[LogCapture]:
    service_logger = logging.getLogger("token-url")
    powertools_handler = next(iter(service_logger.handlers), None)
    capture = LogCapture(powertools_handler.formatter if powertools_handler else None)
    service_logger.addHandler(capture)
    yield capture
    service_logger.removeHandler(capture)


@pytest.fixture(scope="session")
def local_stack() -> Iterator[RunningStack]:
    """One `make run` stack (on free ports) shared by the HTTP and browser tests; stopped with Ctrl-C."""
    stack = start_stack()
    yield stack
    assert stack.stop() == 0, "\n".join(stack.output[-20:])


@pytest.fixture(scope="session")
def confirming_stack() -> Iterator[RunningStack]:
    """A second `make run` stack, with LINK_CONFIRMATION=on: links wait for the user's POST /link."""
    stack = start_stack({"LINK_CONFIRMATION": "on"})
    yield stack
    assert stack.stop() == 0, "\n".join(stack.output[-20:])
