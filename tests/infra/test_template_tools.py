"""devtools.template, the reader of infra/template.yaml that the tests and the local stack build from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devtools import template as tpl
from tests.infra.template_support import TABLES

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return tpl.load_template()


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


def test_table_env_vars(template: dict[str, Any]) -> None:
    assert tpl.table_env_vars(template) == {env: logical_id for logical_id, (_, _, env) in TABLES.items()}


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
