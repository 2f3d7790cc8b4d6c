"""`make run` over real HTTP: every flow as a browser drives it, through the local gateway and emulator."""

from __future__ import annotations

import json
import signal
import socket
import time
import uuid
from urllib.parse import urlsplit

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from devtools.audit_events import drain
from devtools.local_stack import AUDIT_COMPONENT, MOTO_COMPONENT
from devtools.sam_events import load_events
from emulator import DEFAULT_API_KEY
from tests.stack_support import HttpBrowser, RunningStack, outcome, port_is_closed, start_stack
from token_url.cookies import BROWSER_COOKIE, SESSION_COOKIE
from token_url.secure_values import digest, session_handle


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_the_stack_reports_each_component_and_is_healthy(local_stack: RunningStack) -> None:
    assert set(local_stack.components) == {
        MOTO_COMPONENT,
        AUDIT_COMPONENT,
        "Identity Cloud emulator",
        "token URL API (local HTTP API gateway)",
        "demo site",
    }
    health = requests.get(f"{local_stack.api}/health", timeout=10)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    # The emulator is another site than the API and the app, so the token POST is truly cross-site.
    assert urlsplit(local_stack.emulator).hostname == "127.0.0.1"
    assert urlsplit(local_stack.api).hostname == urlsplit(local_stack.app_url).hostname == "localhost"
    demo = requests.get(local_stack.components["demo site"], timeout=10)
    assert demo.status_code == 200
    assert "Token URL demo" in demo.text
    bare = requests.get(local_stack.api + "/demo", allow_redirects=False, timeout=10)
    assert (bare.status_code, bare.headers["Location"]) == (308, "/demo/")
    root = requests.get(local_stack.api + "/", timeout=10)
    assert (root.url, root.status_code) == (local_stack.components["demo site"], 200)


def test_sign_in_with_the_cross_site_token_post(local_stack: RunningStack) -> None:
    browser = HttpBrowser(local_stack)
    user = unique("alice")
    post = browser.authenticate(browser.start("sign_in"), "google", user)
    # The auto-submitted POST from the emulator's site carries the SameSite=None binding cookie only.
    assert set(browser.jar) == {BROWSER_COOKIE}
    redirect = browser.post_token(post)
    assert redirect.status_code == 303
    assert redirect.headers["Location"].startswith(local_stack.app_url)
    assert outcome(redirect) == {"result": "signed_in"}
    assert SESSION_COOKIE in browser.jar
    view = browser.session().json()
    assert view["signed_in"] is True
    assert (view["provider"], view["identifier"]) == ("Google", f"https://www.google.com/profile/{user}")


def test_a_sign_in_is_one_audit_event_in_the_token_url_audit_queue(local_stack: RunningStack) -> None:
    browser = HttpBrowser(local_stack)
    user = unique("audit")
    identifier = f"https://www.google.com/profile/{user}"
    post = browser.authenticate(browser.start("sign_in"), "google", user)
    assert outcome(browser.post_token(post)) == {"result": "signed_in"}
    # The demo shows it from its own queue...
    demo = requests.get(local_stack.components["demo site"] + "events.json", timeout=10).json()
    assert identifier in [event["detail"]["identifier"] for event in demo["events"]]
    # ...and the developer's queue, read at moto's endpoint as anyone would, still holds it.
    sqs = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("sqs", endpoint_url=local_stack.aws)
    events = drain(sqs, local_stack.audit_queue)
    [event] = [event for event in events if event["detail"]["identifier"] == identifier]
    assert event["source"] == "token-url"
    assert event["detail-type"] == "SignedIn"
    detail = event["detail"]
    assert (detail["outcome"], detail["provider"], detail["uuid"]) == ("signed_in", "Google", None)
    assert detail["source_ip"] == "127.0.0.1"
    assert detail["user_agent"].startswith("python-requests/")
    assert detail["request_id"]
    # The session's handle: an HMAC of its stored key with the deployment's secret (the apiKey here).
    session_pk = digest("session", browser.jar[SESSION_COOKIE].value)
    assert detail["session"] == session_handle(session_pk, key=DEFAULT_API_KEY)
    message = json.dumps(event)
    assert not [secret for secret in browser.seen_secrets if secret in message]


def test_a_replayed_token_post_gets_the_same_outcome_and_session(local_stack: RunningStack) -> None:
    browser = HttpBrowser(local_stack)
    post = browser.authenticate(browser.start("sign_in"), "facebook", unique("carol"))
    first = browser.post_token(post)
    session_after_first = browser.jar[SESSION_COOKIE].value
    again = browser.post_token(post)
    assert outcome(first) == outcome(again) == {"result": "signed_in"}
    assert browser.jar[SESSION_COOKIE].value == session_after_first


def test_a_token_posted_by_another_browser_is_refused(local_stack: RunningStack) -> None:
    victim, attacker = HttpBrowser(local_stack), HttpBrowser(local_stack)
    post = attacker.authenticate(attacker.start("sign_in"), "google", unique("mallory"))
    victim.start("sign_in")  # the victim has a binding cookie of its own
    assert outcome(victim.post_token(post)) == {"error": "token_url_invalid"}
    assert victim.session().status_code == 401


def test_link_then_conflict_then_sign_out(local_stack: RunningStack) -> None:
    identity_user = unique("dave")
    first, second = HttpBrowser(local_stack), HttpBrowser(local_stack)
    first_account, second_account = unique("demo-user"), unique("demo-user")

    assert first.sign_in_to_registration(first_account).status_code == 200
    linked = first.social("link", "google", identity_user)
    assert outcome(linked) == {"result": "linked"}
    identifier = f"https://www.google.com/profile/{identity_user}"
    assert first.session().json()["linked"] == [{"identifier": identifier, "provider": "Google"}]
    links = requests.get(
        f"{local_stack.emulator}/_emulator/links", params={"user_id": first_account}, timeout=10
    )
    assert links.json()["identifiers"] == [identifier]

    assert second.sign_in_to_registration(second_account).status_code == 200
    conflict = second.social("link", "google", identity_user)
    assert outcome(conflict) == {"error": "already_linked"}
    assert second.session().json()["linked"] == []
    links = requests.get(
        f"{local_stack.emulator}/_emulator/links", params={"user_id": second_account}, timeout=10
    )
    assert links.json()["identifiers"] == []

    signed_out = first.page_json("DELETE", "/session")
    assert signed_out.status_code == 204
    assert SESSION_COOKIE not in first.jar
    assert first.session().status_code == 401


def test_the_session_names_the_account_and_an_unlink_shows_at_once(local_stack: RunningStack) -> None:
    browser = HttpBrowser(local_stack)
    account, identity_user = unique("demo-user"), unique("frank")
    assert browser.sign_in_to_registration(account).status_code == 200
    assert outcome(browser.social("link", "facebook", identity_user)) == {"result": "linked"}
    identifier = f"https://www.facebook.com/profile/{identity_user}"
    view = browser.session().json()
    assert (view["account"]["display_name"], view["account"]["email"]) == (account, f"{account}@example.com")
    assert view["linked"] == [{"identifier": identifier, "provider": "Facebook"}]

    unlinked = browser.page_json("POST", "/unlink", {"identifier": identifier})

    assert (unlinked.status_code, unlinked.json()) == (200, {"result": "unlinked"})
    assert browser.session().json()["linked"] == []
    links = requests.get(f"{local_stack.emulator}/_emulator/links", params={"user_id": account}, timeout=10)
    assert links.json()["identifiers"] == []
    again = browser.page_json("POST", "/unlink", {"identifier": identifier})
    assert (again.status_code, again.json()["error"]) == (404, "not_linked")


def test_linking_needs_a_registration_session(local_stack: RunningStack) -> None:
    browser = HttpBrowser(local_stack)
    reply = browser.page_json("POST", "/token-url", {"intent": "link"})
    assert (reply.status_code, reply.json()["error"]) == (401, "unauthorized")


def access_lines(lines: list[str]) -> list[dict[str, object]]:
    parsed = [json.loads(line) for line in lines]
    return [line for line in parsed if line.get("service") == "local-gateway"]


def test_the_gateway_answers_unknown_routes_itself(local_stack: RunningStack) -> None:
    mark = local_stack.mark()
    for method, path in [("GET", "/token"), ("GET", "/nope"), ("PUT", "/session")]:
        reply = requests.request(method, local_stack.api + path, timeout=10)
        assert (reply.status_code, reply.json()) == (404, {"message": "Not Found"})
    requests.get(f"{local_stack.api}/health", timeout=10)
    lines = access_lines(local_stack.output_after(mark))
    assert [(line["path"], line["status"]) for line in lines] == [
        ("/token", 404),
        ("/nope", 404),
        ("/session", 404),
        ("/health", 200),
    ]
    # API Gateway never invokes the function for a route it does not have; /health is invoked.
    assert ["function_request_id" in line for line in lines] == [False, False, False, True]


def _signed(url: str, body: str, secret: str = "testing", access_key: str = "testing") -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(access_key, secret), "execute-api", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def test_credentials_need_a_valid_sigv4_signature(local_stack: RunningStack) -> None:
    url = f"{local_stack.api}/credentials"
    body = json.dumps(
        {"identifier": f"https://www.facebook.com/profile/{unique('erin')}", "token": "EAAB" + "x" * 40}
    )

    unsigned = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
    assert (unsigned.status_code, unsigned.json()) == (403, {"message": "Forbidden"})

    wrong_secret = requests.post(
        url, data=body, headers=_signed(url, body, secret="not-the-secret"), timeout=10
    )
    assert wrong_secret.status_code == 403

    tampered = requests.post(url, data=body.replace("erin", "fred"), headers=_signed(url, body), timeout=10)
    assert tampered.status_code == 403

    stored = requests.post(url, data=body, headers=_signed(url, body), timeout=10)
    assert stored.status_code == 200, stored.text
    assert stored.json()["stored"] is True


def test_logs_are_json_lines_without_secrets(local_stack: RunningStack) -> None:
    mark = local_stack.mark()
    browser, stranger = HttpBrowser(local_stack), HttpBrowser(local_stack)
    identity = unique("grace")
    browser.social("sign_in", "google", identity)
    browser.sign_in_to_registration(unique("demo-user"))
    browser.social("link", "twitter", identity)
    # Failures log more: a token from another browser, a conflict, an unsigned server call.
    stranger.start("sign_in")
    stranger.post_token(browser.authenticate(browser.start("sign_in"), "google", unique("heidi")))
    stranger.sign_in_to_registration(unique("demo-user"))
    stranger.social("link", "twitter", identity)
    requests.post(f"{local_stack.api}/credentials", json={"identifier": "x", "token": "y"}, timeout=10)
    browser.page_json("DELETE", "/session")
    lines = local_stack.output_after(mark)
    messages = [
        json.loads(line).get("message") for line in lines
    ]  # every line is JSON, as CloudWatch gets it
    assert "Signed in" in messages
    assert "Linked" in messages
    assert any(line.get("status") == 403 for line in access_lines(lines))
    secrets = browser.seen_secrets | stranger.seen_secrets | {DEFAULT_API_KEY}
    assert len(secrets) > 10
    leaks = [(secret, line) for secret in secrets for line in lines if secret in line]
    assert leaks == []


def test_another_app_url_gets_cors_and_no_demo() -> None:
    app_origin = "http://localhost:5173"
    stack = start_stack({"APP_URL": f"{app_origin}/account"})
    try:
        assert "demo site" not in stack.components
        assert stack.app_url == f"{app_origin}/account"
        preflight = requests.options(
            f"{stack.api}/token-url",
            headers={"Origin": app_origin, "Access-Control-Request-Method": "POST"},
            timeout=10,
        )
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == app_origin
        assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
        reply = requests.post(
            f"{stack.api}/token-url", json={"intent": "sign_in"}, headers={"Origin": app_origin}, timeout=10
        )
        assert reply.status_code == 200
        assert reply.headers["Access-Control-Allow-Origin"] == app_origin
        assert requests.get(f"{stack.api}/demo/", timeout=10).status_code == 404
        assert requests.get(f"{stack.api}/", timeout=10).status_code == 404  # no demo to lead to
    finally:
        # SIGTERM, as a process manager stops it, also ends it cleanly.
        assert stack.stop(signal.SIGTERM) == 0


def test_ctrl_c_stops_every_component() -> None:
    stack = start_stack()
    urls = [stack.api, stack.emulator, stack.aws]
    assert not any(port_is_closed(url) for url in urls)
    assert stack.stop() == 0
    assert stack.output[-1] == "stopped"
    assert all(port_is_closed(url) for url in urls)


def _free_port_base() -> int:
    """A PORT whose companions PORT+1 and PORT+2 are free too."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + 2 > 65535:
            continue
        try:
            for port in (base, base + 1, base + 2):
                with socket.socket() as probe:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("found no three free ports in a row in 50 tries")


def test_the_stack_starts_again_at_once_on_the_same_ports_after_ctrl_c() -> None:
    port = str(_free_port_base())
    first = start_stack({"PORT": port})
    # Connections the servers closed linger in TIME-WAIT on their ports after the stop.
    browser = HttpBrowser(first)
    browser.authenticate(browser.start("sign_in"), "google", unique("restart"))
    assert first.stop() == 0

    again = start_stack({"PORT": port})
    try:
        assert again.components == first.components
        assert requests.get(f"{again.api}/health", timeout=10).status_code == 200
    finally:
        assert again.stop() == 0


def test_repeated_stop_signals_end_the_stack_cleanly() -> None:
    stack = start_stack()
    stack.process.send_signal(signal.SIGTERM)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGTERM):
        time.sleep(0.05)  # the later signals arrive while the stack stops
        if stack.process.poll() is None:
            stack.process.send_signal(sig)
    assert stack.stop() == 0
    assert not [line for line in stack.output if "Traceback" in line or "Error" in line]
    assert stack.output[-1] == "stopped"


def test_ctrl_c_stops_a_stack_started_with_sigint_ignored() -> None:
    """`make run &` in a script: a shell without job control starts it with SIGINT ignored."""
    stack = start_stack(sigint_ignored=True)
    assert stack.stop(signal.SIGINT, timeout=10) == 0
    assert stack.output[-1] == "stopped"


def test_signing_out_before_the_token_arrives_ends_the_link_with_session_expired(
    local_stack: RunningStack,
) -> None:
    browser = HttpBrowser(local_stack)
    account = unique("demo-user")
    assert browser.sign_in_to_registration(account).status_code == 200
    post = browser.authenticate(browser.start("link"), "google", unique("ivan"))
    assert browser.page_json("DELETE", "/session").status_code == 204
    assert outcome(browser.post_token(post)) == {"error": "session_expired"}
    links = requests.get(f"{local_stack.emulator}/_emulator/links", params={"user_id": account}, timeout=10)
    assert links.json()["identifiers"] == []


def test_make_run_seeds_the_state_of_the_sample_events(local_stack: RunningStack) -> None:
    # The sign-in event's request, sent over HTTP as `sam local invoke` would hand it to the function.
    sample = load_events()["token-sign-in"]
    reply = requests.post(
        f"{local_stack.api}/token?{sample.event['rawQueryString']}",
        data=sample.body,
        headers={
            "Content-Type": sample.event["headers"]["content-type"],
            "Cookie": "; ".join(sample.event["cookies"]),
        },
        allow_redirects=False,
        timeout=10,
    )
    assert reply.status_code == 303, reply.text
    assert outcome(reply) == {"result": "signed_in"}


def test_make_run_with_link_confirmation_holds_the_link_until_post_link(
    confirming_stack: RunningStack,
) -> None:
    browser = HttpBrowser(confirming_stack)
    account, identity_user = unique("demo-user"), unique("erin")
    assert browser.sign_in_to_registration(account).status_code == 200
    mark = confirming_stack.mark()

    held = browser.social("link", "google", identity_user)

    assert outcome(held) == {"confirm": "link"}
    identifier = f"https://www.google.com/profile/{identity_user}"
    pending = browser.page_json("GET", "/link")
    assert (pending.status_code, pending.json()["identifier"]) == (200, identifier)
    assert browser.session().json()["linked"] == []
    confirmed = browser.page_json("POST", "/link", {"confirm": True})
    assert (confirmed.status_code, confirmed.json()) == (200, {"result": "linked"})
    links = requests.get(
        f"{confirming_stack.emulator}/_emulator/links", params={"user_id": account}, timeout=10
    )
    assert links.json()["identifiers"] == [identifier]
    assert browser.page_json("POST", "/link", {"confirm": True}).status_code == 404
    logs = "\n".join(confirming_stack.output_after(mark))
    assert [secret for secret in browser.seen_secrets if secret in logs] == []
