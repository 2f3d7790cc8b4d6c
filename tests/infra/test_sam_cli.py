"""SAM CLI on the SAM application: `sam validate --lint` is clean; `sam build` makes a working artifact.

SAM CLI is the repository's own (`.venv-sam`, pinned in pyproject.toml). `sam build` runs
functions/token_url/Makefile, which needs a python3.13; where the machine has none, the build tests
say so and are skipped. The build downloads the function's dependencies from PyPI, as `sam build`
always does. The artifact leaves out the AWS SDK the Lambda runtime provides (/var/runtime), so the
import check puts a stand-in for it after the artifact on the path.
"""

from __future__ import annotations

import inspect
import json
import pathlib
import re
import subprocess
from typing import Any

import pytest

from devtools.sam_cli import (
    RUNTIME_SDK,
    RUNTIME_SDK_MODULES,
    TOTAL,
    Distribution,
    build,
    distributions,
    elf_machine,
    find_python,
    host_wheels_for,
    package_sizes,
    read_pins,
    runtime_sdk_standin,
    sam_environment,
    sam_executable,
    zipped_size,
)
from devtools.sam_events import ENV_FILE, EVENTS_DIR
from devtools.template import FUNCTION_ID, TEMPLATE_PATH, function_environment, load_template
from testkit import lambda_context
from tests.infra.deployed_template import translated_template

TEMPLATE = TEMPLATE_PATH

REPO = pathlib.Path(__file__).resolve().parents[2]


def validate(template: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the repository's own sam, fixed arguments
        [str(sam_executable()), "validate", "--lint", "--template-file", str(template)],
        cwd=REPO,
        env=sam_environment({"AWS_DEFAULT_REGION": "us-east-1"}),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_sam_validate_lint_is_clean() -> None:
    result = validate(TEMPLATE)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"{TEMPLATE} is a valid SAM Template" in output
    assert not LINT_FINDING.search(output), output


LINT_FINDING = re.compile(r"\[\[[EWI]\d{4}")  # how `sam validate --lint` prints a cfn-lint finding


def test_sam_validate_lint_reports_a_warning(tmp_path: pathlib.Path) -> None:
    # The check above can fail: a redundant DependsOn is a cfn-lint warning (W3005), and warnings fail.
    text = TEMPLATE.read_text(encoding="utf-8")
    anchor = "  TokenUrlFunctionPolicy:\n    Type: AWS::IAM::RolePolicy\n"
    assert anchor in text
    broken = tmp_path / "template.yaml"
    broken.write_text(
        text.replace(anchor, anchor + "    DependsOn: TokenUrlFunctionRole\n"), encoding="utf-8"
    )
    result = validate(broken)
    assert result.returncode != 0
    assert LINT_FINDING.search(result.stdout + result.stderr)
    assert "W3005" in result.stdout + result.stderr


def test_sam_turns_the_execute_api_endpoint_off_exactly_with_a_custom_domain() -> None:
    # SAM moves DisableExecuteApiEndpoint into the OpenAPI body; checked here, since a property SAM
    # dropped would pass `sam validate` and leave the endpoint on.
    api = translated_template()["Resources"]["HttpApi"]
    assert api["Type"] == "AWS::ApiGatewayV2::Api"
    [server] = api["Properties"]["Body"]["servers"]
    assert server["x-amazon-apigateway-endpoint-configuration"] == {
        "disableExecuteApiEndpoint": {"Fn::If": ["HasApiDomain", True, False]}
    }


# ---------------------------------------------------------------- sam build


@pytest.fixture(scope="module")
def artifact(python313: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The function as `sam build` packages it for python3.13 on arm64."""
    work = tmp_path_factory.mktemp("sam-build")
    result = build(work / "build", python=python313, cache_dir=work / "cache")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Build Succeeded" in result.stdout
    return work / "build" / FUNCTION_ID


def _fake_python(path: pathlib.Path, version: str, *, works: bool = True) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = (
        f'echo {version}; echo "{path}"'
        if works
        else 'echo "pyenv: python3.13: command not found" >&2; exit 127'
    )
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def test_find_python_passes_over_a_shim_that_does_not_run_313(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pyenv's shim is on PATH but 3.13 is not selected; the real interpreter is under PYENV_ROOT.
    shim = _fake_python(tmp_path / "shims" / "python3.13", "3.13", works=False)
    real = _fake_python(tmp_path / "pyenv" / "versions" / "3.13.0" / "bin" / "python3.13", "3.13")
    _fake_python(tmp_path / "pyenv" / "versions" / "3.12.9" / "bin" / "python3.12", "3.12")
    monkeypatch.setenv("PATH", f"{shim.parent}:/usr/bin:/bin")
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert find_python("3.13") == real


FUNCTION_SOURCE = REPO / "functions" / "token_url"
# The function's package, relative to the artifact's root: token_url/app.py, token_url/flows/link.py...
FUNCTION_MODULES = sorted(
    path.relative_to(FUNCTION_SOURCE) for path in (FUNCTION_SOURCE / "token_url").rglob("*.py")
)


def test_artifact_holds_the_function_and_exactly_its_pinned_dependencies(artifact: pathlib.Path) -> None:
    assert FUNCTION_MODULES, "the function's package has modules"
    assert {path.relative_to(artifact) for path in (artifact / "token_url").rglob("*.py")} == set(
        FUNCTION_MODULES
    )
    installed = {dist.key: dist.version for dist in distributions(artifact)}
    assert installed == read_pins()
    assert "aws-xray-sdk" in installed, "the [tracer] extra: Tracing is Active in the template"
    # The runtime's AWS SDK is not packaged: not as a distribution, not as a module.
    assert not RUNTIME_SDK & set(installed)
    for module in RUNTIME_SDK_MODULES:
        assert not (artifact / module).exists(), module
        assert not (artifact / f"{module}.py").exists(), module
    # Nothing of the repository but the function: no tests, no dev tools, no dev dependencies, no build files.
    for stray in ("tests", "devtools", "emulator", "moto", "pytest", "mypy", "Makefile", "requirements.txt"):
        assert not (artifact / stray).exists(), stray


def test_artifact_native_code_is_built_for_arm64_python313(artifact: pathlib.Path) -> None:
    native = [path for dist in distributions(artifact) for path in dist.native_files]
    assert native, "pydantic-core at least is compiled"
    for relative in native:
        path = artifact / relative
        assert elf_machine(path) == "aarch64", relative
        assert "cpython-313" in path.name or path.name.endswith(".abi3.so") or ".so." in path.name, relative


def _pyc_header(python: pathlib.Path) -> bytes:
    """What python3.13 writes first in an unchecked hash-based .pyc: its magic number, then flags 0b01."""
    magic = subprocess.run(  # noqa: S603 - a python found by find_python, fixed arguments
        [
            str(python),
            "-c",
            "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return bytes.fromhex(magic) + (1).to_bytes(4, "little")


def test_artifact_is_byte_compiled_for_python313(artifact: pathlib.Path, python313: pathlib.Path) -> None:
    """Every module has its python3.13 .pyc, used without a look at the source (/var/task is read-only)."""
    header = _pyc_header(python313)
    sources = sorted(artifact.rglob("*.py"))
    assert len(sources) > 100
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        assert pyc.is_file(), source.relative_to(artifact)
        assert pyc.read_bytes()[:8] == header, pyc.relative_to(artifact)
    for module in FUNCTION_MODULES:
        compiled = artifact / module.parent / "__pycache__" / f"{module.stem}.cpython-313.pyc"
        assert compiled.is_file(), module
    # Only python3.13's, and no optimised (-O) ones: nothing is there that Lambda would not load.
    strays = [path for path in artifact.rglob("*.pyc") if not path.name.endswith(".cpython-313.pyc")]
    assert not strays


# bytes; 22.0 MB when the artifact packaged boto3 and botocore; raised from 10 MB for cryptography (the
# vault's AES-GCM), about 5 MB of it.
ZIPPED_BUDGET = 15_000_000


def test_artifact_zipped_size_is_within_budget(artifact: pathlib.Path, record_property: Any) -> None:
    sizes = package_sizes(artifact)
    assert sizes[TOTAL] == zipped_size(artifact)
    record_property("artifact_zipped_bytes", sizes[TOTAL])
    for name, size in sizes.items():
        record_property(f"zipped_bytes[{name}]", size)
    assert not RUNTIME_SDK & set(sizes)
    assert 0 < sizes[TOTAL] < ZIPPED_BUDGET, sizes


# Run by the artifact's python, which has nothing of the repository: the test kit's context module is
# sent with it, as the script's first lines.
IMPORT_CHECK = (
    inspect.getsource(lambda_context)
    + """
import json, sys, sysconfig
from token_url import app
import aws_xray_sdk.core  # the [tracer] extra
import boto3, botocore, jmespath, pydantic, pydantic_core, requests, urllib3

context = FakeLambdaContext(function_name="token-url", timeout_seconds=10, request_id="import-check")
event = json.load(open(sys.argv[1]))
reply = app.lambda_handler(event, context)
print(json.dumps({
    "status": reply["statusCode"],
    "body": reply["body"],
    "stdlib": sorted({sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")}),
    "files": {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())},
}))
"""
)


def _native_distributions(artifact: pathlib.Path) -> list[Distribution]:
    return [dist for dist in distributions(artifact) if dist.native_files]


def _top_level_modules(dist: Distribution) -> set[str]:
    """The importable names a distribution installs: `wrapt`, `typing_extensions`, `81d2...__mypyc`."""
    tops = {path.split("/")[0] for path in dist.files if not path.startswith("..")}
    return {top.split(".")[0] for top in tops if not top.endswith((".dist-info", ".data")) and top != "bin"}


def _snapshot(directory: pathlib.Path) -> dict[str, int]:
    return {str(path.relative_to(directory)): path.stat().st_mtime_ns for path in directory.rglob("*")}


def test_built_artifact_imports_and_answers_a_request(
    artifact: pathlib.Path, python313: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """The artifact, first on the path as /var/task, imports with python3.13 and serves GET /health.

    After it on the path comes a stand-in for the runtime's AWS SDK (/var/runtime): boto3 as pyproject
    pins it, with its dependencies, installed for this machine. Its compiled extensions are for arm64;
    on another machine the same versions built for it are put in front of them. Every other module
    imported is the artifact's own or the standard library's, and nothing is compiled or written.
    """
    overlay = tmp_path / "host-native"
    native = _native_distributions(artifact)
    machine = elf_machine(pathlib.Path(python313).resolve())
    if machine != "aarch64":
        installed = host_wheels_for(native, overlay, python=python313)
        assert installed.returncode == 0, installed.stderr[-2000:]
    sdk = tmp_path / "runtime-sdk"
    installed = runtime_sdk_standin(sdk, python=python313)
    assert installed.returncode == 0, installed.stderr[-2000:]
    template = load_template()
    environment = {
        name: value for name, value in function_environment(template).items() if isinstance(value, str)
    }
    environment.update(json.loads(ENV_FILE.read_text(encoding="utf-8"))[FUNCTION_ID])
    environment.update(
        {
            "PYTHONPATH": f"{overlay}:{artifact}:{sdk}",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_LAMBDA_FUNCTION_NAME": "token-url",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PATH": "/usr/bin:/bin",
        }
    )
    before = _snapshot(artifact)
    # -S: no site-packages of that python, only the artifact (as in Lambda), the overlay and the SDK.
    result = subprocess.run(  # noqa: S603
        [str(python313), "-S", "-c", IMPORT_CHECK, str(EVENTS_DIR / "health.json")],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reply = json.loads(result.stdout.strip().splitlines()[-1])
    assert (reply["status"], json.loads(reply["body"])) == (200, {"status": "ok"})
    # Every module came from the .pyc files as built: no file of the artifact was added or changed.
    assert _snapshot(artifact) == before
    native_modules = {module for dist in native for module in _top_level_modules(dist)}
    if machine == "aarch64":
        native_modules = set()
    stdlib = [pathlib.Path(path) for path in reply["stdlib"]]
    allowed = {overlay: native_modules, sdk: RUNTIME_SDK_MODULES}
    homes: dict[str, pathlib.Path] = {}
    for module, file in reply["files"].items():
        if file is None:  # built in, or a namespace package
            continue
        path = pathlib.Path(file)
        if any(path.is_relative_to(directory) for directory in stdlib):
            continue
        home = next((root for root in (overlay, artifact, sdk) if path.is_relative_to(root)), None)
        assert home is not None, (module, file)
        # By file, not by name: requests.packages.urllib3 is urllib3 under another name.
        top = path.relative_to(home).parts[0].split(".")[0]
        if home == artifact:
            assert top not in native_modules, (module, file)
        else:
            assert top in allowed[home], (module, file)
        homes[module] = home
    # The SDK is the runtime's; everything the function packages shadows the stand-in's copies.
    assert homes["boto3"] == homes["botocore"] == sdk
    for module in ("token_url.app", "aws_lambda_powertools", "pydantic", "requests", "urllib3", "jmespath"):
        assert homes[module] == artifact, module
