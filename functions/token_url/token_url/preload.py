"""The third-party libraries the function runs on, loaded before any module of its own; then the
cyclic garbage collector is kept out of the way of init (docs/performance.md#init).

Importing the libraries creates most of the objects a container ever holds, and they live as long as
it does. Each collection walks every object in its generations, so each one that the function's own
imports and wiring trigger would walk the libraries' objects again, for nothing: at init, that was the
largest part of what the function's own code cost. So, once they are loaded, `gc.freeze()` moves every
object alive to the permanent generation, which no collection visits, and collection pauses while the
function imports its own modules and builds its settings and clients; `finish_init` freezes those as
well and turns collection back on. The Python documentation gives the same recipe for long-lived
objects before fork(), which a SnapStart snapshot resembles.

The cost: the reference cycles init leaves behind are frozen too, so a container started without
SnapStart keeps them (their memory is in docs/performance.md#init); with SnapStart, the last
before-snapshot hook collects them (snapstart.collect_init_garbage). Reference counting frees every
other object as ever.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import TypeVar

# Imported to be loaded, not used here; some are parts a library loads only when first used (pydantic
# loads its own on first attribute access, Powertools its validation when a resolver enables it).
import annotated_types  # noqa: F401
import aws_lambda_powertools.event_handler.middlewares.openapi_validation
import aws_lambda_powertools.logging.correlation_paths
import aws_lambda_powertools.utilities.idempotency.serialization.pydantic
import aws_lambda_powertools.utilities.typing  # noqa: F401
import aws_xray_sdk.core  # type: ignore[import-untyped]  # noqa: F401
import boto3  # noqa: F401
import botocore.client  # noqa: F401
import pydantic.deprecated.config
import pydantic.plugin._loader  # noqa: F401
import requests  # noqa: F401
from aws_lambda_powertools import Logger, Metrics, Tracer  # noqa: F401
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver  # noqa: F401
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer  # noqa: F401
from aws_lambda_powertools.utilities.parameters import SecretsProvider  # noqa: F401
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: F401
from pydantic import BaseModel, Field, TypeAdapter  # noqa: F401

T = TypeVar("T")

gc.freeze()
gc.disable()


def finish_init(build: Callable[[], T]) -> T:
    """The rest of init (app.py); then freeze what it built and collect as usual from here on, even when
    it fails, so that a process that goes on (a test, a retried import) is not left without collection."""
    try:
        return build()
    finally:
        gc.freeze()
        gc.enable()
