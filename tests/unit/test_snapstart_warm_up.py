"""The SnapStart warm-up's AWS calls are answered in-process, and what a first request would load lazily
is loaded before the snapshot, while init without SnapStart does not load it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_xray_sdk import global_sdk_config  # type: ignore[import-untyped]
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from tests.function_world import function_environment
from tests.support import json_answer_of_fresh_python
from token_url.observability import untraced
from token_url.snapstart import ROUTE_OPERATIONS, call_operations_locally


@pytest.fixture
def refused_endpoint() -> Iterator[str]:
    """An address that refuses every connection: a port held by a socket that does not listen."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


def client_at(service: str, endpoint: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service, endpoint_url=endpoint, config=Config(retries={"mode": "standard", "max_attempts": 1})
    )


@pytest.mark.parametrize("service", sorted(ROUTE_OPERATIONS))
def test_the_warm_up_calls_every_operation_without_sending_a_request(
    service: str, refused_endpoint: str
) -> None:
    client = client_at(service, refused_endpoint)
    call_operations_locally(client)  # a request sent would meet the refused connection and raise
    operation, parameters = ROUTE_OPERATIONS[service][0]
    # The in-process answer is gone afterwards: a real call is sent (and refused here).
    with pytest.raises(EndpointConnectionError):
        client._make_api_call(operation, parameters)


def test_the_warm_up_covers_every_client_and_exactly_the_calls_the_policy_grants(
    app_module: ModuleType, template: dict[str, Any]
) -> None:
    clients = {client.meta.service_model.service_name: client for client in app_module.service.aws_clients}
    assert set(ROUTE_OPERATIONS) == set(clients)
    warmed = {
        f"{clients[service].meta.service_model.signing_name}:{operation}"
        for service, operations in ROUTE_OPERATIONS.items()
        for operation, _ in operations
    }
    # The policy grants exactly the calls the routes make (tests/infra/test_permissions.py).
    granted = {
        action
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::RolePolicy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        if not action.startswith("logs:")
    }
    assert warmed == granted


def test_nothing_is_traced_inside_untraced_and_tracing_comes_back_after() -> None:
    enabled = global_sdk_config.sdk_enabled()
    try:
        global_sdk_config.set_sdk_enabled(True)
        with untraced():
            assert global_sdk_config.sdk_enabled() is False
        assert global_sdk_config.sdk_enabled() is True
    finally:
        global_sdk_config.set_sdk_enabled(enabled)


_IMPORT_SNAPSHOT_AND_CALL = """
import json, sys
from botocore.exceptions import EndpointConnectionError
from token_url import app
from testkit.snapstart import take_snapshot
loaded = {"init": "email.policy" in sys.modules}
take_snapshot()
loaded["snapshot"] = "email.policy" in sys.modules
try:
    app.service.dynamodb.get_item(TableName="t", Key={"pk": {"S": "x"}})
except EndpointConnectionError:
    loaded["sent after"] = True
print(json.dumps(loaded))
"""


def test_init_leaves_the_multipart_parser_out_and_the_snapshot_has_it_without_any_request_sent(
    refused_endpoint: str,
) -> None:
    """In a fresh process whose every AWS and upstream address refuses connections: the warm-up needs
    none, and after the snapshot a call is sent again."""
    environment = {
        **os.environ,
        **function_environment(refused_endpoint),
        "AWS_ENDPOINT_URL": refused_endpoint,
        "AWS_MAX_ATTEMPTS": "1",
    }
    assert json_answer_of_fresh_python(_IMPORT_SNAPSHOT_AND_CALL, environment) == {
        "init": False,
        "snapshot": True,
        "sent after": True,
    }
