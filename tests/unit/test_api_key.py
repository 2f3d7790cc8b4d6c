"""The Social Login apiKey from Secrets Manager (moto): both secret forms, failures, and the cache."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from token_url.api_key import ApiKeySource
from token_url.errors import ConfigurationProblem, ServiceUnavailable

SECRET = "token-url/social-login-api-key"
KEY = "a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0"


@pytest.fixture
def secrets() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("secretsmanager")


def source(secrets: Any, max_age: int = 300) -> ApiKeySource:
    return ApiKeySource(secrets_client=secrets, secret_id=SECRET, max_age=max_age)


def count_reads(secrets: Any) -> list[str]:
    reads: list[str] = []
    secrets.meta.events.register(
        "before-call.secrets-manager.GetSecretValue",
        lambda params, **_: reads.append(json.loads(params["body"])["SecretId"]),
    )
    return reads


@pytest.mark.parametrize(
    "secret_string",
    [KEY, f"  {KEY}\n", f'{{"apiKey": "{KEY}"}}', f'{{"apiKey": "{KEY}", "note": "rotated 2026-01"}}'],
    ids=["bare", "bare-with-whitespace", "json", "json-with-other-keys"],
)
def test_api_key_from_either_secret_form(secrets: Any, secret_string: str) -> None:
    secrets.create_secret(Name=SECRET, SecretString=secret_string)

    assert source(secrets)() == KEY


def test_api_key_from_a_binary_secret(secrets: Any) -> None:
    secrets.create_secret(Name=SECRET, SecretBinary=KEY.encode())

    assert source(secrets)() == KEY


@pytest.mark.parametrize(
    "secret_string",
    [
        "not an api key",
        "key-with-dashes",
        "{not json",
        '{"apiKey": ""}',
        '{"other": "abc"}',
        '{"apiKey": "has spaces in it"}',
        '{"apiKey": null}',
        '{"apiKey": true}',
        '{"apiKey": {"nested": "x"}}',
        "   ",
    ],
)
def test_malformed_secret_is_a_configuration_problem(secrets: Any, secret_string: str) -> None:
    secrets.create_secret(Name=SECRET, SecretString=secret_string)

    with pytest.raises(ConfigurationProblem) as caught:
        source(secrets)()

    assert caught.value.service == "secretsmanager"
    # A fixed message: it never echoes the secret's content.
    assert caught.value.reason == 'the secret is neither an apiKey nor {"apiKey": ...}'


def test_missing_secret_is_service_unavailable(secrets: Any) -> None:
    with pytest.raises(ServiceUnavailable) as caught:
        source(secrets)()

    assert caught.value.service == "secretsmanager"
    assert caught.value.reason == "the apiKey secret could not be read"


def test_value_is_cached_within_max_age(secrets: Any) -> None:
    secrets.create_secret(Name=SECRET, SecretString=KEY)
    reads = count_reads(secrets)
    api_key = source(secrets)

    assert api_key() == KEY
    secrets.delete_secret(SecretId=SECRET, ForceDeleteWithoutRecovery=True)
    assert api_key() == KEY
    assert api_key() == KEY

    assert reads == [SECRET]


def test_clear_cache_reads_the_secret_again(secrets: Any) -> None:
    secrets.create_secret(Name=SECRET, SecretString=KEY)
    reads = count_reads(secrets)
    api_key = source(secrets)
    assert api_key() == KEY

    secrets.put_secret_value(SecretId=SECRET, SecretString="b" * 40)
    api_key.clear_cache()

    assert api_key() == "b" * 40
    assert reads == [SECRET, SECRET]


def test_max_age_zero_reads_every_time(secrets: Any) -> None:
    secrets.create_secret(Name=SECRET, SecretString=KEY)
    reads = count_reads(secrets)
    api_key = source(secrets, max_age=0)

    assert api_key() == KEY
    assert api_key() == KEY
    assert reads == [SECRET, SECRET]
