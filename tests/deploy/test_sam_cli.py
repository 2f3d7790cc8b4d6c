"""SAM CLI on the SAM application: `sam validate --lint` is clean; `sam build` makes a working artifact.

SAM CLI is the repository's own (`.venv-sam`, pinned in pyproject.toml). `sam build` needs a
python3.13; where the machine has none, the build tests say so and are skipped. The build downloads
the function's dependencies from PyPI, as `sam build` always does.
"""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
from typing import Any

import pytest

from devtools.sam_cli import (
    RUNTIME_VERSION,
    Distribution,
    build,
    distributions,
    elf_machine,
    find_python,
    host_wheels_for,
    sam_environment,
    sam_executable,
    zipped_size,
)
from devtools.sam_events import ENV_FILE, EVENTS_DIR
from devtools.template import FUNCTION_ID, TEMPLATE_PATH, function_environment, load_template

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


# ---------------------------------------------------------------- sam build


@pytest.fixture(scope="module")
def python313() -> pathlib.Path:
    python = find_python(RUNTIME_VERSION)
    if python is None:
        pytest.skip(
            f"no python{RUNTIME_VERSION} on this machine (PATH, pyenv, /usr): sam build cannot run here"
        )
    return python


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


def test_artifact_holds_the_function_and_its_pinned_dependencies(artifact: pathlib.Path) -> None:
    modules = {path.name for path in (REPO / "functions" / "token_url").glob("*.py")}
    assert modules <= {path.name for path in artifact.glob("*.py")}
    pins = dict(
        line.split("==")
        for line in (REPO / "functions" / "token_url" / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    installed = {dist.key: dist.version for dist in distributions(artifact)}
    for requirement, version in pins.items():
        assert installed[requirement.split("[")[0].lower()] == version, requirement
    assert "aws-xray-sdk" in installed, "the [tracer] extra: Tracing is Active in the template"
    # Nothing of the repository but the function: no tests, no dev tools, no dev dependencies.
    for stray in ("tests", "devtools", "emulator", "moto", "pytest", "mypy"):
        assert not (artifact / stray).exists(), stray


def test_artifact_native_code_is_built_for_arm64_python313(artifact: pathlib.Path) -> None:
    native = [path for dist in distributions(artifact) for path in dist.native_files]
    assert native, "pydantic-core at least is compiled"
    for relative in native:
        path = artifact / relative
        assert elf_machine(path) == "aarch64", relative
        assert "cpython-313" in path.name or path.name.endswith(".abi3.so") or ".so." in path.name, relative


def test_artifact_zipped_size_is_reported(artifact: pathlib.Path, record_property: Any) -> None:
    size = zipped_size(artifact)
    record_property("artifact_zipped_bytes", size)
    # Lambda refuses a direct upload over 50 MB zipped; issue 5 sets the tighter budget.
    assert 0 < size < 50 * 1024 * 1024


IMPORT_CHECK = """
import json, sys
import app
import aws_xray_sdk.core  # the [tracer] extra
import boto3, pydantic, pydantic_core, requests

class Context:
    function_name = "token-url"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:token-url"
    aws_request_id = "import-check"
    def get_remaining_time_in_millis(self):
        return 10_000

event = json.load(open(sys.argv[1]))
reply = app.lambda_handler(event, Context())
print(json.dumps({
    "status": reply["statusCode"],
    "body": reply["body"],
    "files": {
        name: sys.modules[name].__file__ for name in ("app", "boto3", "pydantic", "pydantic_core", "requests")
    },
}))
"""


def _native_distributions(artifact: pathlib.Path) -> list[Distribution]:
    return [dist for dist in distributions(artifact) if dist.native_files]


def test_built_artifact_imports_and_answers_a_request(
    artifact: pathlib.Path, python313: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """The artifact, alone on the path as in /var/task, imports with python3.13 and serves GET /health.

    Its compiled extensions are for arm64; on another machine the same versions built for it are put
    in front of them (installed from PyPI). Everything else imported is the artifact's own.
    """
    overlay = tmp_path / "host-native"
    native = _native_distributions(artifact)
    machine = elf_machine(pathlib.Path(python313).resolve())
    if machine != "aarch64":
        installed = host_wheels_for(native, overlay, python=python313)
        assert installed.returncode == 0, installed.stderr[-2000:]
    template = load_template()
    environment = {
        name: value for name, value in function_environment(template).items() if isinstance(value, str)
    }
    environment.update(json.loads(ENV_FILE.read_text(encoding="utf-8"))[FUNCTION_ID])
    environment.update(
        {
            "PYTHONPATH": f"{overlay}:{artifact}",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_LAMBDA_FUNCTION_NAME": "token-url",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PATH": "/usr/bin:/bin",
        }
    )
    # -S: no site-packages of that python, only the artifact (as in Lambda) and the overlay.
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
    native_names = {dist.key.replace("-", "_") for dist in native}
    for module, file in reply["files"].items():
        home = overlay if module in native_names else artifact
        assert pathlib.Path(file).is_relative_to(home), (module, file)
