"""The vault (moto KMS): envelope encryption of any size, bound to item and field, one KMS call each way."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from token_url.errors import ServiceUnavailable
from token_url.vault import ENVELOPE_PREFIX, NONCE_BYTES, Vault

SESSION = "session-pk"
FIELD = "credentials"
KMS_ENCRYPT_LIMIT = 4096


class KmsCalls:
    """The KMS operations made through one client, in order, recorded by a botocore event hook."""

    def __init__(self, client: Any) -> None:
        self.operations: list[str] = []
        client.meta.events.register("before-call.kms.*", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.operations.append(model.name)


@pytest.fixture
def kms() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("kms")


@pytest.fixture
def key_id(kms: Any) -> str:
    return str(kms.create_key(Description="vault test key")["KeyMetadata"]["KeyId"])


@pytest.fixture
def vault(kms: Any, key_id: str) -> Vault:
    return Vault(kms_client=kms, key_id=key_id)


@pytest.fixture
def calls(kms: Any) -> KmsCalls:
    return KmsCalls(kms)


def envelope_parts(sealed: str) -> tuple[bytes, bytes, bytes]:
    raw = base64.b64decode(sealed.removeprefix(ENVELOPE_PREFIX))
    key_end = 2 + int.from_bytes(raw[:2], "big")
    return raw[2:key_end], raw[key_end : key_end + NONCE_BYTES], raw[key_end + NONCE_BYTES :]


def envelope(encrypted_key: bytes, nonce: bytes, data: bytes) -> str:
    raw = len(encrypted_key).to_bytes(2, "big") + encrypted_key + nonce + data
    return ENVELOPE_PREFIX + base64.b64encode(raw).decode()


def flip_last_bit(value: bytes) -> bytes:
    return value[:-1] + bytes([value[-1] ^ 1])


@pytest.mark.parametrize(
    "size", [1, KMS_ENCRYPT_LIMIT + 1, 60 * 1024, 64 * 1024], ids=["1B", "4KB+1", "60KB", "64KB"]
)
def test_a_value_of_any_size_opens_to_itself(vault: Vault, size: int) -> None:
    plaintext = ("0123456789abcdef" * (size // 16 + 1))[:size]
    sealed = vault.seal(plaintext, session_pk=SESSION, field=FIELD)
    assert sealed.startswith(ENVELOPE_PREFIX)
    assert vault.open(sealed, session_pk=SESSION, field=FIELD) == plaintext


def test_each_value_has_its_own_data_key_and_nonce(vault: Vault) -> None:
    first = envelope_parts(vault.seal("same", session_pk=SESSION, field=FIELD))
    second = envelope_parts(vault.seal("same", session_pk=SESSION, field=FIELD))
    assert first[0] != second[0]
    assert first[1] != second[1]
    assert first[2] != second[2]


def test_the_stored_value_holds_the_data_key_only_as_kms_ciphertext(
    vault: Vault, kms: Any, key_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_keys: list[bytes] = []
    generate = kms.generate_data_key

    def remembering(**params: Any) -> Any:
        reply = generate(**params)
        data_keys.append(reply["Plaintext"])
        return reply

    monkeypatch.setattr(kms, "generate_data_key", remembering)
    sealed = vault.seal("a secret value", session_pk=SESSION, field=FIELD)
    [data_key] = data_keys
    assert len(data_key) == 32  # AES-256
    raw = base64.b64decode(sealed.removeprefix(ENVELOPE_PREFIX))
    assert data_key not in raw
    assert b"a secret value" not in raw
    encrypted_key, _, _ = envelope_parts(sealed)
    context = {"session": SESSION, "field": FIELD}
    opened = kms.decrypt(CiphertextBlob=encrypted_key, EncryptionContext=context)
    assert opened["Plaintext"] == data_key
    assert opened["KeyId"].endswith(key_id)


@pytest.mark.parametrize(
    ("session_pk", "field"),
    [("another-session", FIELD), (SESSION, "capture_token")],
    ids=["session", "field"],
)
def test_a_value_opens_only_for_its_session_and_field(vault: Vault, session_pk: str, field: str) -> None:
    sealed = vault.seal("a secret", session_pk=SESSION, field=FIELD)
    with pytest.raises(ServiceUnavailable) as refused:
        vault.open(sealed, session_pk=session_pk, field=field)
    assert "a secret" not in str(refused.value)


def test_the_data_is_bound_to_the_context_beside_the_key(vault: Vault, kms: Any) -> None:
    """The same data key, re-encrypted by KMS for another session, still does not open the data (GCM tag)."""
    sealed = vault.seal("a secret", session_pk=SESSION, field=FIELD)
    encrypted_key, nonce, data = envelope_parts(sealed)
    context = {"session": SESSION, "field": FIELD}
    moved_context = {**context, "session": "another-session"}
    moved_key = kms.re_encrypt(
        CiphertextBlob=encrypted_key,
        SourceEncryptionContext=context,
        DestinationKeyId=kms.decrypt(CiphertextBlob=encrypted_key, EncryptionContext=context)["KeyId"],
        DestinationEncryptionContext=moved_context,
    )["CiphertextBlob"]
    moved = envelope(moved_key, nonce, data)
    with pytest.raises(ServiceUnavailable, match="does not open"):
        vault.open(moved, session_pk="another-session", field=FIELD)


TAMPERINGS: dict[str, Callable[[bytes, bytes, bytes], tuple[bytes, bytes, bytes]]] = {
    "data": lambda key, nonce, data: (key, nonce, flip_last_bit(data[:-16]) + data[-16:]),
    "tag": lambda key, nonce, data: (key, nonce, flip_last_bit(data)),
    "nonce": lambda key, nonce, data: (key, flip_last_bit(nonce), data),
    "encrypted key": lambda key, nonce, data: (flip_last_bit(key), nonce, data),
    "truncated data": lambda key, nonce, data: (key, nonce, data[:8]),
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_a_tampered_value_is_refused(
    vault: Vault, tamper: Callable[[bytes, bytes, bytes], tuple[bytes, bytes, bytes]]
) -> None:
    sealed = vault.seal("a secret value", session_pk=SESSION, field=FIELD)
    assert vault.open(envelope(*envelope_parts(sealed)), session_pk=SESSION, field=FIELD) == "a secret value"
    with pytest.raises(ServiceUnavailable):
        vault.open(envelope(*tamper(*envelope_parts(sealed))), session_pk=SESSION, field=FIELD)


@pytest.mark.parametrize("malformed", [f"{ENVELOPE_PREFIX}not base64!", f"{ENVELOPE_PREFIX}AAAA"])
def test_a_malformed_envelope_is_refused_without_a_kms_call(
    vault: Vault, calls: KmsCalls, malformed: str
) -> None:
    with pytest.raises(ServiceUnavailable, match="malformed"):
        vault.open(malformed, session_pk=SESSION, field=FIELD)
    assert calls.operations == []


def test_a_value_sealed_before_envelope_encryption_still_opens(
    vault: Vault, kms: Any, key_id: str, calls: KmsCalls
) -> None:
    """The earlier format: the base64 of a KMS Encrypt ciphertext under the same context."""
    context = {"session": SESSION, "field": FIELD}
    blob = kms.encrypt(KeyId=key_id, Plaintext=b'{"oauthToken": "old"}', EncryptionContext=context)
    old = base64.b64encode(blob["CiphertextBlob"]).decode()
    assert not old.startswith(ENVELOPE_PREFIX)
    calls.operations.clear()
    assert vault.open(old, session_pk=SESSION, field=FIELD) == '{"oauthToken": "old"}'
    assert calls.operations == ["Decrypt"]
    with pytest.raises(ServiceUnavailable):
        vault.open(old, session_pk=SESSION, field="capture_token")


def test_sealing_is_one_generate_data_key_and_opening_one_decrypt(vault: Vault, calls: KmsCalls) -> None:
    sealed = vault.seal("x" * 60 * 1024, session_pk=SESSION, field=FIELD)
    assert calls.operations == ["GenerateDataKey"]
    calls.operations.clear()
    vault.open(sealed, session_pk=SESSION, field=FIELD)
    assert calls.operations == ["Decrypt"]


def test_kms_unavailable_is_service_unavailable(kms: Any, calls: KmsCalls) -> None:
    vault = Vault(kms_client=kms, key_id="alias/no-such-key")
    with pytest.raises(ServiceUnavailable, match="generate_data_key: NotFoundException"):
        vault.seal("a secret", session_pk=SESSION, field=FIELD)
    assert calls.operations == ["GenerateDataKey"]


def test_a_malformed_value_of_the_earlier_format_is_refused_without_a_kms_call(
    vault: Vault, calls: KmsCalls
) -> None:
    """Not base64: refused as a value that does not open, never an unhandled error (a 500)."""
    with pytest.raises(ServiceUnavailable, match="malformed"):
        vault.open("abc", session_pk=SESSION, field=FIELD)
    assert calls.operations == []


def test_a_value_of_the_earlier_format_that_is_not_text_is_refused(
    vault: Vault, kms: Any, key_id: str
) -> None:
    context = {"session": SESSION, "field": FIELD}
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"\xff\xfe not utf-8", EncryptionContext=context)
    with pytest.raises(ServiceUnavailable, match="not text"):
        vault.open(base64.b64encode(blob["CiphertextBlob"]).decode(), session_pk=SESSION, field=FIELD)
