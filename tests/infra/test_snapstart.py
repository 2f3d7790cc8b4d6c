"""SnapStart and the `live` alias, as CloudFormation deploys them with each value of the SnapStart parameter.

Each setting is checked after SAM's transform (SAM CLI's own translator) with the template's conditions
decided: the function's SnapStart, the alias, the API's integrations and the invoke permissions SAM
generates. And the deploy that only flips the parameter must publish a new version, or the alias would
stay on a version published with the other setting (docs/deploy.md, "SnapStart").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from devtools import template as tpl
from devtools.template import resources_of_type
from tests.infra.deployed_template import (
    CODE_URI,
    create_only_properties,
    deployed_template,
)
from tests.infra.template_support import function

SNAPSHOT = {"true": "PublishedVersions", "false": "None"}
"""SnapStart parameter value: the ApplyOn the deployed function gets."""
SETTINGS = sorted(SNAPSHOT)
FIRST_SNAPSTART_PYTHON = (3, 12)  # Lambda's SnapStart supports python3.12 and later
MAX_SNAPSTART_EPHEMERAL_STORAGE_MB = 512


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return tpl.load_template()


@pytest.fixture(scope="module", params=SETTINGS)
def setting(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def deployed(setting: str) -> dict[str, Any]:
    return deployed_template({"SnapStart": setting})


def alias_name(template: dict[str, Any]) -> str:
    return str(function(template)["AutoPublishAlias"])


def the_alias(deployed: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    [(logical_id, alias)] = resources_of_type(deployed, "AWS::Lambda::Alias").items()
    return logical_id, alias["Properties"]


@dataclass(frozen=True)
class PublishedVersion:
    logical_id: str
    properties: dict[str, Any]


def the_version(deployed: dict[str, Any]) -> PublishedVersion:
    [(logical_id, version)] = resources_of_type(deployed, "AWS::Lambda::Version").items()
    return PublishedVersion(logical_id, version["Properties"])


def publishes_a_new_version(before: PublishedVersion, after: PublishedVersion) -> bool:
    """Whether a stack update from `before` to `after` makes CloudFormation publish a version.

    A new logical id is a new resource; under the same one, a change to a property CloudFormation cannot
    update replaces the resource. Either way Lambda's PublishVersion runs. Anything else leaves it be.
    """
    if before.logical_id != after.logical_id:
        return True
    changed = {
        name
        for name in before.properties.keys() | after.properties.keys()
        if before.properties.get(name) != after.properties.get(name)
    }
    return bool(changed & create_only_properties("AWS::Lambda::Version"))


# ---------------------------------------------------------------- the parameter


def test_snapstart_is_a_true_or_false_parameter_on_by_default(template: dict[str, Any]) -> None:
    """On by default: the service exists so that nobody waits for a cold start."""
    parameter = template["Parameters"]["SnapStart"]
    assert parameter["Type"] == "String"
    # Strings: YAML 1.1 would read bare true/false as booleans, which CloudFormation does not take.
    assert parameter["AllowedValues"] == ["true", "false"]
    assert parameter["Default"] == "true"


# ---------------------------------------------------------------- each setting, as deployed


def test_the_deployed_function_snapshots_its_versions_exactly_when_snapstart_is_true(
    deployed: dict[str, Any], setting: str
) -> None:
    lambda_function = deployed["Resources"]["TokenUrlFunction"]
    assert lambda_function["Type"] == "AWS::Lambda::Function"
    # ApplyOn None, not an absent SnapStart: turning it off on a stack that had it must switch it off.
    assert lambda_function["Properties"]["SnapStart"] == {"ApplyOn": SNAPSHOT[setting]}


def test_a_version_is_published_and_the_alias_names_it(
    deployed: dict[str, Any], template: dict[str, Any]
) -> None:
    """With either setting: the API never invokes $LATEST, which a snapshot never covers."""
    _, alias = the_alias(deployed)
    version = the_version(deployed)
    assert alias["Name"] == alias_name(template) == "live"
    assert alias["FunctionName"] == {"Ref": "TokenUrlFunction"}
    assert alias["FunctionVersion"] == {"Fn::GetAtt": [version.logical_id, "Version"]}
    assert version.properties["FunctionName"] == {"Ref": "TokenUrlFunction"}


def test_a_replaced_version_is_deleted_so_no_old_snapshot_stays_billed(deployed: dict[str, Any]) -> None:
    """SAM retains the versions it publishes by default; each would keep its snapshot cached, and billed."""
    [version] = resources_of_type(deployed, "AWS::Lambda::Version").values()
    assert version["DeletionPolicy"] == "Delete"


def test_every_api_integration_invokes_the_alias(deployed: dict[str, Any], template: dict[str, Any]) -> None:
    api = deployed["Resources"]["HttpApi"]
    assert api["Type"] == "AWS::ApiGatewayV2::Api"
    function_name = function(template)["FunctionName"]["Fn::Sub"]
    qualified = f":function:{function_name}:{alias_name(template)}/invocations"
    routes = set()
    for path, methods in api["Properties"]["Body"]["paths"].items():
        for method, operation in methods.items():
            routes.add(f"{method.upper()} {path}")
            uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
            assert uri.endswith(qualified), (method, path, uri)
    assert routes == {route.key for route in tpl.http_routes(template)}


def test_every_invoke_permission_is_on_the_alias(deployed: dict[str, Any], template: dict[str, Any]) -> None:
    """API Gateway invokes the alias; a permission on the bare function would not let it."""
    alias_id, _ = the_alias(deployed)
    permissions = resources_of_type(deployed, "AWS::Lambda::Permission")
    assert len(permissions) == len(tpl.http_routes(template))
    for logical_id, permission in permissions.items():
        properties = permission["Properties"]
        assert properties["Principal"] == "apigateway.amazonaws.com", logical_id
        assert properties["FunctionName"] == {"Ref": alias_id}, logical_id


def test_the_alias_arn_is_an_output(deployed: dict[str, Any]) -> None:
    alias_id, _ = the_alias(deployed)
    assert deployed["Outputs"]["TokenUrlFunctionAliasArn"]["Value"] == {"Ref": alias_id}


# ---------------------------------------------------------------- publishing


def test_flipping_snapstart_alone_publishes_a_new_version() -> None:
    """The alias must move to a version published with the new setting, not stay on the old one."""
    on, off = (the_version(deployed_template({"SnapStart": setting})) for setting in ("true", "false"))
    assert publishes_a_new_version(on, off)
    assert publishes_a_new_version(off, on)


def test_sam_alone_would_keep_the_version_when_only_snapstart_flips() -> None:
    """Why the template sets VersionDescription from the parameter.

    SAM names the version after a hash that holds SnapStart (and the environment) unresolved, so the
    parameter's value never reaches it. Should SAM start resolving it, this fails, and the
    VersionDescription can go.
    """
    text = tpl.TEMPLATE_PATH.read_text(encoding="utf-8")
    [description] = re.findall(r"^ +VersionDescription: .*\n", text, re.MULTILINE)
    without_description = text.replace(description, "")
    on, off = (
        the_version(deployed_template({"SnapStart": setting}, template_text=without_description))
        for setting in ("true", "false")
    )
    assert not publishes_a_new_version(on, off)


def test_a_new_build_still_publishes_a_new_version() -> None:
    """The version still follows the code: nothing replaced SAM's hash of it (AutoPublishCodeSha256 would)."""
    before = the_version(deployed_template({"SnapStart": "true"}))
    after = the_version(deployed_template({"SnapStart": "true"}, code_uri=CODE_URI + "-rebuilt"))
    assert publishes_a_new_version(before, after)


def test_a_deploy_that_changes_nothing_publishes_nothing(setting: str) -> None:
    """The check above can say no: the same build and setting keep the version."""
    first = the_version(deployed_template({"SnapStart": setting}))
    again = the_version(deployed_template({"SnapStart": setting}))
    assert not publishes_a_new_version(first, again)


# ---------------------------------------------------------------- what SnapStart refuses


def test_the_function_uses_nothing_snapstart_refuses(deployed: dict[str, Any]) -> None:
    """SnapStart refuses provisioned concurrency, EFS and ephemeral storage over 512 MB; it needs a
    runtime it supports (Python from 3.12). Each would fail the deploy that turns it on."""
    properties = deployed["Resources"]["TokenUrlFunction"]["Properties"]
    runtime = re.fullmatch(r"python(\d+)\.(\d+)", properties["Runtime"])
    assert runtime is not None, properties["Runtime"]
    assert (int(runtime[1]), int(runtime[2])) >= FIRST_SNAPSTART_PYTHON
    assert "FileSystemConfigs" not in properties
    storage = properties.get("EphemeralStorage", {}).get("Size", MAX_SNAPSTART_EPHEMERAL_STORAGE_MB)
    assert storage <= MAX_SNAPSTART_EPHEMERAL_STORAGE_MB
    _, alias = the_alias(deployed)
    assert "ProvisionedConcurrencyConfig" not in alias
    assert "ProvisionedConcurrencyConfig" not in the_version(deployed).properties
