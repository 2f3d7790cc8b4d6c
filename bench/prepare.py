"""`python -m bench.prepare N` (function environment): N first sign-ins ready to send, for the cold probes.

Each is a token POST whose one-time value and browser binding exist and whose token the emulator will
accept once: N for the function (made through its own POST /token-url) and N for the floor. Prints JSON.
"""

from __future__ import annotations

import json
import os
import sys

from bench.admin import EmulatorAdmin
from bench.bare import BareHandler
from bench.journeys import bare_person
from testkit.browser import Browser
from testkit.events import token_post
from token_url import app
from token_url.cookies import BROWSER_COOKIE


def main() -> None:
    count = int(sys.argv[1])
    admin = EmulatorAdmin(os.environ["BENCH_EMULATOR_URL"])
    bare = BareHandler(os.environ)
    function_events, floor_events = [], []
    for serial in range(count):
        browser = Browser(app.lambda_handler)
        token_url = browser.start("sign_in")
        token = admin.token(token_url, provider="Google")
        function_events.append(token_post(token_url, token, browser.cookies_for(cross_site=True)))
        nonce, binding = bare.start()
        bare_url = bare.token_url(nonce)
        floor_token = admin.token(bare_url, identifier=bare_person(serial)[1])
        floor_events.append(token_post(bare_url, floor_token, [f"{BROWSER_COOKIE}={binding}"]))
    print(json.dumps({"function": function_events, "floor": floor_events}))


if __name__ == "__main__":
    main()
