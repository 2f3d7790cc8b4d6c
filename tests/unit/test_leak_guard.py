"""The leak guard itself: it finds a secret in each place it looks, and only real secrets."""

from __future__ import annotations

import logging

import pytest

from tests.leak_guard import LeakGuard

SECRET = "EAAB0123456789secret"


@pytest.mark.parametrize("place", ["log_lines", "annotations", "bodies", "items", "printed"])
def test_a_secret_anywhere_is_found(place: str) -> None:
    guard = LeakGuard()
    guard.learn(SECRET)
    getattr(guard, place).append(f"... {SECRET} ...")
    [found] = guard.leaks()
    assert "EAAB…" in found
    assert SECRET not in found  # the report does not leak it either


def test_encrypted_fields_and_short_values_are_not_leaks() -> None:
    guard = LeakGuard()
    guard.learn(SECRET, "t", {"not": "learned"})
    guard.learn_items([{"pk": {"S": "x"}, "credentials": {"S": SECRET}, "capture_token": {"S": SECRET}}])
    assert guard.secrets == {SECRET}
    assert guard.leaks() == []
    guard.learn_items([{"pk": {"S": "x"}, "display_name": {"S": SECRET}}])
    assert len(guard.leaks()) == 1


def test_only_the_secret_parts_of_provider_credentials_are_secrets() -> None:
    guard = LeakGuard()
    guard.learn_credentials(
        {
            "accessToken": "ya29.a0AfH6SMB",
            "oauthTokenSecret": "s3cr3t-value",
            "uid": "100000000000001",
            "type": "Facebook",
        }
    )
    assert guard.secrets == {"ya29.a0AfH6SMB", "s3cr3t-value"}


def test_the_guard_every_test_runs_under_sees_the_function_log(
    leak_guard: LeakGuard, app_module: object
) -> None:
    leak_guard.learn(SECRET)
    logging.getLogger("token-url").warning("careless %s", SECRET)
    assert len(leak_guard.leaks()) == 1
    leak_guard.log_lines.clear()  # this test leaked on purpose
