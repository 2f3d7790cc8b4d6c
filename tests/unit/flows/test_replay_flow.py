"""The token POST's replay protection: one run per submission, duplicates wait, failures to record it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.unit.flows.fakes import FlowWorld
from token_url.audit import AuditEventType
from token_url.deadline import DUPLICATE_WAIT_MARGIN_MS
from token_url.flows.replay import DUPLICATE_WAITS, RECORD_KEY_PREFIX
from token_url.flows.token_post import TokenOutcome
from token_url.models import AuthInfo, ErrorCode, Intent, Result


def duplicate_arriving_during_auth_info(
    world: FlowWorld, token: str, nonce: str, browser: str
) -> list[TokenOutcome]:
    """The same submission again while the first is upstream; the list gets the duplicate's outcome."""
    duplicates: list[TokenOutcome] = []
    read_profile = world.cloud.auth_info

    def with_a_duplicate(*, token: str, token_url: str) -> AuthInfo:
        if not duplicates:
            duplicates.append(world.submit(token, nonce, browser))
        return read_profile(token=token, token_url=token_url)

    world.cloud.auth_info = with_a_duplicate  # type: ignore[method-assign]
    return duplicates


def test_a_duplicate_waits_until_the_deadline_then_asks_to_try_again(world: FlowWorld) -> None:
    nonce, browser = world.start_token_url(Intent.SIGN_IN)
    token = world.issue_token()
    duplicates = duplicate_arriving_during_auth_info(world, token, nonce, browser)

    first = world.submit(token, nonce, browser)

    assert first.result is Result.SIGNED_IN
    assert [(duplicate.result, duplicate.error) for duplicate in duplicates] == [
        (None, ErrorCode.REQUEST_IN_PROGRESS)
    ]
    assert len(world.cloud.calls_to("auth_info")) == 1
    # It waited as long as the deadline allowed, and no longer.
    remaining_ms = 15_000 - sum(world.sleeps) * 1000
    assert DUPLICATE_WAIT_MARGIN_MS < remaining_ms <= DUPLICATE_WAIT_MARGIN_MS + 500
    assert world.audit.types() == [AuditEventType.SIGNED_IN]


@pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left")
def test_outside_lambda_a_duplicate_waits_the_fixed_schedule() -> None:
    world = FlowWorld(remaining_ms=None)
    nonce, browser = world.start_token_url(Intent.SIGN_IN)
    token = world.issue_token()
    duplicates = duplicate_arriving_during_auth_info(world, token, nonce, browser)

    world.submit(token, nonce, browser)

    assert duplicates[0].error is ErrorCode.REQUEST_IN_PROGRESS
    assert world.sleeps == list(DUPLICATE_WAITS)


def test_a_result_that_cannot_be_recorded_is_given_and_its_one_time_value_retired(
    world: FlowWorld, counted: Callable[[str], int]
) -> None:
    nonce, browser = world.start_token_url(Intent.SIGN_IN)
    world.idempotency.failing.add("update")

    outcome = world.submit(world.issue_token(), nonce, browser)

    assert outcome.result is Result.SIGNED_IN
    assert outcome.session_id is not None
    [record] = world.nonces.records.values()
    assert record.consumed_by is not None
    assert record.consumed_by.startswith("retired:")
    assert counted("UpstreamErrors") == 1


def test_a_retired_value_cannot_be_spent_again_by_the_same_submission(world: FlowWorld) -> None:
    nonce, browser = world.start_token_url(Intent.SIGN_IN)
    token = world.issue_token()
    world.idempotency.failing.add("update")
    world.submit(token, nonce, browser)
    world.idempotency.failing.clear()
    world.idempotency.records.clear()  # the in-progress record has expired

    again = world.submit(token, nonce, browser)

    assert again.error is ErrorCode.TOKEN_URL_INVALID
    assert len(world.cloud.calls_to("auth_info")) == 1


def test_an_idempotency_store_down_before_the_flow_runs_is_an_outage(
    world: FlowWorld, counted: Callable[[str], int]
) -> None:
    nonce, browser = world.start_token_url(Intent.SIGN_IN)
    world.idempotency.failing.add("put")

    outcome = world.submit(world.issue_token(), nonce, browser)

    assert (outcome.result, outcome.error) == (None, ErrorCode.SERVICE_UNAVAILABLE)
    assert world.cloud.calls == []
    assert [record.consumed_by for record in world.nonces.records.values()] == [None]
    assert counted("UpstreamErrors") == 1


def test_an_outage_in_the_flow_leaves_no_record_behind(world: FlowWorld) -> None:
    nonce, browser = world.start_token_url(Intent.SIGN_IN)
    world.sessions.failing.add("put")

    outcome = world.submit(world.issue_token(), nonce, browser)

    assert outcome.error is ErrorCode.SERVICE_UNAVAILABLE
    assert world.idempotency.records == {}


def test_records_are_keyed_by_what_they_protect_not_by_code_names(world: FlowWorld) -> None:
    """A rename of the flow's module or method must not make the records of the replay window unfindable."""
    nonce, browser = world.start_token_url(Intent.SIGN_IN)

    world.submit(world.issue_token(), nonce, browser)

    assert world.idempotency.records
    assert all(key.startswith(f"{RECORD_KEY_PREFIX}#") for key in world.idempotency.records)
