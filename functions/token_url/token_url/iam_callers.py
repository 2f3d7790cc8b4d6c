"""Which IAM principals may call the IAM-only routes: CREDENTIALS_CALLERS, checked against the caller ARN.

An entry is an IAM user ARN (`arn:aws:iam::ACCOUNT:user/NAME`) or an IAM role ARN
(`arn:aws:iam::ACCOUNT:role/PATH/NAME`). API Gateway's IAM authorizer names a caller using a role by
its session, `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`, without the role's path; role names are
unique within an account, so such a caller matches the listed role of that partition, account and
name, whatever its session. Sessions are never listed: whoever may assume a role chooses the session
name, so listing one would restrict nothing.
"""

from __future__ import annotations

import re

_NAME = r"[\w+=,.@-]{1,128}"
_USER_OR_ROLE = re.compile(
    rf"arn:(?P<partition>aws[a-z-]*):iam::(?P<account>[0-9]{{12}}):(?P<kind>user|role)/(?:[\x21-\x7e]*/)?(?P<name>{_NAME})"
)
_ASSUMED_ROLE = re.compile(
    rf"arn:(?P<partition>aws[a-z-]*):sts::(?P<account>[0-9]{{12}}):assumed-role/(?P<name>{_NAME})/[\w+=,.@-]+"
)


def principal(entry: str) -> str:
    """One CREDENTIALS_CALLERS entry, checked; ValueError says what is wrong with it."""
    if _ASSUMED_ROLE.fullmatch(entry):
        raise ValueError(f"list the role's IAM ARN (arn:aws:iam::ACCOUNT:role/NAME), not a session: {entry}")
    if "*" in entry or not _USER_OR_ROLE.fullmatch(entry):
        raise ValueError(f"entries must be IAM user or role ARNs, got {entry!r}")
    return entry


def parse(value: str) -> tuple[str, ...]:
    """The comma-separated list; empty means no list (any caller the IAM authorizer let through)."""
    entries = [entry.strip() for entry in value.split(",")]
    if entries == [""]:
        return ()
    return tuple(principal(entry) for entry in entries)


def _identity(arn: str) -> tuple[str, str, str, str] | None:
    """(partition, account, kind, name) of a listed principal or of an authorizer's caller ARN."""
    if match := _USER_OR_ROLE.fullmatch(arn):
        return match["partition"], match["account"], match["kind"], match["name"]
    if match := _ASSUMED_ROLE.fullmatch(arn):
        return match["partition"], match["account"], "role", match["name"]
    return None


def allowed(caller_arn: str, listed: tuple[str, ...]) -> bool:
    """Whether the IAM authorizer's `userArn` is one of the listed principals (a role: any session)."""
    caller = _identity(caller_arn)
    return caller is not None and any(_identity(entry) == caller for entry in listed)
