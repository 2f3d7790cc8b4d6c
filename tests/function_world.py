"""The function's configuration in tests and the AWS resources it runs against (moto).

The fixtures of the root conftest set these up; tests import the values to check against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devtools.audit_events import AUDIT_BUS, drain
from testkit.sites import APP_ORIGIN, APP_URL, PROVIDER_ORIGIN, PUBLIC_BASE_URL
from token_url.vault import Vault

API_KEY = "a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0"
CLIENT_ID = "12345abcde12345abcde12345abcde12"
FLOW = "standard"
FLOW_VERSION = "20190618143040022299"
LOCALE = "en-US"
SECRET_NAME = "token-url/social-login-api-key"
KEY_ALIAS = "alias/token-url-credentials"
EMULATOR_DEFAULTS = {
    "api_key": API_KEY,
    "capture_client_id": CLIENT_ID,
    "flow": FLOW,
    "flow_version": FLOW_VERSION,
    "locale": LOCALE,
    "client_has_login_feature": True,
    "social_login_error_status": 400,
    "one_time_tokens": True,
    "auth_info_spends_token_for_capture": False,
}


def function_environment(emulator_url: str) -> dict[str, str]:
    return {
        "SOCIAL_LOGIN_BASE_URL": emulator_url,
        "SOCIAL_LOGIN_API_KEY_SECRET": SECRET_NAME,
        "CAPTURE_BASE_URL": emulator_url,
        "CAPTURE_CLIENT_ID": CLIENT_ID,
        "CAPTURE_FLOW": FLOW,
        "CAPTURE_FLOW_VERSION": FLOW_VERSION,
        "CAPTURE_LOCALE": LOCALE,
        "CAPTURE_REDIRECT_URI": "https://app.example.test/",
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "APP_URL": APP_URL,
        "SESSIONS_TABLE": "SessionsTable",
        "NONCES_TABLE": "NoncesTable",
        "IDEMPOTENCY_TABLE": "IdempotencyTable",
        "CREDENTIALS_KEY_ID": KEY_ALIAS,
        # Social Login's pages are on its own domain in production, not on the emulator's loopback port.
        "TOKEN_POST_ORIGINS": f"{PROVIDER_ORIGIN},{APP_ORIGIN}",
        "AUDIT_EVENT_BUS": AUDIT_BUS,
        # Short upstream timeouts keep the slow-upstream tests fast.
        "UPSTREAM_CONNECT_TIMEOUT": "1",
        "UPSTREAM_READ_TIMEOUT": "1",
    }


@dataclass
class Aws:
    dynamodb: Any
    kms: Any
    secrets: Any
    key_id: str
    events: Any
    sqs: Any
    audit_queue_url: str
    """The `token-url-audit` queue, subscribed to the audit bus as the local stack's is."""

    def items(self, table: str) -> list[dict[str, Any]]:
        return list(self.dynamodb.scan(TableName=table)["Items"])

    def open_sealed(self, sealed: str, *, session_pk: str, field: str) -> str:
        """A value the function sealed, opened as the function opens it (the credentials key)."""
        return Vault(kms_client=self.kms, key_id=KEY_ALIAS).open(sealed, session_pk=session_pk, field=field)

    def audit_events(self) -> list[dict[str, Any]]:
        """The audit events delivered since the last call, each the whole EventBridge event."""
        return drain(self.sqs, self.audit_queue_url)
