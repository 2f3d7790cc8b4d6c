"""`python -m bench.prepare < plan.json` (function environment): token POSTs ready to send, for the probes.

The plan gives a count per flow, `{"sign_in": N, "link": M}`. Each token POST's one-time value and
browser binding exist and its token the emulator will accept once, for the function (made through its
own routes) and as many for the floor (through its bare handler). A link's Registration session exists
beforehand on both sides. Prints JSON: `{"sign_in": {"function": [...], "floor": [...]}, "link": ...}`.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from typing import Any

from bench.admin import EmulatorAdmin
from bench.bare import BareHandler
from bench.journeys import bare_person
from testkit.browser import Browser
from testkit.events import token_post
from token_url import app
from token_url.cookies import BROWSER_COOKIE

Event = dict[str, Any]


class Preparer:
    """Makes the token POSTs of first requests, the function's and the floor's, ready to be sent once."""

    def __init__(self, admin: EmulatorAdmin, bare: BareHandler) -> None:
        self._admin = admin
        self._bare = bare
        self._serial = itertools.count(1)

    def function_sign_in(self) -> Event:
        browser = Browser(app.lambda_handler)
        token_url = browser.start("sign_in")
        token = self._admin.token(token_url, provider="Google")
        return token_post(token_url, token, browser.cookies_for(cross_site=True))

    def function_link(self) -> Event:
        browser = Browser(app.lambda_handler)
        person, _ = bare_person(next(self._serial))
        access_token = self._admin.access_token(person)
        created = browser.page_json("POST", "/session", {"access_token": access_token})
        if created.status != 200:
            raise RuntimeError(f"POST /session answered {created.status}: {created.body[:200]}")
        token_url = browser.start("link")
        token = self._admin.token(token_url, provider="Facebook")
        return token_post(token_url, token, browser.cookies_for(cross_site=True))

    def floor(self, flow: str) -> Event:
        person, identifier = bare_person(next(self._serial))
        session = None
        if flow == "link":
            session = self._bare.registration_session(self._admin.access_token(person))
        nonce, binding = self._bare.start(session=session)
        token_url = self._bare.token_url(nonce)
        token = self._admin.token(token_url, identifier=identifier)
        return token_post(token_url, token, [f"{BROWSER_COOKIE}={binding}"])


def main() -> None:
    plan: dict[str, int] = json.load(sys.stdin)
    preparer = Preparer(EmulatorAdmin(os.environ["BENCH_EMULATOR_URL"]), BareHandler(os.environ))
    function = {"sign_in": preparer.function_sign_in, "link": preparer.function_link}
    prepared = {
        flow: {
            "function": [function[flow]() for _ in range(count)],
            "floor": [preparer.floor(flow) for _ in range(count)],
        }
        for flow, count in plan.items()
    }
    print(json.dumps(prepared))


if __name__ == "__main__":
    main()
