"""The template's IAM policy grants exactly the AWS calls the function makes: nothing missing, nothing spare.

Every route and outcome that reaches AWS (audit events included) is driven through lambda_handler while
every botocore call is recorded (service, action, resource); the set is then compared with what the
template's identity policies grant, resolved to the names the tests' resources have.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.client import BaseClient

from devtools.audit_events import AUDIT_BUS
from devtools.template import resources_of_type
from emulator import Fault, IdentityCloudEmulator
from testkit.browser import Browser
from testkit.events import http_event
from testkit.lambda_context import FakeLambdaContext
from tests.function_world import KEY_ALIAS, SECRET_NAME
from tests.integration.flows_support import FACEBOOK_ID, link, sign_in, sign_in_to_registration
from tests.support import as_list

Call = tuple[str, str]  # ("dynamodb:GetItem", resource)
LOG_GROUP = "TokenUrlFunctionLogGroup"
# Made with the function's role by the Lambda service, not by the code: the function's own log output.
RUNTIME_CALLS: set[Call] = {("logs:CreateLogStream", LOG_GROUP), ("logs:PutLogEvents", LOG_GROUP)}


@pytest.fixture
def aws_calls(monkeypatch: pytest.MonkeyPatch, handler: Any) -> set[Call]:
    """Every AWS API call made from here on, as IAM names it, with the resource it names."""
    calls: set[Call] = set()
    original = BaseClient._make_api_call

    def recording(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        prefix = client.meta.service_model.signing_name
        resource = params.get("TableName") or params.get("KeyId") or params.get("SecretId") or "*"
        if operation == "PutEvents":
            buses = {entry.get("EventBusName", "default") for entry in params["Entries"]}
            resource = buses.pop() if len(buses) == 1 else str(sorted(buses))
        calls.add((f"{prefix}:{operation}", str(resource)))
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return calls


def granted_calls(template: dict[str, Any]) -> set[Call]:
    """(action, resource) pairs the template's identity policies allow, resources named as in the tests."""
    names = {logical_id: logical_id for logical_id in resources_of_type(template, "AWS::DynamoDB::Table")}
    names["CredentialsKey"] = KEY_ALIAS
    names["SocialLoginApiKeySecretArn"] = SECRET_NAME
    names[LOG_GROUP] = LOG_GROUP
    names["AuditEventBus"] = AUDIT_BUS
    granted: set[Call] = set()
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::RolePolicy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            targets = as_list(statement["Resource"])
            actions = as_list(statement["Action"])
            for target in targets:
                logical_id = target.get("Ref") or target["Fn::GetAtt"][0]
                granted |= {(action, names[logical_id]) for action in actions}
    return granted


def test_the_policy_grants_exactly_the_calls_every_flow_makes(
    aws_calls: set[Call], handler: Any, emulator: IdentityCloudEmulator, template: dict[str, Any]
) -> None:
    browser = Browser(handler, "alice")
    # Sign-in; the same submission again (a replay reads the idempotency record).
    token_url = browser.start("sign_in")
    token = emulator.issue_token(token_url, "https://www.google.com/profiles/1")
    assert browser.submit_token(token_url, token).outcome == {"result": "signed_in"}
    assert browser.submit_token(token_url, token).outcome == {"result": "signed_in"}
    # An outage inside the flow: Powertools deletes its in-progress record so a retry can run.
    emulator.set_fault("auth_info", Fault.http_500())
    assert sign_in(browser, emulator) == {"error": "service_unavailable"}
    # Registration session, link (decrypts the access token, adds to the session's links), session read.
    sign_in_to_registration(browser, emulator)
    assert link(browser, emulator, FACEBOOK_ID) == {"result": "linked"}
    assert browser.page_json("GET", "/session").status == 200
    # An access token Capture calls expired is dropped from the session.
    access_token = sign_in_to_registration(browser, emulator, "user-2")
    emulator.expire_access_token(access_token)
    assert link(browser, emulator, "https://twitter.com/profile/bob") == {"error": "session_expired"}
    # Sign out, and a server storing provider credentials (reads the apiKey).
    assert browser.page_json("DELETE", "/session").status == 204
    event = http_event(
        "POST",
        "/credentials",
        body='{"identifier": "http://www.facebook.com/profile.php?id=2", "token": "EAAB0123456789"}',
        headers={"Content-Type": "application/json"},
        iam=True,
    )
    assert handler(event, FakeLambdaContext())["statusCode"] == 200

    granted = granted_calls(template)
    assert aws_calls - granted == set(), "the function makes calls the policy does not allow"
    assert granted - aws_calls - RUNTIME_CALLS == set(), "the policy allows calls no flow makes"
    assert granted & RUNTIME_CALLS == RUNTIME_CALLS, "Lambda could not write the function's logs"


def test_logs_are_granted_on_the_function_log_group_only(template: dict[str, Any]) -> None:
    logs = {call for call in granted_calls(template) if call[0].startswith("logs:")}
    assert logs == RUNTIME_CALLS
    properties = template["Resources"]["TokenUrlFunction"]["Properties"]
    assert properties["LoggingConfig"]["LogGroup"] == {"Ref": LOG_GROUP}
    role = template["Resources"]["TokenUrlFunctionRole"]["Properties"]
    # A managed policy would widen the grant (AWSLambdaBasicExecutionRole: logs on every group).
    assert not any("BasicExecution" in str(arn) for arn in role["ManagedPolicyArns"])
