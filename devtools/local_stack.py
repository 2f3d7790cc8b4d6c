"""`make run`: the whole service on this machine, with no AWS account, no Docker and no Identity Cloud app.

One process starts, in this order:
1. moto in server mode (DynamoDB, KMS, Secrets Manager, EventBridge, SQS) on a free loopback port, with
   the tables, the apiKey secret and the credentials key created from infra/template.yaml, and the audit
   event bus with a rule sending every event to the SQS queue `token-url-audit` (devtools/audit_events.py);
2. the Identity Cloud emulator on 127.0.0.1 (unless both upstream URLs are given), another site than
   the app, so the token POST is cross-site exactly as in Social Login's redirect flow;
3. the function, imported with the environment the template declares (every variable resolved to
   its local value), behind a local HTTP API gateway on http://localhost:PORT, which also serves the
   demo site under /demo/;
4. the state the sample events in events/ need (devtools/sam_events.py), so that
   `sam local invoke -e events/<file>.json --env-vars events/env.json` runs against this stack.

moto listens on PORT+1 and the emulator on PORT+2 (fixed, so events/env.json can name them), or
on free ports when PORT is 0. It prints one line per component, serves until Ctrl-C (or SIGTERM),
then stops everything; `/` leads to the demo. It can start again at once on the same ports.
Settings come from the environment; see `StackConfig.from_environ`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import boto3
from moto.server import ThreadedMotoServer
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Response

from devtools.audit_events import AUDIT_BUS, AUDIT_QUEUE, DEMO_QUEUE, provision_audit_bus
from devtools.demo import AuditFeed, DemoSite
from devtools.gateway import CorsPolicy, FunctionRuntime, Gateway, SigV4Verifier
from devtools.template import (
    FUNCTION_ID,
    cors_configuration,
    create_tables,
    function_environment,
    function_settings,
    http_routes,
    load_template,
    snapstart_by_default,
)
from emulator import (
    DEFAULT_API_KEY,
    DEFAULT_CLIENT_ID,
    DEFAULT_FLOW,
    DEFAULT_FLOW_VERSION,
    DEFAULT_LOCALE,
    EmulatorServer,
    IdentityCloudEmulator,
    serve,
)

REGION = "us-east-1"
SECRET_NAME = "token-url/social-login-api-key"  # noqa: S105 - the secret's name, not a secret
KEY_ALIAS = "alias/token-url-credentials"
LOCAL_FUNCTION_NAME = "token-url-local"
MOTO_COMPONENT = "moto (DynamoDB, KMS, Secrets Manager, EventBridge, SQS)"
AUDIT_COMPONENT = f"audit events (SQS queue {AUDIT_QUEUE})"
# Wide enough for the longest component name, so the URLs line up.
COLUMN = len(MOTO_COMPONENT) + 1
# The stack's AWS credentials: moto accepts any, and the gateway's IAM check verifies SigV4 with these.
LOCAL_ACCESS_KEY_ID = "testing"
LOCAL_SECRET_ACCESS_KEY = "testing"  # noqa: S105 - a local, well-known test credential


# A real Identity Cloud needs its own credentials and flow; the emulator's defaults would only fail there.
_REAL_UPSTREAM_SETTINGS = (
    "SOCIAL_LOGIN_API_KEY",
    "CAPTURE_CLIENT_ID",
    "CAPTURE_FLOW",
    "CAPTURE_FLOW_VERSION",
    "CAPTURE_LOCALE",
)
# Settings from the developer's shell that would send boto3 to real AWS or another endpoint instead of moto.
_FOREIGN_AWS_SETTINGS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


# Optional function settings the template leaves absent unless given, or does not set at all (the upstream
# timeouts): `make run` passes the developer's value through, and the function's own default applies when
# there is none.
PASSED_THROUGH_SETTINGS = (
    "TOKEN_POST_ORIGINS",
    "CREDENTIALS_CALLERS",
    "UPSTREAM_CONNECT_TIMEOUT",
    "UPSTREAM_READ_TIMEOUT",
)


class StackError(Exception):
    """A setting or a component that keeps the stack from starting; the message says which."""


@dataclass(frozen=True)
class StackConfig:
    port: int
    moto_port: int
    """PORT+1, or 0 (any free port) when PORT is 0."""
    emulator_port: int
    """PORT+2, or 0 (any free port) when PORT is 0."""
    app_url: str
    public_base_url: str
    social_login_base_url: str | None
    """None: the emulator serves Social Login."""
    capture_base_url: str | None
    """None: the emulator serves Capture."""
    api_key: str
    client_id: str
    flow: str
    flow_version: str
    locale: str
    passed_through: Mapping[str, str]
    """The developer's values of PASSED_THROUGH_SETTINGS; the function validates them at start."""
    # ---- link confirmation: passed to the function as given; its Settings validate them
    link_confirmation: str = "off"
    link_confirmation_seconds: str = "120"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], *, port: int | None = None) -> StackConfig:
        """Read and check the stack's settings; `port` (the bound one) overrides PORT, so that PORT=0 works.

        An empty variable means its default, as an unset one does.
        """
        setting = {name: value for name, value in environ.items() if value}
        raw_port = setting.get("PORT", "3000")
        if not re.fullmatch(r"[0-9]{1,5}", raw_port) or int(raw_port) > 65535:
            raise StackError(f"PORT must be a TCP port number (0 for any free port), got {raw_port!r}")
        bound = int(raw_port) if port is None else port
        # The companions follow the requested PORT, not the bound one: PORT=0 means free ports for all.
        companion_base = int(raw_port)
        if companion_base + 2 > 65535:
            raise StackError(
                f"PORT must leave room for moto and the emulator on PORT+1 and PORT+2, got {raw_port}"
            )
        origin = f"http://localhost:{bound}"
        social_login = setting.get("SOCIAL_LOGIN_BASE_URL")
        capture = setting.get("CAPTURE_BASE_URL")
        if (social_login is None) != (capture is None):
            # Capture accepts only tokens of the Social Login application it is tied to: an emulated
            # half would make every link fail with token_invalid.
            raise StackError(
                "set both SOCIAL_LOGIN_BASE_URL and CAPTURE_BASE_URL (a real Identity Cloud), or neither "
                "(the emulator)"
            )
        if social_login is not None:
            missing = [name for name in _REAL_UPSTREAM_SETTINGS if name not in setting]
            if missing:
                raise StackError(f"with a real Identity Cloud, set {', '.join(missing)} too")
        config = cls(
            port=bound,
            moto_port=companion_base + 1 if companion_base else 0,
            emulator_port=companion_base + 2 if companion_base else 0,
            app_url=setting.get("APP_URL", f"{origin}/demo/"),
            public_base_url=setting.get("PUBLIC_BASE_URL", origin).rstrip("/"),
            social_login_base_url=social_login,
            capture_base_url=capture,
            api_key=setting.get("SOCIAL_LOGIN_API_KEY", DEFAULT_API_KEY),
            client_id=setting.get("CAPTURE_CLIENT_ID", DEFAULT_CLIENT_ID),
            flow=setting.get("CAPTURE_FLOW", DEFAULT_FLOW),
            flow_version=setting.get("CAPTURE_FLOW_VERSION", DEFAULT_FLOW_VERSION),
            locale=setting.get("CAPTURE_LOCALE", DEFAULT_LOCALE),
            passed_through={name: setting[name] for name in PASSED_THROUGH_SETTINGS if name in setting},
            link_confirmation=setting.get("LINK_CONFIRMATION", "off"),
            link_confirmation_seconds=setting.get("LINK_CONFIRMATION_SECONDS", "120"),
        )
        for name, url in (("APP_URL", config.app_url), ("PUBLIC_BASE_URL", config.public_base_url)):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise StackError(f"{name} must be an absolute http(s) URL, got {url!r}")
        return config

    @property
    def origin(self) -> str:
        """Where the gateway listens."""
        return f"http://localhost:{self.port}"

    @property
    def app_origin(self) -> str:
        """The one origin the function accepts (and the HTTP API's CORS allows)."""
        parts = urlsplit(self.app_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def demo_url(self) -> str:
        return f"{self.origin}/demo/"

    @property
    def serves_demo(self) -> bool:
        """The demo is the app only when APP_URL is its page (else APP_URL is the developer's own site)."""
        return self.app_url.startswith(self.demo_url)

    @property
    def needs_emulator(self) -> bool:
        return self.social_login_base_url is None or self.capture_base_url is None


@dataclass(frozen=True)
class LocalAws:
    endpoint_url: str
    tables: dict[str, str]
    """Environment variable name -> table name."""
    key_id: str
    """The credentials key's alias: a fixed name, so events/env.json can give it too."""
    event_bus: str = AUDIT_BUS
    """The audit event bus: a fixed name, so events/env.json can give it too."""
    audit_queues: dict[str, str] = field(default_factory=dict)
    """SQS queue name -> URL, for each queue the audit bus's rule delivers every event to."""


def provision_aws(
    endpoint_url: str,
    template: Mapping[str, Any],
    api_key: str,
    *,
    audit_queues: Iterable[str] = (AUDIT_QUEUE, DEMO_QUEUE),
) -> LocalAws:
    """Create the tables, the apiKey secret, the credentials key and the audit bus in the local moto.

    The bus's rule delivers every event to each of `audit_queues`; with none, it keeps no rule.
    """
    session = boto3.session.Session(
        aws_access_key_id=LOCAL_ACCESS_KEY_ID,
        aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
        region_name=REGION,
    )
    tables = create_tables(session.client("dynamodb", endpoint_url=endpoint_url), template)
    secrets = session.client("secretsmanager", endpoint_url=endpoint_url)
    try:
        secrets.create_secret(Name=SECRET_NAME, SecretString=api_key)
    except secrets.exceptions.ResourceExistsException:
        secrets.put_secret_value(SecretId=SECRET_NAME, SecretString=api_key)
    kms = session.client("kms", endpoint_url=endpoint_url)
    key_arn = kms.create_key(Description="token-url local credentials key")["KeyMetadata"]["Arn"]
    with contextlib.suppress(kms.exceptions.AlreadyExistsException):
        kms.create_alias(AliasName=KEY_ALIAS, TargetKeyId=key_arn)
    queues = provision_audit_bus(
        session.client("events", endpoint_url=endpoint_url),
        session.client("sqs", endpoint_url=endpoint_url),
        queues=audit_queues,
    )
    return LocalAws(endpoint_url=endpoint_url, tables=tables, key_id=KEY_ALIAS, audit_queues=queues)


def local_function_environment(
    template: Mapping[str, Any], config: StackConfig, aws: LocalAws, emulator_url: str | None
) -> dict[str, str]:
    """Every variable the template gives the function, resolved to its local value.

    A variable the template adds without a local value here stops the stack, so the two cannot drift.
    """
    upstream = emulator_url or ""
    local_values = {
        "SOCIAL_LOGIN_BASE_URL": config.social_login_base_url or upstream,
        "SOCIAL_LOGIN_API_KEY_SECRET": SECRET_NAME,
        "CAPTURE_BASE_URL": config.capture_base_url or upstream,
        "CAPTURE_CLIENT_ID": config.client_id,
        "CAPTURE_FLOW": config.flow,
        "CAPTURE_FLOW_VERSION": config.flow_version,
        "CAPTURE_LOCALE": config.locale,
        "CAPTURE_REDIRECT_URI": config.app_url,
        "PUBLIC_BASE_URL": config.public_base_url,
        "APP_URL": config.app_url,
        "CREDENTIALS_KEY_ID": aws.key_id,
        "AUDIT_EVENT_BUS": aws.event_bus,
        "AWS_ENDPOINT_URL": aws.endpoint_url,
        **aws.tables,
        # ---- link confirmation
        "LINK_CONFIRMATION": config.link_confirmation,
        "LINK_CONFIRMATION_SECONDS": config.link_confirmation_seconds,
    }
    environment: dict[str, str] = {}
    for name, value in function_environment(template, FUNCTION_ID).items():
        if isinstance(value, str | int | float):
            environment[name] = str(value)
        elif name in local_values:
            environment[name] = local_values[name]
        elif name in PASSED_THROUGH_SETTINGS:
            if name in config.passed_through:
                environment[name] = config.passed_through[name]
        else:
            raise StackError(f"the template gives the function {name}, which the local stack cannot resolve")
    return {**config.passed_through, **environment}


def isolate_from_real_aws(environ: MutableMapping[str, str]) -> None:
    """Drop the shell's AWS profile, session and per-service endpoints: every AWS call goes to moto."""
    for name in list(environ):
        if name in _FOREIGN_AWS_SETTINGS or name.startswith("AWS_ENDPOINT_URL_"):
            del environ[name]
    environ.pop("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", None)
    environ["AWS_CONFIG_FILE"] = os.devnull
    environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull


def process_environment(aws_endpoint: str) -> dict[str, str]:
    """What Lambda's runtime sets around the function, plus the local AWS endpoint."""
    return {
        "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_ACCESS_KEY,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": LOCAL_FUNCTION_NAME,
        # No X-Ray daemon here: the Tracer would only send UDP datagrams nobody reads.
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


class _QuietHandler(WSGIRequestHandler):
    """The gateway writes its own JSON access line; werkzeug's would repeat it (with the query)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


class LocalStack:
    """The running stack: call `start()`, then `serve_forever()` or `stop()`."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._moto: ThreadedMotoServer | None = None
        self._emulator_server: EmulatorServer | None = None
        self._http: BaseWSGIServer | None = None
        self.config: StackConfig | None = None
        self.components: list[tuple[str, str]] = []
        self.seeded_events: list[str] = []
        self.started = False

    def start(self) -> None:
        requested = StackConfig.from_environ(self._environ)
        # Bind first: with PORT=0 the URLs the function is configured with need the real port.
        try:
            self._http = make_server(
                "127.0.0.1", requested.port, _not_ready, threaded=True, request_handler=_QuietHandler
            )
        except (OSError, SystemExit) as exc:  # werkzeug reports a port in use on stderr, then exits
            raise StackError(f"cannot listen on port {requested.port}; set PORT to a free one") from exc
        config = StackConfig.from_environ(self._environ, port=self._http.port)
        self.config = config
        template = load_template()
        isolate_from_real_aws(os.environ)

        # moto's server thread dies silently on a busy port (and start() then waits forever): check first.
        # The emulator's server would exit the process instead of raising.
        ensure_free(config.moto_port, "moto")
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=config.moto_port, verbose=False)
        self._moto.start()
        moto_host, moto_port = self._moto.get_host_and_port()
        aws_endpoint = f"http://{moto_host}:{moto_port}"
        aws = provision_aws(aws_endpoint, template, config.api_key)
        self.components.append((MOTO_COMPONENT, aws_endpoint))
        self.components.append((AUDIT_COMPONENT, aws.audit_queues[AUDIT_QUEUE]))

        emulator: IdentityCloudEmulator | None = None
        if config.needs_emulator:
            emulator = IdentityCloudEmulator(
                api_key=config.api_key,
                capture_client_id=config.client_id,
                flow=config.flow,
                flow_version=config.flow_version,
                locale=config.locale,
                # As the Social Login dashboard's domain allow list would: only this API's host.
                token_url_domains=[urlsplit(config.public_base_url).hostname or "localhost"],
                # The provider pages look like the demo; its stylesheet is served only with the demo.
                page_stylesheet_url=f"{config.demo_url}demo.css" if config.serves_demo else None,
            )
            ensure_free(config.emulator_port, "the emulator")
            self._emulator_server = serve(emulator, "127.0.0.1", config.emulator_port)
            self.components.append(("Identity Cloud emulator", self._emulator_server.url))
        emulator_url = self._emulator_server.url if self._emulator_server else None

        os.environ.update(process_environment(aws_endpoint))
        os.environ.update(local_function_environment(template, config, aws, emulator_url))
        from token_url.settings import ConfigurationError  # noqa: PLC0415 - after the environment is set

        try:
            from token_url import app  # noqa: PLC0415 - the function reads its environment at import, as in a Lambda init
        except ConfigurationError as exc:
            raise StackError(f"the function refused its settings: {exc}") from exc
        if snapstart_by_default(template):
            # As a deployed version with SnapStart: the before-snapshot hooks, then a restore's hooks.
            from testkit.snapstart import restore, take_snapshot  # noqa: PLC0415 - imports the function

            take_snapshot()
            restore()
            self.components.append(
                ("function", "SnapStart snapshot and restore simulated (docs/snapstart.md)")
            )

        limits = function_settings(template)
        gateway = Gateway(
            FunctionRuntime(
                handler=app.lambda_handler,
                function_name=LOCAL_FUNCTION_NAME,
                memory_mb=limits["MemorySize"],
                timeout_seconds=limits["Timeout"],
                region=REGION,
            ),
            http_routes(template),
            SigV4Verifier(LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY, REGION),
            # The template allows the origin of AppUrl; here that is the local APP_URL's.
            CorsPolicy.from_configuration(cors_configuration(template), [config.app_origin]),
        )
        demo = DemoSite(
            api_base_url=config.public_base_url,
            social_login_url=config.social_login_base_url or emulator_url or "",
            emulator=emulator if config.capture_base_url is None else None,
            app_origin=config.app_origin,
            audit_feed=AuditFeed(
                boto3.session.Session(
                    aws_access_key_id=LOCAL_ACCESS_KEY_ID,
                    aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
                    region_name=REGION,
                ).client("sqs", endpoint_url=aws_endpoint),
                aws.audit_queues[DEMO_QUEUE],
            ),
        )
        self._http.app = with_demo(gateway, demo) if config.serves_demo else gateway
        self.components.append(("token URL API (local HTTP API gateway)", config.origin))
        if config.serves_demo:
            self.components.append(("demo site", config.demo_url))
        if emulator is not None:
            self.seeded_events = seed_sample_events(aws, emulator, app.service.settings.token_endpoint)
        self.started = True

    def serve_forever(self) -> None:
        assert self._http is not None, "start() first"
        self._http.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        if self._http is not None:
            self._http.server_close()
        if self._emulator_server is not None:
            self._emulator_server.shutdown()
        if self._moto is not None:
            with contextlib.suppress(Exception):
                self._moto.stop()


def seed_sample_events(aws: LocalAws, emulator: IdentityCloudEmulator, token_endpoint: str) -> list[str]:
    """Create, in moto and the emulator, the state every file in events/ needs (devtools/sam_events.py)."""
    # The function's modules (sam_events uses them too) are imported only once its environment is set,
    # as in a Lambda init: their Logger and Metrics read it when they are created.
    from devtools.sam_events import EventWorld, seed  # noqa: PLC0415

    session = boto3.session.Session(
        aws_access_key_id=LOCAL_ACCESS_KEY_ID,
        aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
        region_name=REGION,
    )
    world = EventWorld.connect(
        dynamodb=session.client("dynamodb", endpoint_url=aws.endpoint_url),
        kms=session.client("kms", endpoint_url=aws.endpoint_url),
        nonces_table=aws.tables["NONCES_TABLE"],
        sessions_table=aws.tables["SESSIONS_TABLE"],
        key_id=aws.key_id,
        emulator=emulator,
        token_endpoint=token_endpoint,
    )
    return seed(world)


def ensure_free(port: int, component: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers bind (werkzeug and http.server set SO_REUSEADDR): the connections of a stack
        # stopped a moment ago linger in TIME-WAIT on these ports, and must not make the port look busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise StackError(
                f"cannot listen on port {port} for {component}; set PORT to another base"
            ) from exc


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def with_demo(gateway: WsgiApp, demo: DemoSite) -> WsgiApp:
    """The gateway with the demo site under /demo, and `/` leading there.

    The redirect is the local stack's own: the deployed HTTP API has no `/` route (it answers 404).
    """
    mounted = DispatcherMiddleware(gateway, {"/demo": demo})

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/" and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            # Temporary: with APP_URL set to another site, the next start serves no demo.
            return Response(status=302, headers={"Location": "/demo/"})(environ, start_response)
        return mounted(environ, start_response)

    return app


def _not_ready(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "application/json")])
    yield json.dumps({"message": "starting"}).encode()


class StopSignals:
    """Ctrl-C (SIGINT) or SIGTERM stops the stack once; any more while it stops are ignored.

    SIGINT gets a handler of its own too: a shell without job control starts `make run &` with SIGINT
    ignored, and Python then installs none.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.stopping = False

    def install(self) -> None:
        for signum in self.SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            return
        self.stopping = True
        raise KeyboardInterrupt


def _print_components(stack: LocalStack) -> None:
    for name, url in stack.components:
        print(f"{name:<{COLUMN}} {url}", flush=True)
    if stack.seeded_events:
        print(
            f"{'sample events (sam local invoke)':<{COLUMN}} "
            f"events/*.json: {len(stack.seeded_events)} seeded, each good for one run per start",
            flush=True,
        )
    assert stack.config is not None
    print(f"ready: open {stack.config.app_url} in a browser (Ctrl-C stops the stack)", flush=True)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    for noisy in ("werkzeug", "botocore", "boto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stop_signals = StopSignals()
    stop_signals.install()
    stack = LocalStack(os.environ)
    try:
        stack.start()
        _print_components(stack)
        stack.serve_forever()  # returns on the first signal (werkzeug ends its loop on KeyboardInterrupt)
    except StackError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass  # a signal while starting: stop what has started
    finally:
        stop_signals.stopping = True
        stack.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
