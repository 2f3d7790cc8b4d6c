"""The three flows the benchmark times, driven as a browser drives them, through any handler.

A journey's preparation (the page's POST /token-url, the Registration session, the provider's token)
is done through the same handler but is not what is timed: `Timed` records the token POST only, which
is the request a person waits on after the provider's page.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from collections.abc import Callable
from typing import Any

from bench.admin import EmulatorAdmin
from bench.measure import AwsCallCounter
from testkit.browser import Browser

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
FLOWS = ("sign_in", "link", "replay")


def _new_trace_header() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=1"


# Two headers in turn: each invocation's differs from the one before, so X-Ray starts a new trace, as
# for a new invocation; and no new value is ever written to the environment, because glibc keeps every
# distinct value setenv() was given (~140 bytes each), a growth of the harness, not of the function.
_TRACE_HEADERS = itertools.cycle([_new_trace_header(), _new_trace_header()])


def trace_header() -> str:
    """A new invocation's X-Ray trace header, sampled: as at low traffic, where X-Ray's default rule
    (the first request each second, then 5%) samples nearly every sign-in. The costlier case."""
    return next(_TRACE_HEADERS)


class Timed:
    """A handler wrapper that times the requests made while `label` is set, as Lambda would invoke them.

    Each invocation gets a trace header other than the previous one's, as the Lambda runtime sets one per
    invocation.
    With `count` set, the timed request's calls are recorded too (outside the timed region): AWS calls
    at the client, upstream calls at the emulator.
    """

    def __init__(
        self, handler: Handler, *, aws: AwsCallCounter | None = None, admin: EmulatorAdmin | None = None
    ) -> None:
        self.handler = handler
        self.label: str | None = None
        self.samples: dict[str, list[float]] = {}
        self.invocations = 0
        self.record = True
        self.count = False
        self.last_calls: dict[str, dict[str, int]] = {}
        self._aws = aws
        self._admin = admin

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.invocations += 1
        os.environ["_X_AMZN_TRACE_ID"] = trace_header()
        if self.label is None:
            return self.handler(event, context)
        if not (self.count and self._aws and self._admin):
            return self._timed(event, context)
        self._aws.take()
        upstream_before = self._admin.calls()
        response = self._timed(event, context)
        upstream = {name: count - upstream_before.get(name, 0) for name, count in self._admin.calls().items()}
        self.last_calls = {
            "aws": dict(sorted(self._aws.take().items())),
            "upstream": {name: count for name, count in sorted(upstream.items()) if count},
        }
        return response

    def _timed(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        assert self.label is not None
        started = time.perf_counter()
        response = self.handler(event, context)
        if self.record:
            self.samples.setdefault(self.label, []).append((time.perf_counter() - started) * 1000)
        return response


class Journeys:
    """Sign-ins, links and replays by new browsers, outcomes checked (a failed flow is no datum)."""

    def __init__(self, handler: Timed, admin: EmulatorAdmin) -> None:
        self.handler = handler
        self._admin = admin
        self._serial = 0

    def _person(self) -> str:
        self._serial += 1
        return f"bench-{os.getpid()}-{self._serial}"

    def sign_in(self, *, timed: bool = True) -> tuple[Browser, str, str]:
        """One sign-in; returns the browser, the token URL and the token, for a replay."""
        browser = Browser(self.handler)
        token_url = browser.start("sign_in")
        token = self._admin.token(token_url, provider="Google")
        reply = (
            self._timed("sign_in", browser, token_url, token)
            if timed
            else browser.submit_token(token_url, token)
        )
        _expect(reply.outcome, "signed_in", reply.location)
        return browser, token_url, token

    def link(self) -> None:
        browser = Browser(self.handler)
        person = self._person()
        created = browser.page_json("POST", "/session", {"access_token": self._admin.access_token(person)})
        if created.status != 200:
            raise RuntimeError(f"POST /session answered {created.status}: {created.body[:200]}")
        token_url = browser.start("link")
        token = self._admin.token(token_url, provider="Facebook")
        reply = self._timed("link", browser, token_url, token)
        _expect(reply.outcome, "linked", reply.location)

    def replay(self) -> None:
        """A sign-in (not timed), then the very same submission again (timed): the stored result answers."""
        browser, token_url, token = self.sign_in(timed=False)
        reply = self._timed("replay", browser, token_url, token)
        _expect(reply.outcome, "signed_in", reply.location)

    def run(self, flow: str) -> None:
        if flow == "sign_in":
            self.sign_in()
        elif flow == "link":
            self.link()
        else:
            self.replay()

    def _timed(self, label: str, browser: Browser, token_url: str, token: str) -> Any:
        self.handler.label = label
        try:
            return browser.submit_token(token_url, token)
        finally:
            self.handler.label = None


def _expect(outcome: dict[str, str], result: str, location: str) -> None:
    if outcome.get("result") != result:
        raise RuntimeError(f"expected {result}, the function redirected to {location}")


def bare_person(serial: int) -> tuple[str, str]:
    """The floor's person: a Capture user id and a social identifier of its own."""
    person = f"bare-{os.getpid()}-{serial}"
    return person, f"https://bare.example/{person}"
