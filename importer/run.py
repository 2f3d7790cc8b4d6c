"""Sending the rows: at a set rate, a few at a time, retrying outages with backoff, never a refusal.

An outage (Social Login code -1, a provider error 4 or 6, HTTP 5xx or a page that is not an API
reply, a timeout, a reset connection) is retried with exponential backoff and jitter (tenacity). A
refusal of the row (any other Social Login code) is final at once. A refusal of our apiKey or
application (codes 0, 3, 10) stops the run: every other row would be refused the same way. A run of
rows that failed even after their retries means Social Login is down and stops the run too. A stop,
Ctrl-C included, lets the requests already sent finish; rows not yet sent, or waiting to be retried,
are left for the next run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import StrEnum

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from importer.rows import Row
from token_url.errors import ConfigurationProblem, ServiceUnavailable, SocialLoginError

# Beyond the shared configuration codes: 0 (missing parameter) can only be our own bug, for every row.
STOPPING_CODES = SocialLoginError.CONFIGURATION_CODES | {SocialLoginError.MISSING_PARAMETER}


class Outcome(StrEnum):
    STORED = "stored"
    REJECTED = "rejected"
    """Social Login refused the row: final, never retried."""
    FAILED = "failed"
    """Still an outage after every retry, or an unexpected error: sent again by the next run."""


class End(StrEnum):
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    UPSTREAM_DOWN = "upstream_down"
    CONFIGURATION = "configuration"


@dataclass(frozen=True)
class RowResult:
    row: Row
    outcome: Outcome
    reason: str | None
    attempts: int


@dataclass(frozen=True)
class RunEnd:
    end: End
    detail: str | None = None


@dataclass(frozen=True)
class Policy:
    rate: float
    """Requests per second, all workers together (0: no limit)."""
    concurrency: int
    max_attempts: int = 6
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    down_after: int = 5
    """This many rows in a row that failed after all their retries stop the run."""


class RateLimiter:
    """Hands out send times `1/rate` apart to every thread (ten lines; a library would add a dependency)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._next = clock()
        self._lock = threading.Lock()

    def wait(self, stop: threading.Event) -> bool:
        """Wait for this caller's turn; False if the run stops meanwhile."""
        with self._lock:
            now = self._clock()
            turn = max(self._next, now)
            self._next = turn + self._interval
        if turn > now:
            return not stop.wait(turn - now)
        return not stop.is_set()


class _StopWhenSet(stop_base):
    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._event.is_set()


def _is_outage(error: BaseException) -> bool:
    return isinstance(error, ServiceUnavailable) or (
        isinstance(error, SocialLoginError) and error.is_provider_outage
    )


class Importer:
    def __init__(
        self,
        *,
        send: Callable[[str, str], None],
        policy: Policy,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._send = send
        self._policy = policy
        self.stop = threading.Event()
        """Set by Ctrl-C, by a refused configuration, or when Social Login is down."""
        self.interrupted = False
        self._limiter = RateLimiter(policy.rate)
        self._sleep = sleep or self._sleep_unless_stopped
        self._configuration: str | None = None
        self._down: str | None = None

    def interrupt(self) -> None:
        """Ctrl-C: finish what is in flight, send nothing more."""
        self.interrupted = True
        self.stop.set()

    def _sleep_unless_stopped(self, seconds: float) -> None:
        """A backoff sleep that ends at once when the run stops."""
        self.stop.wait(seconds)

    def run(self, rows: Iterable[Row], on_result: Callable[[RowResult], None]) -> RunEnd:
        """Send every row; `on_result` sees each answer in this thread, as it comes."""
        pending = iter(rows)
        in_flight: set[Future[RowResult | None]] = set()
        failures_in_a_row = 0
        pool = ThreadPoolExecutor(max_workers=self._policy.concurrency, thread_name_prefix="import")
        try:
            while True:
                while not self.stop.is_set() and len(in_flight) < self._policy.concurrency:
                    row = next(pending, None)
                    if row is None:
                        break
                    in_flight.add(pool.submit(self._one, row))
                if not in_flight:
                    break
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for result in _answered(done):
                    on_result(result)
                    failures_in_a_row = failures_in_a_row + 1 if result.outcome is Outcome.FAILED else 0
                    if failures_in_a_row >= self._policy.down_after and self._down is None:
                        self._down = result.reason or "failed"
                        self.stop.set()
        except BaseException:
            # A second Ctrl-C, or a journal that cannot be written: record what has already been
            # answered, and do not wait for the rest (those rows are sent again next run).
            self.stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            for result in _answered(future for future in in_flight if future.done()):
                on_result(result)
            raise
        pool.shutdown(wait=True)
        return self._end()

    def _end(self) -> RunEnd:
        if self._configuration is not None:
            return RunEnd(End.CONFIGURATION, self._configuration)
        if self._down is not None:
            return RunEnd(End.UPSTREAM_DOWN, self._down)
        if self.interrupted:
            return RunEnd(End.INTERRUPTED)
        return RunEnd(End.COMPLETED)

    def _failed(self, row: Row, reason: str, attempts: int) -> RowResult | None:
        if self.stop.is_set() and attempts < self._policy.max_attempts:
            return None  # stopped between retries: not an answer, sent again next run
        return RowResult(row, Outcome.FAILED, reason, attempts)

    def _refuse_configuration(self, detail: str) -> None:
        self._configuration = self._configuration or detail
        self.stop.set()

    def _one(self, row: Row) -> RowResult | None:
        """One row to its end; None if the run stopped before it was answered (sent again next run)."""
        attempts = 0
        try:
            for attempt in Retrying(
                retry=retry_if_exception(_is_outage),
                stop=stop_after_attempt(self._policy.max_attempts) | _StopWhenSet(self.stop),
                wait=wait_exponential_jitter(
                    multiplier=self._policy.backoff_initial, max=self._policy.backoff_max
                ),
                sleep=self._sleep,
                reraise=True,
            ):
                with attempt:
                    if not self._limiter.wait(self.stop):
                        return None
                    attempts += 1
                    self._send(row.identifier, row.token)
        except ServiceUnavailable as outage:
            return self._failed(row, outage.reason, attempts)
        except SocialLoginError as refusal:
            if refusal.is_provider_outage:
                return self._failed(row, f"provider error {refusal.code}", attempts)
            if refusal.code in STOPPING_CODES:
                self._refuse_configuration(f"Social Login refused the call with code {refusal.code}")
                return None
            return RowResult(row, Outcome.REJECTED, f"social_login_code_{refusal.code}", attempts)
        except ConfigurationProblem as problem:  # e.g. the apiKey secret holds no apiKey
            self._refuse_configuration(problem.reason)
            return None
        except Exception as error:
            # One row's surprise must not lose the other rows' answers; its type says enough.
            return RowResult(row, Outcome.FAILED, f"unexpected {type(error).__name__}", attempts)
        return RowResult(row, Outcome.STORED, None, attempts)


def _answered(done: Iterable[Future[RowResult | None]]) -> list[RowResult]:
    results = []
    for future in done:
        if future.cancelled():
            continue
        result = future.result()
        if result is not None:
            results.append(result)
    return results
