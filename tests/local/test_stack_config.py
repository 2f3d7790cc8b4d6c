"""The local stack's settings and the function environment it derives from the template."""

from __future__ import annotations

import http.server
import os
import pathlib
import signal
import socket
import threading
from typing import Any

import pytest
import requests
from werkzeug.test import Client

from devtools.gateway import LOCAL_CALLER_ARN
from devtools.local_stack import (
    KEY_ALIAS,
    PASSED_THROUGH_SETTINGS,
    SECRET_NAME,
    LocalAws,
    LocalStack,
    StackConfig,
    StackError,
    StopSignals,
    ensure_free,
    isolate_from_real_aws,
    local_function_environment,
    with_demo,
)
from devtools.template import function_environment, load_template
from emulator import DEFAULT_API_KEY, DEFAULT_CLIENT_ID

LOCAL_AWS = LocalAws(
    endpoint_url="http://127.0.0.1:5000",
    tables={
        "SESSIONS_TABLE": "SessionsTable",
        "NONCES_TABLE": "NoncesTable",
        "IDEMPOTENCY_TABLE": "IdempotencyTable",
    },
    key_id=KEY_ALIAS,
)


def test_defaults_put_the_app_and_the_api_on_localhost() -> None:
    config = StackConfig.from_environ({})
    assert config.port == 3000
    assert config.app_url == "http://localhost:3000/demo/"
    assert config.public_base_url == "http://localhost:3000"
    assert (config.api_key, config.client_id) == (DEFAULT_API_KEY, DEFAULT_CLIENT_ID)
    assert config.needs_emulator


def test_the_bound_port_replaces_port_zero() -> None:
    config = StackConfig.from_environ({"PORT": "0"}, port=41234)
    assert config.public_base_url == "http://localhost:41234"
    assert (config.moto_port, config.emulator_port) == (0, 0)  # free ports too, not 41235 and 41236


def test_settings_from_the_environment_win() -> None:
    config = StackConfig.from_environ(
        {
            "PORT": "8080",
            "APP_URL": "http://localhost:5173/account",
            "PUBLIC_BASE_URL": "http://localhost:8080/",
            "SOCIAL_LOGIN_BASE_URL": "https://my-app.rpxnow.com",
            "CAPTURE_BASE_URL": "https://my-app.us.janraincapture.com",
            "SOCIAL_LOGIN_API_KEY": "k" * 40,
            "CAPTURE_CLIENT_ID": "d" * 32,
            "CAPTURE_FLOW": "myflow",
            "CAPTURE_FLOW_VERSION": "20260101",
            "CAPTURE_LOCALE": "en-GB",
        }
    )
    assert config.app_url == "http://localhost:5173/account"
    assert config.public_base_url == "http://localhost:8080"
    assert config.api_key == "k" * 40
    assert config.flow == "myflow"
    assert not config.needs_emulator


@pytest.mark.parametrize("port", ["http", "-1", "70000"])
def test_a_bad_port_is_named(port: str) -> None:
    with pytest.raises(StackError, match="PORT"):
        StackConfig.from_environ({"PORT": port})


def test_moto_and_the_emulator_follow_port() -> None:
    # Fixed, so that events/env.json can name them for `sam local invoke`.
    assert (StackConfig.from_environ({}).moto_port, StackConfig.from_environ({}).emulator_port) == (
        3001,
        3002,
    )
    config = StackConfig.from_environ({"PORT": "8080"}, port=8080)
    assert (config.moto_port, config.emulator_port) == (8081, 8082)
    with pytest.raises(StackError, match=r"PORT\+1"):
        StackConfig.from_environ({"PORT": "65534"})


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize(("component", "offset"), [("moto", 1), ("the emulator", 2)])
def test_a_busy_companion_port_is_named(component: str, offset: int) -> None:
    for _ in range(50):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            taken = busy.getsockname()[1]
            base = taken - offset
            if not all(_free(base + other) for other in range(offset)):
                continue  # PORT (or moto's port, below the emulator's) is busy too: try another
            stack = LocalStack({"PORT": str(base)})
            try:
                with pytest.raises(StackError, match=f"cannot listen on port {taken} for {component}"):
                    stack.start()
            finally:
                stack.stop()
            return
    pytest.fail("found no free PORT below a busy port in 50 tries")


def test_every_variable_of_the_template_gets_a_local_value() -> None:
    template = load_template()
    config = StackConfig.from_environ({})
    environment = local_function_environment(template, config, LOCAL_AWS, "http://127.0.0.1:9999")
    assert set(environment) == set(function_environment(template)) - set(PASSED_THROUGH_SETTINGS)
    assert environment["SOCIAL_LOGIN_BASE_URL"] == environment["CAPTURE_BASE_URL"] == "http://127.0.0.1:9999"
    assert environment["SOCIAL_LOGIN_API_KEY_SECRET"] == SECRET_NAME
    assert environment["CREDENTIALS_KEY_ID"] == KEY_ALIAS
    assert environment["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"
    assert environment["SESSIONS_TABLE"] == "SessionsTable"
    assert environment["POWERTOOLS_SERVICE_NAME"] == "token-url"
    assert KEY_ALIAS.startswith("alias/")


def test_link_confirmation_settings_pass_from_the_environment_to_the_function() -> None:
    template = load_template()
    default = local_function_environment(template, StackConfig.from_environ({}), LOCAL_AWS, None)
    assert (default["LINK_CONFIRMATION"], default["LINK_CONFIRMATION_SECONDS"]) == ("off", "120")
    config = StackConfig.from_environ({"LINK_CONFIRMATION": "on", "LINK_CONFIRMATION_SECONDS": "200"})
    given = local_function_environment(template, config, LOCAL_AWS, None)
    assert (given["LINK_CONFIRMATION"], given["LINK_CONFIRMATION_SECONDS"]) == ("on", "200")


def test_a_template_variable_without_a_local_value_stops_the_stack() -> None:
    template: dict[str, Any] = load_template()
    variables = template["Resources"]["TokenUrlFunction"]["Properties"]["Environment"]["Variables"]
    variables["NEW_SETTING"] = {"Ref": "SomethingNew"}
    with pytest.raises(StackError, match="NEW_SETTING"):
        local_function_environment(template, StackConfig.from_environ({}), LOCAL_AWS, None)


def test_a_busy_port_is_named_before_anything_starts() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        stack = LocalStack({"PORT": str(port)})
        with pytest.raises(StackError, match=f"cannot listen on port {port}"):
            stack.start()
        assert stack.components == []
        stack.stop()


def test_an_empty_setting_means_its_default() -> None:
    config = StackConfig.from_environ({"PORT": "", "APP_URL": "", "CAPTURE_FLOW": ""})
    assert (config.port, config.app_url, config.flow) == (3000, "http://localhost:3000/demo/", "standard")


def test_a_non_ascii_digit_port_is_refused() -> None:
    with pytest.raises(StackError, match="PORT"):
        StackConfig.from_environ({"PORT": "²"})


@pytest.mark.parametrize(("name", "value"), [("APP_URL", "notaurl"), ("PUBLIC_BASE_URL", "localhost:3000")])
def test_a_url_setting_that_is_not_a_url_is_named(name: str, value: str) -> None:
    with pytest.raises(StackError, match=name):
        StackConfig.from_environ({name: value})


@pytest.mark.parametrize("given", ["SOCIAL_LOGIN_BASE_URL", "CAPTURE_BASE_URL"])
def test_one_real_upstream_without_the_other_is_refused(given: str) -> None:
    with pytest.raises(StackError, match="both SOCIAL_LOGIN_BASE_URL and CAPTURE_BASE_URL"):
        StackConfig.from_environ({given: "https://my-app.example.com"})


def test_a_real_identity_cloud_needs_its_own_key_client_and_flow() -> None:
    with pytest.raises(StackError, match="SOCIAL_LOGIN_API_KEY, CAPTURE_CLIENT_ID") as raised:
        StackConfig.from_environ(
            {
                "SOCIAL_LOGIN_BASE_URL": "https://my-app.rpxnow.com",
                "CAPTURE_BASE_URL": "https://my-app.us.janraincapture.com",
                "CAPTURE_FLOW": "myflow",
            }
        )
    assert "CAPTURE_FLOW," not in str(raised.value)


def test_the_demo_is_served_only_when_app_url_is_its_page() -> None:
    assert StackConfig.from_environ({}).serves_demo
    assert not StackConfig.from_environ({"APP_URL": "http://localhost:5173/account"}).serves_demo


def test_the_shell_aws_settings_cannot_reach_real_aws() -> None:
    environ = {
        "AWS_PROFILE": "work",
        "AWS_SESSION_TOKEN": "t",
        "AWS_ENDPOINT_URL_DYNAMODB": "https://dynamodb.example",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
        "PATH": "/usr/bin",
    }
    isolate_from_real_aws(environ)
    assert environ == {
        "PATH": "/usr/bin",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def test_optional_function_settings_are_passed_through_from_the_environment() -> None:
    template = load_template()
    config = StackConfig.from_environ({"TOKEN_POST_ORIGINS": "http://127.0.0.1:4000,null"})
    environment = local_function_environment(template, config, LOCAL_AWS, "http://127.0.0.1:9999")
    assert environment["TOKEN_POST_ORIGINS"] == "http://127.0.0.1:4000,null"


def test_upstream_timeouts_the_template_does_not_set_reach_the_function_as_given() -> None:
    template = load_template()
    unset = local_function_environment(template, StackConfig.from_environ({}), LOCAL_AWS, None)
    assert "UPSTREAM_READ_TIMEOUT" not in unset  # the function's default
    config = StackConfig.from_environ({"UPSTREAM_READ_TIMEOUT": "2", "UPSTREAM_CONNECT_TIMEOUT": "0.5"})
    environment = local_function_environment(template, config, LOCAL_AWS, None)
    assert (environment["UPSTREAM_READ_TIMEOUT"], environment["UPSTREAM_CONNECT_TIMEOUT"]) == ("2", "0.5")


def test_credentials_callers_reach_the_function_as_given() -> None:
    template = load_template()
    unset = local_function_environment(template, StackConfig.from_environ({}), LOCAL_AWS, None)
    assert "CREDENTIALS_CALLERS" not in unset  # the function's default: any IAM caller
    listed = StackConfig.from_environ({"CREDENTIALS_CALLERS": LOCAL_CALLER_ARN})
    environment = local_function_environment(template, listed, LOCAL_AWS, None)
    assert environment["CREDENTIALS_CALLERS"] == LOCAL_CALLER_ARN


# ---- restarting at once, and stopping on signals


class _Hello(http.server.BaseHTTPRequestHandler):
    """HTTP/1.0: the server closes each connection first, so its side of it waits in TIME-WAIT."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def _time_wait_ports() -> set[int]:
    """Local ports of IPv4 TCP connections in TIME-WAIT (state 06 of /proc/net/tcp)."""
    ports = set()
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "06":
            ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def test_a_port_whose_closed_connections_linger_in_time_wait_counts_as_free() -> None:
    """Restarting `make run` right after Ctrl-C: the servers just stopped leave TIME-WAIT sockets behind."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hello)  # SO_REUSEADDR, as werkzeug's servers
    port = server.server_address[1]
    serving = threading.Thread(target=server.handle_request)
    serving.start()
    assert requests.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
    serving.join(10)
    server.server_close()
    assert port in _time_wait_ports()

    ensure_free(port, "the emulator")  # raises StackError if the probe binds without SO_REUSEADDR

    again = http.server.HTTPServer(("127.0.0.1", port), _Hello)
    again.server_close()


def test_a_listening_port_is_still_busy_for_the_probe() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(StackError, match=f"cannot listen on port {port} for moto"):
            ensure_free(port, "moto")


def test_the_first_stop_signal_interrupts_and_later_ones_are_ignored() -> None:
    previous = {signum: signal.getsignal(signum) for signum in StopSignals.SIGNALS}
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as `make run &` in a shell without job control
    stop_signals = StopSignals()
    try:
        stop_signals.install()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        assert stop_signals.stopping
        signal.raise_signal(signal.SIGTERM)  # while stopping: no second KeyboardInterrupt
        signal.raise_signal(signal.SIGINT)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _gateway(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("404 Not Found", [("Content-Type", "application/json")])
    return [b'{"message":"Not Found"}']


def _demo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/html")])
    return [b"demo at " + environ["SCRIPT_NAME"].encode() + environ["PATH_INFO"].encode()]


def test_the_root_leads_to_the_demo_and_every_other_path_is_the_gateway_s() -> None:
    client = Client(with_demo(_gateway, _demo))  # type: ignore[arg-type]
    root = client.get("/")
    assert (root.status_code, root.headers["Location"]) == (302, "/demo/")
    assert client.head("/").status_code == 302
    assert client.get("/demo/").get_data() == b"demo at /demo/"
    assert client.post("/").status_code == 404  # only a page load is redirected
    assert client.get("/nope").status_code == 404
