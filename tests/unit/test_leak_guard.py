"""The leak guard itself: it finds a secret in each place it looks, and only real secrets."""

from __future__ import annotations

import logging

import pytest

from tests.leak_guard import LeakGuard

SECRET = "EAAB0123456789secret"


@pytest.mark.parametrize("place", ["log_lines", "annotations", "bodies", "items", "printed", "events"])
def test_a_secret_anywhere_is_found(place: str) -> None:
    guard = LeakGuard()
    guard.learn(SECRET)
    getattr(guard, place).append(f"... {SECRET} ...")
    [found] = guard.leaks()
    assert "EAAB…" in found
    assert SECRET not in found  # the report does not leak it either


def test_a_secret_in_a_published_audit_event_is_found() -> None:
    guard = LeakGuard()
    guard.learn(SECRET)
    guard.learn_published(
        [{"Source": "token-url", "DetailType": "SignedIn", "Detail": '{"outcome": "signed_in"}'}]
    )
    assert guard.leaks() == []
    guard.learn_published([{"Source": "token-url", "Detail": f'{{"user_agent": "{SECRET}"}}'}])
    [found] = guard.leaks()
    assert "published event" in found


def test_the_guard_every_test_runs_under_sees_what_is_sent_to_eventbridge(leak_guard: LeakGuard) -> None:
    import boto3  # noqa: PLC0415 - after conftest set the fake credentials
    from moto import mock_aws  # noqa: PLC0415

    leak_guard.learn(SECRET)
    with mock_aws():
        boto3.client("events").put_events(
            Entries=[{"Source": "token-url", "DetailType": "SignedIn", "Detail": f'{{"x": "{SECRET}"}}'}]
        )
    assert len(leak_guard.leaks()) == 1
    leak_guard.events.clear()  # this test leaked on purpose


def test_encrypted_fields_and_short_values_are_not_leaks() -> None:
    guard = LeakGuard()
    guard.learn(SECRET, "t", {"not": "learned"})
    guard.learn_items([{"pk": {"S": "x"}, "credentials": {"S": SECRET}, "capture_token": {"S": SECRET}}])
    assert guard.secrets == {SECRET}
    assert guard.leaks() == []
    guard.learn_items([{"pk": {"S": "x"}, "display_name": {"S": SECRET}}])
    assert len(guard.leaks()) == 1


def test_a_token_in_clear_inside_a_pending_link_is_a_leak() -> None:
    """The pending link's token field is not exempt: only a ciphertext may be stored there."""
    guard = LeakGuard()
    guard.learn(SECRET)
    guard.learn_items([{"pk": {"S": "x"}, "pending_link": {"M": {"token": {"S": "AQICAHh...ciphertext"}}}}])
    assert guard.leaks() == []
    guard.learn_items([{"pk": {"S": "x"}, "pending_link": {"M": {"token": {"S": SECRET}}}}])
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


def test_a_plain_word_sent_as_a_token_is_not_a_secret_but_a_token_like_value_is() -> None:
    """A fuzzer's token "function" is in every log line's `function_name`: chance, not a leak."""
    guard = LeakGuard()
    form = {"body": "token=function", "isBase64Encoded": False}
    guard.learn_request(form)
    guard.learn_request({"body": '{"access_token": "kMZ3b9-t0ken"}', "isBase64Encoded": False})
    guard.learn_request({"body": '{"token": "averylongplaintokenwithoutdigits"}', "isBase64Encoded": False})
    guard.log_lines.append(
        '{"function_name": "x", "a": "kMZ3b9-t0ken", "b": "averylongplaintokenwithoutdigits"}'
    )
    leaks = guard.leaks()
    assert len(leaks) == 2
    assert not any("func" in leak.split("(", 1)[1][:5] for leak in leaks)
