"""The template as CloudFormation deploys it: SAM's transform, then the conditions resolved.

SAM's own translator runs in SAM CLI's Python (its pins clash with the function's), with the parameter
values a deploy would give it; it resolves some parameter references itself and leaves the rest, and
every `Fn::If`, to CloudFormation. `resolve_conditions` then does what CloudFormation does with the
template's Conditions for those values: picks each `Fn::If` branch, drops `AWS::NoValue` and the
resources whose condition is false. `create_only_properties` reads CloudFormation's resource schema
(as cfn-lint, in the same environment, holds it): a change to one of those properties replaces the
resource.
"""

from __future__ import annotations

import functools
import json
import pathlib
import subprocess
from collections.abc import Mapping
from typing import Any

import pytest

from devtools.sam_cli import sam_environment, sam_executable
from devtools.template import TEMPLATE_PATH

REPO = pathlib.Path(__file__).resolve().parents[2]

# transform() wants the code in S3, as `sam deploy` gives it; the key stands for the code's content.
CODE_URI = "s3://bucket/code"

_TRANSLATE = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse
template = yaml_parse(sys.stdin.read())
parameters, code_uri = json.loads(sys.argv[1]), sys.argv[2]
template["Resources"]["TokenUrlFunction"]["Properties"]["CodeUri"] = code_uri
class NoManagedPolicies:
    def load(self):
        return {}
print(json.dumps(transform(template, parameters, NoManagedPolicies())))
"""

_CREATE_ONLY = """
import json, sys
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", sys.argv[1]).schema
print(json.dumps(schema.get("createOnlyProperties", [])))
"""


def _sam_python() -> pathlib.Path:
    python = sam_executable().parent / "python"
    if not python.exists():
        pytest.skip(f"SAM CLI at {sam_executable()} has no Python of its own beside it to run its translator")
    return python


def _run_in_sam_python(script: str, *arguments: str, stdin: str = "") -> Any:
    result = subprocess.run(  # noqa: S603 - SAM CLI's own Python, fixed script
        [str(_sam_python()), "-c", script, *arguments],
        input=stdin,
        cwd=REPO,
        env=sam_environment({"AWS_DEFAULT_REGION": "us-east-1"}),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@functools.cache
def _translate(template_text: str, parameters: str, code_uri: str) -> str:
    return json.dumps(_run_in_sam_python(_TRANSLATE, parameters, code_uri, stdin=template_text))


def translated_template(
    parameters: Mapping[str, str] | None = None,
    *,
    template_text: str | None = None,
    code_uri: str = CODE_URI,
) -> dict[str, Any]:
    """The CloudFormation template SAM makes of infra/template.yaml (or of `template_text`)."""
    text = TEMPLATE_PATH.read_text(encoding="utf-8") if template_text is None else template_text
    translated: dict[str, Any] = json.loads(
        _translate(text, json.dumps(dict(parameters or {}), sort_keys=True), code_uri)
    )
    return translated


@functools.cache
def create_only_properties(resource_type: str) -> frozenset[str]:
    """The properties of `resource_type` that CloudFormation cannot update: changing one replaces it."""
    pointers = _run_in_sam_python(_CREATE_ONLY, resource_type)
    return frozenset(pointer.removeprefix("/properties/") for pointer in pointers)


# ---------------------------------------------------------------- conditions

_NO_VALUE = {"Ref": "AWS::NoValue"}


def parameter_values(template: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, str]:
    """Every parameter's value for a deploy, as a string: the given one, else its default."""
    values = {
        name: str(parameter["Default"])
        for name, parameter in template.get("Parameters", {}).items()
        if "Default" in parameter
    }
    values.update(given)
    return values


def _condition_value(expression: Any, template: Mapping[str, Any], values: Mapping[str, str]) -> Any:
    """The value of a Conditions expression: Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition, Ref."""
    if not isinstance(expression, dict):
        return str(expression)
    [(function, argument)] = expression.items()
    if function == "Ref":
        if argument not in values:
            raise KeyError(f"a condition reads {argument}, which has no value for this deploy")
        return values[argument]
    if function == "Condition":
        return _condition_value(template["Conditions"][argument], template, values)
    if function == "Fn::Equals":
        left, right = (_condition_value(side, template, values) for side in argument)
        return left == right
    if function == "Fn::Not":
        return not _condition_value(argument[0], template, values)
    if function == "Fn::And":
        return all(_condition_value(item, template, values) for item in argument)
    if function == "Fn::Or":
        return any(_condition_value(item, template, values) for item in argument)
    raise ValueError(f"{function} is not a condition function")


def _pick_branches(value: Any, conditions: Mapping[str, bool]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            name, when_true, when_false = value["Fn::If"]
            return _pick_branches(when_true if conditions[name] else when_false, conditions)
        picked = {key: _pick_branches(inner, conditions) for key, inner in value.items()}
        return {key: inner for key, inner in picked.items() if inner != _NO_VALUE}
    if isinstance(value, list):
        items = [_pick_branches(inner, conditions) for inner in value]
        return [item for item in items if item != _NO_VALUE]
    return value


def resolve_conditions(template: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, Any]:
    """The template with its conditions decided for the given parameter values (the rest default)."""
    values = parameter_values(template, given)
    conditions = {
        name: bool(_condition_value(expression, template, values))
        for name, expression in template.get("Conditions", {}).items()
    }
    resolved: dict[str, Any] = _pick_branches(
        {key: value for key, value in template.items() if key != "Conditions"}, conditions
    )
    resolved["Resources"] = {
        logical_id: resource
        for logical_id, resource in resolved["Resources"].items()
        if conditions.get(resource.get("Condition", ""), True)
    }
    return resolved


def deployed_template(
    parameters: Mapping[str, str],
    *,
    template_text: str | None = None,
    code_uri: str = CODE_URI,
) -> dict[str, Any]:
    """The resources CloudFormation creates for these parameter values: transformed, conditions decided."""
    translated = translated_template(parameters, template_text=template_text, code_uri=code_uri)
    return resolve_conditions(translated, parameters)
