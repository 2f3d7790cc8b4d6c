"""Replay and duplicate handling of the token POST: a submission's flow runs once; a replay of it gets the
recorded result, and a concurrent duplicate waits for the first one's result instead of running again.

Idempotency (Powertools, DynamoDB) wraps the flow function, not the resolver: the resolver turns errors
into ordinary responses, which would be recorded; here an exception (an outage) leaves no record behind.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from aws_lambda_powertools.utilities.typing import LambdaContext

from token_url.deadline import Deadline
from token_url.errors import ConditionFailed, ServiceUnavailable
from token_url.models import ErrorCode, TokenAttempt, TokenResult
from token_url.observability import count, logger
from token_url.ports import NonceStorage
from token_url.secure_values import digest

# The waits between looks at a duplicate in progress, without a Lambda deadline to bound them.
DUPLICATE_WAITS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0)


def _waits_until_deadline() -> Iterator[float]:
    yield from DUPLICATE_WAITS[:5]
    while True:
        yield 0.5


RECORD_KEY_PREFIX = "token-post"
"""Idempotency records are keyed `token-post#<hash of the attempt>`."""


class Replay:
    def __init__(
        self,
        *,
        flow: Callable[[TokenAttempt], TokenResult],
        store: BasePersistenceLayer,
        nonces: NonceStorage,
        window_seconds: int,
        deadline: Deadline,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._flow = flow
        self._nonces = nonces
        self._deadline = deadline
        self._sleep = sleep
        # The result of the flow that ran in this thread, for when recording it for replays fails.
        self._finished = threading.local()
        self._config = IdempotencyConfig(
            event_key_jmespath="attempt_key",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=window_seconds,
        )
        self._run_once_recorded = idempotent_function(
            data_keyword_argument="attempt",
            # Powertools would key records by module and method name, so renaming code would make every
            # record in the replay window unfindable; the key names what it protects instead.
            key_prefix=RECORD_KEY_PREFIX,
            config=self._config,
            persistence_store=store,
            output_serializer=PydanticSerializer(model=TokenResult),
        )(self._run_and_remember)

    def register_context(self, context: LambdaContext) -> None:
        """Each invocation, before the flow runs: Powertools bounds an in-progress record by its deadline."""
        self._config.register_lambda_context(context)

    def result_of(self, attempt: TokenAttempt) -> TokenResult:
        """The attempt's result: its flow's, run now or recorded by an earlier run of the same attempt.

        A duplicate still in progress past the wait ends in REQUEST_IN_PROGRESS; an idempotency store that
        fails before the flow ran, in SERVICE_UNAVAILABLE. The flow's own exceptions go through.
        """
        self._finished.result = None
        try:
            return self._wait_for_duplicates(attempt)
        except IdempotencyPersistenceLayerError:
            return self._result_not_recorded(attempt)
        finally:
            self._finished.result = None  # it holds a sealed session: not kept past this call

    def _wait_for_duplicates(self, attempt: TokenAttempt) -> TokenResult:
        """Run the flow once; a concurrent duplicate waits for the first one's result instead.

        It waits as long as the Lambda deadline allows (or the fixed schedule, without a deadline).
        """
        waits: Iterable[float] = _waits_until_deadline() if self._deadline.is_known else DUPLICATE_WAITS
        for wait in itertools.chain((0.0,), waits):
            if wait:
                if not self._deadline.has_time_for(wait):
                    break
                self._sleep(wait)
            try:
                result: TokenResult = self._run_once_recorded(attempt=attempt)
            except IdempotencyAlreadyInProgressError:
                continue
            return result
        logger.warning("Duplicate token submission still in progress")
        return TokenResult(error=ErrorCode.REQUEST_IN_PROGRESS)

    def _run_and_remember(self, attempt: TokenAttempt) -> TokenResult:
        result = self._flow(attempt)
        # Kept in case Powertools then fails to record it (see _result_not_recorded).
        self._finished.result = result
        return result

    def _result_not_recorded(self, attempt: TokenAttempt) -> TokenResult:
        count("UpstreamErrors")
        result: TokenResult | None = self._finished.result
        if result is None:
            logger.exception("Token not completed: idempotency store unavailable")
            return TokenResult(error=ErrorCode.SERVICE_UNAVAILABLE)
        # The flow took effect (a session exists, a link is made); only recording the result for
        # replays failed. The user gets the outcome; a replay of this very submission meets the
        # in-progress record until the invocation's deadline, then finds the token spent.
        logger.warning("Token completed, but its idempotency record could not be saved")
        self._retire(attempt)
        return result

    def _retire(self, attempt: TokenAttempt) -> None:
        # Without a completed record, a replay after the in-progress record expires would run the flow
        # again (a second session, if the application's tokens are not one-time): end the value instead.
        try:
            self._nonces.retire(pk=digest("nonce", attempt.nonce), attempt_key=attempt.attempt_key)
        except (ServiceUnavailable, ConditionFailed):
            logger.warning("Token URL one-time value could not be retired; it expires by itself")
