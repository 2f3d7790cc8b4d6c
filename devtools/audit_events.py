"""The audit event bus where the template is not deployed: moto's EventBridge, with SQS queues subscribed.

The local stack and the tests wire it the same way: a bus, one rule matching every event the function
publishes (source `token-url`), and an SQS queue per reader as its targets. There is no input
transformer, so each message body is the whole EventBridge event (`source`, `detail-type`, `detail`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import TargetTypeDef
    from mypy_boto3_sqs import SQSClient

AUDIT_BUS = "token-url-audit"
AUDIT_QUEUE = "token-url-audit"
"""The developer's queue: `make run` leaves its messages for them to read."""
DEMO_QUEUE = "token-url-audit-demo"
"""The demo page's own copy of every event, so showing them consumes nothing of AUDIT_QUEUE."""
AUDIT_RULE = "token-url-audit-to-sqs"
EVENT_PATTERN = {"source": ["token-url"]}


def provision_audit_bus(
    events: EventBridgeClient, sqs: SQSClient, *, bus: str = AUDIT_BUS, queues: Iterable[str] = (AUDIT_QUEUE,)
) -> dict[str, str]:
    """Create the bus, its rule and one target queue per name (reused if they exist): name -> queue URL."""
    with contextlib.suppress(events.exceptions.ResourceAlreadyExistsException):
        events.create_event_bus(Name=bus)
    queues = tuple(queues)
    if not queues:
        return {}  # a bus without subscribers: it takes every event and delivers none
    events.put_rule(
        Name=AUDIT_RULE, EventBusName=bus, EventPattern=json.dumps(EVENT_PATTERN), State="ENABLED"
    )
    urls: dict[str, str] = {}
    targets: list[TargetTypeDef] = []
    for name in queues:
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        urls[name] = url
        targets.append({"Id": name, "Arn": arn})
    events.put_targets(Rule=AUDIT_RULE, EventBusName=bus, Targets=targets)
    return urls


def drain(sqs: SQSClient, queue_url: str) -> list[dict[str, Any]]:
    """Every event waiting in a queue, oldest first as SQS hands them out, deleted once read."""
    received: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=30
        ).get("Messages", [])
        if not messages:
            return received
        for message in messages:
            received.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
