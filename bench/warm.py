"""The warm process: `python -m bench.warm` with the function's environment and a JSON plan on stdin.

One process, as one warm Lambda container: it imports the handler once and then serves every request.
It prints one JSON object with what it measured:

* `calls`: the AWS calls (counted at the client) and upstream calls (counted by the emulator) of the
  token POST of one warm sign-in, link and replay, for the function and for the floor;
* `overhead`: per flow, the token POST's milliseconds through `lambda_handler` and through the floor's
  bare handler, alternating one of each so both meet the same machine state;
* `connections`: TCP connections the emulator accepted from the function over the run, by host;
* or, with `memory` in the plan, only the memory run: RSS at request `memory_from` and at `memory_to`
  (each after a collection) and the peak.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import types
from typing import Any, cast

from bench.admin import EmulatorAdmin
from bench.measure import AwsCallCounter, by_service, peak_rss_bytes, rss_bytes

aws_calls = AwsCallCounter()
aws_calls.install()  # before the handler builds its clients, so they carry the counter

import requests  # noqa: E402
from botocore.client import BaseClient  # noqa: E402

from bench.bare import BareHandler  # noqa: E402
from bench.journeys import FLOWS, Journeys, Timed, bare_person  # noqa: E402
from testkit.events import token_post  # noqa: E402
from token_url import app, observability  # noqa: E402
from token_url.cookies import BROWSER_COOKIE  # noqa: E402

Report = dict[str, Any]


class BareJourneys:
    """The floor's token POSTs, prepared as the function's are (not timed) and timed the same way."""

    def __init__(self, timed: Timed, bare: BareHandler, admin: EmulatorAdmin) -> None:
        self.handler = timed
        self._bare = bare
        self._admin = admin
        self._serial = 0

    def run(self, flow: str) -> None:
        self._serial += 1
        person, identifier = bare_person(self._serial)
        session = None
        if flow == "link":
            session = self._bare.registration_session(self._admin.access_token(person))
        nonce, browser = self._bare.start(session=session)
        token_url = self._bare.token_url(nonce)
        event = token_post(
            token_url, self._admin.token(token_url, identifier=identifier), [f"{BROWSER_COOKIE}={browser}"]
        )
        if flow == "replay":
            self._bare(event, None)  # the first submission, not timed
        self.handler.label = flow
        try:
            reply = self.handler(event, None)
        finally:
            self.handler.label = None
        expected = "linked" if flow == "link" else "signed_in"
        if not reply["headers"]["Location"].endswith(f"result={expected}"):
            raise RuntimeError(f"the floor's {flow} ended with {reply['headers']['Location']}")


def untraced(bare: BareHandler) -> BareHandler:
    """The floor without X-Ray: `import app` built the Tracer, which patched botocore and requests for
    the whole process. The floor's clients and session get the unpatched methods (the call counter,
    under X-Ray's wrapper, stays), so the floor pays for no tracing, as it should not."""
    clients: list[Any] = [bare.dynamodb, bare.kms, bare.secrets, bare.events]
    for client in clients:
        client._make_api_call = types.MethodType(_unwrapped(BaseClient, "_make_api_call"), client)
    untraced_session(bare.http)
    return bare


def untraced_session(session: requests.Session) -> requests.Session:
    """A requests Session that X-Ray's patch does not trace (the floor's, and the harness's own)."""
    for name in ("request", "prepare_request"):  # what aws_xray_sdk.ext.requests wraps
        setattr(session, name, types.MethodType(_unwrapped(requests.Session, name), session))
    return session


def _unwrapped(owner: type, name: str) -> Any:
    method = owner.__dict__[name]
    return getattr(method, "__wrapped__", method)


class XRayEntities:
    """Counts the segments and subsegments the X-Ray SDK sends, by who was running: function or floor."""

    def __init__(self) -> None:
        self.sent = {"function": 0, "floor": 0}
        self.side = "function"
        emitter = cast(Any, observability.tracer.provider).emitter
        send = emitter.send_entity

        def counting(entity: Any) -> None:
            self.sent[self.side] += 1
            send(entity)

        emitter.send_entity = counting


def calls_per_flow(sides: dict[str, Journeys | BareJourneys], entities: XRayEntities) -> Report:
    measured: Report = {}
    for who, journeys in sides.items():
        entities.side = who
        journeys.handler.count = True
        try:
            for flow in FLOWS:
                journeys.run(flow)
                calls = journeys.handler.last_calls
                measured.setdefault(flow, {})[who] = {**calls, "by_service": by_service(calls["aws"])}
        finally:
            journeys.handler.count = False
    return measured


def memory(journeys: Journeys, measure_from: int, measure_to: int) -> Report:
    """Serve every flow in turn until `measure_to` invocations, reading RSS after a collection at
    `measure_from` and then at every tenth of the way to the end (for a slope, not only two points)."""
    invocations = journeys.handler
    invocations.record = False  # the timings of a memory run are not kept: they would be its growth
    step = max(1, (measure_to - measure_from) // 10)
    checkpoints: list[tuple[int, int]] = []
    next_at = measure_from
    while True:
        if invocations.invocations >= next_at:
            gc.collect()
            checkpoints.append((invocations.invocations, rss_bytes()))
            if invocations.invocations >= measure_to:
                break
            next_at = min(next_at + step, measure_to)
        for flow in FLOWS:
            journeys.run(flow)
    return {
        "from_request": checkpoints[0][0],
        "rss_from": checkpoints[0][1],
        "to_request": checkpoints[-1][0],
        "rss_to": checkpoints[-1][1],
        "checkpoints": checkpoints,
        "slope_bytes_per_1000": _slope(checkpoints) * 1000,
        "peak_rss": peak_rss_bytes(),
    }


def _slope(points: list[tuple[int, int]]) -> float:
    """Least-squares growth of RSS per request over the checkpoints."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0


def main() -> None:
    plan: Report = json.load(sys.stdin)
    admin = EmulatorAdmin(os.environ["BENCH_EMULATOR_URL"])
    untraced_session(admin.http)  # the harness's calls are no one's: not traced, not counted as entities
    function = Journeys(Timed(app.lambda_handler, aws=aws_calls, admin=admin), admin)
    if "memory_to" in plan:
        print(json.dumps({"memory": memory(function, plan["memory_from"], plan["memory_to"])}))
        return
    accepted_before, connections_before = admin.connections()
    bare = untraced(BareHandler(os.environ))
    floor = BareJourneys(Timed(bare, aws=aws_calls, admin=admin), bare, admin)
    entities = XRayEntities()

    def both(flow: str) -> None:
        entities.side = "function"
        function.run(flow)
        entities.side = "floor"
        floor.run(flow)

    for _ in range(plan["warmup"]):
        for flow in FLOWS:
            both(flow)
    report: Report = {
        "calls": calls_per_flow({"function": function, "floor": floor}, entities),
    }
    function.handler.samples.clear()
    floor.handler.samples.clear()
    for _ in range(plan["iterations"]):
        for flow in FLOWS:
            both(flow)
    report["overhead"] = {"function": function.handler.samples, "floor": floor.handler.samples}
    accepted_after, after = admin.connections()
    opened = {host: count - connections_before.get(host, 0) for host, count in after.items()}
    report["connections"] = {
        "by_host": {host: count for host, count in opened.items() if count},
        # Every connection accepted meanwhile has a host: none closed before its first request unseen.
        "accepted": accepted_after - accepted_before,
        "invocations": function.handler.invocations,
    }
    report["xray_entities_sent"] = entities.sent
    print(json.dumps(report))


if __name__ == "__main__":
    main()
