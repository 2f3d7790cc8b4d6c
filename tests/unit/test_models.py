"""Boundary models: supported credential providers, strict requests, the session view, the Capture account."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from token_url.models import (
    AccountSnapshot,
    CaptureAccount,
    CredentialsRequest,
    LinkedIdentity,
    SessionCreateRequest,
    SessionRecord,
    TokenCallback,
    credential_provider,
    provider_for_domain,
)


@pytest.mark.parametrize(
    ("identifier", "provider"),
    [
        ("https://www.facebook.com/profile.php?id=100000000000001", "Facebook"),
        ("https://facebook.com/alice", "Facebook"),
        ("http://m.facebook.com/alice", "Facebook"),
        ("https://WWW.FACEBOOK.COM/alice", "Facebook"),
        ("https://www.renren.com/profile/1", "RenRen"),
        ("https://renren.com/1", "RenRen"),
        ("https://soundcloud.com/alice", "Soundcloud"),
        ("https://api.soundcloud.com/users/1", "Soundcloud"),
        ("https://foursquare.com/user/1", "Foursquare"),
        ("https://www.foursquare.com/user/1", "Foursquare"),
    ],
)
def test_credential_provider_of_supported_identifiers(identifier: str, provider: str) -> None:
    assert credential_provider(identifier) == provider


@pytest.mark.parametrize(
    "identifier",
    [
        "https://www.google.com/profiles/alice",
        "https://facebook.com.evil.example/",
        "https://evilfacebook.com/alice",
        "https://facebook.com@evil.example/alice",
        "https://evil.example/?next=https://facebook.com/alice",
        "ftp://facebook.com/alice",
        "javascript:facebook.com",
        "facebook.com/alice",
        "",
    ],
)
def test_credential_provider_refuses_other_identifiers(identifier: str) -> None:
    assert credential_provider(identifier) is None


def test_credentials_request_accepts_a_supported_identifier() -> None:
    request = CredentialsRequest.model_validate(
        {"identifier": "https://www.facebook.com/alice", "token": "EAAB-provider.token"}
    )

    assert request.identifier == "https://www.facebook.com/alice"
    assert request.token == "EAAB-provider.token"


@pytest.mark.parametrize(
    "payload",
    [
        {"identifier": "https://www.facebook.com/alice", "token": "t", "extra": "x"},
        {"identifier": "https://www.google.com/profiles/alice", "token": "t"},
        {"identifier": "https://www.facebook.com/alice", "token": "has space"},
        {"identifier": "https://www.facebook.com/alice", "token": ""},
        {"identifier": "https://www.facebook.com/alice"},
        {"token": "t"},
    ],
    ids=["extra-field", "google", "token-with-space", "empty-token", "no-token", "no-identifier"],
)
def test_credentials_request_refusals(payload: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        CredentialsRequest.model_validate(payload)


def test_credentials_request_names_the_extra_field() -> None:
    with pytest.raises(ValidationError) as caught:
        CredentialsRequest.model_validate(
            {"identifier": "https://www.facebook.com/alice", "token": "t", "apiKey": "x"}
        )

    [error] = caught.value.errors()
    assert error["type"] == "extra_forbidden"
    assert error["loc"] == ("apiKey",)


@pytest.mark.parametrize("expires_in", [60, 3600, 86400])
def test_session_create_request_expires_in_within_bounds(expires_in: int) -> None:
    request = SessionCreateRequest.model_validate({"access_token": "abc", "expires_in": expires_in})

    assert request.expires_in == expires_in


def test_session_create_request_default_expires_in_is_an_hour() -> None:
    assert SessionCreateRequest.model_validate({"access_token": "abc"}).expires_in == 3600


@pytest.mark.parametrize("expires_in", [59, 0, -1, 86401, "3600", 3600.0, True])
def test_session_create_request_refuses_other_expires_in(expires_in: object) -> None:
    with pytest.raises(ValidationError):
        SessionCreateRequest.model_validate({"access_token": "abc", "expires_in": expires_in})


def test_session_create_request_from_json_is_strict_too() -> None:
    assert (
        SessionCreateRequest.model_validate_json('{"access_token": "abc", "expires_in": 120}').expires_in
        == 120
    )
    with pytest.raises(ValidationError):
        SessionCreateRequest.model_validate_json('{"access_token": "abc", "expires_in": "120"}')
    with pytest.raises(ValidationError):
        SessionCreateRequest.model_validate_json('{"access_token": "abc", "expires_in": 120, "x": 1}')


def test_token_callback_shapes() -> None:
    nonce = "A" * 43
    assert TokenCallback(token="0123456789abcdef" * 2, nonce=nonce).nonce == nonce
    with pytest.raises(ValidationError):
        TokenCallback(token="short", nonce=nonce)
    with pytest.raises(ValidationError):
        TokenCallback(token="0123456789abcdef" * 2, nonce="A" * 42)


def test_session_view_hides_the_stored_secrets_and_formats_expiry() -> None:
    record = SessionRecord(
        pk="session-pk",
        identifier="https://www.facebook.com/alice",
        provider="Facebook",
        display_name="Alice",
        capture_token="Q0FQVFVSRS1DSVBIRVJURVhU",
        credentials="Q1JFREVOVElBTFMtQ0lQSEVSVEVYVA==",
        account_uuid="account-uuid",
        account=AccountSnapshot(
            uuid="account-uuid",
            display_name="Alice",
            email="alice@example.com",
            linked=[LinkedIdentity(identifier="https://soundcloud.com/alice", provider="SoundCloud")],
        ),
        account_read_at=1_700_000_000,
        created_at=1_700_000_000,
        expires_at=1_700_000_000,
    )

    view = record.view()

    assert view.model_dump() == {
        "signed_in": True,
        "identifier": "https://www.facebook.com/alice",
        "provider": "Facebook",
        "capture": True,
        "account": {"uuid": "account-uuid", "display_name": "Alice", "email": "alice@example.com"},
        "linked": [{"identifier": "https://soundcloud.com/alice", "provider": "SoundCloud"}],
        "stale": False,
        "expires_at": "2023-11-14T22:13:20Z",
    }
    dumped = view.model_dump_json()
    assert "Q0FQVFVSRS1DSVBIRVJURVhU" not in dumped
    assert "Q1JFREVOVElBTFMtQ0lQSEVSVEVYVA==" not in dumped
    assert "session-pk" not in dumped


def test_session_view_without_capture_token() -> None:
    view = SessionRecord(pk="p", created_at=0, expires_at=86400).view()

    assert view.capture is False
    assert view.identifier is None
    assert view.linked == []
    assert view.expires_at == "1970-01-02T00:00:00Z"


def test_a_session_whose_access_token_was_dropped_no_longer_shows_the_account() -> None:
    account = AccountSnapshot(
        uuid="account-uuid",
        linked=[LinkedIdentity(identifier="https://soundcloud.com/a", provider="SoundCloud")],
    )
    record = SessionRecord(pk="p", account=account, created_at=0, expires_at=86400)

    assert (record.view(stale=True).account, record.view().linked, record.view(stale=True).stale) == (
        None,
        [],
        False,
    )
    shown = record.model_copy(update={"capture_token": "c2VhbGVk"}).view(stale=True)
    assert (shown.account is not None, len(shown.linked), shown.stale) == (True, 1, True)


@pytest.mark.parametrize(
    ("expires_at", "now", "live"), [(100, 99, True), (100, 100, False), (100, 101, False)]
)
def test_session_is_live_until_expires_at(expires_at: int, now: int, live: bool) -> None:
    assert SessionRecord(pk="p", created_at=0, expires_at=expires_at).is_live(now) is live


# ---------------------------------------------------------------- the Capture account (/entity)


@pytest.mark.parametrize(
    ("record", "has_password"),
    [
        ({"uuid": "u-1"}, False),
        ({"uuid": "u-1", "password": None}, False),
        ({"uuid": "u-1", "password": ""}, False),
        ({"uuid": "u-1", "password": "$2a$10$stored-hash"}, True),
        ({"uuid": "u-1", "password": {"type": "password-bcrypt", "value": "stored-hash"}}, True),
    ],
)
def test_capture_account_knows_only_whether_there_is_a_password(
    record: dict[str, object], has_password: bool
) -> None:
    account = CaptureAccount.model_validate(record)

    assert account.has_password is has_password
    assert "stored-hash" not in account.model_dump_json()


def test_capture_account_reads_its_profiles_and_ignores_other_attributes() -> None:
    account = CaptureAccount.model_validate(
        {
            "uuid": "u-1",
            "id": 7,
            "displayName": "Alice",
            "email": "alice@example.test",
            "created": "2024-01-01 00:00:00 +0000",
            "profiles": [
                {"id": 1, "domain": "twitter.com", "identifier": "https://twitter.com/alice", "profile": {}},
                {"domain": "openid.example", "identifier": "https://openid.example/alice"},
            ],
        }
    )

    assert (account.uuid, account.display_name, account.email) == ("u-1", "Alice", "alice@example.test")
    assert [(p.identifier, p.provider) for p in account.profiles] == [
        ("https://twitter.com/alice", "Twitter"),
        ("https://openid.example/alice", "openid.example"),
    ]
    assert set(account.model_dump()) == {"uuid", "display_name", "email", "profiles", "has_password"}


def test_capture_account_without_profiles_has_none() -> None:
    assert CaptureAccount.model_validate({"uuid": "u-1", "profiles": None}).profiles == []


@pytest.mark.parametrize(
    "record", [{}, {"uuid": ""}, {"uuid": "u-1", "profiles": [{"domain": "google.com"}]}, {"uuid": None}]
)
def test_capture_account_refuses_a_record_it_cannot_use(record: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CaptureAccount.model_validate(record)


@pytest.mark.parametrize(
    ("domain", "provider"),
    [
        ("facebook.com", "Facebook"),
        ("google.com", "Google"),
        ("twitter.com", "Twitter"),
        ("linkedin.com", "LinkedIn"),
        ("LinkedIn.com", "LinkedIn"),
        ("login.live.com", "Microsoft Account"),
        ("unknown.example", "unknown.example"),
    ],
)
def test_provider_for_domain(domain: str, provider: str) -> None:
    assert provider_for_domain(domain) == provider
