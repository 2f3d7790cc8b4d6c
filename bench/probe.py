"""One cold start or one restore, in a fresh interpreter: `python bench/probe.py MODE [FLOW] < event.json`.

Run as a script (not `-m`), with nothing imported before the clock starts but what the interpreter
itself loads and what the Lambda runtime's bootstrap has imported, as it hands the interpreter to the
handler module:

* `app`: `from token_url import app` (init), then the first request through `lambda_handler` (first request);
* `floor-init`: import boto3 and requests and create a DynamoDB client;
* `libraries-init`: import bench/required/libraries.py (the required libraries built alone, no function code);
* `floor-first`: the floor's handler module (bare boto3 and requests, its three clients), then the same
  sign-in through it.

Prints one JSON line: milliseconds from the start to the end of init, and to the end of the first request.

A restore, as SnapStart's (`FLOW` is `sign_in` or `link`; stdin a list of that flow's token POSTs):

* `restored-app`: init, then the before-snapshot hooks (testkit/snapstart.py's `take_snapshot`); then
  what a restore leaves (every pooled connection dropped), the after-restore hooks, and the first request;
  then, for a second token POST, the same restore again and the same flow (`again`): a first request
  after a restore with nothing lazy left, which pays only what every restore must;
* `restored-floor`: the floor's init, the same drop of connections, no hooks (it has none), and the same
  first request.

Its clock (`first`) runs from the start of the after-restore hooks to the end of the first request: the
part of a restore that is the function's own work. Lambda's restore of the microVM itself comes before
it and is not simulated (Lambda reports it as Restore Duration). The JSON line also holds the hooks' own
time, the AWS calls made before the restore and in the first request (counted at the client), and the
modules imported by the hooks and by the first request.
"""

from __future__ import annotations  # loaded before the clock by testkit.lambda_context below

# What Lambda's Python runtime (awslambdaric's bootstrap) has imported before it imports the handler:
# loaded here before the clock too, so neither side is charged for them.
import decimal  # noqa: F401
import json
import logging  # noqa: F401
import os
import sys
import time
import traceback  # noqa: F401
import warnings  # noqa: F401
from collections.abc import Callable  # loaded by the imports above: no cost
from types import ModuleType  # likewise

# The harness's own stand-in for the runtime's context object, loaded before the clock as the runtime's is.
from testkit.lambda_context import FakeLambdaContext

# The result each flow's first request must redirect to (a failed flow is no datum).
EXPECTED = {"sign_in": "result=signed_in", "link": "result=linked"}
Handler = Callable[..., dict[str, dict[str, str]]]
TRACE_HEADER = "Root=1-6740a5c0-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1"


def main() -> None:
    mode = sys.argv[1]
    event = json.loads(sys.stdin.read() or "null")
    if mode.startswith("restored-"):
        restored(mode, sys.argv[2], event[0], event[1:])
        return
    started = time.perf_counter()
    if mode == "floor-init":
        import boto3
        import requests  # noqa: F401

        boto3.client("dynamodb")
        init = time.perf_counter()
        print(json.dumps({"init": (init - started) * 1000}))
        return
    if mode == "libraries-init":
        import libraries  # type: ignore[import-not-found]  # noqa: F401 - bench/required, on the path

        print(json.dumps({"init": (time.perf_counter() - started) * 1000}))
        return
    if mode == "app":
        from token_url import app

        handler = app.lambda_handler
    else:
        from bench.bare import BareHandler

        handler = BareHandler(os.environ)
    init = time.perf_counter()
    invoke(handler, event, mode, "sign_in")
    first = time.perf_counter()
    print(json.dumps({"init": (init - started) * 1000, "first": (first - started) * 1000}))


def invoke(handler: Handler, event: object, mode: str, flow: str) -> None:
    """One invocation as the runtime makes it, its outcome checked."""
    # The runtime sets each invocation's trace header just before calling the handler.
    os.environ["_X_AMZN_TRACE_ID"] = TRACE_HEADER
    context = FakeLambdaContext(
        function_name="token-url-bench", request_id="00000000-0000-4000-8000-000000000001"
    )
    response = handler(event, context)
    location = response.get("headers", {}).get("Location", "")
    if not location.endswith(EXPECTED[flow]):
        raise SystemExit(f"{mode}: the first {flow} failed: {response.get('statusCode')} {location}")


def restored(mode: str, flow: str, event: object, again: list[object]) -> None:
    """Init and snapshot, a simulated restore, then the first request; then, given a second event, the
    same flow once more after a second restore (see the module's docstring)."""
    # The harness's own modules, before any client is built so that every call is counted.
    from bench.measure import AwsCallCounter, AwsRequestsSent

    aws_calls, aws_sent = AwsCallCounter(), AwsRequestsSent()
    aws_calls.install()
    aws_sent.install()
    started = time.perf_counter()
    handler: Handler
    if mode == "restored-app":
        from token_url import app

        handler = app.lambda_handler
    else:
        from bench.bare import BareHandler

        handler = BareHandler(os.environ)
    init = time.perf_counter()
    from testkit import snapstart

    if mode == "restored-app":
        snapstart.take_snapshot()
    snapshot = time.perf_counter()
    calls_before_restore, sent_before_restore = aws_calls.take(), aws_sent.take()
    dropped = snapstart.drop_pooled_connections()  # what the restore left: not the function's work
    modules_before = set(sys.modules)
    restore_started = time.perf_counter()
    if mode == "restored-app":
        snapstart.run_after_restore_hooks()
    hooks_done = time.perf_counter()
    modules_after_hooks = set(sys.modules)  # between the two, off the clock
    request_started = time.perf_counter()
    invoke(handler, event, mode, flow)
    finished = time.perf_counter()
    calls, sent = aws_calls.take(), aws_sent.take()
    hooks = hooks_done - restore_started
    imported_by_request = sorted(set(sys.modules) - modules_after_hooks)
    again_ms = [restored_again(handler, event, mode, flow, snapstart) for event in again]
    print(
        json.dumps(
            {
                "init": (init - started) * 1000,
                "snapshot": (snapshot - init) * 1000,
                "hooks": hooks * 1000,
                "first": (hooks + finished - request_started) * 1000,
                "dropped_connections": dropped,
                # Made at the client (the warm-up's are answered in-process), and sent out of the process.
                "calls_before_restore": dict(sorted(calls_before_restore.items())),
                "aws_requests_sent_before_restore": sent_before_restore,
                "aws_requests_sent": sent,
                "calls": dict(sorted(calls.items())),
                "imported_by_hooks": sorted(modules_after_hooks - modules_before),
                "imported_by_request": imported_by_request,
                "again": again_ms,
            }
        )
    )


def restored_again(handler: Handler, event: object, mode: str, flow: str, snapstart: ModuleType) -> float:
    """The warm container restored once more (connections dropped, after-restore hooks run), then the
    same flow: a first request after a restore with nothing left for the snapshot to have done. Its
    clock is the first request's."""
    snapstart.drop_pooled_connections()
    started = time.perf_counter()
    if mode == "restored-app":
        snapstart.run_after_restore_hooks()
    invoke(handler, event, mode, flow)
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    main()
