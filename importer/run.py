"""Sending the rows: at a set rate, a few at a time, retrying outages with backoff, never a refusal.

An outage (Social Login code -1, a 5xx or a page that is not an API reply, a timeout, a reset
connection) is retried with exponential backoff and jitter (tenacity). A refusal of the row (any
other Social Login code) is final at once. A refusal of the apiKey (codes 3 and 10) stops the run:
every other row would be refused the same way. A run of rows that failed even after their retries
means Social Login is down, and stops the run too; nothing is lost, the next run continues.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import StrEnum

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from errors import ServiceUnavailable, SocialLoginError
from importer.rows import Row

# Social Login codes that refuse our apiKey or application, not the row (IDENTITY_CLOUD.md).
CONFIGURATION_CODES = {SocialLoginError.AUTHENTICATION_ERROR, SocialLoginError.APP_NOT_CONFIGURED}


class Outcome(StrEnum):
    STORED = "stored"
    REJECTED = "rejected"
    """Social Login refused the row: final, never retried."""
    FAILED = "failed"
    """Still an outage after every retry: sent again by the next run."""


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


class ConfigurationRefused(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"Social Login refused the apiKey or application (code {code})")
        self.code = code


class RateLimiter:
    """Hands out send times `1/rate` apart to every thread; written here because it is ten lines."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._next = clock()
        self._lock = threading.Lock()

    def wait(self, stop: threading.Event) -> bool:
        """Wait for this caller's turn; False if the run is stopping meanwhile."""
        with self._lock:
            now = self._clock()
            turn = max(self._next, now)
            self._next = turn + self._interval
        return not stop.wait(max(turn - now, 0.0)) if turn > now else not stop.is_set()


class _StopWhenSet(stop_base):
    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._event.is_set()


class Importer:
    def __init__(
        self,
        *,
        send: Callable[[str, str], None],
        policy: Policy,
        stop: threading.Event | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._send = send
        self._policy = policy
        self.stop = stop or threading.Event()
        self._limiter = RateLimiter(policy.rate)
        self._sleep = sleep or self._sleep_unless_stopped
        self._configuration_code: int | None = None

    def _sleep_unless_stopped(self, seconds: float) -> None:
        """A backoff sleep that ends at once on Ctrl-C."""
        self.stop.wait(seconds)

    def run(self, rows: Iterable[Row], on_result: Callable[[RowResult], None]) -> RunEnd:
        """Send every row; `on_result` sees each answer in this thread, as it comes."""
        pending = iter(rows)
        in_flight: set[Future[RowResult | None]] = set()
        failures_in_a_row = 0
        down: str | None = None
        with ThreadPoolExecutor(max_workers=self._policy.concurrency, thread_name_prefix="import") as pool:
            while True:
                while not self._stopping(down) and len(in_flight) < self._policy.concurrency:
                    row = next(pending, None)
                    if row is None:
                        break
                    in_flight.add(pool.submit(self._one, row))
                if not in_flight:
                    break
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for result in _results(done):
                    on_result(result)
                    failures_in_a_row = failures_in_a_row + 1 if result.outcome is Outcome.FAILED else 0
                    if failures_in_a_row >= self._policy.down_after and down is None:
                        down = result.reason
        return self._end(down)

    def _stopping(self, down: str | None) -> bool:
        return self.stop.is_set() or down is not None or self._configuration_code is not None

    def _end(self, down: str | None) -> RunEnd:
        if self._configuration_code is not None:
            return RunEnd(
                End.CONFIGURATION, f"Social Login refused the apiKey (code {self._configuration_code})"
            )
        if down is not None:
            return RunEnd(End.UPSTREAM_DOWN, down)
        if self.stop.is_set():
            return RunEnd(End.INTERRUPTED)
        return RunEnd(End.COMPLETED)

    def _one(self, row: Row) -> RowResult | None:
        """One row to its end; None if the run stopped before it was sent (it is sent next run)."""
        if self._configuration_code is not None or not self._limiter.wait(self.stop):
            return None
        retrying = Retrying(
            retry=retry_if_exception_type(ServiceUnavailable),
            stop=stop_after_attempt(self._policy.max_attempts) | _StopWhenSet(self.stop),
            wait=wait_exponential_jitter(
                multiplier=self._policy.backoff_initial, max=self._policy.backoff_max
            ),
            sleep=self._sleep,
            reraise=True,
        )
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts += 1
                    if attempts > 1 and not self._limiter.wait(self.stop):
                        return None
                    self._send(row.identifier, row.token)
        except ServiceUnavailable as outage:
            if self.stop.is_set() and attempts < self._policy.max_attempts:
                return None  # stopped while retrying: not an answer, sent again next run
            return RowResult(row, Outcome.FAILED, outage.reason, attempts)
        except SocialLoginError as refusal:
            if refusal.code in CONFIGURATION_CODES:
                self._configuration_code = refusal.code
                return None
            return RowResult(row, Outcome.REJECTED, f"social_login_code_{refusal.code}", attempts)
        return RowResult(row, Outcome.STORED, None, attempts)


def _results(done: Iterable[Future[RowResult | None]]) -> Iterator[RowResult]:
    for future in done:
        result = future.result()
        if result is not None:
            yield result
