"""The context object Lambda passes to a handler: names, memory, request id, log stream and deadline.

Kept to the standard library's `time` and `uuid`: the cold-start probe loads it before its clock starts.
"""

from __future__ import annotations

import time
import uuid

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
FUNCTION_NAME = "token-url-test"
MEMORY_MB = 512
TIMEOUT_SECONDS = 15.0


class FakeLambdaContext:
    """A Lambda context whose remaining time counts down from `timeout_seconds`, as Lambda's does."""

    function_version = "$LATEST"

    def __init__(
        self,
        *,
        function_name: str = FUNCTION_NAME,
        memory_mb: int = MEMORY_MB,
        timeout_seconds: float = TIMEOUT_SECONDS,
        region: str = REGION,
        request_id: str | None = None,
    ) -> None:
        self.function_name = function_name
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}"
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[$LATEST]{uuid.uuid4().hex}"
        self.timeout_seconds = timeout_seconds
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


def context_with(remaining_ms: int) -> FakeLambdaContext:
    """A context with `remaining_ms` left, as a test of the function's deadline handling needs."""
    return FakeLambdaContext(timeout_seconds=remaining_ms / 1000)
