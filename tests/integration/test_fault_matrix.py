"""Every outside call, every way it fails: the user's outcome, nothing half-written, and recovery.

Each case injects one fault into one dependency (the emulator's faults for Identity Cloud; a botocore
error raised for one operation on one resource for DynamoDB, KMS and Secrets Manager, as a call
that failed after botocore's own retries), runs the flow that reaches it, and checks:
- the outcome the user gets (a redirect with `?error=` for the token POST, a status for JSON routes);
- no session holds a social identity without its provider credentials, no Registration session lost
  its access token, and no idempotency record is left in progress;
- once the fault clears, the same flow started afresh succeeds.
docs/reliability.md lists these cases.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from emulator import Fault, IdentityCloudEmulator
from testkit.browser import Browser
from testkit.events import http_event
from testkit.lambda_context import context_with
from testkit.sites import APP_ORIGIN
from tests.function_world import Aws
from tests.integration.flows_support import FACEBOOK_ID, GOOGLE_ID, sign_in_to_registration

# Failures that are not an AWS error reply but a broken connection (botocore's own exceptions).
CONNECTION_ERRORS: dict[str, Callable[[], Exception]] = {
    "EndpointConnectionError": lambda: EndpointConnectionError(endpoint_url="https://aws.local"),
    "ReadTimeoutError": lambda: ReadTimeoutError(endpoint_url="https://aws.local"),
}


class AwsFaults:
    """Fail `service:Operation` on one resource, `times` times, after letting `skip` calls through."""

    def __init__(self) -> None:
        self.active: dict[tuple[str, str], tuple[str, int]] = {}
        self.skips: dict[tuple[str, str], int] = {}

    def add(self, action: str, resource: str, code: str, times: int = 1, skip: int = 0) -> None:
        self.active[(action, resource)] = (code, times)
        self.skips[(action, resource)] = skip

    def clear(self) -> None:
        self.active.clear()
        self.skips.clear()

    def maybe_raise(self, client: BaseClient, operation: str, params: dict[str, Any]) -> None:
        resource = str(params.get("TableName") or params.get("KeyId") or params.get("SecretId") or "*")
        key = (f"{client.meta.service_model.signing_name}:{operation}", resource)
        if key not in self.active:
            return
        if self.skips.get(key, 0) > 0:
            self.skips[key] -= 1
            return
        code, times = self.active[key]
        if times <= 1:
            del self.active[key]
        else:
            self.active[key] = (code, times - 1)
        if code in CONNECTION_ERRORS:
            raise CONNECTION_ERRORS[code]()
        raise ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)


@pytest.fixture
def aws_faults(monkeypatch: pytest.MonkeyPatch, aws: Aws) -> AwsFaults:
    faults = AwsFaults()
    original = BaseClient._make_api_call

    def faulty(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        faults.maybe_raise(client, operation, params)
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", faulty)
    return faults


# ---------------------------------------------------------------- the flows a fault can meet


@dataclass
class World:
    browser: Browser
    handler: Any
    emulator: IdentityCloudEmulator
    aws: Aws
    remaining_ms: int = 15_000
    identities: Iterator[int] = field(default_factory=lambda: iter(range(1, 1_000_000)))
    last_submission: tuple[str, str] | None = None
    """The token URL and token of the last token POST, to submit them again."""

    def fresh_identifier(self, base: str) -> str:
        return f"{base}{next(self.identities)}"


def _token_flow(world: World, intent: str, identifier_base: str) -> str:
    reply = world.browser.page_json("POST", "/token-url", {"intent": intent})
    if reply.status != 200:
        return f"{reply.status} {reply.json()['error']}"
    token_url = reply.json()["token_url"]
    token = world.emulator.issue_token(token_url, world.fresh_identifier(identifier_base))
    world.last_submission = (token_url, token)
    outcome = world.browser.submit_token(token_url, token, remaining_ms=world.remaining_ms).outcome
    return outcome.get("result") or outcome["error"]


def sign_in(world: World) -> str:
    return _token_flow(world, "sign_in", GOOGLE_ID)


def link(world: World) -> str:
    return _token_flow(world, "link", FACEBOOK_ID)


def store_credentials(world: World) -> str:
    body = json.dumps({"identifier": world.fresh_identifier(FACEBOOK_ID), "token": "EAAB0123456789"})
    event = http_event(
        "POST", "/credentials", body=body, headers={"Content-Type": "application/json"}, iam=True
    )
    reply = world.handler(event, context_with(world.remaining_ms))
    return (
        "stored"
        if reply["statusCode"] == 200
        else f"{reply['statusCode']} {json.loads(reply['body'])['error']}"
    )


def create_session(world: World) -> str:
    access_token = world.emulator.mint_access_token("user-1")
    reply = world.browser.page_json("POST", "/session", {"access_token": access_token, "expires_in": 3600})
    return "session" if reply.status == 200 else f"{reply.status} {reply.json()['error']}"


def sign_out(world: World) -> str:
    reply = world.browser.page_json("DELETE", "/session")
    return "signed_out" if reply.status == 204 else f"{reply.status} {reply.json()['error']}"


def unlink(world: World) -> str:
    """Unlink an identity linked just before (by another site), so that every run has one to unlink."""
    identifier = world.fresh_identifier(FACEBOOK_ID)
    world.emulator.link(identifier, "user-1")
    event = http_event(
        "POST",
        "/unlink",
        body=json.dumps({"identifier": identifier}),
        headers={"Origin": APP_ORIGIN, "Content-Type": "application/json"},
        cookies=world.browser.cookies_for(cross_site=False),
    )
    reply = world.browser.send(event, remaining_ms=world.remaining_ms)
    return "unlinked" if reply.status == 200 else f"{reply.status} {reply.json()['error']}"


FLOWS: dict[str, tuple[Callable[[World], str], str]] = {
    # name: (flow, its outcome when nothing fails)
    "sign_in": (sign_in, "signed_in"),
    "link": (link, "linked"),
    "credentials": (store_credentials, "stored"),
    "session": (create_session, "session"),
    "sign_out": (sign_out, "signed_out"),
    "unlink": (unlink, "unlinked"),
}


@dataclass(frozen=True)
class Case:
    dependency: str
    fault: str
    flow: str
    outcome: str
    emulator_endpoint: str | None = None
    emulator_fault: Fault | None = None
    aws_action: str | None = None
    aws_resource: str | None = None
    aws_code: str = "ThrottlingException"
    aws_skip: int = 0
    """Calls of the faulted operation that succeed first (to reach the one inside the token POST)."""
    remaining_ms: int = 15_000
    retry_same: bool = False
    """The fault came before Social Login read the token: the same submission, sent again, succeeds."""
    took_effect: bool = False
    in_progress_may_remain: bool = False
    """The fault also kept the idempotency record from being deleted: it expires with the invocation."""
    """The fault hit after the flow's effect: the user gets the outcome, and the record stays in progress
    until the invocation's deadline (a replay of that very submission then finds the token spent)."""

    @property
    def id(self) -> str:
        return f"{self.dependency}-{self.fault}-{self.flow}".replace(" ", "_")


UNAVAILABLE = "service_unavailable"
JSON_UNAVAILABLE = "503 service_unavailable"
LINKED = "linked"  # the account, read with /entity, holds the identity


def identity_cloud_cases() -> list[Case]:
    kinds = {
        "code -1": Fault.service_unavailable(),
        "HTTP 500 HTML page": Fault.http_500(),
        "not JSON": Fault.not_json(),
        "connection reset": Fault.reset(),
        "slower than the timeout": Fault.delay(2.5),
    }
    cases = []
    for name, fault in kinds.items():
        before_reading = name != "slower than the timeout"  # the emulator answers the rest without reading
        cases.append(
            Case("auth_info", name, "sign_in", UNAVAILABLE, "auth_info", fault, retry_same=before_reading)
        )
        cases.append(
            Case(
                "add_or_update_access_token",
                name,
                "credentials",
                JSON_UNAVAILABLE,
                "add_or_update_access_token",
                fault,
            )
        )
        if name != "code -1":  # a Social Login code; Capture's own is 510, below
            # A link or unlink Capture carries out after the read timeout is found by a later account read.
            made_late = name == "slower than the timeout"
            cases.append(
                Case(
                    "link_account_native",
                    name,
                    "link",
                    LINKED if made_late else UNAVAILABLE,
                    "link_account_native",
                    fault,
                )
            )
            cases.extend(capture_account_cases(name, fault, made_late=made_late))
    for code in (4, 6):
        cases.append(
            Case(
                "auth_info",
                f"provider error {code}",
                "sign_in",
                UNAVAILABLE,
                "auth_info",
                Fault.social_login_error(code),
            )
        )
        cases.append(
            Case(
                "add_or_update_access_token",
                f"provider error {code}",
                "credentials",
                JSON_UNAVAILABLE,
                "add_or_update_access_token",
                Fault.social_login_error(code),
            )
        )
    cases.append(
        Case(
            "link_account_native",
            "Capture 510 api_limit_error",
            "link",
            UNAVAILABLE,
            "link_account_native",
            Fault.capture_error(510),
        )
    )
    cases.append(
        Case(
            "link_account_native",
            "link made, its reply later than the timeout",
            "link",
            "linked",  # the account, read with /entity, holds the identity
            "link_account_native",
            Fault.late_reply(2.5),
        )
    )
    cases.extend(capture_account_cases("Capture 510 api_limit_error", Fault.capture_error(510)))
    return cases


def capture_account_cases(name: str, fault: Fault, *, made_late: bool = False) -> list[Case]:
    """/entity, read by POST /session and by the unlink, and unlink_account_native (`made_late`: Capture
    unlinks after the read timeout, and the account read again shows it)."""
    unlinked = "unlinked" if made_late else JSON_UNAVAILABLE
    return [
        Case("entity", name, "session", JSON_UNAVAILABLE, "entity", fault),
        Case("entity", name, "unlink", JSON_UNAVAILABLE, "entity", fault),
        Case("unlink_account_native", name, "unlink", unlinked, "unlink_account_native", fault),
    ]


def aws_cases() -> list[Case]:
    throttled = "ProvisionedThroughputExceededException"
    return [
        Case(
            "DynamoDB",
            "throttled put of the one-time value",
            "sign_in",
            "503 service_unavailable",
            aws_action="dynamodb:PutItem",
            aws_resource="NoncesTable",
            aws_code=throttled,
        ),
        Case(
            "DynamoDB",
            "throttled consume of the one-time value",
            "sign_in",
            UNAVAILABLE,
            aws_action="dynamodb:UpdateItem",
            aws_resource="NoncesTable",
            aws_code=throttled,
        ),
        Case(
            "DynamoDB",
            "conditional-check race on the one-time value",
            "sign_in",
            "token_url_invalid",
            aws_action="dynamodb:UpdateItem",
            aws_resource="NoncesTable",
            aws_code="ConditionalCheckFailedException",
        ),
        Case(
            "DynamoDB",
            "throttled idempotency record",
            "sign_in",
            UNAVAILABLE,
            aws_action="dynamodb:PutItem",
            aws_resource="IdempotencyTable",
            aws_code=throttled,
        ),
        Case(
            "DynamoDB",
            "throttled completion of the idempotency record (after the sign-in took effect)",
            "sign_in",
            "signed_in",
            aws_action="dynamodb:UpdateItem",
            aws_resource="IdempotencyTable",
            aws_code=throttled,
            took_effect=True,
        ),
        Case(
            "DynamoDB",
            "throttled session write",
            "sign_in",
            UNAVAILABLE,
            aws_action="dynamodb:PutItem",
            aws_resource="SessionsTable",
            aws_code=throttled,
        ),
        Case(
            "DynamoDB",
            "throttled session read",
            "link",
            "503 service_unavailable",
            aws_action="dynamodb:GetItem",
            aws_resource="SessionsTable",
            aws_code=throttled,
        ),
        Case(
            "DynamoDB",
            "throttled session write",
            "session",
            JSON_UNAVAILABLE,
            aws_action="dynamodb:PutItem",
            aws_resource="SessionsTable",
            aws_code=throttled,
        ),
        Case(
            "DynamoDB",
            "throttled session delete",
            "sign_out",
            JSON_UNAVAILABLE,
            aws_action="dynamodb:DeleteItem",
            aws_resource="SessionsTable",
            aws_code=throttled,
        ),
        Case(
            "KMS",
            "GenerateDataKey fails",
            "sign_in",
            UNAVAILABLE,
            aws_action="kms:GenerateDataKey",
            aws_resource="alias/token-url-credentials",
            aws_code="KMSInternalException",
        ),
        Case(
            "KMS",
            "GenerateDataKey fails",
            "session",
            JSON_UNAVAILABLE,
            aws_action="kms:GenerateDataKey",
            aws_resource="alias/token-url-credentials",
            aws_code="KMSInternalException",
        ),
        Case(
            "KMS",
            "Decrypt fails",
            "link",
            UNAVAILABLE,
            aws_action="kms:Decrypt",
            aws_resource="alias/token-url-credentials",
            aws_code="KMSInternalException",
        ),
        Case(
            "Secrets Manager",
            "GetSecretValue fails",
            "sign_in",
            UNAVAILABLE,
            aws_action="secretsmanager:GetSecretValue",
            aws_resource="token-url/social-login-api-key",
            aws_code="InternalServiceError",
        ),
        Case(
            "Secrets Manager",
            "GetSecretValue fails",
            "credentials",
            JSON_UNAVAILABLE,
            aws_action="secretsmanager:GetSecretValue",
            aws_resource="token-url/social-login-api-key",
            aws_code="InternalServiceError",
        ),
        Case("Lambda", "under 2 s left", "sign_in", UNAVAILABLE, remaining_ms=1_200),
        Case("Lambda", "under 2 s left", "link", UNAVAILABLE, remaining_ms=1_200),
    ]


def more_cases() -> list[Case]:
    lost = "EndpointConnectionError"
    return [
        Case(
            "DynamoDB",
            "connection lost consuming the one-time value",
            "sign_in",
            UNAVAILABLE,
            aws_action="dynamodb:UpdateItem",
            aws_resource="NoncesTable",
            aws_code=lost,
        ),
        Case(
            "DynamoDB",
            "throttled session read inside the link's token POST",
            "link",
            UNAVAILABLE,
            aws_action="dynamodb:GetItem",
            aws_resource="SessionsTable",
            aws_code="ThrottlingException",
            aws_skip=1,
        ),
        Case(
            "DynamoDB",
            "idempotency record cannot be deleted after an auth_info outage",
            "sign_in",
            UNAVAILABLE,
            emulator_endpoint="auth_info",
            emulator_fault=Fault.http_500(),
            aws_action="dynamodb:DeleteItem",
            aws_resource="IdempotencyTable",
            aws_code="ThrottlingException",
            in_progress_may_remain=True,
        ),
        Case(
            "KMS",
            "read timeout on GenerateDataKey",
            "sign_in",
            UNAVAILABLE,
            aws_action="kms:GenerateDataKey",
            aws_resource="alias/token-url-credentials",
            aws_code="ReadTimeoutError",
        ),
        Case(
            "Secrets Manager",
            "connection lost",
            "sign_in",
            UNAVAILABLE,
            aws_action="secretsmanager:GetSecretValue",
            aws_resource="token-url/social-login-api-key",
            aws_code=lost,
        ),
        Case("Lambda", "under 2 s left", "credentials", JSON_UNAVAILABLE, remaining_ms=1_200),
        Case("Lambda", "under 2 s left", "unlink", JSON_UNAVAILABLE, remaining_ms=1_200),
        Case(
            "DynamoDB",
            "throttled session read",
            "unlink",
            JSON_UNAVAILABLE,
            aws_action="dynamodb:GetItem",
            aws_resource="SessionsTable",
            aws_code="ThrottlingException",
        ),
        Case(
            "KMS",
            "Decrypt fails",
            "unlink",
            JSON_UNAVAILABLE,
            aws_action="kms:Decrypt",
            aws_resource="alias/token-url-credentials",
            aws_code="KMSInternalException",
        ),
    ]


# Faults that come before Social Login reads the token: the very same submission may be sent again.
RETRY_SAME = {
    ("DynamoDB", "throttled consume of the one-time value"),
    ("DynamoDB", "connection lost consuming the one-time value"),
    ("DynamoDB", "throttled idempotency record"),
    ("DynamoDB", "throttled session read inside the link's token POST"),
    ("Secrets Manager", "GetSecretValue fails"),
    ("Secrets Manager", "connection lost"),
    ("Lambda", "under 2 s left"),
}
CASES = [
    dataclasses.replace(case, retry_same=True)
    if (case.dependency, case.fault) in RETRY_SAME and case.flow in {"sign_in", "link"}
    else case
    for case in identity_cloud_cases() + aws_cases() + more_cases()
]


def assert_nothing_half_written(aws: Aws, *, in_progress_allowed: bool = False) -> None:
    for item in aws.items("SessionsTable"):
        if "identifier" in item:
            # A social sign-in session without the provider's credentials would lose them for good.
            assert "credentials" in item, item["pk"]
        else:
            assert "capture_token" in item, item["pk"]  # a Registration session keeps its access token
    records = aws.items("IdempotencyTable")
    in_progress = [item for item in records if item["status"]["S"] == "INPROGRESS"]
    if in_progress_allowed:
        # It lasts only as long as the invocation could have (15 s here): a fresh attempt is never held back.
        for item in in_progress:
            expires_in = int(item["in_progress_expiration"]["N"]) / 1000 - time.time()
            assert 0 < expires_in <= 15, expires_in
    else:
        assert in_progress == [], "an in-progress record would hold back the user's retry"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_fault(
    case: Case,
    *,
    browser: Browser,
    handler: Any,
    emulator: IdentityCloudEmulator,
    aws: Aws,
    aws_faults: AwsFaults,
    app_module: Any,
) -> None:
    world = World(browser=browser, handler=handler, emulator=emulator, aws=aws)
    flow, success = FLOWS[case.flow]
    if case.flow in {"link", "sign_out", "unlink"}:
        sign_in_to_registration(browser, emulator)
    app_module.service.api_key_source.clear_cache()  # a fault in Secrets Manager must meet a cold cache
    sessions_before = {item["pk"]["S"] for item in aws.items("SessionsTable")}

    if case.emulator_fault is not None:
        emulator.set_fault(case.emulator_endpoint or "", case.emulator_fault)
    if case.aws_action is not None:
        aws_faults.add(case.aws_action, case.aws_resource or "*", case.aws_code, skip=case.aws_skip)
    world.remaining_ms = case.remaining_ms
    assert flow(world) == case.outcome

    may_remain = case.took_effect or case.in_progress_may_remain
    assert_nothing_half_written(aws, in_progress_allowed=may_remain)
    if case.outcome != "token_url_invalid" and not case.took_effect:
        # A failed flow creates no session, and loses none.
        assert {item["pk"]["S"] for item in aws.items("SessionsTable")} == sessions_before
    # Once the fault clears: the same submission again, where it never reached Social Login, succeeds
    # (no idempotency record holds it back) ...
    emulator.clear_faults()
    aws_faults.clear()
    world.remaining_ms = 15_000
    if case.retry_same:
        assert world.last_submission is not None
        assert world.browser.submit_token(*world.last_submission).outcome == {"result": success}
    if case.took_effect:
        assert browser.page_json("GET", "/session").status == 200  # the user got the session
    # ... and the same flow started afresh succeeds.
    if case.flow == "sign_out":
        sign_in_to_registration(browser, emulator)
    assert flow(world) == success
    assert_nothing_half_written(aws, in_progress_allowed=may_remain)


def test_every_outside_call_has_its_faults() -> None:
    covered = {case.dependency for case in CASES}
    assert covered == {
        "auth_info",
        "link_account_native",
        "add_or_update_access_token",
        "entity",
        "unlink_account_native",
        "DynamoDB",
        "KMS",
        "Secrets Manager",
        "Lambda",
    }


def test_a_replay_after_an_unsaved_result_expires_does_not_run_the_flow_again(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws, aws_faults: AwsFaults
) -> None:
    emulator.one_time_tokens = False  # an application whose tokens can be read more than once
    world = World(browser=browser, handler=None, emulator=emulator, aws=aws)
    aws_faults.add("dynamodb:UpdateItem", "IdempotencyTable", "ProvisionedThroughputExceededException")
    assert sign_in(world) == "signed_in"
    # The in-progress record outlives nothing: once the invocation's deadline has passed ...
    [record] = aws.items("IdempotencyTable")
    aws.dynamodb.update_item(
        TableName="IdempotencyTable",
        Key={"id": record["id"]},
        UpdateExpression="SET in_progress_expiration = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time() * 1000) - 1)}},
    )
    # ... a replay of that very submission finds the one-time value retired, not a second session.
    assert world.last_submission is not None
    assert browser.submit_token(*world.last_submission).outcome == {"error": "token_url_invalid"}
    assert len([item for item in aws.items("SessionsTable") if "identifier" in item]) == 1
    assert len(emulator.calls_to("auth_info")) == 1
