"""Encryption at rest of the secrets a session holds, with the service's KMS key.

The encryption context binds each ciphertext to the session item and the field it lives in, so
a ciphertext copied into another item or field does not decrypt.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from token_url.errors import ServiceUnavailable
from token_url.observability import traced

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

KMS = "kms"


class Vault:
    def __init__(self, *, kms_client: KMSClient, key_id: str) -> None:
        self._kms = kms_client
        self._key_id = key_id

    def seal(self, plaintext: str, *, session_pk: str, field: str) -> str:
        with traced("kms.encrypt") as span:
            try:
                reply = self._kms.encrypt(
                    KeyId=self._key_id,
                    Plaintext=plaintext.encode(),
                    EncryptionContext={"session": session_pk, "field": field},
                )
            except (ClientError, BotoCoreError) as error:
                span.outcome("unavailable")
                raise ServiceUnavailable(KMS, f"encrypt: {_code(error)}") from None
            span.outcome("ok")
        return base64.b64encode(reply["CiphertextBlob"]).decode()

    def open(self, ciphertext: str, *, session_pk: str, field: str) -> str:
        with traced("kms.decrypt") as span:
            try:
                reply = self._kms.decrypt(
                    KeyId=self._key_id,
                    CiphertextBlob=base64.b64decode(ciphertext),
                    EncryptionContext={"session": session_pk, "field": field},
                )
            except (ClientError, BotoCoreError) as error:
                span.outcome("unavailable")
                raise ServiceUnavailable(KMS, f"decrypt: {_code(error)}") from None
            span.outcome("ok")
        return reply["Plaintext"].decode()


def _code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__
