"""schemathesis against the local stack (`make run` on free ports), from the committed docs/openapi.json.

Every operation Powertools documents is fuzzed: the examples, coverage (boundary and schema-violating
values) and fuzzing phases, positive and negative data. Each request passes the guard in front of
the resolver as a real caller would: the browser's JSON routes with the app's `Origin`, the IAM routes
SigV4-signed with the stack's credentials, so the bodies reach Powertools' validation and the flows.

Checks, only where the generated document makes them meaningful:
- never a 5xx (`not_a_server_error`), whatever the input;
- a documented status code has a documented media type (`content_type_conformance`);
- a 2xx body matches its documented model. Not the other codes: the document has only 200 and 422,
  and the function's 422 body (`{"error", "message", "detail": [{"loc", "type"}]}`, which never echoes
  the input) is not the `HTTPValidationError` Powertools documents by default; 303, 204, 401, 403,
  413, 415 and 502/503 are not documented at all, so status-code conformance would fail on correct
  answers;
- a request that violates the document is refused with a 4xx (`negative_data_rejection`).

FUZZ_EXAMPLES sets the fuzzing phase's examples per operation (default 50, under a minute here); a
larger value is a longer run: `FUZZ_EXAMPLES=2000 .venv/bin/pytest tests/fuzz -q`.
"""

from __future__ import annotations

import collections
import os
import time
from typing import Any

import jsonschema_rs
import pytest
import requests
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import strategies as st
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
)

from devtools.local_stack import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY, REGION
from devtools.openapi import OPENAPI_PATH
from devtools.template import http_routes, load_template
from tests.stack_support import RunningStack

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or "50")
if EXAMPLES < 1:
    raise ValueError(f"FUZZ_EXAMPLES must be at least 1, got {EXAMPLES}")
# An operation with a body gets its coverage cases plus the fuzzing phase's; fewer than this means the
# fuzzer did not really run (a filter, a health check or a loader problem skipped the cases). One without
# parameters or body has nothing to vary: schemathesis sends it a few times.
MIN_CASES_WITH_BODY = min(EXAMPLES, 20)
MIN_CASES_WITHOUT_INPUT = 1
IAM_ROUTES = {route.key for route in http_routes(load_template()) if route.iam}
CREDENTIALS = "POST /credentials"
# Profile URLs of the providers POST /credentials supports (models.SUPPORTED_CREDENTIAL_PROVIDERS): the
# document has only the identifier's length, so without these nearly every body stops at validation.
PROVIDER_SITES = (
    "https://www.facebook.com/",
    "http://facebook.com/",
    "https://m.renren.com/",
    "https://soundcloud.com/",
    "https://FOURSQUARE.com/user/",
)

schema = schemathesis.openapi.from_path(
    OPENAPI_PATH,
    config=schemathesis.Config.from_dict(
        {
            "generation": {"max-examples": EXAMPLES, "database": "none"},
            "request-timeout": 30,
            # The guard's 413 for a JSON body over 16 KiB is a rejection too.
            "checks": {
                "negative_data_rejection": {
                    "expected-statuses": ["400", "401", "403", "404", "413", "415", "422"]
                }
            },
        }
    ),
)
CREDENTIALS_BODY = jsonschema_rs.validator_for(
    schema.raw_schema["components"]["schemas"]["CredentialsRequest"]
)

cases_by_operation: collections.Counter[str] = collections.Counter()
statuses_by_operation: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
fuzz_clock: list[float] = []
"""When the first case was sent and when the last one was answered."""


class SigV4(requests.auth.AuthBase):
    """The IAM caller API Gateway expects: an `execute-api` signature over the body as sent."""

    def __init__(self) -> None:
        self._signer = SigV4Auth(
            Credentials(LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY), "execute-api", REGION
        )

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        signed = AWSRequest(
            method=request.method,
            url=request.url,
            data=body.encode("utf-8") if isinstance(body, str) else body,
        )
        self._signer.add_auth(signed)
        for name in ("Authorization", "X-Amz-Date"):
            request.headers[name] = signed.headers[name]
        return request


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """For POST /credentials, half the time a supported provider's identifier, so the flow itself runs.

    Only in a body that is valid as documented: a schema-violating one stays as generated, so that
    `negative_data_rejection` still holds it to a 4xx.
    """
    operation = context.operation
    documented = isinstance(body, dict) and CREDENTIALS_BODY.is_valid(body)
    if operation is None or operation.label != CREDENTIALS or not documented:
        return st.just(body)
    supported = st.builds(
        lambda site, name: {**body, "identifier": site + name},
        st.sampled_from(PROVIDER_SITES),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-%", min_size=1, max_size=60),
    )
    return st.one_of(st.just(body), supported)


def success_schema_conformance(ctx: CheckContext, response: Any, case: schemathesis.Case) -> bool | None:
    """`response_schema_conformance` for the 2xx answers, the only ones the document describes as built."""
    if 200 <= response.status_code < 300:
        return response_schema_conformance(ctx, response, case)
    return None


CHECKS = [not_a_server_error, content_type_conformance, success_schema_conformance, negative_data_rejection]


@schema.parametrize()
def test_the_api_never_fails_and_answers_as_documented(
    case: schemathesis.Case, local_stack: RunningStack
) -> None:
    label = case.operation.label
    auth = SigV4() if label in IAM_ROUTES else None
    if not fuzz_clock:
        fuzz_clock.append(time.monotonic())
    response = case.call(
        base_url=local_stack.api,
        headers={"Origin": local_stack.app_origin},
        auth=auth,
        # The token POST's 303 to APP_URL is its answer; following it would test the demo page.
        allow_redirects=False,
    )
    cases_by_operation[label] += 1
    statuses_by_operation[label][response.status_code] += 1
    fuzz_clock[1:] = [time.monotonic()]
    case.validate_response(response, checks=CHECKS)


def test_every_operation_was_fuzzed(
    capsys: pytest.CaptureFixture[str], record_testsuite_property: Any
) -> None:
    """Runs after the fuzzing above (pytest keeps a file's order): the fuzzer cannot silently run nothing."""
    operations = sorted(
        (operation.ok() for operation in schema.get_all_operations()), key=lambda operation: operation.label
    )
    total = sum(cases_by_operation.values())
    seconds = fuzz_clock[-1] - fuzz_clock[0] if fuzz_clock else 0.0
    record_testsuite_property("fuzz_cases", total)
    record_testsuite_property("fuzz_seconds", round(seconds, 1))
    with capsys.disabled():
        print(
            f"\nschemathesis {schemathesis.__version__}: {total} cases in {seconds:.1f} s "
            f"(FUZZ_EXAMPLES={EXAMPLES})"
        )
        for operation in operations:
            label = operation.label
            statuses = ", ".join(
                f"{status}: {n}" for status, n in sorted(statuses_by_operation[label].items())
            )
            print(f"  {label:<20} {cases_by_operation[label]:>5} cases ({statuses})")
    too_few = {
        operation.label: cases_by_operation[operation.label]
        for operation in operations
        if cases_by_operation[operation.label] < minimum_cases(operation)
    }
    assert not too_few, (
        f"operations fuzzed with fewer cases than {MIN_CASES_WITH_BODY} (with a body) or "
        f"{MIN_CASES_WITHOUT_INPUT} (without input): {too_few}; run the whole file (the fuzzing test first)"
    )


def minimum_cases(operation: schemathesis.APIOperation) -> int:
    has_input = operation.body or any(True for _ in operation.iter_parameters())
    return MIN_CASES_WITH_BODY if has_input else MIN_CASES_WITHOUT_INPUT
