"""The `token-url` command: `token-url import-tokens FILE` and its options, output and exit status."""

from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TextIO

from tqdm import tqdm

from importer.journal import Entry, Journal, JournalError, journal_path
from importer.rows import REASONS, InputError, Rejection, Row, read
from importer.run import End, Importer, Outcome, Policy, RowResult, RunEnd

DEFAULT_SECRET = "token-url/social-login-api-key"  # noqa: S105 - the secret's name, as the template's guide creates it
DEFAULT_RATE = 5.0
DEFAULT_CONCURRENCY = 2
DEFAULT_POLICY = Policy(rate=DEFAULT_RATE, concurrency=DEFAULT_CONCURRENCY)
DEFAULT_RETRIES = DEFAULT_POLICY.max_attempts - 1
DOWN_AFTER = DEFAULT_POLICY.down_after

EXIT_OK = 0
EXIT_NOT_ALL_STORED = 1
EXIT_USAGE = 2
EXIT_UPSTREAM_DOWN = 3
EXIT_ERROR = 4
EXIT_INTERRUPTED = 130

MANUAL = f"""\
DESCRIPTION
  Stores OAuth tokens a site already holds for its users in Social Login, one
  add_or_update_access_token call per row, so that get_user_data works for users
  who never signed in through Social Login. Supported providers: Facebook, RenRen,
  Soundcloud, Foursquare.

  FILE is CSV with the header `identifier,token`, or JSON Lines with one object
  {{"identifier": "...", "token": "..."}} per line (.jsonl, .ndjson, or a first
  character `{{`). The identifier is the user's profile URL at the provider, e.g.
  http://www.facebook.com/profile.php?id=100000000000001.

  Every row is checked before anything is sent; a row that fails a check is
  reported with its reason and not sent. Outages (Social Login code -1, HTTP 5xx,
  a reply that is not JSON, a timeout, a reset connection) are retried with
  exponential backoff; a row Social Login refuses is never retried. After
  {DOWN_AFTER} rows in a row that failed after all their retries, the run stops:
  Social Login is down. A refused apiKey stops the run at once.

RESUMING
  FILE.journal, beside FILE, records every row Social Login answered (stored or
  refused). Run the same command again after any stop (Ctrl-C, a crash, a lost
  network, Social Login down) and it continues: no answered row is sent again,
  and no row is skipped. Ctrl-C lets the requests in flight finish and records
  them; a second Ctrl-C quits at once. A row in flight when the process is killed
  (or quit by a second Ctrl-C) is sent again by the next run, which is harmless:
  the call is an update. Two runs on the same file at once are refused.
  If FILE changes, its journal no longer applies: --restart starts over.

OUTPUT
  A progress bar with rate and ETA on a terminal; a progress line every few
  seconds otherwise (both on stderr). At the end, a summary on stdout (sent,
  stored, rejected by reason, failed), and the same as JSON in FILE.report.json
  (or --report), with the row number and identifier of every row not stored.
  Tokens and the apiKey are never printed, logged, or written to the journal or
  the report.

ENVIRONMENT
  SOCIAL_LOGIN_BASE_URL        the Social Login application, https://<app>.rpxnow.com (required)
  SOCIAL_LOGIN_API_KEY         its apiKey; without it, the apiKey is read from Secrets Manager:
  SOCIAL_LOGIN_API_KEY_SECRET  the secret's name or ARN (default {DEFAULT_SECRET}), with the
                               usual AWS settings (AWS_PROFILE, AWS_REGION, ...)

EXIT STATUS
  {EXIT_OK}    every valid row is stored (rows that failed the checks do not count)
  {EXIT_NOT_ALL_STORED}    some valid rows were refused by Social Login or failed
  {EXIT_USAGE}    bad arguments, settings, input file or journal; nothing was sent
  {EXIT_UPSTREAM_DOWN}    stopped: Social Login is down, or refused the apiKey
  {EXIT_ERROR}    an unexpected error (the journal cannot be written, ...); the message says which
  {EXIT_INTERRUPTED}  stopped by Ctrl-C

EXAMPLES
  token-url import-tokens --dry-run tokens.csv
  SOCIAL_LOGIN_BASE_URL=https://my-app.rpxnow.com token-url import-tokens --rate 5 tokens.csv
"""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="token-url", description="Tools of the Identity Cloud token URL service.", allow_abbrev=False
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    command = commands.add_parser(
        "import-tokens",
        help="store provider tokens in Social Login (add_or_update_access_token) from a file",
        description="token-url import-tokens: store provider tokens in Social Login from CSV or JSON Lines.",
        epilog=MANUAL,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="token-url import-tokens [--dry-run] [--rate N] [--concurrency N] [--retries N]\n"
        "                               [--report PATH] [--restart] [--verbose] FILE",
        allow_abbrev=False,
    )
    command.add_argument(
        "file", metavar="FILE", type=pathlib.Path, help="CSV (identifier,token) or JSON Lines"
    )
    command.add_argument("--dry-run", action="store_true", help="check every row and report; send nothing")
    command.add_argument(
        "--rate",
        type=_non_negative,
        default=DEFAULT_RATE,
        metavar="N",
        help=f"requests per second, all together (default {DEFAULT_RATE:g}; 0: as fast as answers come)",
    )
    command.add_argument(
        "--concurrency",
        type=_positive_int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"requests in flight at once (default {DEFAULT_CONCURRENCY})",
    )
    command.add_argument(
        "--retries",
        type=_non_negative_int,
        default=DEFAULT_RETRIES,
        metavar="N",
        help=f"retries of a row after an outage, with exponential backoff (default {DEFAULT_RETRIES})",
    )
    command.add_argument(
        "--report", type=pathlib.Path, metavar="PATH", help="JSON report (default FILE.report.json)"
    )
    command.add_argument(
        "--restart", action="store_true", help="forget FILE.journal and start from the first row"
    )
    command.add_argument(
        "--verbose", action="store_true", help="also log every upstream refusal and outage (stderr)"
    )
    return top


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


# ---------------------------------------------------------------- the summary


@dataclass
class Tally:
    rows: int = 0
    valid: int = 0
    already_stored: int = 0
    already_rejected: int = 0
    sent: int = 0
    stored: int = 0
    failed: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    not_stored: list[dict[str, Any]] = field(default_factory=list)

    @property
    def already_done(self) -> int:
        return self.already_stored + self.already_rejected

    def add_rejection(self, row: int, identifier: str | None, reason: str) -> None:
        self.rejected[reason] += 1
        self.not_stored.append(
            {"row": row, "identifier": identifier, "outcome": "rejected", "reason": reason}
        )

    def add_result(self, result: RowResult) -> None:
        self.sent += 1
        if result.outcome is Outcome.STORED:
            self.stored += 1
        elif result.outcome is Outcome.REJECTED:
            self.add_rejection(result.row.number, result.row.identifier, result.reason or "rejected")
        else:
            self.failed += 1
            self.not_stored.append(
                {
                    "row": result.row.number,
                    "identifier": result.row.identifier,
                    "outcome": "failed",
                    "reason": result.reason,
                }
            )


def summary_lines(tally: Tally, end: RunEnd, elapsed: float, dry_run: bool) -> list[str]:
    rate = tally.sent / elapsed if elapsed > 0 else 0.0
    lines = [
        f"rows: {tally.rows}, valid: {tally.valid}"
        + (f", answered in earlier runs: {tally.already_done}" if tally.already_done else ""),
        "dry run: nothing sent" if dry_run else f"sent: {tally.sent} in {elapsed:.1f} s ({rate:.1f}/s)",
        f"stored: {tally.stored}"
        + (f" (with earlier runs: {tally.stored + tally.already_stored})" if tally.already_done else ""),
    ]
    for reason, count in sorted(tally.rejected.items()):
        lines.append(f"rejected, {reason}: {count} ({REASONS.get(reason, 'refused by Social Login')})")
    lines.append(f"failed: {tally.failed}")
    lines.append(f"end: {end.end.value}" + (f" ({end.detail})" if end.detail else ""))
    return lines


# ---------------------------------------------------------------- progress


class Progress:
    """A tqdm bar on a terminal; otherwise a plain line every `interval` seconds and at the end."""

    def __init__(self, total: int, stream: TextIO, interval: float = 5.0) -> None:
        self._total = total
        self._stream = stream
        self._bar = (
            tqdm(total=total, unit="row", file=stream, dynamic_ncols=True) if stream.isatty() else None
        )
        self._interval = interval
        self._done = 0
        self._started = time.monotonic()
        self._last = self._started

    def advance(self) -> None:
        self._done += 1
        if self._bar is not None:
            self._bar.update(1)
            return
        now = time.monotonic()
        if now - self._last >= self._interval or self._done == self._total:
            self._last = now
            self._stream.write(self.line(now) + "\n")
            self._stream.flush()

    def line(self, now: float) -> str:
        elapsed = now - self._started
        rate = self._done / elapsed if elapsed > 0 else 0.0
        left = (self._total - self._done) / rate if rate > 0 else float("inf")
        eta = "unknown" if left == float("inf") else time.strftime("%H:%M:%S", time.gmtime(left))
        percent = 100 * self._done / self._total if self._total else 100.0
        return f"progress: {self._done}/{self._total} rows ({percent:.0f}%), {rate:.1f} rows/s, eta {eta}"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


# ---------------------------------------------------------------- main


class UsageError(Exception):
    pass


def _sender(environ: dict[str, str]) -> Callable[[str, str], None]:
    """add_or_update_access_token of the function's own client, for the Social Login in the environment."""
    from token_url.api_key import ApiKeySource, parse_api_key  # noqa: PLC0415 - only when sending
    from token_url.errors import ConfigurationProblem, ServiceUnavailable  # noqa: PLC0415
    from token_url.identity_cloud import IdentityCloudClient, new_http_session  # noqa: PLC0415
    from token_url.settings import base_url  # noqa: PLC0415

    raw_url = environ.get("SOCIAL_LOGIN_BASE_URL", "")
    if not raw_url:
        raise UsageError(
            "set SOCIAL_LOGIN_BASE_URL to the Social Login application, https://<app>.rpxnow.com"
        )
    try:
        url = base_url(raw_url)
    except ValueError as error:
        raise UsageError(f"SOCIAL_LOGIN_BASE_URL {error}") from None
    api_key: Callable[[], str]
    if environ.get("SOCIAL_LOGIN_API_KEY"):
        try:
            key = parse_api_key(environ["SOCIAL_LOGIN_API_KEY"], source="SOCIAL_LOGIN_API_KEY")
        except ConfigurationProblem:
            raise UsageError("SOCIAL_LOGIN_API_KEY is not an apiKey (letters and digits)") from None
        api_key = lambda: key  # noqa: E731
    else:
        import boto3  # noqa: PLC0415 - only when the key comes from Secrets Manager

        api_key = ApiKeySource(
            secrets_client=boto3.client("secretsmanager"),
            secret_id=environ.get("SOCIAL_LOGIN_API_KEY_SECRET") or DEFAULT_SECRET,
            max_age=300,
        )
    try:
        api_key()  # once now: a key that cannot be read stops the run before any row is sent
    except ServiceUnavailable as error:
        raise UsageError(
            f"cannot read the apiKey ({error}); set SOCIAL_LOGIN_API_KEY, or AWS credentials"
        ) from None
    except ConfigurationProblem as error:
        raise UsageError(f"no apiKey: {error.reason}") from None
    client = IdentityCloudClient(
        social_login_base_url=url, api_key=api_key, http=new_http_session(pool_size=16), timeout=(3.0, 10.0)
    )

    def send(identifier: str, token: str) -> None:
        client.add_or_update_access_token(identifier=identifier, token=token)

    return send


def _function_logs(*, verbose: bool, stream: TextIO) -> None:
    """The client logs refusals and outages as JSON for CloudWatch: here only with --verbose, on stderr."""
    function_logger = logging.getLogger("token-url")
    function_logger.setLevel(logging.WARNING if verbose else logging.CRITICAL)
    for handler in function_logger.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(stream)


def import_tokens(args: argparse.Namespace, environ: dict[str, str], out: TextIO, err: TextIO) -> int:
    started = time.monotonic()
    checked = read(args.file)
    tally = Tally(rows=len(checked))
    for item in checked:
        if isinstance(item, Rejection):
            tally.add_rejection(item.number, item.identifier, item.reason)
    valid = [item for item in checked if isinstance(item, Row)]
    tally.valid = len(valid)
    report_path = args.report or args.file.with_name(args.file.name + ".report.json")
    if args.dry_run:
        return _finish(
            tally, RunEnd(End.COMPLETED), started, args=args, report_path=report_path, out=out, dry_run=True
        )

    send = _sender(environ)
    _function_logs(verbose=args.verbose, stream=err)
    if args.restart:
        journal_path(args.file).unlink(missing_ok=True)
    journal = Journal.open(args.file)
    to_send: list[Row] = []
    for row in valid:
        entry = journal.entries.get(row.number)
        if entry is None:
            to_send.append(row)
        elif entry.outcome == Outcome.STORED:
            tally.already_stored += 1
        else:
            tally.already_rejected += 1
            tally.add_rejection(row.number, row.identifier, entry.reason or "rejected")
    policy = Policy(rate=args.rate, concurrency=args.concurrency, max_attempts=args.retries + 1)
    importer = Importer(send=send, policy=policy)
    progress = Progress(len(to_send), err)

    def on_result(result: RowResult) -> None:
        if result.outcome is not Outcome.FAILED:
            journal.record(
                Entry(result.row.number, result.row.identifier, result.outcome.value, result.reason)
            )
        tally.add_result(result)
        progress.advance()

    previous = signal.signal(signal.SIGINT, _graceful(importer, err))
    try:
        end = importer.run(to_send, on_result)
    finally:
        signal.signal(signal.SIGINT, previous)
        journal.close()
        progress.close()
    return _finish(tally, end, started, args=args, report_path=report_path, out=out, dry_run=False)


def _graceful(importer: Importer, err: TextIO) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        if importer.interrupted:
            raise KeyboardInterrupt
        importer.interrupt()
        err.write("\nstopping: waiting for the requests in flight (Ctrl-C again quits at once)\n")
        err.flush()

    return handler


def _finish(
    tally: Tally,
    end: RunEnd,
    started: float,
    *,
    args: argparse.Namespace,
    report_path: pathlib.Path,
    out: TextIO,
    dry_run: bool,
) -> int:
    elapsed = time.monotonic() - started
    lines = summary_lines(tally, end, elapsed, dry_run)
    if end.end is End.UPSTREAM_DOWN:
        lines.append(
            f"Social Login looks down: {DOWN_AFTER} rows in a row failed after every retry "
            f"(last: {end.detail}). Nothing is lost: run the same command again to continue."
        )
    elif end.end is End.CONFIGURATION:
        lines.append(
            "Check SOCIAL_LOGIN_BASE_URL and the apiKey. "
            "Nothing is lost: run the same command again to continue."
        )
    elif end.end is End.INTERRUPTED:
        lines.append("Interrupted. Run the same command again to continue where it stopped.")
    out.write("\n".join(lines) + "\n")
    report = {
        "file": str(args.file),
        "dry_run": dry_run,
        "end": end.end.value,
        "detail": end.detail,
        "rows": tally.rows,
        "valid": tally.valid,
        "stored_by_earlier_runs": tally.already_stored,
        "rejected_in_earlier_runs": tally.already_rejected,
        "sent": tally.sent,
        "stored": tally.stored,
        "rejected": dict(sorted(tally.rejected.items())),
        "failed": tally.failed,
        "elapsed_seconds": round(elapsed, 3),
        "not_stored": sorted(tally.not_stored, key=lambda item: item["row"]),
    }
    report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    out.write(f"report: {report_path}\n")
    return _exit_status(tally, end, dry_run)


def _exit_status(tally: Tally, end: RunEnd, dry_run: bool) -> int:
    if end.end is End.INTERRUPTED:
        return EXIT_INTERRUPTED
    if end.end in {End.UPSTREAM_DOWN, End.CONFIGURATION}:
        return EXIT_UPSTREAM_DOWN
    if dry_run:
        return EXIT_OK
    return EXIT_OK if tally.stored + tally.already_stored == tally.valid else EXIT_NOT_ALL_STORED


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return import_tokens(args, dict(os.environ), sys.stdout, sys.stderr)
    except (UsageError, InputError, JournalError) as error:
        sys.stderr.write(f"token-url import-tokens: {error}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("token-url import-tokens: quit; the rows answered so far are in the journal\n")
        sys.stderr.flush()
        sys.stdout.flush()
        # At once: a normal exit would wait for the requests still in flight.
        os._exit(EXIT_INTERRUPTED)
    except OSError as error:
        sys.stderr.write(f"token-url import-tokens: {error}; the rows answered so far are in the journal\n")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
