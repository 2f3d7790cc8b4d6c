"""One cold start, in a fresh interpreter: `python bench/probe.py app|floor-init|floor-first < event.json`.

Run as a script (not `-m`), with nothing imported before the clock starts but what the interpreter
itself loads and what the Lambda runtime's bootstrap has imported, as it hands the interpreter to the
handler module:

* `app`: `from token_url import app` (init), then the first request through `lambda_handler` (first request);
* `floor-init`: import boto3 and requests and create a DynamoDB client;
* `libraries-init`: import bench/required/libraries.py (the required libraries built alone, no function code);
* `floor-first`: the floor's handler module (bare boto3 and requests, its three clients), then the same
  sign-in through it.

Prints one JSON line: milliseconds from the start to the end of init, and to the end of the first request.
"""

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

# The harness's own stand-in for the runtime's context object, loaded before the clock as the runtime's is.
from testkit.lambda_context import FakeLambdaContext


def main() -> None:
    mode = sys.argv[1]
    event = json.loads(sys.stdin.read() or "null")
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
    # The runtime sets each invocation's trace header just before calling the handler.
    os.environ["_X_AMZN_TRACE_ID"] = (
        "Root=1-6740a5c0-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1"
    )
    context = FakeLambdaContext(
        function_name="token-url-bench", request_id="00000000-0000-4000-8000-000000000001"
    )
    response = handler(event, context)
    first = time.perf_counter()
    location = response.get("headers", {}).get("Location", "")
    if not location.endswith("result=signed_in"):
        raise SystemExit(
            f"{mode}: the first request did not sign in: {response.get('statusCode')} {location}"
        )
    print(json.dumps({"init": (init - started) * 1000, "first": (first - started) * 1000}))


if __name__ == "__main__":
    main()
