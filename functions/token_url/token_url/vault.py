"""Encryption at rest of the secrets a session holds: envelope encryption under the service's KMS key.

KMS `Encrypt` takes at most 4 KB of plaintext, and a provider's accessCredentials can be larger. So
each value gets its own data key from KMS `GenerateDataKey` (AES-256), is encrypted with AES-256-GCM
under it, and only the data key's KMS ciphertext is stored beside the data: one KMS call to seal a
value, one to open it, as with `Encrypt` and `Decrypt`.

The encryption context binds each value to the session item and the field it lives in: KMS opens
the data key only with the same context, and the GCM tag covers the context too (associated data),
so a value copied into another item or field does not open.

Stored form: `v2:` then the base64 of the data key's KMS ciphertext (its length first, two bytes),
the 12-byte nonce, and the GCM ciphertext with its tag. Values sealed before envelope encryption are
the plain base64 of a KMS ciphertext; base64 has no `:`, so the prefix tells the two apart whatever
KMS ciphertexts start with, and the old ones still open with `Decrypt`.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from token_url.errors import ServiceUnavailable
from token_url.observability import traced

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

KMS = "kms"
ENVELOPE_PREFIX = "v2:"
NONCE_BYTES = 12  # GCM's standard nonce; random, as each data key seals exactly one value
_KEY_LENGTH_BYTES = 2


class Vault:
    def __init__(self, *, kms_client: KMSClient, key_id: str) -> None:
        self._kms = kms_client
        self._key_id = key_id

    def seal(self, plaintext: str, *, session_pk: str, field: str) -> str:
        context = _context(session_pk, field)
        with traced("kms.generate_data_key") as span:
            try:
                reply = self._kms.generate_data_key(
                    KeyId=self._key_id, KeySpec="AES_256", EncryptionContext=context
                )
            except (ClientError, BotoCoreError) as error:
                span.outcome("unavailable")
                raise ServiceUnavailable(KMS, f"generate_data_key: {_code(error)}") from None
            span.outcome("ok")
        nonce = secrets.token_bytes(NONCE_BYTES)
        data = AESGCM(reply["Plaintext"]).encrypt(nonce, plaintext.encode(), _associated_data(context))
        encrypted_key = reply["CiphertextBlob"]
        envelope = len(encrypted_key).to_bytes(_KEY_LENGTH_BYTES, "big") + encrypted_key + nonce + data
        return ENVELOPE_PREFIX + base64.b64encode(envelope).decode()

    def open(self, ciphertext: str, *, session_pk: str, field: str) -> str:
        context = _context(session_pk, field)
        if not ciphertext.startswith(ENVELOPE_PREFIX):
            return self._open_kms_ciphertext(ciphertext, context)
        encrypted_key, nonce, data = _split_envelope(ciphertext.removeprefix(ENVELOPE_PREFIX))
        data_key = self._decrypt(encrypted_key, context)
        try:
            return AESGCM(data_key).decrypt(nonce, data, _associated_data(context)).decode()
        except (InvalidTag, ValueError):
            # Refused as KMS refuses a ciphertext under another context: the same error as any
            # value that does not open.
            raise ServiceUnavailable(KMS, "decrypt: the sealed data does not open") from None

    def _open_kms_ciphertext(self, encoded: str, context: dict[str, str]) -> str:
        """A value sealed before envelopes: KMS's ciphertext of the value itself, in base64."""
        try:
            blob = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ServiceUnavailable(KMS, "decrypt: the sealed value is malformed") from None
        try:
            return self._decrypt(blob, context).decode()
        except UnicodeDecodeError:
            raise ServiceUnavailable(KMS, "decrypt: the sealed value is not text") from None

    def _decrypt(self, blob: bytes, context: dict[str, str]) -> bytes:
        with traced("kms.decrypt") as span:
            try:
                reply = self._kms.decrypt(KeyId=self._key_id, CiphertextBlob=blob, EncryptionContext=context)
            except (ClientError, BotoCoreError) as error:
                span.outcome("unavailable")
                raise ServiceUnavailable(KMS, f"decrypt: {_code(error)}") from None
            span.outcome("ok")
        return reply["Plaintext"]


def _context(session_pk: str, field: str) -> dict[str, str]:
    return {"session": session_pk, "field": field}


def _associated_data(context: Mapping[str, str]) -> bytes:
    # Canonical, so the same context always gives the same bytes; the prefix binds the format too.
    canonical = json.dumps(dict(context), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return f"{ENVELOPE_PREFIX}{canonical}".encode()


def _split_envelope(encoded: str) -> tuple[bytes, bytes, bytes]:
    """The data key's KMS ciphertext, the nonce and the GCM ciphertext; refused if malformed."""
    try:
        envelope = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ServiceUnavailable(KMS, "decrypt: the sealed value is malformed") from None
    key_end = _KEY_LENGTH_BYTES + int.from_bytes(envelope[:_KEY_LENGTH_BYTES], "big")
    nonce_end = key_end + NONCE_BYTES
    if len(envelope) <= nonce_end:
        raise ServiceUnavailable(KMS, "decrypt: the sealed value is malformed")
    return envelope[_KEY_LENGTH_BYTES:key_end], envelope[key_end:nonce_end], envelope[nonce_end:]


def _code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__
