"""POST /unlink's flow: the account's own profiles checked first, never its last way to sign in."""

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
)
from token_url.audit import AuditEventType
from token_url.errors import CaptureError, ServiceUnavailable
from token_url.flows.recheck import RECHECK_READ_SECONDS, RECHECK_WAITS
from token_url.flows.shared import session_key
from token_url.flows.unlink import unlink_lock_key
from token_url.models import CaptureAccount, ErrorCode, Intent

ACCESS_TOKEN = "registration-access-token"


def refusal(endpoint: str, code: int) -> CaptureError:
    return CaptureError(endpoint, code, "refused", "request-1")


def signed_in(world: FlowWorld, *linked: str, has_password: bool = True) -> str:
    world.registration_account(ACCESS_TOKEN, *linked, has_password=has_password)
    return world.capture_session(ACCESS_TOKEN)


def test_unlinking_removes_the_identity_in_capture_audits_it_and_shows_at_once(
    world: FlowWorld, counted: Callable[[str], int]
) -> None:
    session_id = signed_in(world, FACEBOOK_ID, GOOGLE_ID)

    assert world.unlink.unlink(session_id, identifier=FACEBOOK_ID) is None

    assert world.cloud.calls_to("unlink") == [{"access_token": ACCESS_TOKEN, "identifier": FACEBOOK_ID}]
    assert [p.identifier for p in world.cloud.accounts[ACCESS_TOKEN].profiles] == [GOOGLE_ID]
    reads = len(world.cloud.calls_to("read_account"))
    assert world.shown_links(session_id) == [GOOGLE_ID]  # the kept view is refreshed, not read again
    assert len(world.cloud.calls_to("read_account")) == reads
    assert world.audit.events[-1] == (
        AuditEventType.UNLINKED,
        {
            "provider": "Facebook",
            "identifier": FACEBOOK_ID,
            "session_pk": session_key(session_id),
            "account_uuid": f"uuid-of-{ACCESS_TOKEN}",
        },
    )
    assert counted("Unlinks") == 1


def test_the_accounts_profiles_are_read_from_capture_not_from_the_kept_view(world: FlowWorld) -> None:
    session_id = signed_in(world, GOOGLE_ID)
    world.registration_account(ACCESS_TOKEN, GOOGLE_ID, FACEBOOK_ID)  # linked since, elsewhere

    assert world.unlink.unlink(session_id, identifier=FACEBOOK_ID) is None
    assert world.cloud.calls_to("unlink") == [{"access_token": ACCESS_TOKEN, "identifier": FACEBOOK_ID}]


def test_an_identity_not_on_the_account_is_not_linked_and_capture_is_not_asked_to_unlink(
    world: FlowWorld,
) -> None:
    session_id = signed_in(world, GOOGLE_ID)

    assert world.unlink.unlink(session_id, identifier=FACEBOOK_ID) is ErrorCode.NOT_LINKED

    assert world.cloud.calls_to("unlink") == []
    assert world.audit.types()[-1] is AuditEventType.SESSION_CREATED


def test_the_only_identity_of_an_account_without_password_stays(world: FlowWorld) -> None:
    session_id = signed_in(world, FACEBOOK_ID, has_password=False)

    assert world.unlink.unlink(session_id, identifier=FACEBOOK_ID) is ErrorCode.LAST_SIGN_IN_METHOD

    assert world.cloud.calls_to("unlink") == []


@pytest.mark.parametrize(
    ("has_password", "linked"), [(True, [FACEBOOK_ID]), (False, [FACEBOOK_ID, GOOGLE_ID])]
)
def test_an_account_keeps_another_way_to_sign_in_so_it_may_unlink(
    world: FlowWorld, has_password: bool, linked: list[str]
) -> None:
    session_id = signed_in(world, *linked, has_password=has_password)

    assert world.unlink.unlink(session_id, identifier=FACEBOOK_ID) is None


def test_unlinking_needs_a_registration_session(world: FlowWorld) -> None:
    nonce, browser = world.start_token_url(Intent.SIGN_IN)
    social = world.submit(world.issue_token(), nonce, browser).session_id
    expired = signed_in(world, FACEBOOK_ID, GOOGLE_ID)
    world.clock.current += 3600
    world.cloud.calls.clear()

    for session_id in (None, "never-existed", social, expired):
        assert world.unlink.unlink(session_id, identifier=FACEBOOK_ID) is ErrorCode.UNAUTHORIZED
    assert world.cloud.calls == []


@pytest.mark.parametrize("code", [CaptureError.INVALID_ACCESS_TOKEN, CaptureError.ACCESS_TOKEN_EXPIRED])
@pytest.mark.parametrize("step", ["entity", "unlink"])
def test_a_token_capture_refuses_is_dropped_and_the_session_expired(
    world: FlowWorld, code: int, step: str
) -> None:
    session_id = signed_in(world, FACEBOOK_ID, GOOGLE_ID)
    if step == "entity":
        world.cloud.account_error = refusal("entity", code)
    else:
        world.cloud.unlink_error = refusal("unlink_account_native", code)

    assert world.unlink.unlink(session_id, identifier=FACEBOOK_ID) is ErrorCode.SESSION_EXPIRED

    assert world.sessions.records[session_key(session_id)].capture_token is None
    assert AuditEventType.UNLINKED not in world.audit.types()


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (refusal("unlink_account_native", CaptureError.API_LIMIT_ERROR), ErrorCode.SERVICE_UNAVAILABLE),
        (ServiceUnavailable("capture", "timeout"), ErrorCode.SERVICE_UNAVAILABLE),
        (refusal("unlink_account_native", CaptureError.PERMISSION_ERROR), ErrorCode.CONFIGURATION_ERROR),
        (refusal("unlink_account_native", CaptureError.UNEXPECTED_ERROR), ErrorCode.CONFIGURATION_ERROR),
        (refusal("unlink_account_native", CaptureError.INVALID_ARGUMENT), ErrorCode.CONFIGURATION_ERROR),
    ],
)
def test_capture_failing_to_unlink_is_an_outage_or_our_configuration(
    world: FlowWorld, failure: Exception, expected: ErrorCode, counted: Callable[[str], int]
) -> None:
    session_id = signed_in(world, FACEBOOK_ID, GOOGLE_ID)
    world.cloud.unlink_error = failure

    assert world.unlink.unlink(session_id, identifier=FACEBOOK_ID) is expected

    assert world.sessions.records[session_key(session_id)].capture_token is not None
    assert AuditEventType.UNLINKED not in world.audit.types()
    assert counted("Unlinks") == 0


def test_capture_failing_to_read_the_account_unlinks_nothing(world: FlowWorld) -> None:
    session_id = signed_in(world, FACEBOOK_ID, GOOGLE_ID)
    world.cloud.account_error = ServiceUnavailable("capture", "timeout")

    assert world.unlink.unlink(session_id, identifier=FACEBOOK_ID) is ErrorCode.SERVICE_UNAVAILABLE
    assert world.cloud.calls_to("unlink") == []


def test_an_unlink_whose_view_cannot_be_kept_still_succeeds(world: FlowWorld) -> None:
    session_id = signed_in(world, FACEBOOK_ID, GOOGLE_ID)
    world.sessions.failing.add("keep_account_view")

    assert world.unlink.unlink(session_id, identifier=FACEBOOK_ID) is None
    assert world.audit.types()[-1] is AuditEventType.UNLINKED


def test_two_unlinks_at_once_cannot_remove_an_accounts_last_way_to_sign_in(world: FlowWorld) -> None:
    """Each would pass its /entity check before the other removed anything: only one runs at a time."""
    first = signed_in(world, FACEBOOK_ID, GOOGLE_ID, has_password=False)
    second = world.capture_session(ACCESS_TOKEN)  # another tab, the same account
    unlink_in_capture = world.cloud.unlink
    concurrent: list[ErrorCode | None] = []

    def while_the_first_unlinks(*, access_token: str, identifier: str) -> None:
        if not concurrent:
            concurrent.append(world.unlink.unlink(second, identifier=GOOGLE_ID))
        unlink_in_capture(access_token=access_token, identifier=identifier)

    world.cloud.unlink = while_the_first_unlinks  # type: ignore[method-assign]

    assert world.unlink.unlink(first, identifier=FACEBOOK_ID) is None
    assert concurrent == [ErrorCode.REQUEST_IN_PROGRESS]
    assert [p.identifier for p in world.cloud.accounts[ACCESS_TOKEN].profiles] == [GOOGLE_ID]
    assert world.sessions.locks == {}  # released: the next unlink may run (and is refused as the last)
    assert world.unlink.unlink(second, identifier=GOOGLE_ID) is ErrorCode.LAST_SIGN_IN_METHOD


def test_the_unlink_lock_is_released_when_capture_fails(world: FlowWorld) -> None:
    session_id = signed_in(world, FACEBOOK_ID, GOOGLE_ID)
    world.cloud.unlink_error = ServiceUnavailable("capture", "unlink_account_native: timeout")

    assert world.unlink.unlink(session_id, identifier=FACEBOOK_ID) is ErrorCode.SERVICE_UNAVAILABLE
    assert world.sessions.locks == {}


def test_a_lock_left_by_a_killed_invocation_is_taken_over_once_expired(world: FlowWorld) -> None:
    session_id = signed_in(world, FACEBOOK_ID, GOOGLE_ID)
    record = world.sessions.records[session_key(session_id)]
    world.sessions.locks[unlink_lock_key(record)] = world.clock.now() - 1

    assert world.unlink.unlink(session_id, identifier=FACEBOOK_ID) is None


# ---------------------------------------------------------------- an unlink whose reply was lost


def reply_lost() -> ServiceUnavailable:
    """unlink_account_native sent, and then nothing heard (a read timeout, a reset, an HTTP 500 page)."""
    return ServiceUnavailable("capture", "unlink_account_native: timeout", may_have_reached=True)


def unlinked_but_reply_lost(world: FlowWorld) -> None:
    """Capture carries the unlink out, and the reply never reaches the function."""
    unlink_in_capture = world.cloud.unlink

    def unlink_then_lose_the_reply(*, access_token: str, identifier: str) -> None:
        unlink_in_capture(access_token=access_token, identifier=identifier)
        raise reply_lost()

    world.cloud.unlink = unlink_then_lose_the_reply  # type: ignore[method-assign]


def reconciliations(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The outcome of every UnlinksReconciled data point printed so far."""
    return outcomes_printed(capsys.readouterr().out, "UnlinksReconciled")


def test_an_unlink_made_in_capture_whose_reply_was_lost_is_unlinked(
    world: FlowWorld, counted: Callable[[str], int], capsys: pytest.CaptureFixture[str]
) -> None:
    session_id = signed_in(world, FACEBOOK_ID, GOOGLE_ID)
    world.cloud.calls.clear()  # POST /session's own account read is not the unlink's
    unlinked_but_reply_lost(world)

    assert world.unlink.unlink(session_id, identifier=FACEBOOK_ID) is None

    # One read before the unlink (its checks), one after it (the reconciliation).
    assert len(world.cloud.calls_to("read_account")) == 2
    assert world.sleeps == []
    reads = len(world.cloud.calls_to("read_account"))
    assert world.shown_links(session_id) == [GOOGLE_ID]  # the kept view is refreshed, as any unlink's
    assert len(world.cloud.calls_to("read_account")) == reads
    assert world.audit.types()[-1] is AuditEventType.UNLINKED
    assert counted("Unlinks") == 1
    assert reconciliations(capsys) == ["unlinked"]


def test_an_unlink_still_on_the_account_after_its_reply_was_lost_is_an_outage(
    world: FlowWorld, counted: Callable[[str], int], capsys: pytest.CaptureFixture[str]
) -> None:
    session_id = signed_in(world, FACEBOOK_ID, GOOGLE_ID)
    world.cloud.calls.clear()  # POST /session's own account read is not the unlink's
    world.cloud.unlink_error = reply_lost()

    assert world.unlink.unlink(session_id, identifier=FACEBOOK_ID) is ErrorCode.SERVICE_UNAVAILABLE

    # Read again after each wait, in case Capture was still carrying the unlink out.
    assert len(world.cloud.calls_to("read_account")) == 2 + len(RECHECK_WAITS)
    assert world.sleeps == list(RECHECK_WAITS)
    assert world.cloud.read_timeouts[-len(RECHECK_WAITS) :] == [RECHECK_READ_SECONDS] * len(RECHECK_WAITS)
    assert AuditEventType.UNLINKED not in world.audit.types()
    assert counted("Unlinks") == 0
    assert reconciliations(capsys) == ["still_linked"]
    assert world.sessions.locks == {}


def test_an_unlink_capture_carries_out_after_the_reply_was_lost_is_found_on_a_later_read(
    world: FlowWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """Capture still working on the request when the client gave up: the change shows on a later read."""
    session_id = signed_in(world, FACEBOOK_ID, GOOGLE_ID)
    world.cloud.unlink_error = reply_lost()
    read_account = world.cloud.read_account
    reads_after_the_unlink = 0

    def read_while_capture_catches_up(
        *, access_token: str, read_timeout: float | None = None
    ) -> CaptureAccount:
        nonlocal reads_after_the_unlink
        if world.cloud.calls_to("unlink"):
            reads_after_the_unlink += 1
            if reads_after_the_unlink == 2:  # Capture finishes between the first and the second look
                world.registration_account(ACCESS_TOKEN, GOOGLE_ID)
        return read_account(access_token=access_token, read_timeout=read_timeout)

    world.cloud.read_account = read_while_capture_catches_up  # type: ignore[method-assign]

    assert world.unlink.unlink(session_id, identifier=FACEBOOK_ID) is None
    assert world.sleeps == [RECHECK_WAITS[0]]
    assert world.audit.types()[-1] is AuditEventType.UNLINKED
    assert reconciliations(capsys) == ["unlinked"]


@pytest.mark.parametrize("entity_failure", ENTITY_FAILURES, ids=ENTITY_FAILURE_IDS)
def test_a_lost_unlink_reply_with_the_account_unreadable_is_an_outage(
    world: FlowWorld, capsys: pytest.CaptureFixture[str], entity_failure: Exception
) -> None:
    session_id = signed_in(world, FACEBOOK_ID, GOOGLE_ID)
    unlink_in_capture = world.cloud.unlink

    def unlink_then_capture_fails(*, access_token: str, identifier: str) -> None:
        unlink_in_capture(access_token=access_token, identifier=identifier)
        world.cloud.account_error = entity_failure
        raise reply_lost()

    world.cloud.unlink = unlink_then_capture_fails  # type: ignore[method-assign]

    assert world.unlink.unlink(session_id, identifier=FACEBOOK_ID) is ErrorCode.SERVICE_UNAVAILABLE
    assert world.sleeps == []  # nothing to wait for: /entity cannot say
    assert AuditEventType.UNLINKED not in world.audit.types()
    assert reconciliations(capsys) == ["unknown"]


def test_an_unlink_that_never_reached_capture_is_not_looked_for(
    world: FlowWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    session_id = signed_in(world, FACEBOOK_ID, GOOGLE_ID)
    world.cloud.calls.clear()
    world.cloud.unlink_error = ServiceUnavailable("capture", "unlink_account_native: ConnectionError")

    assert world.unlink.unlink(session_id, identifier=FACEBOOK_ID) is ErrorCode.SERVICE_UNAVAILABLE
    assert len(world.cloud.calls_to("read_account")) == 1  # the checks' read only
    assert reconciliations(capsys) == []
