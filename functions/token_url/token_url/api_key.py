"""The Social Login apiKey, read from Secrets Manager with Powertools Parameters and cached."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from token_url.errors import ConfigurationProblem, ServiceUnavailable

SECRETS_MANAGER = "secretsmanager"


def parse_api_key(value: object, *, source: str = SECRETS_MANAGER) -> str:
    """The apiKey in a value: the bare key, or JSON {"apiKey": "..."} (the console's key/value form)."""
    text = value.decode() if isinstance(value, bytes) else str(value)
    text = text.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text).get("apiKey")
        except (ValueError, AttributeError):
            parsed = None
        text = parsed if isinstance(parsed, str) else ""
    if not text or not text.isalnum():
        holder = "the secret" if source == SECRETS_MANAGER else source
        raise ConfigurationProblem(source, f'{holder} is neither an apiKey nor {{"apiKey": ...}}')
    return text


class ApiKeySource:
    """Callable returning the apiKey; one GetSecretValue per container per `max_age` seconds."""

    def __init__(self, *, secrets_client: Any, secret_id: str, max_age: int) -> None:
        self._provider = SecretsProvider(boto3_client=secrets_client)
        self._secret_id = secret_id
        self._max_age = max_age

    def __call__(self) -> str:
        try:
            value = self._provider.get(self._secret_id, max_age=self._max_age)
        except GetParameterError:
            raise ServiceUnavailable(SECRETS_MANAGER, "the apiKey secret could not be read") from None
        return parse_api_key(value)

    def clear_cache(self) -> None:
        self._provider.clear_cache()  # type: ignore[no-untyped-call]
