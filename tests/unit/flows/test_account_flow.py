"""The Registration account behind a session: verified by POST /session, shown by GET /session."""

from __future__ import annotations

import pytest

from tests.unit.flows.fakes import FACEBOOK_ID, GOOGLE_ID, NOW, FlowWorld, settings_for_tests
from token_url.errors import CaptureError, ConfigurationProblem, ServiceUnavailable
from token_url.flows.account import ACCOUNT_VIEW_MAX_AGE_SECONDS, AccessTokenRefused
from token_url.flows.shared import session_key
from token_url.models import AccountSummary, Intent, LinkedIdentity

ACCESS_TOKEN = "registration-access-token"


def entity_refusal(code: int) -> CaptureError:
    return CaptureError("entity", code, "refused", "request-1")


def create(world: FlowWorld, expires_in: int = 3600) -> str:
    return world.session_flows.create_capture_session(
        access_token=ACCESS_TOKEN, expires_in=expires_in, previous_session_id=None
    ).session_id


# ---------------------------------------------------------------- POST /session


@pytest.mark.parametrize("code", [CaptureError.INVALID_ACCESS_TOKEN, CaptureError.ACCESS_TOKEN_EXPIRED])
def test_an_access_token_capture_refuses_makes_no_session(world: FlowWorld, code: int) -> None:
    world.cloud.account_error = entity_refusal(code)

    with pytest.raises(AccessTokenRefused):
        create(world)

    assert world.sessions.records == {}
    assert world.audit.events == []
    assert world.vault.sealed == {}


@pytest.mark.parametrize(
    ("code", "raised"),
    [
        (CaptureError.API_LIMIT_ERROR, ServiceUnavailable),
        (CaptureError.UNEXPECTED_ERROR, ConfigurationProblem),
        (CaptureError.PERMISSION_ERROR, ConfigurationProblem),
    ],
)
def test_capture_failing_to_verify_the_token_makes_no_session(
    world: FlowWorld, code: int, raised: type[Exception]
) -> None:
    world.cloud.account_error = entity_refusal(code)

    with pytest.raises(raised):
        create(world)

    assert world.sessions.records == {}


def test_a_registration_session_is_verified_with_one_entity_call_and_keeps_the_account(
    world: FlowWorld,
) -> None:
    world.registration_account(ACCESS_TOKEN, FACEBOOK_ID)

    created = world.session_flows.create_capture_session(
        access_token=ACCESS_TOKEN, expires_in=3600, previous_session_id=None
    )

    assert world.cloud.calls == [("read_account", {"access_token": ACCESS_TOKEN})]
    record = world.sessions.records[session_key(created.session_id)]
    assert (record.account_uuid, record.account_read_at) == (f"uuid-of-{ACCESS_TOKEN}", NOW)
    assert created.view.account == AccountSummary(
        uuid=f"uuid-of-{ACCESS_TOKEN}", display_name="Alice", email="alice@example.com"
    )
    assert created.view.linked == [LinkedIdentity(identifier=FACEBOOK_ID, provider="Facebook")]


@pytest.mark.parametrize(("expires_in", "lifetime"), [(600, 600), (86400, 7200)])
def test_a_registration_session_lives_the_shorter_of_the_token_and_the_session_ttl(
    expires_in: int, lifetime: int
) -> None:
    world = FlowWorld(settings_for_tests(session_ttl_seconds=7200))
    world.registration_account(ACCESS_TOKEN)

    created = world.session_flows.create_capture_session(
        access_token=ACCESS_TOKEN, expires_in=expires_in, previous_session_id=None
    )

    assert created.lifetime_seconds == lifetime
    assert world.sessions.records[session_key(created.session_id)].expires_at == NOW + lifetime


# ---------------------------------------------------------------- GET /session


def test_the_view_shows_the_accounts_links_with_provider_names_unknown_domains_as_they_are(
    world: FlowWorld,
) -> None:
    world.registration_account(ACCESS_TOKEN, FACEBOOK_ID, GOOGLE_ID, "https://id.example.org/alice")
    session_id = create(world)

    view = world.session_flows.read(session_id)

    assert view is not None
    assert [(linked.identifier, linked.provider) for linked in view.linked] == [
        (FACEBOOK_ID, "Facebook"),
        (GOOGLE_ID, "Google"),
        ("https://id.example.org/alice", "id.example.org"),
    ]
    assert (view.capture, view.stale, view.identifier) == (True, False, None)


def test_a_recent_view_is_reused_and_an_older_one_read_again(world: FlowWorld) -> None:
    world.registration_account(ACCESS_TOKEN)
    session_id = create(world)
    world.registration_account(ACCESS_TOKEN, FACEBOOK_ID)  # linked elsewhere, by another site

    world.clock.current += ACCOUNT_VIEW_MAX_AGE_SECONDS - 1
    assert world.shown_links(session_id) == []
    assert len(world.cloud.calls_to("read_account")) == 1

    world.clock.current += 1
    assert world.shown_links(session_id) == [FACEBOOK_ID]
    assert world.shown_links(session_id) == [FACEBOOK_ID]
    assert len(world.cloud.calls_to("read_account")) == 2


def test_each_read_makes_at_most_one_entity_call(world: FlowWorld) -> None:
    world.registration_account(ACCESS_TOKEN)
    session_id = create(world)
    world.clock.current += ACCOUNT_VIEW_MAX_AGE_SECONDS
    before = len(world.cloud.calls)

    world.session_flows.read(session_id)

    assert world.cloud.calls[before:] == [("read_account", {"access_token": ACCESS_TOKEN})]


@pytest.mark.parametrize(
    "failure",
    [
        ServiceUnavailable("capture", "timeout"),
        entity_refusal(CaptureError.API_LIMIT_ERROR),
        entity_refusal(CaptureError.UNEXPECTED_ERROR),
    ],
)
def test_capture_down_shows_the_last_known_view_marked_stale(world: FlowWorld, failure: Exception) -> None:
    world.registration_account(ACCESS_TOKEN, FACEBOOK_ID)
    session_id = create(world)
    world.clock.current += ACCOUNT_VIEW_MAX_AGE_SECONDS
    world.cloud.account_error = failure

    view = world.session_flows.read(session_id)

    assert view is not None
    assert (view.stale, [linked.identifier for linked in view.linked]) == (True, [FACEBOOK_ID])
    assert view.account is not None
    assert view.account.uuid == f"uuid-of-{ACCESS_TOKEN}"
    world.cloud.account_error = None
    view = world.session_flows.read(session_id)
    assert view is not None
    assert view.stale is False


def test_a_view_that_cannot_be_kept_is_still_shown(world: FlowWorld) -> None:
    world.registration_account(ACCESS_TOKEN, FACEBOOK_ID)
    session_id = create(world)
    world.clock.current += ACCOUNT_VIEW_MAX_AGE_SECONDS
    world.sessions.failing.add("keep_account_view")

    assert world.shown_links(session_id) == [FACEBOOK_ID]


@pytest.mark.parametrize("code", [CaptureError.INVALID_ACCESS_TOKEN, CaptureError.ACCESS_TOKEN_EXPIRED])
def test_a_token_capture_no_longer_accepts_is_dropped_and_the_account_no_longer_shown(
    world: FlowWorld, code: int
) -> None:
    world.registration_account(ACCESS_TOKEN, FACEBOOK_ID)
    session_id = create(world)
    world.clock.current += ACCOUNT_VIEW_MAX_AGE_SECONDS
    world.cloud.account_error = entity_refusal(code)

    view = world.session_flows.read(session_id)

    assert view is not None
    assert (view.capture, view.account, view.linked, view.stale) == (False, None, [], False)
    assert world.sessions.records[session_key(session_id)].capture_token is None
    calls = len(world.cloud.calls)
    assert world.session_flows.read(session_id) == view
    assert len(world.cloud.calls) == calls  # no token left to ask Capture with


def test_a_social_sign_in_session_is_shown_as_before_without_capture(world: FlowWorld) -> None:
    nonce, browser = world.start_token_url(Intent.SIGN_IN)
    session_id = world.submit(world.issue_token(), nonce, browser).session_id
    assert session_id is not None
    calls = len(world.cloud.calls)

    view = world.session_flows.read(session_id)

    assert view is not None
    assert (view.identifier, view.provider, view.capture) == (GOOGLE_ID, "Google", False)
    assert (view.account, view.linked, view.stale) == (None, [], False)
    assert len(world.cloud.calls) == calls
