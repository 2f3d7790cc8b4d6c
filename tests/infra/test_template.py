"""The SAM template (infra/template.yaml) and the devtools that read it. No network."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devtools import template as tpl
from tests.support import as_list

REPO = Path(__file__).resolve().parents[2]

ROUTES = {
    ("/token-url", "POST"),
    ("/token", "POST"),
    ("/session", "POST"),
    ("/session", "GET"),
    ("/session", "DELETE"),
    ("/credentials", "POST"),
    ("/health", "GET"),
    ("/link", "GET"),
    ("/link", "POST"),
}
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
GLOBAL_ENV = {
    "POWERTOOLS_SERVICE_NAME": "token-url",
    "POWERTOOLS_METRICS_NAMESPACE": "TokenUrl",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}
TABLES = {
    # logical id: (hash key, TTL attribute, env var)
    "SessionsTable": ("pk", "expires_at", "SESSIONS_TABLE"),
    "NoncesTable": ("pk", "expires_at", "NONCES_TABLE"),
    "IdempotencyTable": ("id", "expiration", "IDEMPOTENCY_TABLE"),
}
GUARDED_SERVICES = ("dynamodb:", "kms:", "secretsmanager:", "logs:", "events:")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return tpl.load_template()


def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


def function(template: dict[str, Any]) -> dict[str, Any]:
    return resources(template)["TokenUrlFunction"]["Properties"]


def policy_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(logical id, statement) for every identity-based IAM policy statement in the template."""
    for logical_id, resource in resources(template).items():
        properties = resource.get("Properties", {})
        if resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::RolePolicy", "AWS::IAM::ManagedPolicy"}:
            documents = [properties["PolicyDocument"]]
        elif resource["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        else:
            continue
        for document in documents:
            for statement in as_list(document["Statement"]):
                yield logical_id, statement


def references(value: Any) -> set[str]:
    """Logical ids (and parameters) a template value refers to: Ref, GetAtt and ${...} in Sub."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".", 1)[0]
                found.add(target)
            elif key == "Fn::Sub":
                text, variables = (inner[0], inner[1]) if isinstance(inner, list) else (inner, {})
                for name in re.findall(r"\$\{([^!}][^}]*)\}", text):
                    if name.split(".", 1)[0] not in variables:
                        found.add(name.split(".", 1)[0])
                found |= references(variables)
            else:
                found |= references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= references(inner)
    return found


# ---------------------------------------------------------------- loader


def test_loader_turns_short_tags_into_long_forms() -> None:
    loaded = tpl.loads(
        "a: !Ref X\n"
        "b: !GetAtt R.Arn\n"
        "c: !Sub 'x-${AWS::Region}'\n"
        "d: !Join ['', [a, !Ref Y]]\n"
        "e: !If [C, 1, !Ref AWS::NoValue]\n"
        "f: !Condition C\n"
        "g: !GetAtt [R, Arn]\n"
        "h: !Select [0, !Split [',', 'a,b']]\n"
    )
    assert loaded == {
        "a": {"Ref": "X"},
        "b": {"Fn::GetAtt": ["R", "Arn"]},
        "c": {"Fn::Sub": "x-${AWS::Region}"},
        "d": {"Fn::Join": ["", ["a", {"Ref": "Y"}]]},
        "e": {"Fn::If": ["C", 1, {"Ref": "AWS::NoValue"}]},
        "f": {"Condition": "C"},
        "g": {"Fn::GetAtt": ["R", "Arn"]},
        "h": {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]},
    }


def test_loader_is_safe() -> None:
    with pytest.raises(Exception, match="python/object"):
        tpl.loads("a: !!python/object/apply:os.system ['true']\n")


def test_template_path_is_the_repo_template(template: dict[str, Any]) -> None:
    assert tpl.TEMPLATE_PATH == REPO / "infra" / "template.yaml"
    assert template["Transform"] == "AWS::Serverless-2016-10-31"


# ---------------------------------------------------------------- function


def test_globals(template: dict[str, Any]) -> None:
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.13"
    assert globals_["Architectures"] == ["arm64"]
    assert globals_["MemorySize"] == 512
    assert globals_["Timeout"] == 15
    assert globals_["Tracing"] == "Active"
    assert globals_["Environment"]["Variables"] == GLOBAL_ENV


def test_function_code_and_handler(template: dict[str, Any]) -> None:
    properties = function(template)
    assert properties["CodeUri"] == "../functions/token_url/"
    assert properties["Handler"] == "token_url.app.lambda_handler"
    assert properties["Role"] == {"Fn::GetAtt": ["TokenUrlFunctionRole", "Arn"]}
    assert (REPO / "infra" / properties["CodeUri"]).resolve() == REPO / "functions" / "token_url"


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
    from token_url.settings import Settings  # noqa: PLC0415 - the function's own module, on the test path

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


def test_table_env_vars(template: dict[str, Any]) -> None:
    assert tpl.table_env_vars(template) == {env: logical_id for logical_id, (_, _, env) in TABLES.items()}


def test_function_log_group(template: dict[str, Any]) -> None:
    properties = function(template)
    assert properties["LoggingConfig"]["LogGroup"] == {"Ref": "TokenUrlFunctionLogGroup"}
    log_group = resources(template)["TokenUrlFunctionLogGroup"]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"] == 30
    # The group is the function's default one, so nothing else ever creates an unbounded group.
    assert log_group["Properties"]["LogGroupName"] == {
        "Fn::Sub": "/aws/lambda/" + properties["FunctionName"]["Fn::Sub"]
    }


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


def test_every_route_is_a_function_event(template: dict[str, Any]) -> None:
    assert set(events(template)) == ROUTES


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
            assert uri.endswith(f":function:{function_name}/invocations")
    assert routes == ROUTES
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


def test_api_throttling_and_access_logs(template: dict[str, Any]) -> None:
    api = resources(template)["HttpApi"]["Properties"]
    assert api["DefaultRouteSettings"]["ThrottlingBurstLimit"] > 0
    assert api["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert api["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    log_format = api["AccessLogSettings"]["Format"]
    # The token URL's query string carries a one-time value: never log paths or queries.
    assert "$context.path" not in log_format
    assert "querystring" not in log_format.lower()
    assert resources(template)["HttpApiAccessLogGroup"]["Properties"]["RetentionInDays"] == 30


# ---------------------------------------------------------------- tables


@pytest.mark.parametrize("logical_id", sorted(TABLES))
def test_table_settings(template: dict[str, Any], logical_id: str) -> None:
    hash_key, ttl_attribute, _ = TABLES[logical_id]
    table = resources(template)[logical_id]
    assert table["Type"] == "AWS::DynamoDB::Table"
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["TimeToLiveSpecification"] == {"AttributeName": ttl_attribute, "Enabled": True}
    assert properties["KeySchema"] == [{"AttributeName": hash_key, "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": hash_key, "AttributeType": "S"}]
    assert "TableName" not in properties


def test_only_the_three_tables(template: dict[str, Any]) -> None:
    assert set(tpl.resources_of_type(template, "AWS::DynamoDB::Table")) == set(TABLES)
    assert not tpl.resources_of_type(template, "AWS::Serverless::SimpleTable")


def test_table_definitions_and_ttl_attributes(template: dict[str, Any]) -> None:
    definitions = tpl.table_definitions(template)
    assert set(definitions) == set(TABLES)
    for logical_id, (hash_key, _, _) in TABLES.items():
        assert definitions[logical_id] == {
            "TableName": logical_id,
            "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": hash_key, "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        }
    assert tpl.ttl_attributes(template) == {logical_id: ttl for logical_id, (_, ttl, _) in TABLES.items()}


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.mark.usefixtures("aws_credentials")
def test_create_tables_against_moto(template: dict[str, Any]) -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        created = tpl.create_tables(client, template)
        assert created == {env: logical_id for logical_id, (_, _, env) in TABLES.items()}
        assert sorted(client.list_tables()["TableNames"]) == sorted(TABLES)
        for logical_id, (hash_key, ttl_attribute, env) in TABLES.items():
            table = client.describe_table(TableName=created[env])["Table"]
            assert table["KeySchema"] == [{"AttributeName": hash_key, "KeyType": "HASH"}]
            assert table["AttributeDefinitions"] == [{"AttributeName": hash_key, "AttributeType": "S"}]
            assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
            ttl = client.describe_time_to_live(TableName=created[env])["TimeToLiveDescription"]
            assert ttl["TimeToLiveStatus"] == "ENABLED"
            assert ttl["AttributeName"] == ttl_attribute, logical_id


@pytest.mark.usefixtures("aws_credentials")
def test_create_tables_with_prefix_is_rerunnable(template: dict[str, Any]) -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        first = tpl.create_tables(client, template, prefix="local-")
        client.put_item(TableName=first["SESSIONS_TABLE"], Item={"pk": {"S": "kept"}})
        second = tpl.create_tables(client, template, prefix="local-")
        assert first == second == {env: f"local-{logical_id}" for logical_id, (_, _, env) in TABLES.items()}
        assert "Item" in client.get_item(TableName=first["SESSIONS_TABLE"], Key={"pk": {"S": "kept"}})


# ---------------------------------------------------------------- IAM and KMS


def test_role_has_the_managed_policies(template: dict[str, Any]) -> None:
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


def test_no_wildcard_resources_for_data_actions(template: dict[str, Any]) -> None:
    statements = list(policy_statements(template))
    assert statements
    for logical_id, statement in statements:
        actions = as_list(statement["Action"])
        assert all("*" not in action for action in actions), (logical_id, actions)
        if any(action.startswith(GUARDED_SERVICES) for action in actions):
            for resource in as_list(statement["Resource"]):
                assert not (isinstance(resource, str) and "*" in resource), (logical_id, statement)


def test_iam_grants_only_to_the_function_resources(template: dict[str, Any]) -> None:
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
    assert granted["kms:Encrypt"] == granted["kms:Decrypt"] == [{"Fn::GetAtt": ["CredentialsKey", "Arn"]}]
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
        and (allows(statement, "kms:Encrypt") or allows(statement, "kms:Decrypt"))
    ]
    assert len(users) == 1
    assert users[0]["Principal"] == {"AWS": {"Fn::GetAtt": ["TokenUrlFunctionRole", "Arn"]}}
    assert sorted(as_list(users[0]["Action"])) == ["kms:Decrypt", "kms:Encrypt"]
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


def test_safe_defaults(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters["CaptureFlow"]["Default"] == "standard"
    assert parameters["CaptureLocale"]["Default"] == "en-US"
    for name, parameter in parameters.items():
        if "Default" in parameter and parameter["Default"] != "" and "AllowedPattern" in parameter:
            assert re.fullmatch(parameter["AllowedPattern"], parameter["Default"]), name


# ---------------------------------------------------------------- alarms and outputs


def alarm_metrics(template: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    return {
        (alarm["Properties"]["Namespace"], alarm["Properties"]["MetricName"]): alarm["Properties"][
            "Dimensions"
        ]
        for alarm in tpl.resources_of_type(template, "AWS::CloudWatch::Alarm").values()
    }


def test_alarms(template: dict[str, Any]) -> None:
    metrics = alarm_metrics(template)
    function_dimension = [{"Name": "FunctionName", "Value": {"Ref": "TokenUrlFunction"}}]
    service_dimension = [{"Name": "service", "Value": "token-url"}]
    assert metrics[("AWS/Lambda", "Errors")] == function_dimension
    assert metrics[("AWS/Lambda", "Throttles")] == function_dimension
    assert metrics[("TokenUrl", "UpstreamErrors")] == service_dimension
    assert metrics[("TokenUrl", "RejectedTokens")] == service_dimension
    assert metrics[("TokenUrl", "AuditEventsLost")] == service_dimension
    lost = resources(template)["AuditEventsLostAlarm"]["Properties"]
    # One lost event is one too many: it must be replayed from its ERROR line.
    assert lost["Threshold"] == 1
    assert lost["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert lost["Statistic"] == "Sum"


def test_outputs(template: dict[str, Any]) -> None:
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


def test_every_reference_resolves(template: dict[str, Any]) -> None:
    known = set(template["Parameters"]) | set(resources(template))
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
    from token_url.settings import Settings  # noqa: PLC0415 - the function's own module, on the test path

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
