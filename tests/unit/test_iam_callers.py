"""CREDENTIALS_CALLERS matching: users by ARN, roles by their IAM ARN whatever the session."""

from __future__ import annotations

import pytest

from token_url.iam_callers import allowed

ROLE = "arn:aws:iam::123456789012:role/service/importer"
USER = "arn:aws:iam::123456789012:user/importer-user"
LISTED = (ROLE, USER)


@pytest.mark.parametrize(
    "caller",
    [
        "arn:aws:sts::123456789012:assumed-role/importer/any-session",
        "arn:aws:sts::123456789012:assumed-role/importer/i-0abc@example.com",
        USER,
        "arn:aws:iam::123456789012:user/ops/importer-user",  # a user's path does not change who it is
    ],
)
def test_a_listed_user_or_any_session_of_a_listed_role_is_allowed(caller: str) -> None:
    assert allowed(caller, LISTED)


@pytest.mark.parametrize(
    "caller",
    [
        "arn:aws:sts::123456789012:assumed-role/importer-admin/session",  # another role
        "arn:aws:sts::210987654321:assumed-role/importer/session",  # same name, another account
        "arn:aws-cn:sts::123456789012:assumed-role/importer/session",  # another partition
        "arn:aws:iam::123456789012:user/importer",  # a user named like the role
        "arn:aws:iam::123456789012:role/importer-user",  # a role named like the user
        "arn:aws:iam::123456789012:root",
        "arn:aws:sts::123456789012:federated-user/importer",
        "",
    ],
)
def test_any_other_caller_is_refused(caller: str) -> None:
    assert not allowed(caller, LISTED)


def test_an_empty_list_allows_no_one() -> None:
    # The handler skips the check when the list is empty; the matcher itself never lets anyone through.
    assert not allowed(USER, ())
