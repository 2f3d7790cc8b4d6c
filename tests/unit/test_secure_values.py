"""Random values, purpose-bound digests, the sealing of a session id, and log fingerprints."""

from __future__ import annotations

import hashlib
import re

import pytest

from token_url.secure_values import digest, fingerprint, new_opaque_value, seal_session_id, unseal_session_id

URL_SAFE_43 = re.compile(r"^[A-Za-z0-9_-]{43}$")
TOKEN = "0123456789abcdef0123456789abcdef01234567"


def test_opaque_values_are_43_url_safe_characters_and_distinct() -> None:
    values = [new_opaque_value() for _ in range(1000)]

    assert all(URL_SAFE_43.fullmatch(value) for value in values)
    assert len(set(values)) == 1000


def test_digest_is_sha256_of_purpose_and_value() -> None:
    assert digest("session", "abc") == hashlib.sha256(b"session:abc").hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", digest("nonce", "abc"))


def test_digest_depends_on_purpose_and_value() -> None:
    value = new_opaque_value()

    assert digest("session", value) == digest("session", value)
    assert digest("session", value) != digest("nonce", value)
    assert digest("session", value) != digest("session", new_opaque_value())


def test_seal_then_unseal_gives_back_the_session_id() -> None:
    session_id, browser = new_opaque_value(), new_opaque_value()

    sealed = seal_session_id(session_id, token=TOKEN, browser=browser)

    assert unseal_session_id(sealed, token=TOKEN, browser=browser) == session_id


def test_sealed_value_does_not_reveal_the_session_id() -> None:
    session_id, browser = new_opaque_value(), new_opaque_value()

    sealed = seal_session_id(session_id, token=TOKEN, browser=browser)

    assert session_id not in sealed
    assert session_id[:16] not in sealed
    assert sealed != seal_session_id(session_id, token=TOKEN, browser=new_opaque_value())


@pytest.mark.parametrize("other", ["browser", "token"])
def test_unseal_with_another_browser_or_token_gives_another_id(other: str) -> None:
    session_id, browser = new_opaque_value(), new_opaque_value()
    sealed = seal_session_id(session_id, token=TOKEN, browser=browser)

    if other == "browser":
        opened = unseal_session_id(sealed, token=TOKEN, browser=new_opaque_value())
    else:
        opened = unseal_session_id(sealed, token=TOKEN[:-1] + "8", browser=browser)

    assert opened != session_id
    assert URL_SAFE_43.fullmatch(opened)


def test_fingerprint_is_12_hex_characters_and_depends_on_the_salt() -> None:
    handle = fingerprint(TOKEN, salt="salt-one")

    assert re.fullmatch(r"[0-9a-f]{12}", handle)
    assert handle == fingerprint(TOKEN, salt="salt-one")
    assert handle != fingerprint(TOKEN, salt="salt-two")
    assert handle != fingerprint(TOKEN[:-1] + "8", salt="salt-one")
    assert handle not in TOKEN
