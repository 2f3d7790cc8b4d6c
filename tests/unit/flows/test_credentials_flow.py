"""POST /credentials' flow: Social Login add_or_update_access_token, its refusals mapped."""

from __future__ import annotations

import pytest

from tests.unit.flows.fakes import FACEBOOK_ID, FlowWorld
from token_url.audit import AuditEventType
from token_url.errors import ServiceUnavailable, SocialLoginError
from token_url.flows.credentials import CredentialsRefused
from token_url.models import ErrorCode


def test_credentials_are_stored_and_audited(world: FlowWorld) -> None:
    provider = world.credentials.store(identifier=FACEBOOK_ID, token="EAAB-provider-token")

    assert provider == "Facebook"
    assert world.cloud.stored == {FACEBOOK_ID: "EAAB-provider-token"}
    assert world.audit.events == [
        (AuditEventType.CREDENTIALS_STORED, {"provider": "Facebook", "identifier": FACEBOOK_ID})
    ]


def test_an_identifier_of_no_known_provider_is_stored_with_an_empty_provider(world: FlowWorld) -> None:
    assert world.credentials.store(identifier="https://example.test/me", token="t") == ""
    assert world.audit.events[0][1]["provider"] is None


@pytest.mark.parametrize(
    ("code", "mismatch", "expected"),
    [
        (SocialLoginError.DATA_NOT_FOUND, False, ErrorCode.REJECTED),
        (9, False, ErrorCode.REJECTED),  # third-party credentials revoked
        (SocialLoginError.MISSING_PARAMETER, False, ErrorCode.REJECTED),  # unrecognised: the caller's
        (SocialLoginError.AUTHENTICATION_ERROR, True, ErrorCode.REJECTED),  # the token's URL, not our key
        (SocialLoginError.AUTHENTICATION_ERROR, False, ErrorCode.CONFIGURATION_ERROR),
        (SocialLoginError.APP_NOT_CONFIGURED, False, ErrorCode.CONFIGURATION_ERROR),
    ],
)
def test_refusals_say_whose_fault_it_is(
    world: FlowWorld, code: int, mismatch: bool, expected: ErrorCode
) -> None:
    world.cloud.store_error = SocialLoginError("add_or_update_access_token", code, mismatch)

    with pytest.raises(CredentialsRefused) as refused:
        world.credentials.store(identifier=FACEBOOK_ID, token="EAAB-provider-token")

    assert (refused.value.code, refused.value.upstream_code) == (expected, code)
    assert world.audit.events == []


@pytest.mark.parametrize("code", [SocialLoginError.FACEBOOK_ERROR, SocialLoginError.PROVIDER_ERROR])
def test_a_provider_error_is_an_outage(world: FlowWorld, code: int) -> None:
    world.cloud.store_error = SocialLoginError("add_or_update_access_token", code, False)

    with pytest.raises(ServiceUnavailable) as outage:
        world.credentials.store(identifier=FACEBOOK_ID, token="EAAB-provider-token")

    assert outage.value.service == "social_login"
    assert world.audit.events == []
