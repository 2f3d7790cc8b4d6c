"""POST /token: Social Login sends the browser back with a token; this spends the token URL's one-time
value and signs in or links, by the intent the value was issued for.

Steps, in order: `complete` checks that both halves of the browser binding came, runs the attempt through
`Replay` (once only, duplicates wait), which calls `_redeem`: consume the one-time value, then `SignIn` or
`Link`. `complete` then opens the sealed session id and ends the browser's previous session.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.typing import LambdaContext

from token_url.deadline import Deadline
from token_url.errors import ConditionFailed, ConfigurationProblem, ServiceUnavailable
from token_url.flows.link import Link
from token_url.flows.replay import Replay
from token_url.flows.shared import end_replaced_session, log_dependency_failure, session_key
from token_url.flows.sign_in import SignIn
from token_url.models import ErrorCode, Intent, Result, TokenAttempt, TokenResult
from token_url.observability import count, count_outcome, logger
from token_url.ports import Clock, NonceStorage, SessionStorage
from token_url.secure_values import digest, unseal_session_id


@dataclass(frozen=True)
class TokenOutcome:
    result: Result | None
    error: ErrorCode | None
    session_id: str | None = None
    session_expires_at: int | None = None


class TokenPost:
    def __init__(
        self,
        *,
        nonces: NonceStorage,
        sessions: SessionStorage,
        sign_in: SignIn,
        link: Link,
        replay_store: BasePersistenceLayer,
        replay_window_seconds: int,
        deadline: Deadline,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._nonces = nonces
        self._sessions = sessions
        self._sign_in = sign_in
        self._link = link
        self._clock = clock
        self._replay = Replay(
            flow=self._redeem,
            store=replay_store,
            nonces=nonces,
            window_seconds=replay_window_seconds,
            deadline=deadline,
            sleep=sleep,
        )

    def register_context(self, context: LambdaContext) -> None:
        self._replay.register_context(context)

    def complete(
        self, *, token: str, nonce: str | None, browser: str | None, previous_session_id: str | None = None
    ) -> TokenOutcome:
        """`nonce` from the token URL's query, `browser` and `previous_session_id` from the cookies."""
        if nonce is None or browser is None:
            # Checked before any upstream call: without both halves of the binding the token is never sent.
            logger.warning(
                "Token POST without its one-time value or browser binding",
                extra={"has_nonce": nonce is not None, "has_browser_cookie": browser is not None},
            )
            count("RejectedTokens")
            return TokenOutcome(result=None, error=ErrorCode.TOKEN_URL_INVALID)
        attempt = TokenAttempt(
            attempt_key=digest("attempt", f"{token}|{nonce}|{browser}"),
            token=token,
            nonce=nonce,
            browser=browser,
        )
        try:
            result = self._replay.result_of(attempt)
        except (ServiceUnavailable, ConfigurationProblem) as error:
            code = log_dependency_failure("Token not completed", error)
            return _counted(TokenOutcome(result=None, error=code))
        if result.error is not None:
            return _counted(TokenOutcome(result=None, error=result.error))
        session_id = None
        if result.sealed_session is not None:
            session_id = unseal_session_id(result.sealed_session, token=token, browser=browser)
            if previous_session_id and previous_session_id != session_id:
                end_replaced_session(self._sessions, session_key(previous_session_id))
        return _counted(
            TokenOutcome(
                result=result.result,
                error=None,
                session_id=session_id,
                session_expires_at=result.session_expires_at,
            )
        )

    def _redeem(self, attempt: TokenAttempt) -> TokenResult:
        """Spend the one-time value for this attempt, then sign in or link (run once, under `Replay`)."""
        now = self._clock.now()
        try:
            nonce = self._nonces.consume(
                pk=digest("nonce", attempt.nonce),
                browser=digest("browser", attempt.browser),
                attempt_key=attempt.attempt_key,
                now=now,
            )
        except ConditionFailed:
            logger.warning("Token URL one-time value refused (unknown, used, expired or another browser's)")
            count("RejectedTokens")
            return TokenResult(error=ErrorCode.TOKEN_URL_INVALID)
        if nonce.intent is Intent.SIGN_IN:
            return self._sign_in.complete(attempt, nonce, now)
        return self._link.complete(attempt, nonce, now)


def _counted(outcome: TokenOutcome) -> TokenOutcome:
    label = outcome.result or outcome.error
    count_outcome("token", label.value if label else "unknown")
    return outcome
