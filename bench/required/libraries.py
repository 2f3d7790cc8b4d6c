"""The libraries the function must use, built as it builds them, with none of its own code.

A handler module that imports and constructs what the guide requires and nothing else: Powertools'
Event Handler with validation (one route, one pydantic model), Logger, Tracer, Metrics, Idempotency on
DynamoDB, Parameters for Secrets Manager, the same four boto3 clients (EventBridge's for the audit
events among them) and requests Session, and the cipher the vault needs (cryptography's AES-GCM). Its
init, beside the floor's, shows how much of the function's init the required libraries take on their
own, and so how much is the function's.
"""

from __future__ import annotations

from typing import Any

import boto3
import requests
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: F401 - imported as the vault does
from pydantic import BaseModel

logger = Logger(service="libraries")
tracer = Tracer(service="libraries", patch_modules=("botocore", "requests"))
metrics = Metrics(namespace="Libraries", service="libraries")
dynamodb = boto3.client("dynamodb")
kms = boto3.client("kms")
secrets = SecretsProvider(boto3_client=boto3.client("secretsmanager"))
events = boto3.client("events")
http = requests.Session()
persistence = DynamoDBPersistenceLayer(table_name="Idempotency", boto3_client=dynamodb)
app = APIGatewayHttpResolver(enable_validation=True)


class Payload(BaseModel):
    value: str


@idempotent_function(  # type: ignore[untyped-decorator]
    data_keyword_argument="payload", persistence_store=persistence, config=IdempotencyConfig()
)
def flow(payload: Payload) -> dict[str, str]:
    return {"value": payload.value}


@app.post("/flow")
def route(payload: Payload) -> dict[str, str]:
    return dict(flow(payload=payload))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
