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
from typing import Any

from bench.measure import AwsCallCounter, by_service, peak_rss_bytes, rss_bytes
from bench.world import EmulatorAdmin

aws_calls = AwsCallCounter()
aws_calls.install()  # before the handler builds its clients, so they carry the counter

import app  # noqa: E402
from bench.bare import BareHandler  # noqa: E402
from bench.journeys import FLOWS, Journeys, Timed, bare_person, token_post  # noqa: E402

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
        token_url = f"{os.environ['PUBLIC_BASE_URL']}/token?nonce={nonce}"
        event = token_post(
            token_url, self._admin.token(token_url, identifier), [f"__Host-tu_browser={browser}"]
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


def calls_per_flow(sides: dict[str, Journeys | BareJourneys]) -> Report:
    measured: Report = {}
    for who, journeys in sides.items():
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
    """Serve every flow in turn until `measure_to` invocations; RSS at `measure_from` and at the end."""
    invocations = journeys.handler
    start: tuple[int, int] | None = None
    while invocations.invocations < measure_to:
        for flow in FLOWS:
            journeys.run(flow)
        if start is None and invocations.invocations >= measure_from:
            gc.collect()
            start = (invocations.invocations, rss_bytes())
    gc.collect()
    assert start is not None
    return {
        "from_request": start[0],
        "rss_from": start[1],
        "to_request": invocations.invocations,
        "rss_to": rss_bytes(),
        "peak_rss": peak_rss_bytes(),
    }


def main() -> None:
    plan: Report = json.load(sys.stdin)
    admin = EmulatorAdmin(os.environ["BENCH_EMULATOR_URL"])
    function = Journeys(Timed(app.lambda_handler, aws=aws_calls, admin=admin), admin)
    if "memory_to" in plan:
        print(json.dumps({"memory": memory(function, plan["memory_from"], plan["memory_to"])}))
        return
    connections_before = admin.connections()
    bare = BareHandler(os.environ)
    floor = BareJourneys(Timed(bare, aws=aws_calls, admin=admin), bare, admin)
    for _ in range(plan["warmup"]):
        for flow in FLOWS:
            function.run(flow)
            floor.run(flow)
    report: Report = {"calls": calls_per_flow({"function": function, "floor": floor})}
    function.handler.samples.clear()
    floor.handler.samples.clear()
    for _ in range(plan["iterations"]):
        for flow in FLOWS:
            function.run(flow)
            floor.run(flow)
    report["overhead"] = {"function": function.handler.samples, "floor": floor.handler.samples}
    after = admin.connections()
    opened = {host: count - connections_before.get(host, 0) for host, count in after.items()}
    report["connections"] = {
        "by_host": {host: count for host, count in opened.items() if count},
        "invocations": function.handler.invocations,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
