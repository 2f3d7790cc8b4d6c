"""Rules the SAM template (infra/template.yaml) keeps, each test named for the property it protects.

Least privilege, encryption, recovery, expiry, an alarm for every failure the function counts, routes
and settings that match the function's code: values are checked against the code that relies on them,
not restated. devtools.template, which reads the template: test_template_tools.py. No network.
"""

from __future__ import annotations

import ast
import fnmatch
import inspect
import re
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from devtools import template as tpl
from devtools.gateway import INTEGRATION_TIMEOUT_SECONDS
from devtools.sam_cli import LAMBDA_PLATFORM, RUNTIME_VERSION
from testkit import lambda_context
from tests.infra.template_support import TABLES, function, policy_statements, references, resources
from tests.support import as_list
from token_url import observability
from token_url.models import NonceRecord, SessionRecord

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = tpl.load_template()

IAM_ROUTES = {("/credentials", "POST")}

FUNCTION_ENV = {
    "TOKEN_POST_ORIGINS",
    "SOCIAL_LOGIN_BASE_URL",
    "SOCIAL_LOGIN_API_KEY_SECRET",
    "CAPTURE_BASE_URL",
    "CAPTURE_CLIENT_ID",
    "CAPTURE_FLOW",
    "CAPTURE_FLOW_VERSION",
    "CAPTURE_LOCALE",
    "CAPTURE_REDIRECT_URI",
    "PUBLIC_BASE_URL",
    "APP_URL",
    "SESSIONS_TABLE",
    "NONCES_TABLE",
    "IDEMPOTENCY_TABLE",
    "CREDENTIALS_KEY_ID",
    "AUDIT_EVENT_BUS",
    # Read by botocore, not Settings; absent when deployed (test_local_aws_endpoint_is_absent_when_deployed).
    "AWS_ENDPOINT_URL",
    "CREDENTIALS_CALLERS",
    "LINK_CONFIRMATION",
    "LINK_CONFIRMATION_SECONDS",
}
GLOBAL_ENV = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
LAMBDA_ARCHITECTURES = {"aarch64": "arm64", "x86_64": "x86_64"}
MAX_LOG_RETENTION_DAYS = 365
FUNCTION_PACKAGE = REPO / "functions" / "token_url" / "token_url"
ALARMED_FAILURES = {
    # metric the function counts: why an operator must hear of it
    "UpstreamErrors": "Social Login or Capture failing: nobody can sign in or link",
    "RejectedTokens": "token submissions refused in numbers: replay, CSRF or probing",
    "AuditEventsLost": "an audit event EventBridge refused: it must be replayed from its ERROR line",
}
NOT_ALARMED = {
    # metric the function counts: why no alarm
    "SignIns": "the service working",
    "Links": "the service working",
    "Unlinks": "the service working",
    "LinkConflicts": "a person's own mistake (an identity linked to another account), answered to them",
    "UntrustedOrigins": "a token POST from a page the function does not trust, answered with an error",
    "Outcomes": "each route's outcomes, for dashboards; the failures among them are counted above",
    "LinksReconciled": "a link whose reply was lost, checked with /entity: found, it is answered linked; "
    "not found, it is an outage counted in UpstreamErrors",
    "UnlinksReconciled": "an unlink whose reply was lost, checked with /entity: gone, it is answered "
    "unlinked; still there, it is an outage counted in UpstreamErrors",
}
LAMBDA_FAILURES = ("Errors", "Throttles")
RECORDS = {"SessionsTable": SessionRecord, "NoncesTable": NonceRecord}
"""The function's model of each table's items (the idempotency table's are Powertools')."""
GUARDED_SERVICES = ("dynamodb:", "kms:", "secretsmanager:", "logs:", "events:")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return tpl.load_template()


# ---------------------------------------------------------------- function


def test_the_runtime_and_architecture_are_the_ones_the_artifact_is_built_for(
    template: dict[str, Any],
) -> None:
    """`sam build` pins compiled wheels for one python and one CPU (devtools.sam_cli): no other loads them."""
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == f"python{RUNTIME_VERSION}"
    platform = LAMBDA_PLATFORM[LAMBDA_PLATFORM.index("--platform") + 1]
    assert globals_["Architectures"] == [LAMBDA_ARCHITECTURES[platform.split("_", 1)[1]]]


def test_the_function_times_out_before_api_gateway_gives_up_on_it(template: dict[str, Any]) -> None:
    """Past the API's integration timeout the caller gets the gateway's error, not the function's answer."""
    timeout = template["Globals"]["Function"]["Timeout"]
    assert 0 < timeout < INTEGRATION_TIMEOUT_SECONDS


def test_the_tests_fake_lambda_context_has_the_deployed_limits(template: dict[str, Any]) -> None:
    """The deadline and memory the tests run the function with are the ones Lambda gives it."""
    globals_ = template["Globals"]["Function"]
    assert (
        globals_["Timeout"],
        globals_["MemorySize"],
    ) == (lambda_context.TIMEOUT_SECONDS, lambda_context.MEMORY_MB)


def test_traces_are_sent_for_the_functions_tracer(template: dict[str, Any]) -> None:
    """Powertools' Tracer sends segments only when Lambda traces the function, and the role may write them."""
    assert template["Globals"]["Function"]["Tracing"] == "Active"
    managed = resources(template)["TokenUrlFunctionRole"]["Properties"]["ManagedPolicyArns"]
    assert any("AWSXrayWriteOnlyAccess" in str(arn) for arn in managed)


def test_metrics_are_published_where_the_alarms_watch(template: dict[str, Any]) -> None:
    """The namespace and service the function publishes under are the ones its alarms name."""
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert set(env) == GLOBAL_ENV
    assert env["POWERTOOLS_SERVICE_NAME"] == observability.SERVICE
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == observability.NAMESPACE
    # Not DEBUG: Powertools then logs whole events, whose query strings carry one-time values.
    assert env["POWERTOOLS_LOG_LEVEL"] in {"INFO", "WARNING", "ERROR"}


def test_the_handler_is_the_packages_lambda_handler(template: dict[str, Any]) -> None:
    """Lambda imports Handler from CodeUri: the module must be there and define the function."""
    properties = function(template)
    code_dir = (REPO / "infra" / properties["CodeUri"]).resolve()
    assert code_dir == REPO / "functions" / "token_url"
    module, _, attribute = properties["Handler"].rpartition(".")
    source = code_dir / (module.replace(".", "/") + ".py")
    tree = ast.parse(source.read_text(encoding="utf-8"))
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert attribute in defined, properties["Handler"]
    # The role whose grants the IAM rules (here and in test_permissions.py) check.
    assert properties["Role"] == {"Fn::GetAtt": ["TokenUrlFunctionRole", "Arn"]}


def test_function_environment_has_exactly_the_variables_the_code_reads(template: dict[str, Any]) -> None:
    own = function(template)["Environment"]["Variables"]
    assert set(own) == FUNCTION_ENV
    assert set(tpl.function_environment(template)) == FUNCTION_ENV | set(GLOBAL_ENV)


def test_function_environment_values(template: dict[str, Any]) -> None:
    env = tpl.function_environment(template)
    assert env["SOCIAL_LOGIN_API_KEY_SECRET"] == {"Ref": "SocialLoginApiKeySecretArn"}
    assert env["PUBLIC_BASE_URL"] == {
        "Fn::If": [
            "HasApiDomain",
            {"Fn::Sub": "https://${ApiDomainName}"},
            {"Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"},
        ]
    }
    assert env["CREDENTIALS_KEY_ID"] == {"Fn::GetAtt": ["CredentialsKey", "Arn"]}
    parameters = template["Parameters"]
    for name, value in env.items():
        if isinstance(value, dict) and "Ref" in value and not value["Ref"].startswith("AWS::"):
            assert value["Ref"] in parameters or value["Ref"] in resources(template), name


def test_link_confirmation_parameters_reach_the_function(template: dict[str, Any]) -> None:
    from token_url.settings import Settings  # noqa: PLC0415 - imported where a rule needs it

    env = tpl.function_environment(template)
    assert env["LINK_CONFIRMATION"] == {"Ref": "LinkConfirmation"}
    assert env["LINK_CONFIRMATION_SECONDS"] == {"Ref": "LinkConfirmationSeconds"}
    confirmation = template["Parameters"]["LinkConfirmation"]
    assert confirmation["AllowedValues"] == [
        "off",
        "on",
    ]  # strings: YAML 1.1 would read bare off/on as booleans
    assert confirmation["Default"] == "off"
    seconds = template["Parameters"]["LinkConfirmationSeconds"]
    assert seconds["Type"] == "Number"
    field = Settings.model_fields["link_confirmation_seconds"]
    bounds = {type(item).__name__: item for item in field.metadata}
    assert (seconds["Default"], seconds["MinValue"], seconds["MaxValue"]) == (
        field.default,
        bounds["Ge"].ge,
        bounds["Le"].le,
    )


def test_the_function_logs_to_its_own_group(template: dict[str, Any]) -> None:
    properties = function(template)
    assert properties["LoggingConfig"]["LogGroup"] == {"Ref": "TokenUrlFunctionLogGroup"}
    log_group = resources(template)["TokenUrlFunctionLogGroup"]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    # The group is the function's default one, so nothing else ever creates an unbounded group.
    assert log_group["Properties"]["LogGroupName"] == {
        "Fn::Sub": "/aws/lambda/" + properties["FunctionName"]["Fn::Sub"]
    }


@pytest.mark.parametrize("logical_id", sorted(tpl.resources_of_type(TEMPLATE, "AWS::Logs::LogGroup")))
def test_every_log_group_forgets(template: dict[str, Any], logical_id: str) -> None:
    """Logs hold IP addresses and profile URLs: kept a bounded time, never forever (the default)."""
    retention = resources(template)[logical_id]["Properties"].get("RetentionInDays")
    assert isinstance(retention, int)
    assert 1 <= retention <= MAX_LOG_RETENTION_DAYS


# ---------------------------------------------------------------- HTTP API


def events(template: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for event in function(template)["Events"].values():
        assert event["Type"] == "HttpApi"
        properties = event["Properties"]
        assert properties["ApiId"] == {"Ref": "HttpApi"}
        assert properties.get("PayloadFormatVersion", "2.0") == "2.0"
        found[(properties["Path"], properties["Method"].upper())] = properties
    return found


def function_routes(app_module: ModuleType) -> set[tuple[str, str]]:
    """(path, method) of every route the function's resolver serves."""
    [resolver] = [value for value in vars(app_module).values() if isinstance(value, APIGatewayHttpResolver)]
    routes = resolver._static_routes + resolver._dynamic_routes
    return {(route.path, route.method.upper()) for route in routes}


def test_the_apis_routes_are_the_functions_routes(template: dict[str, Any], app_module: ModuleType) -> None:
    """A route the API lacks is unreachable; one the function lacks is a 404 behind API Gateway's auth."""
    assert set(events(template)) == function_routes(app_module)


def test_credentials_route_requires_iam_and_no_other_route_does(template: dict[str, Any]) -> None:
    api = resources(template)["HttpApi"]
    assert api["Type"] == "AWS::Serverless::HttpApi"
    assert api["Properties"]["Auth"]["EnableIamAuthorizer"] is True
    assert "DefaultAuthorizer" not in api["Properties"]["Auth"]
    for route, properties in events(template).items():
        authorizer = properties.get("Auth", {}).get("Authorizer")
        assert (authorizer == "AWS_IAM") == (route in IAM_ROUTES), route


def test_api_integrations_name_the_function_without_referencing_it(template: dict[str, Any]) -> None:
    """HttpApi must not depend on the function: the function's PUBLIC_BASE_URL depends on HttpApi."""
    api = resources(template)["HttpApi"]["Properties"]
    function_name = function(template)["FunctionName"]["Fn::Sub"]
    routes = set()
    for path, methods in api["DefinitionBody"]["paths"].items():
        for method, operation in methods.items():
            routes.add((path, method.upper()))
            integration = operation["x-amazon-apigateway-integration"]
            assert integration["type"] == "aws_proxy"
            assert integration["payloadFormatVersion"] == "2.0"
            uri = integration["uri"]["Fn::Sub"]
            # The alias, never $LATEST: only published versions have a snapshot (test_snapstart.py).
            assert uri.endswith(
                f":function:{function_name}:{function(template)['AutoPublishAlias']}/invocations"
            )
    assert routes == set(events(template))
    assert "TokenUrlFunction" not in references(resources(template)["HttpApi"])


def test_no_circular_dependencies(template: dict[str, Any]) -> None:
    graph: dict[str, set[str]] = {}
    for logical_id, resource in resources(template).items():
        depends = set(as_list(resource.get("DependsOn", [])))
        graph[logical_id] = (references(resource.get("Properties", {})) | depends) & set(resources(template))
    # SAM adds, for events on an API without the integration in its DefinitionBody, API -> function.
    for logical_id, resource in resources(template).items():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            api_id = event["Properties"].get("ApiId", {}).get("Ref")
            paths = resources(template)[api_id]["Properties"].get("DefinitionBody", {}).get("paths", {})
            if event["Properties"]["Method"].lower() not in paths.get(event["Properties"]["Path"], {}):
                graph[api_id].add(logical_id)

    def visit(node: str, stack: tuple[str, ...]) -> None:
        assert node not in stack, " -> ".join((*stack, node))
        for target in graph[node]:
            visit(target, (*stack, node))

    for node in graph:
        visit(node, ())


def test_the_api_is_throttled_and_its_access_logs_carry_no_query(template: dict[str, Any]) -> None:
    api = resources(template)["HttpApi"]["Properties"]
    assert api["DefaultRouteSettings"]["ThrottlingBurstLimit"] > 0
    assert api["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert api["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    log_format = api["AccessLogSettings"]["Format"]
    # The token URL's query string carries a one-time value: never log paths or queries.
    assert "$context.path" not in log_format
    assert "querystring" not in log_format.lower()


# ---------------------------------------------------------------- tables


def test_the_tables_keys_are_the_ones_the_function_writes() -> None:
    for logical_id, record in RECORDS.items():
        key, expiry, _ = TABLES[logical_id]
        assert {key, expiry} <= set(record.model_fields), logical_id
    # The function's idempotency layer keeps Powertools' default attribute names.
    idempotency = inspect.signature(DynamoDBPersistenceLayer.__init__).parameters
    key, expiry, _ = TABLES["IdempotencyTable"]
    assert (idempotency["key_attr"].default, idempotency["expiry_attr"].default) == (key, expiry)


def table(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    resource = resources(template)[logical_id]
    assert resource["Type"] == "AWS::DynamoDB::Table"
    return dict(resource["Properties"])


@pytest.mark.parametrize("logical_id", sorted(TABLES))
def test_every_table_is_encrypted_at_rest_with_kms(template: dict[str, Any], logical_id: str) -> None:
    """Sessions name people and hold sealed credentials: encrypted at rest by KMS.

    The AWS-owned key, not CredentialsKey: the fields that matter are sealed with CredentialsKey by the
    function itself, so that no reader of the table (a backup, an export) sees them.
    """
    assert table(template, logical_id)["SSESpecification"]["SSEEnabled"] is True


@pytest.mark.parametrize("logical_id", sorted(TABLES))
def test_every_table_can_be_restored_to_a_point_in_time(template: dict[str, Any], logical_id: str) -> None:
    """A bad deploy or a mistaken delete must not sign everyone out or reopen spent one-time values."""
    recovery = table(template, logical_id)["PointInTimeRecoverySpecification"]
    assert recovery == {"PointInTimeRecoveryEnabled": True}


@pytest.mark.parametrize("logical_id", sorted(TABLES))
def test_every_table_deletes_expired_items_by_the_attribute_the_function_writes(
    template: dict[str, Any], logical_id: str
) -> None:
    """Every item is short-lived; TTL on another attribute would keep sessions and attempts forever."""
    _, expiry, _ = TABLES[logical_id]
    ttl = table(template, logical_id)["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": expiry, "Enabled": True}


@pytest.mark.parametrize("logical_id", sorted(TABLES))
def test_every_table_is_keyed_as_the_function_reads_it(template: dict[str, Any], logical_id: str) -> None:
    key, _, _ = TABLES[logical_id]
    properties = table(template, logical_id)
    assert properties["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": key, "AttributeType": "S"}]


@pytest.mark.parametrize("logical_id", sorted(TABLES))
def test_every_table_scales_with_traffic_and_is_named_per_stack(
    template: dict[str, Any], logical_id: str
) -> None:
    """On demand: a burst of sign-ins is never refused for capacity. No fixed name: stacks never collide."""
    properties = table(template, logical_id)
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert "TableName" not in properties


def test_every_table_is_one_the_function_is_told_about(template: dict[str, Any]) -> None:
    assert set(tpl.resources_of_type(template, "AWS::DynamoDB::Table")) == set(TABLES)
    assert not tpl.resources_of_type(template, "AWS::Serverless::SimpleTable")


# ---------------------------------------------------------------- IAM and KMS


def test_the_role_has_no_managed_policy_wider_than_xray(template: dict[str, Any]) -> None:
    role = resources(template)["TokenUrlFunctionRole"]
    assert role["Type"] == "AWS::IAM::Role"
    managed = {arn["Fn::Sub"].rsplit("/", 1)[-1] for arn in role["Properties"]["ManagedPolicyArns"]}
    # Not AWSLambdaBasicExecutionRole: it grants logs on every log group of the account.
    assert managed == {"AWSXrayWriteOnlyAccess"}
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    policy = resources(template)["TokenUrlFunctionPolicy"]["Properties"]
    assert policy["RoleName"] == {"Ref": "TokenUrlFunctionRole"}
    assert "TokenUrlFunctionPolicy" in as_list(resources(template)["TokenUrlFunction"]["DependsOn"])


STATEMENTS = {
    statement.get("Sid", logical_id): statement for logical_id, statement in policy_statements(TEMPLATE)
}


def test_the_policy_has_statements() -> None:
    assert STATEMENTS


@pytest.mark.parametrize("sid", sorted(STATEMENTS))
def test_every_statement_names_specific_actions(sid: str) -> None:
    """Least privilege: `dynamodb:*` or `kms:*` would grant calls no flow makes (test_permissions.py)."""
    statement = STATEMENTS[sid]
    assert statement["Effect"] == "Allow"
    actions = as_list(statement["Action"])
    assert all("*" not in action for action in actions), actions


@pytest.mark.parametrize("sid", sorted(STATEMENTS))
def test_every_statement_is_scoped_to_this_stacks_resources(template: dict[str, Any], sid: str) -> None:
    """Least privilege: each grant names a resource of this stack, or the apiKey secret it is given; no `*`.

    The one grant on `*` is the managed X-Ray write policy: X-Ray has no resource to scope a grant to.
    """
    own = set(resources(template)) | {"SocialLoginApiKeySecretArn"}
    for resource in as_list(STATEMENTS[sid]["Resource"]):
        assert not isinstance(resource, str), (sid, resource)
        assert references(resource), (sid, resource)
        assert references(resource) <= own, (sid, resource)


def test_the_key_policys_only_wildcard_is_the_key_itself(template: dict[str, Any]) -> None:
    """In a key policy, Resource is `*` and means this key only: AWS requires it (the key's ARN does not
    exist before its policy does). No statement grants every KMS action."""
    for statement in key_statements(template):
        assert statement["Resource"] == "*"
        assert not {"*", "kms:*"} & set(as_list(statement["Action"]))


def test_each_service_is_granted_only_on_the_functions_resources(template: dict[str, Any]) -> None:
    # Which actions on which resource: tests/infra/test_permissions.py, from the calls flows make.
    granted: dict[str, list[Any]] = {}
    for _, statement in policy_statements(template):
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            granted.setdefault(action, []).extend(as_list(statement["Resource"]))
    tables = {str({"Fn::GetAtt": [logical_id, "Arn"]}) for logical_id in TABLES}
    for action, targets in granted.items():
        if action.startswith("dynamodb:"):
            assert {str(target) for target in targets} <= tables, action
    key = [{"Fn::GetAtt": ["CredentialsKey", "Arn"]}]
    assert granted["kms:GenerateDataKey"] == granted["kms:Decrypt"] == key
    assert {action for action in granted if action.startswith("kms:")} == {
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }
    assert granted["secretsmanager:GetSecretValue"] == [{"Ref": "SocialLoginApiKeySecretArn"}]
    own_log_group = [{"Fn::GetAtt": ["TokenUrlFunctionLogGroup", "Arn"]}]
    assert granted["logs:CreateLogStream"] == granted["logs:PutLogEvents"] == own_log_group
    assert {action for action in granted if action.startswith("logs:")} == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    # Audit events go to the stack's own bus, never the account's default one.
    assert granted["events:PutEvents"] == [{"Fn::GetAtt": ["AuditEventBus", "Arn"]}]
    assert not any(action.startswith("events:") and action != "events:PutEvents" for action in granted)


def test_the_log_permissions_name_the_group_the_function_logs_to(template: dict[str, Any]) -> None:
    # The group the grant names is the one the function writes to, with the name Lambda would use.
    assert function(template)["LoggingConfig"]["LogGroup"] == {"Ref": "TokenUrlFunctionLogGroup"}
    [statement] = [
        statement
        for _, statement in policy_statements(template)
        if any(action.startswith("logs:") for action in as_list(statement["Action"]))
    ]
    assert as_list(statement["Resource"]) == [{"Fn::GetAtt": ["TokenUrlFunctionLogGroup", "Arn"]}]


def key_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    key = resources(template)["CredentialsKey"]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    return as_list(key["Properties"]["KeyPolicy"]["Statement"])


def is_account_root(principal: Any) -> bool:
    values = as_list(principal.get("AWS", [])) if isinstance(principal, dict) else [principal]
    for value in values:
        text = value.get("Fn::Sub", "") if isinstance(value, dict) else str(value)
        if text == "*" or text.endswith(":root") or re.fullmatch(r"\d{12}|\$\{AWS::AccountId\}", text):
            return True
        if isinstance(value, dict) and value.get("Ref") == "AWS::AccountId":
            return True
    return False


def allows(statement: dict[str, Any], action: str) -> bool:
    return any(
        fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in as_list(statement["Action"])
    )


def test_key_policy_lets_the_account_administer_but_not_use_the_key(template: dict[str, Any]) -> None:
    statements = key_statements(template)
    root = [s for s in statements if s["Effect"] == "Allow" and is_account_root(s["Principal"])]
    assert root, "the account must be able to administer the key"
    for action in (
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncryptFrom",
        "kms:GenerateDataKey",
        "kms:CreateGrant",
    ):
        assert not any(allows(statement, action) for statement in root), action
    for action in ("kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DescribeKey", "kms:TagResource"):
        assert any(allows(statement, action) for statement in root), action


def test_only_the_function_role_uses_the_key(template: dict[str, Any]) -> None:
    users = [
        statement
        for statement in key_statements(template)
        if statement["Effect"] == "Allow"
        and any(allows(statement, action) for action in ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"))
    ]
    assert len(users) == 1
    assert users[0]["Principal"] == {"AWS": {"Fn::GetAtt": ["TokenUrlFunctionRole", "Arn"]}}
    assert sorted(as_list(users[0]["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    alias = resources(template)["CredentialsKeyAlias"]
    assert alias["Type"] == "AWS::KMS::Alias"
    assert alias["Properties"]["TargetKeyId"] == {"Ref": "CredentialsKey"}


# ---------------------------------------------------------------- parameters


SECRET_NAME = re.compile(r"key|secret|token|password|credential", re.IGNORECASE)
SECRET_VALUE = re.compile(r"[A-Za-z0-9+/=_-]{20,}")


def test_parameters_have_no_secret_defaults(template: dict[str, Any]) -> None:
    for name, parameter in template["Parameters"].items():
        default = str(parameter.get("Default", ""))
        if SECRET_NAME.search(name):
            assert default == "", name
        assert not SECRET_VALUE.fullmatch(default), name


def test_secret_is_passed_by_arn(template: dict[str, Any]) -> None:
    pattern = re.compile(template["Parameters"]["SocialLoginApiKeySecretArn"]["AllowedPattern"])
    assert pattern.fullmatch("arn:aws:secretsmanager:us-east-1:123456789012:secret:token-url/api-key-AbCdEf")
    assert not pattern.fullmatch("0123456789abcdef0123456789abcdef01234567")


@pytest.mark.parametrize(
    ("parameter", "good", "bad"),
    [
        ("SocialLoginBaseUrl", "https://my-app.rpxnow.com", "https://evil.example.com"),
        ("CaptureBaseUrl", "https://my-app.us-dev.janraincapture.com", "http://my-app.janraincapture.com"),
        ("CaptureClientId", "abcdefghijklmnopqrstuvwxyz012345", "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"),
        ("CaptureFlowVersion", "20240131-abcdef", "HEAD"),
        ("CaptureLocale", "en-US", "english"),
        ("CaptureRedirectUri", "https://app.example.com/", "javascript:alert(1)"),
        ("AppUrl", "https://app.example.com", "http://app.example.com"),
        ("ApiDomainName", "api.example.com", "https://api.example.com"),
        ("ApiDomainName", "", "API.example.com"),
        (
            "ApiCertificateArn",
            "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012",
            "arn:aws:iam::123456789012:server-certificate/x",
        ),
        ("ApiHostedZoneId", "Z0123456789ABCDEFGHIJ", "example.com"),
        ("LocalAwsEndpointUrl", "http://127.0.0.1:3001", "https://dynamodb.us-east-1.amazonaws.com"),
        ("LocalAwsEndpointUrl", "", "http://attacker.example:3001"),
        (
            "CredentialsCallers",
            "arn:aws:iam::123456789012:role/importer, arn:aws:iam::123456789012:user/ops/batch",
            "arn:aws:sts::123456789012:assumed-role/importer/session",
        ),
        ("CredentialsCallers", "", "arn:aws:iam::123456789012:role/*"),
        ("CredentialsCallers", "arn:aws:iam::123456789012:role/importer", "arn:aws:iam::123456789012:root"),
    ],
)
def test_parameter_patterns(template: dict[str, Any], parameter: str, good: str, bad: str) -> None:
    pattern = re.compile(template["Parameters"][parameter]["AllowedPattern"])
    assert pattern.fullmatch(good)
    assert not pattern.fullmatch(bad)


def test_defaults_satisfy_their_own_patterns(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters["CaptureFlow"]["Default"] == "standard"
    assert parameters["CaptureLocale"]["Default"] == "en-US"
    for name, parameter in parameters.items():
        if "Default" in parameter and parameter["Default"] != "" and "AllowedPattern" in parameter:
            assert re.fullmatch(parameter["AllowedPattern"], parameter["Default"]), name


# ---------------------------------------------------------------- alarms and outputs


def counted_metrics() -> set[str]:
    """Every metric the function's code counts: `count("Name")`, `count_by("Name", ...)` (with dimensions),
    `count(CONSTANT)` of a module constant, or the `metric="Name"` of a recheck's `Change`
    (flows/recheck.py)."""
    names: set[str] = set()
    for source in FUNCTION_PACKAGE.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        names |= set(re.findall(r'\bcount\("([A-Za-z]+)"\)', text))
        names |= set(re.findall(r'\bcount_by\("([A-Za-z]+)"', text))
        names |= set(re.findall(r'\bmetric="([A-Za-z]+)"', text))
        for constant in re.findall(r"\bcount\(([A-Z_]+)\)", text):
            names |= set(re.findall(rf'^{constant} = "([A-Za-z]+)"', text, re.MULTILINE))
    return names


def test_every_metric_the_function_counts_is_alarmed_or_said_why_not() -> None:
    assert counted_metrics() == set(ALARMED_FAILURES) | set(NOT_ALARMED)


def alarms_on(template: dict[str, Any], namespace: str, metric: str) -> list[dict[str, Any]]:
    return [
        alarm["Properties"]
        for alarm in tpl.resources_of_type(template, "AWS::CloudWatch::Alarm").values()
        if (alarm["Properties"]["Namespace"], alarm["Properties"]["MetricName"]) == (namespace, metric)
    ]


@pytest.mark.parametrize("metric", sorted(ALARMED_FAILURES))
def test_every_failure_the_function_counts_has_an_alarm(template: dict[str, Any], metric: str) -> None:
    """Alarmed where Powertools publishes it: the function's namespace, with its service dimension."""
    [alarm] = alarms_on(template, observability.NAMESPACE, metric)
    assert alarm["Dimensions"] == [{"Name": "service", "Value": observability.SERVICE}]
    assert alarm["Statistic"] == "Sum"


@pytest.mark.parametrize("metric", LAMBDA_FAILURES)
def test_the_functions_errors_and_throttles_have_alarms(template: dict[str, Any], metric: str) -> None:
    """Lambda's own failure metrics, for this function: a crash or a throttle is nobody signing in.

    FunctionName alone aggregates every version and alias, so the alarm covers the `live` alias,
    whichever version it names; a Resource dimension would tie it to one alias or version.
    """
    [alarm] = alarms_on(template, "AWS/Lambda", metric)
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "TokenUrlFunction"}}]


@pytest.mark.parametrize("logical_id", sorted(tpl.resources_of_type(TEMPLATE, "AWS::CloudWatch::Alarm")))
def test_every_alarm_notifies_the_alarm_topic_when_one_is_given(
    template: dict[str, Any], logical_id: str
) -> None:
    """An alarm nobody hears is no alarm; a quiet period (no data) is no failure."""
    alarm = resources(template)[logical_id]["Properties"]
    notify = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    assert alarm["AlarmActions"] == notify
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["Threshold"] >= 1


def test_one_lost_audit_event_raises_the_alarm(template: dict[str, Any]) -> None:
    """One lost event is one too many: it must be replayed from its ERROR line."""
    [lost] = alarms_on(template, observability.NAMESPACE, "AuditEventsLost")
    assert lost["Threshold"] == 1


def test_the_outputs_give_an_operator_what_to_configure_and_find(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    condition, custom, default = function(template)["Environment"]["Variables"]["PUBLIC_BASE_URL"]["Fn::If"]
    assert outputs["ApiBaseUrl"]["Value"] == {"Fn::If": [condition, custom, default]}
    assert outputs["TokenUrlEndpoint"]["Value"] == {
        "Fn::If": [
            condition,
            {"Fn::Sub": custom["Fn::Sub"] + "/token"},
            {"Fn::Sub": default["Fn::Sub"] + "/token"},
        ]
    }
    assert outputs["TokenUrlFunctionAliasArn"]["Value"] == {"Ref": "TokenUrlFunction.Alias"}
    assert outputs["SessionsTableName"]["Value"] == {"Ref": "SessionsTable"}
    assert outputs["NoncesTableName"]["Value"] == {"Ref": "NoncesTable"}
    assert outputs["IdempotencyTableName"]["Value"] == {"Ref": "IdempotencyTable"}
    assert outputs["CredentialsKeyArn"]["Value"] == {"Fn::GetAtt": ["CredentialsKey", "Arn"]}
    route_arn = outputs["CredentialsRouteArn"]["Value"]["Fn::Sub"]
    assert route_arn.endswith(":${HttpApi}/$default/POST/credentials")
    assert route_arn.startswith("arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:")
    assert outputs["AuditEventBusName"]["Value"] == {"Ref": "AuditEventBus"}
    assert outputs["AuditEventBusArn"]["Value"] == {"Fn::GetAtt": ["AuditEventBus", "Arn"]}


# ---------------------------------------------------------------- audit events


def test_audit_events_go_to_a_custom_bus_named_for_the_function(template: dict[str, Any]) -> None:
    bus = resources(template)["AuditEventBus"]
    assert bus["Type"] == "AWS::Events::EventBus"
    assert bus["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-audit"}
    assert tpl.function_environment(template)["AUDIT_EVENT_BUS"] == {"Ref": "AuditEventBus"}


def test_audit_events_are_archived_for_the_retention_parameter(template: dict[str, Any]) -> None:
    archive = resources(template)["AuditEventArchive"]
    assert archive["Type"] == "AWS::Events::Archive"
    properties = archive["Properties"]
    assert properties["SourceArn"] == {"Fn::GetAtt": ["AuditEventBus", "Arn"]}
    assert properties["EventPattern"] == {"source": ["token-url"]}
    assert properties["RetentionDays"] == {"Ref": "AuditArchiveRetentionDays"}
    retention = template["Parameters"]["AuditArchiveRetentionDays"]
    assert retention["Type"] == "Number"
    # Never 0, which EventBridge reads as "keep forever": the events hold personal data.
    assert 1 <= retention["MinValue"] <= retention["Default"] <= retention["MaxValue"]


def sam_generated_references(template: dict[str, Any]) -> set[str]:
    """What SAM lets a template reference of the resources it generates: `<function>.Alias` and
    `<function>.Version` of a function with AutoPublishAlias."""
    return {
        f"{logical_id}.{generated}"
        for logical_id, resource in tpl.resources_of_type(template, "AWS::Serverless::Function").items()
        if "AutoPublishAlias" in resource["Properties"]
        for generated in ("Alias", "Version")
    }


def test_every_reference_resolves(template: dict[str, Any]) -> None:
    known = set(template["Parameters"]) | set(resources(template)) | sam_generated_references(template)
    for section in ("Resources", "Outputs"):
        for logical_id, value in template[section].items():
            for name in references(value):
                assert name.startswith("AWS::") or name in known, (section, logical_id, name)


# ---------------------------------------------------------------- samconfig


def test_samconfig() -> None:
    config = tomllib.loads((REPO / "samconfig.toml").read_text(encoding="utf-8"))
    assert config["version"] == 0.1
    default = config["default"]
    assert default["global"]["parameters"]["stack_name"] == "token-url"
    assert default["build"]["parameters"]["template_file"] == "infra/template.yaml"
    assert default["validate"]["parameters"] == {"template_file": "infra/template.yaml", "lint": True}
    deploy = default["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert (REPO / default["build"]["parameters"]["template_file"]).is_file()


def test_template_environment_matches_what_the_code_reads(template: dict[str, Any]) -> None:
    """The function's Settings model and the template cannot drift apart."""
    from token_url.settings import Settings  # noqa: PLC0415 - imported where a rule needs it

    own = set(function(template)["Environment"]["Variables"])
    read_by_code = {name.upper() for name in Settings.model_fields} | {"AWS_ENDPOINT_URL"}  # botocore's
    required_by_code = {name.upper() for name, field in Settings.model_fields.items() if field.is_required()}
    assert required_by_code <= own, "a required setting is missing from the template"
    assert own <= read_by_code, "the template sets a variable the code never reads"


def test_cors_allows_only_the_app_origin_with_credentials(template: dict[str, Any]) -> None:
    cors = resources(template)["HttpApi"]["Properties"]["CorsConfiguration"]
    assert cors["AllowCredentials"] is True
    [origin] = cors["AllowOrigins"]
    assert origin == {
        "Fn::Sub": [
            "https://${AppHost}",
            {"AppHost": {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AppUrl"}]}]}},
        ]
    }
    assert set(cors["AllowMethods"]) == {"GET", "POST", "DELETE"}


# ---------------------------------------------------------------- custom domain, sam local


def test_local_aws_endpoint_is_absent_when_deployed(template: dict[str, Any]) -> None:
    env = tpl.function_environment(template)
    assert env["AWS_ENDPOINT_URL"] == {
        "Fn::If": ["UsesLocalAws", {"Ref": "LocalAwsEndpointUrl"}, {"Ref": "AWS::NoValue"}]
    }
    assert template["Conditions"]["UsesLocalAws"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "LocalAwsEndpointUrl"}, ""]}]
    }
    assert template["Parameters"]["LocalAwsEndpointUrl"]["Default"] == ""


def test_custom_domain_is_optional_and_maps_the_api(template: dict[str, Any]) -> None:
    assert {"ApiDomainName", "ApiCertificateArn", "ApiHostedZoneId"} <= set(template["Parameters"])
    for name in ("ApiDomainName", "ApiCertificateArn", "ApiHostedZoneId"):
        assert template["Parameters"][name]["Default"] == ""
    domain, mapping, record = (
        resources(template)[name] for name in ("ApiDomain", "ApiDomainMapping", "ApiDomainRecord")
    )
    assert domain["Condition"] == mapping["Condition"] == "HasApiDomain"
    assert record["Condition"] == "HasApiDnsRecord"
    assert domain["Properties"]["DomainNameConfigurations"] == [
        {
            "CertificateArn": {"Ref": "ApiCertificateArn"},
            "EndpointType": "REGIONAL",
            "SecurityPolicy": "TLS_1_2",
        }
    ]
    assert mapping["Properties"]["ApiId"] == {"Ref": "HttpApi"}
    assert mapping["Properties"]["Stage"] == "$default"
    assert record["Properties"]["AliasTarget"]["DNSName"] == {
        "Fn::GetAtt": ["ApiDomain", "RegionalDomainName"]
    }
    assert mapping["DependsOn"] == "HttpApiApiGatewayDefaultStage"  # the stage SAM generates for HttpApi
    # A domain without its certificate (or the reverse, or a zone without a domain) is refused before
    # anything is created: each rule is "when <parameter> is set, <other> must be set".

    def set_parameter(expression: dict[str, Any]) -> str:
        [[reference, empty]] = [expression["Fn::Not"][0]["Fn::Equals"]]
        assert empty == ""
        return str(reference["Ref"])

    rules = {
        (set_parameter(rule["RuleCondition"]), set_parameter(assertion["Assert"]))
        for rule in template["Rules"].values()
        for assertion in rule["Assertions"]
    }
    assert rules == {
        ("ApiDomainName", "ApiCertificateArn"),
        ("ApiCertificateArn", "ApiDomainName"),
        ("ApiHostedZoneId", "ApiDomainName"),
    }


# ---------------------------------------------------------------- hardening


def test_the_execute_api_endpoint_is_off_exactly_when_the_api_has_its_own_domain(
    template: dict[str, Any],
) -> None:
    api = resources(template)["HttpApi"]["Properties"]
    # The same condition PUBLIC_BASE_URL and the outputs switch on: never a base URL that is switched off.
    condition = function(template)["Environment"]["Variables"]["PUBLIC_BASE_URL"]["Fn::If"][0]
    assert condition == "HasApiDomain"
    assert api["DisableExecuteApiEndpoint"] == {"Fn::If": [condition, True, False]}
    assert resources(template)["ApiDomainMapping"]["Condition"] == condition


def test_reserved_concurrency_is_a_parameter_unreserved_by_default(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["ReservedConcurrency"]
    assert parameter["Type"] == "Number"
    assert parameter["Default"] == 0
    assert parameter["MinValue"] == 0
    assert function(template)["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    assert template["Conditions"]["HasReservedConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ReservedConcurrency"}, "0"]}]
    }


def test_credentials_callers_are_absent_unless_given(template: dict[str, Any]) -> None:
    env = tpl.function_environment(template)
    assert env["CREDENTIALS_CALLERS"] == {
        "Fn::If": ["HasCredentialsCallers", {"Ref": "CredentialsCallers"}, {"Ref": "AWS::NoValue"}]
    }
    assert template["Conditions"]["HasCredentialsCallers"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CredentialsCallers"}, ""]}]
    }
    assert template["Parameters"]["CredentialsCallers"]["Default"] == ""
