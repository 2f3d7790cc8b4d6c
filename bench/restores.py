"""`python -m bench.restores` (function environment): two restores of one snapshot, and what each issues.

One process imports the function and takes the snapshot (testkit/snapstart.py). Forked children are
restores of it: two run the after-restore hooks and then a sign-in, reporting the one-time value of its
token URL, the session id of its cookie (both as digests: never printed in clear) and a draw from `random`;
two more, the control, only draw from `random` without the hooks, which shows the fork does copy the
snapshot's state (their draws are equal). Prints one JSON line.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench.admin import EmulatorAdmin
from testkit import snapstart
from testkit.browser import Browser
from token_url import app
from token_url.cookies import SESSION_COOKIE


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def signed_in_restore() -> dict[str, Any]:
    """A restored container's first sign-in: what it issued, as digests, and its next `random` draw."""
    browser = Browser(app.lambda_handler)
    token_url = browser.start("sign_in")
    token = EmulatorAdmin(os.environ["BENCH_EMULATOR_URL"]).token(token_url, provider="Google")
    reply = browser.submit_token(token_url, token)
    session_id = browser.cookie(SESSION_COOKIE)
    if "result=signed_in" not in reply.location or not session_id:
        raise RuntimeError(f"the restored sign-in failed: {reply.status} {reply.location}")
    nonce = parse_qs(urlsplit(token_url).query)["nonce"][0]
    return {"one_time_value": _digest(nonce), "session_id": _digest(session_id), "random": random.random()}  # noqa: S311 - what a restore must reseed


def main() -> None:
    snapstart.take_snapshot()
    restores = snapstart.restored_children(2, signed_in_restore)
    control = snapstart.restored_children(2, random.random, run_hooks=False)
    print(json.dumps({"restores": restores, "without_hooks": control}))


if __name__ == "__main__":
    main()
