"""The current invocation's deadline: the one holder of the Lambda context's remaining time."""

from __future__ import annotations

from aws_lambda_powertools.utilities.typing import LambdaContext

# Kept back from the deadline when deciding whether a duplicate token POST may wait any longer: enough
# for the answer to go out. The upstream client and the audit trail keep reserves of their own, sized to
# what each must still do after its call (identity_cloud.py, audit.py).
DUPLICATE_WAIT_MARGIN_MS = 2500


class Deadline:
    """Built once per container; each invocation hands it its context (the handler does)."""

    def __init__(self) -> None:
        self._context: LambdaContext | None = None

    def start(self, context: LambdaContext) -> None:
        self._context = context

    @property
    def is_known(self) -> bool:
        """False outside Lambda (a test, a script): nothing then bounds the waits."""
        return self._context is not None

    def seconds_left(self) -> float | None:
        return None if self._context is None else self._context.get_remaining_time_in_millis() / 1000

    def has_time_for(self, seconds: float) -> bool:
        """Whether `seconds` more leave the duplicate-wait margin before the deadline (always, if unknown)."""
        if self._context is None:
            return True
        return self._context.get_remaining_time_in_millis() - seconds * 1000 > DUPLICATE_WAIT_MARGIN_MS
