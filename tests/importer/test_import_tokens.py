"""`token-url import-tokens` against the emulator: each row once, none lost, no secret shown."""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from emulator import Fault, IdentityCloudEmulator
from importer import cli
from importer.journal import Entry, Journal, JournalError, JournalMismatch, journal_path
from importer.rows import Rejection, Row, check, read
from importer.run import End, Importer, Outcome, Policy, RateLimiter, RowResult
from tests.function_world import API_KEY

TOKEN_URL_COMMAND = pathlib.Path(sys.executable).parent / "token-url"
ENDPOINT = "add_or_update_access_token"


def identifier(number: int) -> str:
    return f"http://www.facebook.com/profile.php?id={100000000000000 + number}"


def token(number: int) -> str:
    return f"EAAB{number:08d}ImportedUserAccessToken"


def write_csv(path: pathlib.Path, count: int, extra: list[list[str]] | None = None) -> pathlib.Path:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["identifier", "token"])
        writer.writerows([identifier(number), token(number)] for number in range(count))
        writer.writerows(extra or [])
    return path


@pytest.fixture
def environment(emulator_server: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"SOCIAL_LOGIN_BASE_URL": emulator_server.url, "SOCIAL_LOGIN_API_KEY": API_KEY}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture(autouse=True)
def _restore_function_logger() -> Iterator[None]:
    # The command quiets the function's logger and points it at stderr; other tests read it as it was.
    function_logger = logging.getLogger("token-url")
    level = function_logger.level
    streams = [
        (handler, handler.stream)
        for handler in function_logger.handlers
        if isinstance(handler, logging.StreamHandler)
    ]
    yield
    function_logger.setLevel(level)
    for handler, stream in streams:
        handler.setStream(stream)


class Run:
    def __init__(self, status: int, out: str, err: str, report: dict[str, Any]) -> None:
        self.status = status
        self.out = out
        self.err = err
        self.report = report


def run(file: pathlib.Path, *options: str, environ: dict[str, str] | None = None) -> Run:
    """The command in this process (stdout and stderr captured), as `token-url import-tokens ... FILE`."""
    args = cli.parser().parse_args(["import-tokens", *options, str(file)])
    out, err = io.StringIO(), io.StringIO()
    status = cli.import_tokens(args, dict(environ if environ is not None else os.environ), out, err)
    report_path = args.report or file.with_name(file.name + ".report.json")
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return Run(status, out.getvalue(), err.getvalue(), report)


def start_command(file: pathlib.Path, environment: dict[str, str], *options: str) -> subprocess.Popen[str]:
    """The installed console script, in its own process, so that it can get a real SIGINT."""
    return subprocess.Popen(  # noqa: S603 - the installed console script
        [str(TOKEN_URL_COMMAND), "import-tokens", *options, str(file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **environment},
    )


def calls_per_identifier(emulator: IdentityCloudEmulator) -> Counter[str]:
    return Counter(call.form.get("identifier", "") for call in emulator.calls_to(ENDPOINT))


def assert_no_secret_in(texts: list[str], tokens: list[str]) -> None:
    for text in texts:
        assert API_KEY not in text
        leaked = [value for value in tokens if value in text]
        assert leaked == []


# ---------------------------------------------------------------- the command


def test_help_reads_like_a_manual() -> None:
    shown = subprocess.run(  # noqa: S603
        [str(TOKEN_URL_COMMAND), "import-tokens", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    for section in (
        "usage: token-url import-tokens",
        "DESCRIPTION",
        "RESUMING",
        "OUTPUT",
        "ENVIRONMENT",
        "EXIT STATUS",
        "EXAMPLES",
    ):
        assert section in shown
    for option in ("--dry-run", "--rate", "--concurrency", "--retries", "--report", "--restart"):
        assert option in shown


def test_ten_thousand_rows_import_fully(
    tmp_path: pathlib.Path, emulator: IdentityCloudEmulator, environment: dict[str, str], record_property: Any
) -> None:
    file = write_csv(tmp_path / "tokens.csv", 10_000)
    result = run(file, "--rate", "0", "--concurrency", "8")
    assert result.status == cli.EXIT_OK, result.out
    assert (result.report["sent"], result.report["stored"], result.report["failed"]) == (10_000, 10_000, 0)
    assert emulator.stored_access_tokens == {identifier(number): token(number) for number in range(10_000)}
    assert set(calls_per_identifier(emulator).values()) == {1}
    record_property("rows_per_second", round(10_000 / result.report["elapsed_seconds"]))
    journal = journal_path(file).read_text().splitlines()
    assert len(journal) == 1 + 10_000
    assert_no_secret_in(
        [result.out, result.err, json.dumps(result.report), "\n".join(journal)],
        [token(n) for n in range(0, 10_000, 97)],
    )


def test_the_configured_rate_is_kept(
    tmp_path: pathlib.Path, emulator: IdentityCloudEmulator, environment: dict[str, str]
) -> None:
    file = write_csv(tmp_path / "tokens.csv", 40)
    started = time.monotonic()
    result = run(file, "--rate", "20", "--concurrency", "4")
    elapsed = time.monotonic() - started
    assert result.status == cli.EXIT_OK
    # 40 requests 1/20 s apart take at least 39/20 s, whatever the concurrency.
    assert elapsed >= 39 / 20
    starts = sorted(call.at for call in emulator.calls_to(ENDPOINT))
    assert starts[-1] - starts[0] >= 39 / 20 * 0.95


def test_bad_rows_are_reported_and_the_rest_go_through(
    tmp_path: pathlib.Path, emulator: IdentityCloudEmulator, environment: dict[str, str]
) -> None:
    good = [{"identifier": identifier(n), "token": token(n)} for n in range(3)]
    bad_lines = [
        json.dumps({"identifier": "https://www.google.com/profiles/1", "token": "ya29.a0AfH6SMB"}),
        json.dumps({"identifier": identifier(7)}),
        json.dumps({"identifier": identifier(8), "token": "short"}),
        json.dumps({"identifier": identifier(9), "token": "two words here"}),
        json.dumps({"token": "EAAB0123456789"}),
        json.dumps({"identifier": identifier(0), "token": "EAABanotherTokenForRowZero"}),
        "{not json",
        json.dumps(["identifier", "token"]),
    ]
    file = tmp_path / "tokens.jsonl"
    file.write_text("\n".join([json.dumps(row) for row in good] + bad_lines) + "\n", encoding="utf-8")
    result = run(file, "--rate", "0")
    assert result.status == cli.EXIT_OK, result.out  # every valid row is stored
    assert result.report["rejected"] == {
        "duplicate_identifier": 1,
        "identifier_missing": 1,
        "identifier_unsupported": 1,
        "malformed_row": 2,
        "token_implausible": 2,
        "token_missing": 1,
    }
    assert [item["row"] for item in result.report["not_stored"]] == list(range(4, 12))
    assert emulator.stored_access_tokens == {identifier(n): token(n) for n in range(3)}
    assert "rejected, identifier_unsupported: 1 (not the profile URL of a supported provider" in result.out
    assert_no_secret_in(
        [result.out, json.dumps(result.report)], ["ya29.a0AfH6SMB", "EAABanotherTokenForRowZero"]
    )


def test_dry_run_checks_and_sends_nothing(
    tmp_path: pathlib.Path, emulator: IdentityCloudEmulator, environment: dict[str, str]
) -> None:
    file = write_csv(tmp_path / "tokens.csv", 5, extra=[["https://example.com/u/1", "EAAB0123456789"]])
    result = run(file, "--dry-run")
    assert result.status == cli.EXIT_OK
    assert (result.report["valid"], result.report["rejected"]) == (5, {"identifier_unsupported": 1})
    assert emulator.calls_to(ENDPOINT) == []
    assert not journal_path(file).exists()


def test_a_refused_row_is_not_retried_nor_sent_again(
    tmp_path: pathlib.Path, emulator: IdentityCloudEmulator, environment: dict[str, str]
) -> None:
    file = write_csv(tmp_path / "tokens.csv", 3)
    emulator.set_fault(ENDPOINT, Fault.social_login_error(8))  # missing third-party credentials
    first = run(file, "--rate", "0", "--concurrency", "1")
    assert first.status == cli.EXIT_NOT_ALL_STORED
    assert first.report["rejected"] == {"social_login_code_8": 1}
    assert len(emulator.calls_to(ENDPOINT)) == 3
    second = run(file, "--rate", "0")
    assert second.status == cli.EXIT_NOT_ALL_STORED
    assert second.report["sent"] == 0
    assert second.report["rejected"] == {"social_login_code_8": 1}
    assert len(emulator.calls_to(ENDPOINT)) == 3


def test_an_outage_mid_run_is_retried_with_backoff_and_recovers(
    tmp_path: pathlib.Path, emulator: IdentityCloudEmulator, environment: dict[str, str]
) -> None:
    file = write_csv(tmp_path / "tokens.csv", 30)
    faults = (
        Fault.service_unavailable(),
        Fault.http_500(),
        Fault.not_json(),
        Fault.reset(),
        Fault.social_login_error(6),  # the provider behind Social Login failed
    )
    for fault in faults:
        emulator.add_fault(ENDPOINT, fault)
    result = run(file, "--rate", "0", "--concurrency", "4", "--verbose")
    assert result.status == cli.EXIT_OK, result.out
    assert result.report["stored"] == 30
    assert len(emulator.calls_to(ENDPOINT)) == 30 + len(faults)
    assert emulator.stored_access_tokens == {identifier(n): token(n) for n in range(30)}
    # Each retry waited its backoff (0.5 s and up) after the failed call of the same row.
    times: dict[str, list[float]] = {}
    for call in emulator.calls_to(ENDPOINT):
        times.setdefault(call.form["identifier"], []).append(call.at)
    gaps = [later - earlier for at in times.values() for earlier, later in itertools.pairwise(at)]
    assert len(gaps) == len(faults)
    assert min(gaps) >= 0.45
    # The outages were logged (--verbose), without a token or the apiKey.
    assert "Identity Cloud unavailable" in result.err
    assert_no_secret_in([result.out, result.err, json.dumps(result.report)], [token(n) for n in range(30)])


def test_social_login_down_stops_the_run_and_the_next_run_continues(
    tmp_path: pathlib.Path, emulator: IdentityCloudEmulator, environment: dict[str, str]
) -> None:
    file = write_csv(tmp_path / "tokens.csv", 50)
    emulator.set_fault(ENDPOINT, Fault.service_unavailable(times=None))
    down = run(file, "--rate", "0", "--concurrency", "2", "--retries", "1")
    assert down.status == cli.EXIT_UPSTREAM_DOWN
    assert "Social Login looks down" in down.out
    assert "run the same command again to continue" in down.out
    # It stopped after a handful of rows, not after trying all 50 twice.
    assert len(emulator.calls_to(ENDPOINT)) < 20
    emulator.clear_faults()
    again = run(file, "--rate", "0", "--concurrency", "4")
    assert again.status == cli.EXIT_OK, again.out
    assert emulator.stored_access_tokens == {identifier(n): token(n) for n in range(50)}


def test_a_refused_api_key_stops_at_once(
    tmp_path: pathlib.Path, emulator: IdentityCloudEmulator, environment: dict[str, str]
) -> None:
    file = write_csv(tmp_path / "tokens.csv", 20)
    refused_key = "b" * 40
    result = run(
        file,
        "--rate",
        "10",
        "--concurrency",
        "4",
        "--verbose",
        environ={**environment, "SOCIAL_LOGIN_API_KEY": refused_key},
    )
    assert result.status == cli.EXIT_UPSTREAM_DOWN
    assert "Check SOCIAL_LOGIN_BASE_URL and the apiKey" in result.out
    # The workers waiting for their turn send nothing once the key is refused.
    assert len(emulator.calls_to(ENDPOINT)) == 1
    assert '"upstream_code":3' in result.err.replace(" ", "")  # --verbose shows the function's log lines
    assert refused_key not in result.out + result.err
    assert result.report["stored"] == 0


def test_an_interrupted_run_resumes_without_duplicates(
    tmp_path: pathlib.Path, emulator: IdentityCloudEmulator, environment: dict[str, str]
) -> None:
    file = write_csv(tmp_path / "tokens.csv", 1_500)
    process = start_command(file, environment, "--rate", "300", "--concurrency", "4")
    journal = journal_path(file)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        not journal.exists()
        or len(journal.read_text().splitlines()) < 1 + 200  # the header, then 200 answers
    ):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)  # Ctrl-C
    out, err = process.communicate(timeout=30)
    assert process.returncode == cli.EXIT_INTERRUPTED, out + err
    assert "Interrupted. Run the same command again" in out
    answered = len(journal.read_text().splitlines()) - 1
    assert 200 <= answered < 1_500
    # Every request that was sent got its answer recorded: the journal and Social Login agree.
    assert len(emulator.calls_to(ENDPOINT)) == answered

    resumed = run(file, "--rate", "0", "--concurrency", "4")
    assert resumed.status == cli.EXIT_OK, resumed.out
    assert resumed.report["stored_by_earlier_runs"] == answered
    assert resumed.report["sent"] == 1_500 - answered
    assert set(calls_per_identifier(emulator).values()) == {1}
    assert emulator.stored_access_tokens == {identifier(n): token(n) for n in range(1_500)}


def test_a_journal_of_other_contents_is_refused(
    tmp_path: pathlib.Path, emulator: IdentityCloudEmulator, environment: dict[str, str]
) -> None:
    file = write_csv(tmp_path / "tokens.csv", 3)
    assert run(file, "--rate", "0").status == cli.EXIT_OK
    write_csv(file, 4)
    with pytest.raises(JournalMismatch, match="--restart"):
        run(file, "--rate", "0")
    assert run(file, "--rate", "0", "--restart").status == cli.EXIT_OK
    assert len(emulator.calls_to(ENDPOINT)) == 3 + 4


def test_the_api_key_from_secrets_manager(
    tmp_path: pathlib.Path, emulator: IdentityCloudEmulator, emulator_server: Any
) -> None:
    file = write_csv(tmp_path / "tokens.csv", 2)
    with mock_aws():
        boto3.client("secretsmanager").create_secret(
            Name="imports/api-key", SecretString=json.dumps({"apiKey": API_KEY})
        )
        result = run(
            file,
            "--rate",
            "0",
            environ={
                "SOCIAL_LOGIN_BASE_URL": emulator_server.url,
                "SOCIAL_LOGIN_API_KEY_SECRET": "imports/api-key",
            },
        )
    assert result.status == cli.EXIT_OK, result.out
    assert len(emulator.stored_access_tokens) == 2


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "set SOCIAL_LOGIN_BASE_URL"),
        ({"SOCIAL_LOGIN_BASE_URL": "http://my-app.rpxnow.com"}, "must use https"),
        (
            {"SOCIAL_LOGIN_BASE_URL": "https://my-app.rpxnow.com", "SOCIAL_LOGIN_API_KEY": "not a key!"},
            "not an apiKey",
        ),
    ],
)
def test_bad_settings_are_named_and_nothing_is_sent(
    tmp_path: pathlib.Path, environ: dict[str, str], message: str
) -> None:
    file = write_csv(tmp_path / "tokens.csv", 1)
    with pytest.raises(cli.UsageError, match=message):
        run(file, environ=environ)
    assert not journal_path(file).exists()


def test_the_console_script_exit_status_for_a_missing_file(tmp_path: pathlib.Path) -> None:
    done = subprocess.run(  # noqa: S603
        [str(TOKEN_URL_COMMAND), "import-tokens", "--dry-run", str(tmp_path / "missing.csv")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == cli.EXIT_USAGE
    assert "cannot read" in done.stderr


# ---------------------------------------------------------------- rows


def test_csv_without_its_header_is_refused(tmp_path: pathlib.Path) -> None:
    file = tmp_path / "tokens.csv"
    file.write_text(f"{identifier(1)},{token(1)}\n", encoding="utf-8")
    with pytest.raises(cli.InputError, match="header identifier,token"):
        read(file)


def test_row_checks() -> None:
    assert check(1, {"identifier": identifier(1), "token": token(1)}) == Row(1, identifier(1), token(1))
    assert check(2, {"identifier": " " + identifier(1) + " ", "token": token(1)}) == Row(
        2, identifier(1), token(1)
    )
    assert (
        check(3, {"identifier": "https://www.soundcloud.com/u/1", "token": "1-2345-abcdef"}).__class__ is Row
    )
    assert check(4, {"identifier": identifier(1), "token": 12345678}) == Rejection(4, None, "malformed_row")
    assert check(5, None) == Rejection(5, None, "malformed_row")
    # A value that is not a URL is not repeated in the report: it may be a token in the wrong column.
    assert check(6, {"identifier": "javascript:alert(1)", "token": token(1)}) == Rejection(
        6, None, "identifier_unsupported"
    )
    assert check(7, {"identifier": "EAABsecretInTheWrongColumn", "token": token(1)}) == Rejection(
        7, None, "identifier_unsupported"
    )
    assert check(8, {"identifier": "https://www.google.com/p/1", "token": token(1)}) == Rejection(
        8, "https://www.google.com/p/1", "identifier_unsupported"
    )


def test_a_second_ctrl_c_quits_at_once(
    tmp_path: pathlib.Path, emulator: IdentityCloudEmulator, environment: dict[str, str]
) -> None:
    file = write_csv(tmp_path / "tokens.csv", 20)
    emulator.set_fault(ENDPOINT, Fault.delay(8, times=2))  # the first two requests hang
    process = start_command(file, environment, "--rate", "0", "--concurrency", "2")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(emulator.calls_to(ENDPOINT)) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    pressed = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert time.monotonic() - pressed < 4, "the second Ctrl-C waited for the hanging requests"
    assert process.returncode == cli.EXIT_INTERRUPTED, out + err
    assert "quit; the rows answered so far are in the journal" in err
    emulator.clear_faults()
    resumed = run(file, "--rate", "0")
    assert resumed.status == cli.EXIT_OK
    assert emulator.stored_access_tokens == {identifier(n): token(n) for n in range(20)}
    # Only the two requests that were in flight are sent again.
    assert sum(calls_per_identifier(emulator).values()) == 20 + 2


# ---------------------------------------------------------------- journal


def test_a_line_cut_by_a_crash_is_dropped_and_the_next_entry_starts_clean(tmp_path: pathlib.Path) -> None:
    file = write_csv(tmp_path / "tokens.csv", 3)
    journal = Journal.open(file)
    journal.record(Entry(1, identifier(0), "stored"))
    journal.close()
    with journal_path(file).open("a", encoding="utf-8") as stream:
        stream.write('{"row": 2, "identifier": "http://www.faceb')  # the process died mid-line
    reopened = Journal.open(file)
    assert set(reopened.entries) == {1}
    reopened.record(Entry(3, identifier(2), "stored"))
    reopened.close()
    assert set(Journal.open(file).entries) == {1, 3}


def test_an_empty_journal_is_a_new_one_and_an_edited_one_is_refused(tmp_path: pathlib.Path) -> None:
    file = write_csv(tmp_path / "tokens.csv", 1)
    journal_path(file).write_text("", encoding="utf-8")
    Journal.open(file).close()
    lines = journal_path(file).read_text().splitlines()
    assert len(lines) == 1
    journal_path(file).write_text(lines[0] + "\nnot json\n", encoding="utf-8")
    with pytest.raises(JournalError, match="line 2"):
        Journal.open(file)


def test_two_runs_on_one_file_are_refused(tmp_path: pathlib.Path) -> None:
    file = write_csv(tmp_path / "tokens.csv", 1)
    first = Journal.open(file)
    try:
        with pytest.raises(JournalError, match="another import of this file is running"):
            Journal.open(file)
    finally:
        first.close()
    Journal.open(file).close()


# ---------------------------------------------------------------- the sending engine, without HTTP


def rows(count: int) -> list[Row]:
    return [Row(n + 1, identifier(n), token(n)) for n in range(count)]


def test_one_rows_surprise_does_not_lose_the_other_answers() -> None:
    from token_url.errors import SocialLoginError  # noqa: PLC0415 - the function's module

    def send(row_identifier: str, row_token: str) -> None:
        if row_identifier == identifier(1):
            raise RuntimeError(f"boom {row_token}")
        if row_identifier == identifier(2):
            raise SocialLoginError("add_or_update_access_token", 4, False)  # provider error: retried

    results: list[RowResult] = []
    engine = Importer(send=send, policy=Policy(rate=0, concurrency=2, max_attempts=2), sleep=lambda _: None)
    end = engine.run(rows(4), results.append)
    assert end.end is End.COMPLETED
    outcomes = {result.row.number: (result.outcome, result.reason, result.attempts) for result in results}
    assert outcomes == {
        1: (Outcome.STORED, None, 1),
        2: (Outcome.FAILED, "unexpected RuntimeError", 1),
        3: (Outcome.FAILED, "provider error 4", 2),
        4: (Outcome.STORED, None, 1),
    }


def test_code_zero_stops_the_run() -> None:
    from token_url.errors import SocialLoginError  # noqa: PLC0415

    sent: list[str] = []

    def send(row_identifier: str, row_token: str) -> None:
        sent.append(row_identifier)
        raise SocialLoginError("add_or_update_access_token", 0, False)

    end = Importer(send=send, policy=Policy(rate=0, concurrency=1)).run(rows(5), lambda result: None)
    assert (end.end, sent) == (End.CONFIGURATION, [identifier(0)])


def test_the_rate_limiter_spaces_turns() -> None:
    now = [100.0]
    limiter = RateLimiter(4, clock=lambda: now[0])
    waited: list[float] = []

    class Recording(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waited.append(round(timeout or 0, 6))
            return False

    stop = Recording()
    assert all(limiter.wait(stop) for _ in range(3))
    assert waited == [0.25, 0.5]  # the first goes at once, then 1/4 s apart
    now[0] = 200.0  # after a long pause no burst is owed: the next goes at once
    assert limiter.wait(stop)
    assert waited == [0.25, 0.5]
