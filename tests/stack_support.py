"""The local stack (`make run`) in a subprocess, and a browser that talks to it over real HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests

from devtools.local_stack import AUDIT_COMPONENT, MOTO_COMPONENT
from testkit.browser import StoredCookie, cookies_to_send, store_cookies

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_SECONDS = 60.0
# What a developer's shell would have; nothing of the test process's fake AWS or function settings.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONHASHSEED")


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    components: dict[str, str]
    app_url: str
    output: list[str] = field(default_factory=list)
    """Every line the stack wrote after `ready`, as it arrives."""

    @property
    def api(self) -> str:
        return self.components["token URL API (local HTTP API gateway)"]

    @property
    def emulator(self) -> str:
        return self.components["Identity Cloud emulator"]

    @property
    def aws(self) -> str:
        return self.components[MOTO_COMPONENT]

    @property
    def audit_queue(self) -> str:
        """The `token-url-audit` SQS queue's URL at moto: every audit event the function publishes."""
        return self.components[AUDIT_COMPONENT]

    @property
    def app_origin(self) -> str:
        parts = urlsplit(self.app_url)
        return f"{parts.scheme}://{parts.netloc}"

    def _settled(self, settle_seconds: float) -> int:
        last = -1
        while last != len(self.output):
            last = len(self.output)
            time.sleep(settle_seconds)
        return last

    def mark(self, settle_seconds: float = 0.3) -> int:
        """A position in `output` after every line of earlier requests (the gateway logs after replying)."""
        return self._settled(settle_seconds)

    def output_after(self, mark: int, settle_seconds: float = 0.3) -> list[str]:
        """Lines written since `mark`, once the stack has been quiet for a moment."""
        self._settled(settle_seconds)
        return self.output[mark:]

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return int(self.process.returncode)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_stack(extra_env: dict[str, str] | None = None, *, sigint_ignored: bool = False) -> RunningStack:
    """`python -m devtools.local_stack` on free ports, as `make run` starts it; returns once it is ready.

    `sigint_ignored`: started as `make run &` is by a shell without job control, with SIGINT ignored.
    """
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    env.update({"PORT": "0", "PYTHONUNBUFFERED": "1"})
    env.update(extra_env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.local_stack"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_ignore_sigint if sigint_ignored else None,  # noqa: PLW1509 - no threads run here yet
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    components: dict[str, str] = {}
    startup: list[str] = []
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while True:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            process.kill()
            raise RuntimeError("the local stack did not start in time:\n" + "\n".join(startup)) from None
        if line is None:
            raise RuntimeError("the local stack exited while starting:\n" + "\n".join(startup))
        startup.append(line)
        if line.startswith("ready: open "):
            app_url = line.removeprefix("ready: open ").split(" ", 1)[0]
            break
        name, _, url = line.rpartition(" ")
        if url.startswith("http://"):
            components[name.strip()] = url
    stack = RunningStack(process=process, components=components, app_url=app_url)

    def collect() -> None:
        while (line := lines.get()) is not None:
            stack.output.append(line)

    threading.Thread(target=collect, daemon=True).start()
    return stack


class _Forms(HTMLParser):
    """The forms of an HTML page: action and input values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append({"action": attributes.get("action", ""), "fields": {}})
        elif tag == "input" and self.forms and "name" in attributes:
            self.forms[-1]["fields"][attributes["name"]] = attributes.get("value", "")


def page_form(html: str) -> tuple[str, dict[str, str]]:
    parser = _Forms()
    parser.feed(html)
    assert parser.forms, f"no form on the page:\n{html}"
    form = parser.forms[0]
    return str(form["action"]), dict(form["fields"])


@dataclass
class TokenPost:
    """Social Login's cross-site form POST of the token, as the emulator's page makes it."""

    action: str
    token: str


class HttpBrowser:
    """A browser over real HTTP: cookies of the API's site, sent as SameSite decides."""

    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack
        self.http = requests.Session()
        self.jar: dict[str, StoredCookie] = {}
        self.seen_secrets: set[str] = set()
        """Cookie values, tokens and access tokens this browser handled: none may reach a log."""

    def _send(self, method: str, url: str, *, cross_site: bool, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        to_api = urlsplit(url).netloc == urlsplit(self.stack.api).netloc
        if to_api:
            cookies = cookies_to_send(self.jar, cross_site=cross_site)
            if cookies:
                headers["Cookie"] = "; ".join(cookies)
        response = self.http.request(
            method, url, headers=headers, allow_redirects=False, timeout=30, **kwargs
        )
        if to_api:
            store_cookies(self.jar, response.raw.headers.getlist("Set-Cookie"))
            self.seen_secrets.update(cookie.value for cookie in self.jar.values())
        return response

    def page_json(self, method: str, path: str, payload: Any = None) -> requests.Response:
        """A fetch() from the app's page: same-site, with the app's Origin and every cookie."""
        headers = {"Origin": self.stack.app_origin}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        body = None if payload is None else json.dumps(payload)
        return self._send(method, self.stack.api + path, cross_site=False, headers=headers, data=body)

    def start(self, intent: str) -> str:
        reply = self.page_json("POST", "/token-url", {"intent": intent})
        assert reply.status_code == 200, reply.text
        token_url = str(reply.json()["token_url"])
        self.seen_secrets.update(value for _, value in parse_qsl(urlsplit(token_url).query))
        return token_url

    def authenticate(self, token_url: str, provider: str, user: str) -> TokenPost:
        """The emulator's provider pages: choose a user, get the page that auto-POSTs the token."""
        start = self._send(
            "GET",
            f"{self.stack.emulator}/{provider}/start?{urlencode({'token_url': token_url})}",
            cross_site=True,
        )
        assert start.status_code == 200, start.text
        action, fields = page_form(start.text)
        fields["user"] = user
        callback = self._send("POST", self.stack.emulator + action, cross_site=True, data=fields)
        assert callback.status_code == 200, callback.text
        action, fields = page_form(callback.text)
        self.seen_secrets.add(fields["token"])
        return TokenPost(action=action, token=fields["token"])

    def post_token(self, post: TokenPost) -> requests.Response:
        """The auto-submitted form on the emulator's site: a cross-site POST, only SameSite=None cookies."""
        return self._send(
            "POST",
            post.action,
            cross_site=True,
            headers={"Origin": self.stack.emulator, "Content-Type": "application/x-www-form-urlencoded"},
            data=urlencode({"token": post.token}),
        )

    def social(self, intent: str, provider: str, user: str) -> requests.Response:
        return self.post_token(self.authenticate(self.start(intent), provider, user))

    def sign_in_to_registration(self, user: str) -> requests.Response:
        """The demo site's stand-in for the Registration widget, then `POST /session`."""
        minted = self.http.post(
            f"{self.stack.api}/demo/registration",
            json={"user": user},
            headers={"Origin": self.stack.app_origin},
            timeout=30,
        )
        assert minted.status_code == 200, minted.text
        access_token = minted.json()["access_token"]
        self.seen_secrets.add(access_token)
        return self.page_json("POST", "/session", {"access_token": access_token, "expires_in": 3600})

    def session(self) -> requests.Response:
        return self.page_json("GET", "/session")


def outcome(response: requests.Response) -> dict[str, str]:
    """`result` or `error` of a token redirect to APP_URL."""
    return dict(parse_qsl(urlsplit(response.headers.get("Location", "")).query))


def port_is_closed(url: str) -> bool:
    parts = urlsplit(url)
    with contextlib.suppress(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{parts.port}/", timeout=2)
        return False
    return True
