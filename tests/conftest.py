"""Fixtures: the Identity Cloud emulator on loopback, moto for AWS, and the handler configured for both."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
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

from devtools.audit_events import AUDIT_QUEUE, provision_audit_bus
from devtools.template import create_tables, load_template
from emulator import DEFAULT_API_KEY, IdentityCloudEmulator, serve
from testkit.browser import Browser
from testkit.logs import SERVICE_LOGGER, LogLines, function_log_lines, powertools_formatter
from tests.function_world import (
    API_KEY,
    EMULATOR_DEFAULTS,
    KEY_ALIAS,
    SECRET_NAME,
    Aws,
    function_environment,
)
from tests.leak_guard import LeakGuard
from tests.stack_support import RunningStack, start_stack


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
    service_logger = logging.getLogger(SERVICE_LOGGER)
    capture = LogLines(powertools_formatter(), guard.log_lines)
    service_logger.addHandler(capture)
    # And what any library logs (botocore, urllib3, ...); the function's own lines already came above.
    library_capture = LogLines(None, guard.log_lines)
    library_capture.addFilter(lambda record: record.name != SERVICE_LOGGER)
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


@pytest.fixture
def function_logs(app_module: ModuleType) -> Iterator[LogLines]:
    """Every line the function logs during the test, as CloudWatch would receive it."""
    with function_log_lines() as capture:
        yield capture


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
