"""Read infra/template.yaml, the one source of truth for the tables, keys and environment.

Tests and the local stack build their DynamoDB tables and the function's environment from the
SAM template itself, so they cannot drift from what is deployed. Only PyYAML is needed: the
CloudFormation short tags (`!Ref`, `!GetAtt`, `!Sub`, ...) load as their long forms.
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TEMPLATE_PATH: pathlib.Path = pathlib.Path(__file__).resolve().parent.parent / "infra" / "template.yaml"

FUNCTION_ID = "TokenUrlFunction"
TABLE_TYPE = "AWS::DynamoDB::Table"

# Short tags whose long form is not `Fn::<Tag>`.
_LONG_FORMS = {"Ref": "Ref", "Condition": "Condition"}


class CloudFormationLoader(yaml.SafeLoader):
    """A SafeLoader that also accepts CloudFormation's short-form intrinsic function tags."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = _LONG_FORMS.get(tag_suffix, f"Fn::{tag_suffix}")
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            # `!GetAtt Resource.Attribute` is `Fn::GetAtt: [Resource, Attribute]`.
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - PyYAML has no other node kinds
        raise yaml.constructor.ConstructorError(
            None, None, f"unexpected node for !{tag_suffix}", node.start_mark
        )
    return {name: value}


CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


def loads(text: str) -> dict[str, Any]:
    """Parse a CloudFormation/SAM template given as YAML text."""
    loader = CloudFormationLoader(text)
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ValueError("a template must be a YAML mapping")
    return data


def load_template(path: pathlib.Path = TEMPLATE_PATH) -> dict[str, Any]:
    """Load the SAM template at `path` (infra/template.yaml by default)."""
    return loads(pathlib.Path(path).read_text(encoding="utf-8"))


def resources_of_type(template: Mapping[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """Logical id -> resource, for every resource of the given type."""
    resources: Mapping[str, Any] = template.get("Resources", {})
    return {
        logical_id: resource
        for logical_id, resource in resources.items()
        if isinstance(resource, dict) and resource.get("Type") == resource_type
    }


def table_definitions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical id -> keyword arguments of `dynamodb.create_table`, from the template's key schema.

    The table is named after its logical id; the billing mode is the template's.
    """
    definitions: dict[str, dict[str, Any]] = {}
    for logical_id, resource in resources_of_type(template, TABLE_TYPE).items():
        properties = resource["Properties"]
        kwargs: dict[str, Any] = {
            "TableName": logical_id,
            "KeySchema": [dict(element) for element in properties["KeySchema"]],
            "AttributeDefinitions": [dict(element) for element in properties["AttributeDefinitions"]],
            "BillingMode": properties.get("BillingMode", "PROVISIONED"),
        }
        if kwargs["BillingMode"] == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = dict(properties["ProvisionedThroughput"])
        indexes = properties.get("GlobalSecondaryIndexes")
        if indexes:
            kwargs["GlobalSecondaryIndexes"] = [
                {key: index[key] for key in ("IndexName", "KeySchema", "Projection") if key in index}
                for index in indexes
            ]
        definitions[logical_id] = kwargs
    return definitions


def ttl_attributes(template: Mapping[str, Any]) -> dict[str, str]:
    """Logical id -> TTL attribute name, for every table with TTL enabled."""
    attributes: dict[str, str] = {}
    for logical_id, resource in resources_of_type(template, TABLE_TYPE).items():
        ttl = resource["Properties"].get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled") is True:
            attributes[logical_id] = str(ttl["AttributeName"])
    return attributes


def function_environment(template: Mapping[str, Any], function_id: str = FUNCTION_ID) -> dict[str, object]:
    """The function's environment variables: Globals.Function's, overridden by the function's own.

    Values are as in the template: strings, or intrinsic functions such as `{"Ref": "SessionsTable"}`.
    """
    global_function = template.get("Globals", {}).get("Function", {})
    function = template["Resources"][function_id].get("Properties", {})
    variables: dict[str, object] = {}
    for source in (global_function, function):
        variables.update(source.get("Environment", {}).get("Variables", {}))
    return variables


def table_env_vars(template: Mapping[str, Any], function_id: str = FUNCTION_ID) -> dict[str, str]:
    """Environment variable name -> table logical id, for every variable that is `!Ref <a table>`."""
    tables = resources_of_type(template, TABLE_TYPE)
    mapping: dict[str, str] = {}
    for name, value in function_environment(template, function_id).items():
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in tables:
            mapping[name] = str(value["Ref"])
    return mapping


def create_tables(
    dynamodb_client: DynamoDBClient, template: Mapping[str, Any], *, prefix: str = ""
) -> dict[str, str]:
    """Create every table of the template (with its TTL) and return env var name -> table name.

    Tables are named `prefix + logical id`. A table that already exists is reused, so a local stack
    can be restarted against the same DynamoDB.
    """
    ttl = ttl_attributes(template)
    created: dict[str, str] = {}
    for logical_id, kwargs in table_definitions(template).items():
        table_name = f"{prefix}{logical_id}"
        with contextlib.suppress(dynamodb_client.exceptions.ResourceInUseException):
            dynamodb_client.create_table(**{**kwargs, "TableName": table_name})
        dynamodb_client.get_waiter("table_exists").wait(
            TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        if logical_id in ttl:
            described = dynamodb_client.describe_time_to_live(TableName=table_name)
            status = described.get("TimeToLiveDescription", {}).get("TimeToLiveStatus")
            if status not in {"ENABLED", "ENABLING"}:
                dynamodb_client.update_time_to_live(
                    TableName=table_name,
                    TimeToLiveSpecification={"AttributeName": ttl[logical_id], "Enabled": True},
                )
        created[logical_id] = table_name
    return {name: created[logical_id] for name, logical_id in table_env_vars(template).items()}


@dataclass(frozen=True)
class HttpRoute:
    """One route of the function's HTTP API, as its `HttpApi` event declares it."""

    method: str
    path: str
    iam: bool
    """The route has the `AWS_IAM` authorizer: API Gateway refuses callers without a valid SigV4 signature."""

    @property
    def key(self) -> str:
        """The route key API Gateway puts in the event (`POST /token`)."""
        return f"{self.method} {self.path}"


def http_routes(template: Mapping[str, Any], function_id: str = FUNCTION_ID) -> list[HttpRoute]:
    """Every `HttpApi` event of the function: method, path and whether it needs an IAM caller."""
    events = template["Resources"][function_id].get("Properties", {}).get("Events", {})
    routes: list[HttpRoute] = []
    for event in events.values():
        if event.get("Type") != "HttpApi":
            continue
        properties = event.get("Properties", {})
        authorizer = properties.get("Auth", {}).get("Authorizer")
        routes.append(
            HttpRoute(
                method=str(properties["Method"]).upper(),
                path=str(properties["Path"]),
                iam=authorizer == "AWS_IAM",
            )
        )
    return routes


def function_settings(template: Mapping[str, Any], function_id: str = FUNCTION_ID) -> dict[str, Any]:
    """The function's effective `Timeout` and `MemorySize` (its own, else Globals', else SAM's defaults)."""
    global_function = template.get("Globals", {}).get("Function", {})
    function = template["Resources"][function_id].get("Properties", {})
    return {
        "Timeout": int(function.get("Timeout", global_function.get("Timeout", 3))),
        "MemorySize": int(function.get("MemorySize", global_function.get("MemorySize", 128))),
    }


def snapstart_by_default(template: Mapping[str, Any]) -> bool:
    """Whether a stack deployed with the template's defaults restores the function from a snapshot."""
    return bool(template["Parameters"]["SnapStart"]["Default"] == "true")


def cors_configuration(template: Mapping[str, Any], api_id: str = "HttpApi") -> dict[str, Any]:
    """The HTTP API's `CorsConfiguration` (its `AllowOrigins` are intrinsics: the caller resolves them)."""
    return dict(template["Resources"][api_id].get("Properties", {}).get("CorsConfiguration", {}))
