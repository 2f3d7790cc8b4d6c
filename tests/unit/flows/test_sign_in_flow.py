"""The token POST of a sign-in, through TokenPost (the binding rule, the one-time value, replays)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.unit.flows.fakes import NOW, FlowWorld, profile
from token_url.audit import AuditEventType
from token_url.errors import SocialLoginError
from token_url.flows.shared import CREDENTIALS_FIELD, session_key
from token_url.models import ErrorCode, Intent, Result


def test_a_sign_in_makes_a_session_for_the_profile(world: FlowWorld, counted: Callable[[str], int]) -> None:
    credentials = {"accessToken": "provider-access-token"}
    nonce, browser = world.start_token_url(Intent.SIGN_IN)
    token = world.issue_token(profile(accessCredentials=credentials))

    outcome = world.submit(token, nonce, browser)

    assert (outcome.result, outcome.error) == (Result.SIGNED_IN, None)
    assert outcome.session_id is not None
    assert outcome.session_expires_at == NOW + world.settings.session_ttl_seconds
    pk = session_key(outcome.session_id)
    record = world.sessions.records[pk]
    assert (record.identifier, record.provider, record.display_name) == (
        "https://profiles.google.com/200",
        "Google",
        "Alice",
    )
    assert record.credentials is not None
    assert world.vault.open(record.credentials, session_pk=pk, field=CREDENTIALS_FIELD) == json.dumps(
        credentials
    )
    [call] = world.cloud.calls_to("auth_info")
    assert call == {"token": token, "token_url": f"{world.settings.token_endpoint}?nonce={nonce}"}
    assert world.audit.events == [
        (
            AuditEventType.SIGNED_IN,
            {"provider": "Google", "identifier": "https://profiles.google.com/200", "session_pk": pk},
        )
    ]
    assert counted("SignIns") == 1


def test_a_profile_without_credentials_stores_none(world: FlowWorld) -> None:
    nonce, browser = world.start_token_url(Intent.SIGN_IN)

    outcome = world.submit(world.issue_token(), nonce, browser)

    assert outcome.session_id is not None
    assert world.sessions.records[session_key(outcome.session_id)].credentials is None
    assert world.vault.sealed == {}


def test_a_replay_gets_the_same_session_and_changes_nothing(world: FlowWorld) -> None:
    nonce, browser = world.start_token_url(Intent.SIGN_IN)
    token = world.issue_token()

    first = world.submit(token, nonce, browser)
    replay = world.submit(token, nonce, browser)

    assert replay == first
    assert len(world.cloud.calls_to("auth_info")) == 1
    assert len(world.sessions.records) == 1
    assert world.audit.types() == [AuditEventType.SIGNED_IN]


def test_a_second_token_through_a_spent_url_is_refused(
    world: FlowWorld, counted: Callable[[str], int]
) -> None:
    nonce, browser = world.start_token_url(Intent.SIGN_IN)
    world.submit(world.issue_token(), nonce, browser)

    outcome = world.submit(world.issue_token(), nonce, browser)

    assert (outcome.result, outcome.error) == (None, ErrorCode.TOKEN_URL_INVALID)
    assert len(world.cloud.calls_to("auth_info")) == 1
    assert counted("RejectedTokens") == 1


@pytest.mark.parametrize("missing", ["nonce", "browser"])
def test_without_both_halves_of_the_binding_the_token_is_never_sent(
    world: FlowWorld, counted: Callable[[str], int], missing: str
) -> None:
    nonce, browser = world.start_token_url(Intent.SIGN_IN)
    halves = {"nonce": nonce, "browser": browser, missing: None}

    outcome = world.submit(world.issue_token(), halves["nonce"], halves["browser"])

    assert (outcome.result, outcome.error) == (None, ErrorCode.TOKEN_URL_INVALID)
    assert world.cloud.calls == []
    assert [record.consumed_by for record in world.nonces.records.values()] == [None]
    assert counted("RejectedTokens") == 1


def test_another_browsers_token_post_is_refused_before_any_upstream_call(world: FlowWorld) -> None:
    nonce, _ = world.start_token_url(Intent.SIGN_IN)
    _, other_browser = world.start_token_url(Intent.SIGN_IN)

    outcome = world.submit(world.issue_token(), nonce, other_browser)

    assert outcome.error is ErrorCode.TOKEN_URL_INVALID
    assert world.cloud.calls == []
    assert world.sessions.records == {}


def test_an_expired_token_url_is_refused(world: FlowWorld) -> None:
    nonce, browser = world.start_token_url(Intent.SIGN_IN)
    world.clock.current += world.settings.token_url_ttl_seconds

    outcome = world.submit(world.issue_token(), nonce, browser)

    assert outcome.error is ErrorCode.TOKEN_URL_INVALID
    assert world.cloud.calls == []


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        (SocialLoginError("auth_info", SocialLoginError.DATA_NOT_FOUND, False), ErrorCode.TOKEN_INVALID),
        (SocialLoginError("auth_info", 9, False), ErrorCode.TOKEN_INVALID),  # credentials revoked
        (
            SocialLoginError("auth_info", SocialLoginError.AUTHENTICATION_ERROR, True),  # token URL mismatch
            ErrorCode.TOKEN_INVALID,
        ),
        (
            SocialLoginError("auth_info", SocialLoginError.PROVIDER_ERROR, False),
            ErrorCode.SERVICE_UNAVAILABLE,
        ),
        (
            SocialLoginError("auth_info", SocialLoginError.AUTHENTICATION_ERROR, False),  # our apiKey
            ErrorCode.CONFIGURATION_ERROR,
        ),
        (
            SocialLoginError("auth_info", SocialLoginError.APP_NOT_CONFIGURED, False),
            ErrorCode.CONFIGURATION_ERROR,
        ),
        (SocialLoginError("auth_info", 99, False), ErrorCode.CONFIGURATION_ERROR),  # a code we do not know
    ],
)
def test_social_login_refusals_map_to_the_users_error(
    world: FlowWorld, upstream: SocialLoginError, expected: ErrorCode
) -> None:
    nonce, browser = world.start_token_url(Intent.SIGN_IN)
    world.cloud.auth_info_error = upstream

    outcome = world.submit(world.issue_token(), nonce, browser)

    assert (outcome.result, outcome.error, outcome.session_id) == (None, expected, None)
    assert world.sessions.records == {}
    assert world.audit.events == []


def test_after_an_outage_the_same_submission_can_be_retried(world: FlowWorld) -> None:
    nonce, browser = world.start_token_url(Intent.SIGN_IN)
    token = world.issue_token()
    world.cloud.auth_info_error = SocialLoginError("auth_info", SocialLoginError.PROVIDER_ERROR, False)

    assert world.submit(token, nonce, browser).error is ErrorCode.SERVICE_UNAVAILABLE
    world.cloud.auth_info_error = None
    retried = world.submit(token, nonce, browser)

    assert retried.result is Result.SIGNED_IN
    assert len(world.cloud.calls_to("auth_info")) == 2


def test_a_refused_token_is_answered_again_from_the_record(world: FlowWorld) -> None:
    nonce, browser = world.start_token_url(Intent.SIGN_IN)
    token = world.issue_token()
    world.cloud.auth_info_error = SocialLoginError("auth_info", SocialLoginError.DATA_NOT_FOUND, False)

    first = world.submit(token, nonce, browser)
    world.cloud.auth_info_error = None
    replay = world.submit(token, nonce, browser)

    assert first.error is replay.error is ErrorCode.TOKEN_INVALID
    assert len(world.cloud.calls_to("auth_info")) == 1


def test_a_sign_in_ends_the_browsers_previous_sessions(world: FlowWorld) -> None:
    recorded_at_start = world.capture_session()  # the session the token URL was started from
    sent_with_the_post = world.capture_session()  # a session cookie the token POST carries
    nonce, browser = world.start_token_url(Intent.SIGN_IN, session_id=recorded_at_start)

    outcome = world.submit(world.issue_token(), nonce, browser, previous_session_id=sent_with_the_post)

    assert outcome.session_id is not None
    assert set(world.sessions.records) == {session_key(outcome.session_id)}


def test_a_previous_session_that_cannot_be_deleted_does_not_undo_the_sign_in(world: FlowWorld) -> None:
    previous = world.capture_session()
    nonce, browser = world.start_token_url(Intent.SIGN_IN, session_id=previous)
    world.sessions.failing.add("delete")

    outcome = world.submit(world.issue_token(), nonce, browser, previous_session_id=previous)

    assert outcome.result is Result.SIGNED_IN
    assert session_key(previous) in world.sessions.records  # left to expire by TTL
