"""Linking: the token POST of a link (at once, or held for confirmation), then GET and POST /link."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.unit.flows.fakes import (
    ENTITY_FAILURE_IDS,
    ENTITY_FAILURES,
    FACEBOOK_ID,
    GOOGLE_ID,
    FlowWorld,
    outcomes_printed,
    profile,
    settings_for_tests,
)
from token_url.audit import AuditEventType
from token_url.errors import CaptureError, ServiceUnavailable, SocialLoginError
from token_url.flows.recheck import RECHECK_READ_SECONDS, RECHECK_WAITS
from token_url.flows.shared import PENDING_LINK_TOKEN_FIELD, session_key
from token_url.models import CaptureAccount, CaptureProfile, ErrorCode, Intent, LinkDecision, Result

ACCESS_TOKEN = "registration-access-token"
# The account the fake Capture names for that token when POST /session reads it.
ACCOUNT_UUID = f"uuid-of-{ACCESS_TOKEN}"


@pytest.fixture
def confirming() -> FlowWorld:
    """LINK_CONFIRMATION=on: a link waits on the session for the user's decision."""
    return FlowWorld(settings_for_tests(link_confirmation="on"))


def capture_refusal(code: int) -> CaptureError:
    return CaptureError("link_account_native", code, "refused", "request-1")


def link_token_post(world: FlowWorld, session_id: str) -> tuple[str, Result | None, ErrorCode | None]:
    """Start a link from the session and submit a Facebook token: (token, result, error)."""
    nonce, browser = world.start_token_url(Intent.LINK, session_id=session_id)
    token = world.issue_token(profile(FACEBOOK_ID, "Facebook"))
    outcome = world.submit(token, nonce, browser)
    return token, outcome.result, outcome.error


def test_a_link_is_made_with_the_sessions_registration_access_token(
    world: FlowWorld, counted: Callable[[str], int]
) -> None:
    session_id = world.capture_session(ACCESS_TOKEN)

    token, result, error = link_token_post(world, session_id)

    assert (result, error) == (Result.LINKED, None)
    assert world.cloud.links == [(token, ACCESS_TOKEN)]
    pk = session_key(session_id)
    assert world.shown_links(session_id) == [FACEBOOK_ID]
    assert world.audit.events[-1] == (
        AuditEventType.LINKED,
        {"provider": "Facebook", "identifier": FACEBOOK_ID, "session_pk": pk, "account_uuid": ACCOUNT_UUID},
    )
    assert counted("Links") == 1


def test_linking_an_identity_already_linked_to_this_account_links_again(world: FlowWorld) -> None:
    """Capture accepts the same link twice; the session lists it once."""
    session_id = world.capture_session()

    link_token_post(world, session_id)
    _, result, _ = link_token_post(world, session_id)

    assert result is Result.LINKED
    assert len(world.cloud.links) == 2
    assert world.shown_links(session_id) == [FACEBOOK_ID]


def test_an_identity_linked_to_another_account_is_refused_and_audited(
    world: FlowWorld, counted: Callable[[str], int]
) -> None:
    session_id = world.capture_session()
    world.cloud.link_error = capture_refusal(CaptureError.UNIQUE_VIOLATION)

    _, result, error = link_token_post(world, session_id)

    assert (result, error) == (None, ErrorCode.ALREADY_LINKED)
    assert world.shown_links(session_id) == []
    assert world.audit.events[-1] == (
        AuditEventType.LINK_REFUSED,
        {
            "outcome": "already_linked",
            "provider": "Facebook",
            "identifier": FACEBOOK_ID,
            "session_pk": session_key(session_id),
            "account_uuid": ACCOUNT_UUID,
        },
    )
    assert counted("LinkConflicts") == 1


def test_a_token_capture_refuses_is_token_invalid(world: FlowWorld) -> None:
    session_id = world.capture_session()
    world.cloud.link_error = capture_refusal(CaptureError.ENGAGE_ERROR)

    _, result, error = link_token_post(world, session_id)

    assert (result, error) == (None, ErrorCode.TOKEN_INVALID)
    assert world.audit.types() == [AuditEventType.SESSION_CREATED]


def test_a_token_social_login_refuses_is_never_sent_to_capture(world: FlowWorld) -> None:
    session_id = world.capture_session()
    world.cloud.auth_info_error = SocialLoginError("auth_info", SocialLoginError.INVALID_PARAMETER, False)

    _, result, error = link_token_post(world, session_id)

    assert (result, error) == (None, ErrorCode.TOKEN_INVALID)
    assert world.cloud.calls_to("link_account_native") == []


@pytest.mark.parametrize("code", [CaptureError.INVALID_ACCESS_TOKEN, CaptureError.ACCESS_TOKEN_EXPIRED])
def test_an_expired_registration_token_ends_the_sessions_ability_to_link(world: FlowWorld, code: int) -> None:
    session_id = world.capture_session()
    world.cloud.link_error = capture_refusal(code)

    _, result, error = link_token_post(world, session_id)

    assert (result, error) == (None, ErrorCode.SESSION_EXPIRED)
    assert world.sessions.records[session_key(session_id)].capture_token is None


def test_a_browser_signed_out_before_the_token_post_spends_no_token(world: FlowWorld) -> None:
    session_id = world.capture_session()
    nonce, browser = world.start_token_url(Intent.LINK, session_id=session_id)
    world.session_flows.sign_out(session_id)
    world.cloud.calls.clear()  # the account read when the session was made

    outcome = world.submit(world.issue_token(), nonce, browser)

    assert outcome.error is ErrorCode.SESSION_EXPIRED
    assert world.cloud.calls == []


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (CaptureError.PERMISSION_ERROR, ErrorCode.CONFIGURATION_ERROR),
        (CaptureError.INVALID_ARGUMENT, ErrorCode.CONFIGURATION_ERROR),
        (CaptureError.API_LIMIT_ERROR, ErrorCode.SERVICE_UNAVAILABLE),
    ],
)
def test_capture_failures_are_ours_or_an_outage(world: FlowWorld, code: int, expected: ErrorCode) -> None:
    session_id = world.capture_session()
    world.cloud.link_error = capture_refusal(code)

    _, result, error = link_token_post(world, session_id)

    assert (result, error) == (None, expected)
    assert world.shown_links(session_id) == []


# ---------------------------------------------------------------- held for confirmation


def test_with_confirmation_on_the_link_is_held_not_made(confirming: FlowWorld) -> None:
    session_id = confirming.capture_session()

    token, result, error = link_token_post(confirming, session_id)

    assert (result, error) == (Result.LINK_PENDING, None)
    assert confirming.cloud.calls_to("link_account_native") == []
    pk = session_key(session_id)
    pending = confirming.sessions.records[pk].pending_link
    assert pending is not None
    assert (pending.provider, pending.identifier) == ("Facebook", FACEBOOK_ID)
    assert pending.expires_at == confirming.clock.now() + confirming.settings.link_confirmation_seconds
    assert confirming.vault.open(pending.token, session_pk=pk, field=PENDING_LINK_TOKEN_FIELD) == token
    assert confirming.audit.events[-1] == (
        AuditEventType.LINK_CONFIRMATION_REQUESTED,
        {"provider": "Facebook", "identifier": FACEBOOK_ID, "session_pk": pk, "account_uuid": ACCOUNT_UUID},
    )
    view = confirming.link.pending_link(session_id)
    assert view is not None
    assert (view.provider, view.identifier, view.display_name) == ("Facebook", FACEBOOK_ID, "Alice")


def test_a_held_link_names_the_provider_by_host_when_the_profile_does_not(confirming: FlowWorld) -> None:
    session_id = confirming.capture_session()
    nonce, browser = confirming.start_token_url(Intent.LINK, session_id=session_id)

    confirming.submit(confirming.issue_token(profile(FACEBOOK_ID, provider=None)), nonce, browser)

    view = confirming.link.pending_link(session_id)
    assert view is not None
    assert view.provider == "www.facebook.com"


def test_a_browser_signed_out_during_auth_info_holds_nothing(confirming: FlowWorld) -> None:
    session_id = confirming.capture_session()
    nonce, browser = confirming.start_token_url(Intent.LINK, session_id=session_id)
    token = confirming.issue_token()
    read_profile = confirming.cloud.auth_info

    def signing_out_meanwhile(*, token: str, token_url: str) -> object:
        confirming.session_flows.sign_out(session_id)
        return read_profile(token=token, token_url=token_url)

    confirming.cloud.auth_info = signing_out_meanwhile  # type: ignore[method-assign,assignment]

    outcome = confirming.submit(token, nonce, browser)

    assert outcome.error is ErrorCode.SESSION_EXPIRED
    assert confirming.sessions.records == {}


def test_confirming_links_with_the_held_token_once(confirming: FlowWorld) -> None:
    session_id = confirming.capture_session(ACCESS_TOKEN)
    token, _, _ = link_token_post(confirming, session_id)

    decided = confirming.link.decide(session_id, confirm=True)
    again = confirming.link.decide(session_id, confirm=True)

    assert (decided.decision, decided.error) == (LinkDecision.LINKED, None)
    assert (again.decision, again.error) == (None, ErrorCode.NO_PENDING_LINK)
    assert confirming.cloud.links == [(token, ACCESS_TOKEN)]
    assert confirming.sessions.records[session_key(session_id)].pending_link is None
    assert confirming.audit.types()[-1] is AuditEventType.LINKED


def test_cancelling_drops_the_held_link_without_an_upstream_call(confirming: FlowWorld) -> None:
    session_id = confirming.capture_session()
    link_token_post(confirming, session_id)

    decided = confirming.link.decide(session_id, confirm=False)

    assert (decided.decision, decided.error) == (LinkDecision.CANCELLED, None)
    assert confirming.cloud.calls_to("link_account_native") == []
    assert confirming.link.pending_link(session_id) is None
    assert confirming.audit.events[-1] == (
        AuditEventType.LINK_CANCELLED,
        {
            "provider": "Facebook",
            "identifier": FACEBOOK_ID,
            "session_pk": session_key(session_id),
            "account_uuid": ACCOUNT_UUID,
        },
    )


def test_a_held_link_past_its_expiry_is_not_sent(
    confirming: FlowWorld, counted: Callable[[str], int]
) -> None:
    session_id = confirming.capture_session()
    link_token_post(confirming, session_id)
    confirming.clock.current += confirming.settings.link_confirmation_seconds

    assert confirming.link.pending_link(session_id) is None
    decided = confirming.link.decide(session_id, confirm=True)

    assert (decided.decision, decided.error) == (None, ErrorCode.TOKEN_INVALID)
    assert confirming.cloud.calls_to("link_account_native") == []
    assert counted("RejectedTokens") == 1


def test_there_is_nothing_to_decide_without_a_held_link(confirming: FlowWorld) -> None:
    session_id = confirming.capture_session()

    assert confirming.link.decide(session_id, confirm=True).error is ErrorCode.NO_PENDING_LINK
    assert confirming.link.decide(None, confirm=False).error is ErrorCode.NO_PENDING_LINK
    assert confirming.link.pending_link(session_id) is None


def test_a_confirmation_that_meets_an_outage_is_not_kept_for_a_second_try(confirming: FlowWorld) -> None:
    session_id = confirming.capture_session()
    link_token_post(confirming, session_id)
    confirming.cloud.link_error = capture_refusal(CaptureError.API_LIMIT_ERROR)

    decided = confirming.link.decide(session_id, confirm=True)

    assert (decided.decision, decided.error) == (None, ErrorCode.SERVICE_UNAVAILABLE)
    assert confirming.sessions.records[session_key(session_id)].pending_link is None


def test_a_confirmation_refused_by_capture_gives_capture_s_reason(confirming: FlowWorld) -> None:
    session_id = confirming.capture_session()
    link_token_post(confirming, session_id)
    confirming.cloud.link_error = capture_refusal(CaptureError.UNIQUE_VIOLATION)

    decided = confirming.link.decide(session_id, confirm=True)

    assert (decided.decision, decided.error) == (None, ErrorCode.ALREADY_LINKED)
    assert confirming.audit.types()[-1] is AuditEventType.LINK_REFUSED


# ---------------------------------------------------------------- a link whose reply was lost


def reply_lost() -> ServiceUnavailable:
    """link_account_native sent, and then nothing heard (a read timeout, a reset, an HTTP 500 page)."""
    return ServiceUnavailable("capture", "link_account_native: timeout", may_have_reached=True)


def account_holding(*identifiers: str) -> CaptureAccount:
    return CaptureAccount(
        uuid="account-1",
        profiles=[CaptureProfile(identifier=identifier, domain="facebook.com") for identifier in identifiers],
    )


def reconciliations(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The outcome of every LinksReconciled data point printed so far."""
    return outcomes_printed(capsys.readouterr().out, "LinksReconciled")


def test_a_link_made_in_capture_whose_reply_was_lost_is_linked(
    world: FlowWorld, counted: Callable[[str], int], capsys: pytest.CaptureFixture[str]
) -> None:
    session_id = world.capture_session(ACCESS_TOKEN)
    world.cloud.calls.clear()  # POST /session's own account read is not the reconciliation's
    world.cloud.link_error = reply_lost()
    world.cloud.accounts[ACCESS_TOKEN] = account_holding(GOOGLE_ID, FACEBOOK_ID)  # Capture made the link

    _, result, error = link_token_post(world, session_id)

    assert (result, error) == (Result.LINKED, None)
    assert world.cloud.calls_to("read_account") == [{"access_token": ACCESS_TOKEN}]
    pk = session_key(session_id)
    assert world.audit.events[-1] == (
        AuditEventType.LINKED,
        {"provider": "Facebook", "identifier": FACEBOOK_ID, "session_pk": pk, "account_uuid": ACCOUNT_UUID},
    )
    assert counted("Links") == 1
    assert reconciliations(capsys) == ["linked"]
    assert FACEBOOK_ID in world.shown_links(session_id)


def test_a_link_replayed_after_its_reply_was_lost_gets_the_reconciled_outcome(world: FlowWorld) -> None:
    session_id = world.capture_session(ACCESS_TOKEN)
    world.cloud.calls.clear()  # POST /session's own account read is not the reconciliation's
    world.cloud.link_error = reply_lost()
    world.cloud.accounts[ACCESS_TOKEN] = account_holding(FACEBOOK_ID)
    nonce, browser = world.start_token_url(Intent.LINK, session_id=session_id)
    token = world.issue_token(profile(FACEBOOK_ID, "Facebook"))

    first = world.submit(token, nonce, browser)
    world.cloud.link_error = capture_refusal(
        CaptureError.ENGAGE_ERROR
    )  # what sending the token again would get
    replay = world.submit(token, nonce, browser)

    assert first.result is replay.result is Result.LINKED
    assert len(world.cloud.calls_to("link_account_native")) == 1
    assert len(world.cloud.calls_to("read_account")) == 1


def test_a_link_not_in_the_account_after_its_reply_was_lost_is_an_outage(
    world: FlowWorld, counted: Callable[[str], int], capsys: pytest.CaptureFixture[str]
) -> None:
    session_id = world.capture_session(ACCESS_TOKEN)
    world.cloud.calls.clear()  # POST /session's own account read is not the reconciliation's
    world.cloud.link_error = reply_lost()
    world.cloud.accounts[ACCESS_TOKEN] = account_holding(GOOGLE_ID)

    _, result, error = link_token_post(world, session_id)

    assert (result, error) == (None, ErrorCode.SERVICE_UNAVAILABLE)
    # Read again after each wait, in case Capture was still carrying the link out.
    assert world.cloud.calls_to("read_account") == [{"access_token": ACCESS_TOKEN}] * (1 + len(RECHECK_WAITS))
    assert world.sleeps == list(RECHECK_WAITS)
    # The repeated reads are cut short, so the time judged left for them holds.
    assert world.cloud.read_timeouts[-4:] == [None] + [RECHECK_READ_SECONDS] * len(RECHECK_WAITS)
    assert AuditEventType.LINKED not in world.audit.types()
    assert counted("Links") == 0
    assert counted("UpstreamErrors") == 1
    assert reconciliations(capsys) == ["not_linked"]


@pytest.mark.parametrize("entity_failure", ENTITY_FAILURES, ids=ENTITY_FAILURE_IDS)
def test_a_lost_link_reply_with_the_account_unreadable_is_an_outage(
    world: FlowWorld, capsys: pytest.CaptureFixture[str], entity_failure: Exception
) -> None:
    session_id = world.capture_session(ACCESS_TOKEN)
    world.cloud.calls.clear()  # POST /session's own account read is not the reconciliation's
    world.cloud.link_error = reply_lost()
    world.cloud.account_error = entity_failure

    _, result, error = link_token_post(world, session_id)

    assert (result, error) == (None, ErrorCode.SERVICE_UNAVAILABLE)
    assert len(world.cloud.calls_to("read_account")) == 1
    assert reconciliations(capsys) == ["unknown"]


def test_a_link_that_never_reached_capture_is_not_looked_for(
    world: FlowWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    session_id = world.capture_session(ACCESS_TOKEN)
    world.cloud.calls.clear()  # POST /session's own account read is not the reconciliation's
    world.cloud.link_error = ServiceUnavailable("capture", "link_account_native: ConnectionError")
    world.cloud.accounts[ACCESS_TOKEN] = account_holding(FACEBOOK_ID)  # linked earlier, not by this call

    _, result, error = link_token_post(world, session_id)

    assert (result, error) == (None, ErrorCode.SERVICE_UNAVAILABLE)
    assert world.cloud.calls_to("read_account") == []
    assert reconciliations(capsys) == []


def test_a_confirmed_link_whose_reply_was_lost_is_looked_for_too(
    confirming: FlowWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    session_id = confirming.capture_session(ACCESS_TOKEN)
    confirming.cloud.calls.clear()  # POST /session's own account read is not the reconciliation's
    link_token_post(confirming, session_id)
    confirming.cloud.link_error = reply_lost()
    confirming.cloud.accounts[ACCESS_TOKEN] = account_holding(FACEBOOK_ID)

    decided = confirming.link.decide(session_id, confirm=True)

    assert (decided.decision, decided.error) == (LinkDecision.LINKED, None)
    assert FACEBOOK_ID in confirming.shown_links(session_id)
    assert confirming.audit.types()[-1] is AuditEventType.LINKED
    assert reconciliations(capsys) == ["linked"]


def test_a_confirmed_link_not_found_after_its_reply_was_lost_is_an_outage(confirming: FlowWorld) -> None:
    session_id = confirming.capture_session(ACCESS_TOKEN)
    confirming.cloud.calls.clear()  # POST /session's own account read is not the reconciliation's
    link_token_post(confirming, session_id)
    confirming.cloud.link_error = reply_lost()
    confirming.cloud.accounts[ACCESS_TOKEN] = account_holding()

    decided = confirming.link.decide(session_id, confirm=True)

    assert (decided.decision, decided.error) == (None, ErrorCode.SERVICE_UNAVAILABLE)
    assert len(confirming.cloud.calls_to("read_account")) == 1 + len(RECHECK_WAITS)
    assert AuditEventType.LINKED not in confirming.audit.types()


def test_a_link_capture_carries_out_after_the_reply_was_lost_is_found_on_a_later_read(
    world: FlowWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """Capture still working on the request when the client gave up: the link shows on a later read."""
    session_id = world.capture_session(ACCESS_TOKEN)
    world.cloud.calls.clear()
    world.cloud.link_error = reply_lost()
    reads = iter([account_holding(GOOGLE_ID), account_holding(GOOGLE_ID, FACEBOOK_ID)])
    world.cloud.read_account = lambda *, access_token, read_timeout=None: next(reads)  # type: ignore[method-assign]

    _, result, error = link_token_post(world, session_id)

    assert (result, error) == (Result.LINKED, None)
    assert world.sleeps == [RECHECK_WAITS[0]]
    assert world.audit.types()[-1] is AuditEventType.LINKED
    assert reconciliations(capsys) == ["linked"]


def test_no_account_read_is_repeated_when_the_deadline_leaves_no_time_for_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    short = FlowWorld(remaining_ms=3_500)  # less than the duplicate-wait margin plus one wait and read
    session_id = short.capture_session(ACCESS_TOKEN)
    short.cloud.calls.clear()
    short.cloud.link_error = reply_lost()
    short.cloud.accounts[ACCESS_TOKEN] = account_holding(GOOGLE_ID)

    _, result, error = link_token_post(short, session_id)

    assert (result, error) == (None, ErrorCode.SERVICE_UNAVAILABLE)
    assert len(short.cloud.calls_to("read_account")) == 1
    assert short.sleeps == []
    assert reconciliations(capsys) == ["not_linked"]
