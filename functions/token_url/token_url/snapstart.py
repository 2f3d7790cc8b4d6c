"""Lambda SnapStart runtime hooks (docs/snapstart.md).

With SnapStart on, Lambda runs init once when a version is published, then the before-snapshot hooks,
then snapshots the execution environment; every new container is a restore of that snapshot and runs
the after-restore hooks before its first request. Without SnapStart the runtime never calls them, so
init does no more than it did.

Before the snapshot: do now what a first request would otherwise do lazily (every route's validation
model, every client's botocore models and the path of each AWS operation the routes make, the cipher's
backend, the resolver's request and response path), fetching no secret and opening no connection.
After a restore: new connection pools, since the peers of any socket in the snapshot are gone, and
fresh per-container randomness, since every restored container starts from the same `random` state.
One-time values, session ids and audit event ids come from `secrets` and `uuid4` (os.urandom), which a
restore does not repeat.
"""

from __future__ import annotations

import gc
import importlib
import os
import random
from collections.abc import Iterator
from types import ModuleType
from typing import Any, cast

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore import xform_name
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.model import Shape
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from token_url.http_forms import parse_form
from token_url.identity_cloud import new_http_session
from token_url.models import build_every_model
from token_url.observability import logger, metrics, untraced
from token_url.wiring import Service

_RUNTIME_LIBRARY = "snapshot_restore_py"
_STAND_IN = "token_url.hook_registry"


def hook_registry() -> ModuleType:
    """The Lambda runtime's `snapshot_restore_py`, or the stand-in with the same registries."""
    try:
        return importlib.import_module(_RUNTIME_LIBRARY)
    except ModuleNotFoundError:
        return importlib.import_module(_STAND_IN)


def register_runtime_hooks(service: Service, resolver: APIGatewayHttpResolver) -> None:
    """Before-snapshot hooks run in the reverse order of registration, after-restore hooks in order."""
    registry = hook_registry()
    _forget_earlier_registrations(registry)
    registry.register_before_snapshot(collect_init_garbage)  # runs last: after everything else let go
    registry.register_before_snapshot(close_connections, service)  # nothing open in the snapshot
    registry.register_before_snapshot(warm_up, service, resolver)  # runs first
    registry.register_after_restore(reconnect, service)
    registry.register_after_restore(renew_container_state, service)


def _forget_earlier_registrations(registry: ModuleType) -> None:
    """One set of these hooks per process, the latest service's: a handler module imported anew (as
    tests do) must not leave hooks behind that run against a service nobody uses any more."""
    for hooks in (registry.get_before_snapshot(), registry.get_after_restore()):
        hooks[:] = [hook for hook in hooks if getattr(hook[0], "__module__", None) != __name__]


# ---------------------------------------------------------------- before the snapshot


def warm_up(service: Service, resolver: APIGatewayHttpResolver) -> None:
    """Everything a first request would build, with no outside call: nothing here needs the network."""
    build_every_model()  # built on first use otherwise (models.py)
    resolver.get_openapi_schema()  # builds every route's dependant on the way
    for client in service.aws_clients:
        load_operation_models(client)
    with untraced():  # no invocation to trace (X-Ray would log each call's subsegment as discarded)
        for client in service.aws_clients:
            call_operations_locally(client)
    AESGCM(AESGCM.generate_key(bit_length=256)).encrypt(os.urandom(12), b"", None)  # the OpenSSL backend
    for event in synthetic_requests():
        resolver.resolve(event, cast(LambdaContext, _NoContext()))
    parse_form(*_MULTIPART_FORM)  # the token POST's multipart parser, whose modules load on first use
    metrics.clear_metrics()  # nothing of the warm-up may reach the first real invocation's metrics
    logger.info("Ready for the snapshot")


def load_operation_models(client: Any) -> None:
    """Every operation's model and its shapes, which botocore otherwise resolves on the first call."""
    service_model = client.meta.service_model
    seen: set[str] = set()
    for name in service_model.operation_names:
        operation = service_model.operation_model(name)
        for shape in (operation.input_shape, operation.output_shape):
            _resolve_shape(shape, seen)


def _resolve_shape(shape: Shape | None, seen: set[str]) -> None:
    if shape is None or shape.name in seen:
        return
    seen.add(shape.name)
    for member in getattr(shape, "members", {}).values():
        _resolve_shape(member, seen)
    for part in ("member", "key", "value"):
        _resolve_shape(getattr(shape, part, None), seen)


# The AWS operations the routes make, by client, each with the least botocore's validation accepts.
_WARM_UP_NAME = "snapshot-warm-up"
_WARM_UP_KEY = {"pk": {"S": _WARM_UP_NAME}}
ROUTE_OPERATIONS: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = {
    "dynamodb": (
        ("GetItem", {"TableName": _WARM_UP_NAME, "Key": _WARM_UP_KEY}),
        ("PutItem", {"TableName": _WARM_UP_NAME, "Item": _WARM_UP_KEY}),
        ("UpdateItem", {"TableName": _WARM_UP_NAME, "Key": _WARM_UP_KEY}),
        ("DeleteItem", {"TableName": _WARM_UP_NAME, "Key": _WARM_UP_KEY}),
    ),
    "kms": (
        ("GenerateDataKey", {"KeyId": _WARM_UP_NAME, "KeySpec": "AES_256"}),
        ("Decrypt", {"CiphertextBlob": _WARM_UP_NAME.encode()}),
    ),
    "secretsmanager": (("GetSecretValue", {"SecretId": _WARM_UP_NAME}),),
    "events": (("PutEvents", {"Entries": [{"Source": _WARM_UP_NAME, "Detail": "{}"}]}),),
}


def call_operations_locally(client: Any) -> None:
    """Each operation the routes make on `client`, through botocore's whole path (parameter checks,
    endpoint rules, event handlers, signing, retry rules, parsing), answered by the process itself: no
    request leaves it, so no connection is opened and nothing is read. botocore builds and caches what
    a first call needs on the way (a restored container's first request used to pay for it)."""
    events = client.meta.events
    events.register_first("before-send", _answer_locally, unique_id=_WARM_UP_NAME)
    try:
        for operation, parameters in ROUTE_OPERATIONS[client.meta.service_model.service_name]:
            getattr(client, xform_name(operation))(**parameters)
    finally:  # never left in place: it would answer every real call
        events.unregister("before-send", unique_id=_WARM_UP_NAME)


def _answer_locally(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
    """An empty success, in place of sending `request` (a `before-send` handler's answer is not sent)."""
    return AWSResponse(request.url, 200, HTTPHeaders(), _EmptyJsonBody())


class _EmptyJsonBody:
    """The raw body botocore reads an AWSResponse's content from."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b"{}"


_MULTIPART_FORM = (
    "multipart/form-data; boundary=warm-up",
    b'--warm-up\r\nContent-Disposition: form-data; name="token"\r\n\r\nwarm-up\r\n--warm-up--\r\n',
)


def synthetic_requests() -> list[dict[str, Any]]:
    """Requests the resolver answers without any store or upstream: a health check, and a body that
    fails validation (the validation and error path every JSON route shares)."""
    return [_event("GET", "/health", None), _event("POST", "/token-url", "{}")]


def _event(method: str, path: str, body: str | None) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": "snapshot-warm-up",
            "routeKey": f"{method} {path}",
            "stage": "$default",
        },
        "body": body,
        "isBase64Encoded": False,
    }


class _NoContext:
    """The resolver keeps the invocation's context; the warm-up has none."""

    function_name = "snapshot-warm-up"
    aws_request_id = "snapshot-warm-up"


def close_connections(service: Service) -> None:
    """Leave no pooled connection in the snapshot: a restored container could not use it."""
    service.identity_cloud.close_connections()
    for client in service.aws_clients:
        client.close()


def collect_init_garbage() -> None:
    """Free what init left for the collector: preload keeps collection out of init's way, so its garbage
    was frozen with everything else (docs/performance.md#init). Once per published version, not in a
    user's path, and every restored container starts with that memory free for its requests."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


# ---------------------------------------------------------------- after a restore


def reconnect(service: Service) -> None:
    """New pools: sockets copied from the snapshot would be shared by every restored container."""
    service.identity_cloud.use_http_session(new_http_session())
    for client in service.aws_clients:
        client.close()  # botocore opens a new pool on the next call


def renew_container_state(service: Service) -> None:
    """What must differ between containers restored from one snapshot."""
    random.seed()  # from os.urandom: Powertools samples debug logs with `random`
    service.api_key_source.clear_cache()  # none is fetched before the snapshot; never trust one that was
