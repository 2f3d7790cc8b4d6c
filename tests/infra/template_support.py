"""Reading infra/template.yaml in its tests: resources, the function, IAM statements, references."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from tests.support import as_list

TABLES = {
    # logical id: (hash key, TTL attribute, env var); the keys are the function's (test_template.py).
    "SessionsTable": ("pk", "expires_at", "SESSIONS_TABLE"),
    "NoncesTable": ("pk", "expires_at", "NONCES_TABLE"),
    "IdempotencyTable": ("id", "expiration", "IDEMPOTENCY_TABLE"),
}


def resources(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["Resources"])


def function(template: dict[str, Any]) -> dict[str, Any]:
    return dict(resources(template)["TokenUrlFunction"]["Properties"])


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
