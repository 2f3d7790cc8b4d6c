"""What every measurement runs against: moto and the Identity Cloud emulator, each in a process of its own.

Both are out of the measured processes, as DynamoDB and Identity Cloud are in production: their CPU and
memory are not the function's. Social Login and Capture are the one emulator under two host names
(127.0.0.1 and localhost), so the function keeps two connection pools, as it would for two real hosts.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3

from bench.admin import EmulatorAdmin
from bench.runtime import Runtime, development_runtime
from devtools.local_stack import (
    REGION,
    StackConfig,
    isolate_from_real_aws,
    local_function_environment,
    process_environment,
    provision_aws,
)
from devtools.template import load_template
from emulator import DEFAULT_API_KEY, DEFAULT_CLIENT_ID, DEFAULT_FLOW, DEFAULT_FLOW_VERSION, DEFAULT_LOCALE
from testkit.sites import APP_URL, PROVIDER_ORIGIN, PUBLIC_BASE_URL

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent.parent / "functions" / "token_url" / "token_url"
STARTUP_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_listening(port: int, process: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on {port} within {STARTUP_SECONDS:.0f} s")


@contextlib.contextmanager
def compiled_function(python: pathlib.Path) -> Iterator[pathlib.Path]:
    """The function's modules as the artifact ships them: byte-compiled, so no cold start compiles them.

    Lambda's /var/task is read-only, so a module without a .pyc is compiled on every cold start;
    `sam build` (functions/token_url/Makefile) ships them compiled with unchecked hashes, and so does this.
    """
    with tempfile.TemporaryDirectory(prefix="bench-function-") as directory:
        target = pathlib.Path(directory)
        shutil.copytree(PACKAGE_DIR, target / PACKAGE_DIR.name, ignore=shutil.ignore_patterns("__pycache__"))
        compiled = subprocess.run(  # noqa: S603 - the benchmark's interpreter, fixed arguments
            [str(python), "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
        if compiled.returncode != 0:
            raise RuntimeError(f"the function's modules do not compile:\n{compiled.stdout}{compiled.stderr}")
        yield target


@dataclass(frozen=True)
class World:
    """The running moto and emulator, and the environment a function process needs to use them."""

    environment: dict[str, str]
    """Everything a function process needs: the template's variables resolved locally, plus the runtime's."""
    function_dir: pathlib.Path
    """Where the function's modules are imported from (compiled, as deployed)."""
    runtime: Runtime
    """The interpreter and package directories every measured process runs with."""
    upstream_hosts: list[str]
    """The Host headers of Social Login and Capture as the function reaches them: two hosts, two pools."""
    emulator_url: str
    aws_endpoint: str

    def admin(self) -> EmulatorAdmin:
        return EmulatorAdmin(self.emulator_url)

    def aws_client(self, service: str) -> Any:
        return boto3.session.Session(
            aws_access_key_id=self.environment["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.environment["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        ).client(service, endpoint_url=self.aws_endpoint)  # type: ignore[call-overload]


def _start(command: list[str], port: int, name: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    try:
        _wait_until_listening(port, process, name)
    except BaseException:
        process.kill()
        raise
    return process


@contextlib.contextmanager
def running_world(runtime: Runtime | None = None) -> Iterator[World]:
    """Start moto and the emulator, provision the template's tables, secret and key, and stop both after."""
    moto_port, emulator_port = free_port(), free_port()
    processes = [
        _start(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)], moto_port, "moto"
        ),
    ]
    try:
        processes.append(
            _start(
                [sys.executable, "-m", "emulator", "--port", str(emulator_port), "--quiet"],
                emulator_port,
                "the emulator",
            )
        )
        aws_endpoint = f"http://127.0.0.1:{moto_port}"
        template = load_template()
        # No subscriber: moto's delivery to queues is a reader's work, not the function's or the floor's.
        aws = provision_aws(aws_endpoint, template, DEFAULT_API_KEY, audit_queues=())
        config = StackConfig.from_environ(
            {
                "PORT": "0",
                "APP_URL": APP_URL,
                "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
                "SOCIAL_LOGIN_BASE_URL": f"http://127.0.0.1:{emulator_port}",
                "CAPTURE_BASE_URL": f"http://localhost:{emulator_port}",
                "SOCIAL_LOGIN_API_KEY": DEFAULT_API_KEY,
                "CAPTURE_CLIENT_ID": DEFAULT_CLIENT_ID,
                "CAPTURE_FLOW": DEFAULT_FLOW,
                "CAPTURE_FLOW_VERSION": DEFAULT_FLOW_VERSION,
                "CAPTURE_LOCALE": DEFAULT_LOCALE,
                # The journeys post tokens with the Origin of Social Login's pages, not the emulator's.
                "TOKEN_POST_ORIGINS": PROVIDER_ORIGIN,
            }
        )
        environment = dict(os.environ)
        isolate_from_real_aws(environment)
        environment.update(process_environment(aws_endpoint))
        environment.update(local_function_environment(template, config, aws, None))
        runtime = runtime or development_runtime()
        with compiled_function(runtime.python) as function_dir:
            environment.update(lambda_runtime_environment(function_dir))
            yield World(
                environment=environment,
                function_dir=function_dir,
                runtime=runtime,
                upstream_hosts=[f"127.0.0.1:{emulator_port}", f"localhost:{emulator_port}"],
                emulator_url=f"http://127.0.0.1:{emulator_port}",
                aws_endpoint=aws_endpoint,
            )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def lambda_runtime_environment(function_dir: pathlib.Path) -> dict[str, str]:
    """What the Lambda runtime sets that changes how Powertools behaves: tracing on, as deployed.

    With LAMBDA_TASK_ROOT set, the Tracer is enabled and the X-Ray SDK runs in its Lambda mode; each
    invocation's trace header (`_X_AMZN_TRACE_ID`) is set by the benchmark per request. Its segments go by
    UDP to 127.0.0.1:2000, where nothing listens: the cost of building and sending them is measured.
    """
    return {
        "LAMBDA_TASK_ROOT": str(function_dir),
        "POWERTOOLS_TRACE_DISABLED": "false",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
    }
