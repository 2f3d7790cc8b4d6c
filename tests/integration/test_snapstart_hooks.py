"""SnapStart's runtime hooks through the handler: registered in the order the runtime runs them, no outside
call before the snapshot, no connection kept across a restore, and a restore counted as a cold start."""

from __future__ import annotations

import json
import random
import socket
import sys
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.metrics.provider import cold_start
from botocore.client import BaseClient
from botocore.endpoint import Endpoint

from testkit import snapstart
from testkit.browser import Browser
from testkit.events import http_event
from testkit.lambda_context import FakeLambdaContext
from token_url.snapstart import hook_registry, register_runtime_hooks

BEFORE_SNAPSHOT = ["warm_up", "close_connections", "collect_init_garbage"]
AFTER_RESTORE = ["reconnect", "renew_container_state"]


@pytest.fixture(autouse=True)
def hooks_of_the_handler_under_test(app_module: ModuleType) -> None:
    """The hooks of the handler these tests drive: another test may have imported a handler anew, and
    registering replaces the hooks of the earlier one (test_registering_again_replaces_the_earlier_hooks)."""
    register_runtime_hooks(app_module.service, app_module.app)


def _ours(hooks: list[Any]) -> list[str]:
    return [func.__name__ for func, _, _ in hooks if func.__module__ == "token_url.snapstart"]


def test_the_hooks_are_registered_so_the_runtime_runs_them_in_order(app_module: ModuleType) -> None:
    registry = hook_registry()
    # The runtime runs before-snapshot hooks last-registered first: closing must be registered first.
    assert _ours(registry.get_before_snapshot()) == list(reversed(BEFORE_SNAPSHOT))
    assert _ours(registry.get_after_restore()) == AFTER_RESTORE


def test_a_simulated_snapshot_and_restore_run_every_hook_in_the_runtimes_order(
    app_module: ModuleType,
) -> None:
    assert snapstart.take_snapshot() == BEFORE_SNAPSHOT
    assert snapstart.restore() == AFTER_RESTORE


def test_before_the_snapshot_nothing_leaves_the_process_and_no_secret_is_read(
    app_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No moto here. The warm-up takes every AWS operation through its client, answered in-process; a
    request that reached botocore's sending, the apiKey's included, would be recorded, and a connection
    attempt refused."""
    sent: list[str] = []
    connects: list[Any] = []

    def recording(endpoint: Endpoint, request: Any) -> Any:
        sent.append(request.url)
        raise AssertionError(f"{request.url} sent before the snapshot")

    def refusing(sock: socket.socket, address: Any) -> None:
        connects.append(address)
        raise ConnectionRefusedError("no connection before the snapshot")

    monkeypatch.setattr(Endpoint, "_send", recording)
    monkeypatch.setattr(socket.socket, "connect", refusing)
    app_module.service.api_key_source.clear_cache()
    assert snapstart.take_snapshot() == BEFORE_SNAPSHOT
    assert sent == []
    assert connects == []
    assert app_module.service.api_key_source._provider.store == {}  # nothing cached: no apiKey read


def test_the_warm_up_builds_every_routes_validation_model(app_module: ModuleType) -> None:
    routes = [*app_module.app._static_routes, *app_module.app._dynamic_routes]
    for route in routes:  # as after import, before any request
        route._dependant, route._body_field = None, None
    snapstart.take_snapshot()
    assert all(route._dependant is not None for route in routes)
    with_bodies = {route.path for route in routes if route._body_field is not None}
    assert with_bodies == {"/token-url", "/session", "/link", "/unlink", "/credentials"}


def _open_connections(session: Any) -> list[Any]:
    """The connections a requests Session keeps open in its pools."""
    return _open_in([adapter.poolmanager for adapter in session.adapters.values()])


def _handler_connections(app_module: ModuleType) -> list[Any]:
    """The connections the driven handler keeps open: its Identity Cloud Session's and its AWS clients'.
    (Not the whole process's: a handler imported anew by another test keeps pools of its own.)"""
    managers = [client._endpoint.http_session._manager for client in app_module.service.aws_clients]
    return _open_connections(app_module.service.identity_cloud._http) + _open_in(managers)


def _open_in(pool_managers: list[Any]) -> list[Any]:
    pools = [
        manager.pools[key]
        for manager in pool_managers
        for key in manager.pools.keys()  # noqa: SIM118 - urllib3 pools cannot be iterated
    ]
    return [
        conn for pool in pools for conn in list(pool.pool.queue) if conn is not None and conn.sock is not None
    ]


def _sign_in(browser: Browser, emulator: Any) -> Any:
    """A sign-in through the handler, which leaves its Identity Cloud connection pooled."""
    token_url = browser.start("sign_in")
    return browser.submit_token(token_url, emulator.issue_token(token_url, provider="Google"))


def test_the_snapshot_holds_no_pooled_connection(
    browser: Browser, emulator: Any, app_module: ModuleType
) -> None:
    _sign_in(browser, emulator)
    session = app_module.service.identity_cloud._http
    assert _open_connections(session), "the sign-in kept its Identity Cloud connection"
    snapstart.take_snapshot()
    assert _open_connections(session) == []


def test_after_a_restore_no_connection_from_before_the_snapshot_is_reused(
    browser: Browser, emulator: Any, app_module: ModuleType
) -> None:
    _sign_in(browser, emulator)
    session_before = app_module.service.identity_cloud._http
    kept = _handler_connections(app_module)
    assert kept

    snapstart.restore()
    reply = _sign_in(browser, emulator)

    assert reply.outcome == {"result": "signed_in"}
    assert app_module.service.identity_cloud._http is not session_before
    used_after = _handler_connections(app_module)
    assert used_after
    assert not any(connection is old for connection in used_after for old in kept)
    assert all(old.sock is None for old in kept)  # closed with the old Session, not left to linger


def test_a_restore_gives_every_boto3_client_a_new_pool(
    app_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[str] = []
    monkeypatch.setattr(
        BaseClient, "close", lambda client: closed.append(client.meta.service_model.service_name)
    )
    snapstart.restore()
    assert sorted(closed) == ["dynamodb", "events", "kms", "secretsmanager"]


def test_a_restore_reseeds_random_and_forgets_any_cached_api_key(
    app_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    cleared: list[bool] = []
    monkeypatch.setattr(app_module.service.api_key_source, "clear_cache", lambda: cleared.append(True))
    random.seed(20261201)
    seeded = random.random()
    random.seed(20261201)
    snapstart.restore()
    assert random.random() != seeded
    assert cleared == [True]


def _cold_start_metrics(output: str) -> list[float]:
    blobs = [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]
    return [value for blob in blobs for value in blob.get("ColdStart", [])]


def test_the_first_request_after_a_restore_is_counted_as_the_cold_start(
    handler: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_LAMBDA_INITIALIZATION_TYPE is `snap-start`; Powertools counts a cold start unless it is
    `provisioned-concurrency`. The warm-up must not spend the flag, or no restore would ever be counted."""
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", snapstart.INITIALIZATION_TYPE)
    monkeypatch.setattr(cold_start, "is_cold_start", True)  # a container fresh from init
    snapstart.take_snapshot()
    snapstart.restore()
    capsys.readouterr()

    for _ in range(2):
        reply = handler(http_event("GET", "/health"), FakeLambdaContext())
        assert reply["statusCode"] == 200
    output = capsys.readouterr().out
    assert _cold_start_metrics(output) == [1.0]


def test_the_stand_in_registry_is_used_only_where_the_runtimes_library_is_absent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime_library = ModuleType("snapshot_restore_py")
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime_library)
    assert hook_registry() is runtime_library
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)
    assert hook_registry().__name__ == "token_url.hook_registry"


def test_registering_again_replaces_the_earlier_hooks(app_module: ModuleType) -> None:
    """A handler module imported anew registers its hooks again: only the latest service's may run."""
    register_runtime_hooks(app_module.service, app_module.app)
    assert _ours(hook_registry().get_before_snapshot()) == list(reversed(BEFORE_SNAPSHOT))
    assert _ours(hook_registry().get_after_restore()) == AFTER_RESTORE
