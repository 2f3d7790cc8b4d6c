"""AWS SAM CLI from this repository: where it is, the Python `sam build` needs, and what a build produced.

SAM CLI lives in a virtual environment of its own (`.venv-sam`, made by `make install`), because its
pins clash with the function's. `sam build` for the python3.13 runtime (no container) needs a
`python3.13` on PATH; pyenv's shim does not count unless 3.13 is selected, so candidates are run
and only one that really is 3.13 is taken.

The function is built by functions/token_url/Makefile (`BuildMethod: makefile`): its requirements.txt
is the whole dependency tree, pinned and installed with --no-deps, except the AWS SDK the Lambda
runtime provides (RUNTIME_SDK). `check_pins` proves that list complete with pip's own resolver.

`python -m devtools.sam_cli python-dir` prints the directory to put first on PATH for `sam build`.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from devtools.template import TEMPLATE_PATH

REPO_ROOT = TEMPLATE_PATH.parent.parent
SAM_VENV = REPO_ROOT / ".venv-sam"
RUNTIME_VERSION = "3.13"
REQUIREMENTS_PATH = REPO_ROOT / "functions" / "token_url" / "requirements.txt"
PYPROJECT_PATH = REPO_ROOT / "pyproject.toml"

RUNTIME_SDK = frozenset({"boto3", "botocore", "s3transfer", "python-dateutil", "six"})
"""The distributions the Lambda python3.13 runtime provides (/var/runtime, after /var/task on the path),
which the artifact leaves out."""
RUNTIME_SDK_MODULES = frozenset({"boto3", "botocore", "s3transfer", "dateutil", "six"})
"""The top-level modules of RUNTIME_SDK."""

# pip's options for the runtime's platform: CPython 3.13 on arm64 (Graviton), wheels only.
LAMBDA_PLATFORM = (
    "--platform",
    "manylinux2014_aarch64",
    "--implementation",
    "cp",
    "--python-version",
    RUNTIME_VERSION,
    "--only-binary=:all:",
)

# ELF e_machine values (the ELF specification): what a native extension was compiled for.
ELF_MACHINES = {0x3E: "x86_64", 0xB7: "aarch64"}


def sam_executable() -> pathlib.Path:
    """The `sam` of this repository's SAM virtual environment (SAM_CLI overrides it)."""
    sam = pathlib.Path(os.environ.get("SAM_CLI", SAM_VENV / "bin" / "sam"))
    if not sam.exists():
        raise FileNotFoundError(f"no SAM CLI at {sam}: `make install` (or `make test`) installs it")
    return sam


def sam_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment to run SAM CLI in: no telemetry, no prompt for it, nothing sent anywhere."""
    environment = dict(os.environ)
    environment["SAM_CLI_TELEMETRY"] = "0"
    environment.update(extra or {})
    return environment


def _python_candidates(version: str) -> Iterator[pathlib.Path]:
    name = f"python{version}"
    on_path = shutil.which(name)
    if on_path:
        yield pathlib.Path(on_path)
    roots = [os.environ.get("PYENV_ROOT"), str(pathlib.Path.home() / ".pyenv")]
    for root in filter(None, roots):
        yield from sorted(pathlib.Path(root).glob(f"versions/{version}*/bin/{name}"), reverse=True)
    for prefix in ("/usr/local/bin", "/usr/bin"):
        yield pathlib.Path(prefix) / name


def find_python(version: str = RUNTIME_VERSION) -> pathlib.Path | None:
    """A python executable that really runs `version` (a pyenv shim for an unselected version does not)."""
    probe = "import sys; print('%d.%d' % sys.version_info[:2]); print(sys.executable)"
    for candidate in _python_candidates(version):
        if not candidate.exists():
            continue
        try:
            reply = subprocess.run(  # noqa: S603 - a python executable found above, fixed arguments
                [str(candidate), "-c", probe], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        lines = reply.stdout.split()
        if reply.returncode == 0 and len(lines) == 2 and lines[0] == version:
            return pathlib.Path(lines[1])
    return None


def build(
    build_dir: pathlib.Path, *, python: pathlib.Path, cache_dir: pathlib.Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`sam build` of infra/template.yaml into `build_dir`, with `python`'s directory first on PATH."""
    path = f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    command = [
        str(sam_executable()),
        "build",
        "--template-file",
        str(TEMPLATE_PATH),
        "--build-dir",
        str(build_dir),
    ]
    if cache_dir is not None:
        command += ["--cached", "--cache-dir", str(cache_dir)]
    return subprocess.run(  # noqa: S603 - the repository's own sam, fixed arguments
        command,
        cwd=REPO_ROOT,
        env=sam_environment({"PATH": path}),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def elf_machine(path: pathlib.Path) -> str:
    """The architecture a shared object was compiled for, from its ELF header."""
    header = path.read_bytes()[:20]
    if header[:4] != b"\x7fELF":
        return "not-elf"
    machine = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    return ELF_MACHINES.get(machine, hex(machine))


def canonical_name(name: str) -> str:
    """A distribution name as PEP 503 normalises it."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Distribution:
    name: str
    version: str
    files: tuple[str, ...]
    """Paths relative to the artifact, as the distribution's RECORD lists them."""

    @property
    def key(self) -> str:
        """The name as PEP 503 normalises it (`aws_lambda_powertools` is `aws-lambda-powertools`)."""
        return canonical_name(self.name)

    @property
    def native_files(self) -> tuple[str, ...]:
        return tuple(path for path in self.files if path.endswith(".so") or ".so." in path)


def distributions(artifact: pathlib.Path) -> list[Distribution]:
    """Every distribution pip installed into a built artifact, with the files it owns."""
    found: list[Distribution] = []
    for dist_info in sorted(artifact.glob("*.dist-info")):
        metadata = (dist_info / "METADATA").read_text(encoding="utf-8", errors="replace")
        fields = dict(
            line.split(": ", 1) for line in metadata.splitlines() if line.startswith(("Name: ", "Version: "))
        )
        record = dist_info / "RECORD"
        files = tuple(
            line.split(",", 1)[0] for line in record.read_text(encoding="utf-8").splitlines() if line.strip()
        )
        found.append(Distribution(name=fields["Name"], version=fields["Version"], files=files))
    return found


def _files(directory: pathlib.Path) -> Iterator[tuple[pathlib.Path, str]]:
    """Every file under `directory`, sorted, with its name in a zip of it."""
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            yield path, path.relative_to(directory).as_posix()


def zipped_size(directory: pathlib.Path) -> int:
    """Bytes of `directory` zipped with deflate, as `sam deploy` uploads it."""
    target = directory.parent / f".{directory.name}.zip"
    try:
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path, name in _files(directory):
                archive.write(path, name)
        return target.stat().st_size
    finally:
        target.unlink(missing_ok=True)


TOTAL = "(total)"
"""package_sizes' key for the whole artifact zipped."""
FUNCTION_CODE = "(function)"
"""package_sizes' key for the files no distribution owns: the function's own modules and their .pyc."""

# A compiled module: `dir/__pycache__/name.cpython-313.pyc` (or .opt-1.pyc) is the code of `dir/name.py`.
_PYC = re.compile(r"^(?P<dir>(?:.*/)?)__pycache__/(?P<stem>[^/.]+)\.[^/]+\.pyc$")


def _owners(artifact: pathlib.Path) -> tuple[dict[str, str], dict[str, str]]:
    """Who owns what, from the RECORDs: {file: distribution} and {top-level directory: distribution}."""
    files: dict[str, str] = {}
    roots: dict[str, str] = {}
    for dist in distributions(artifact):
        for path in dist.files:
            if path.startswith(".."):
                continue
            files[path] = dist.key
            if "/" in path:
                roots.setdefault(path.split("/", 1)[0], dist.key)
    return files, roots


def package_sizes(artifact: pathlib.Path) -> dict[str, int]:
    """Zipped bytes of a built artifact (key TOTAL) and of each distribution in it (its PEP 503 name).

    The artifact is zipped in memory as `zipped_size` zips it (same files, order and compression; the
    TOTAL is the same number). Each file's share is its deflated bytes with its local and central
    directory headers, so the shares add up to TOTAL less the archive's 22-byte end record. A file
    belongs to the distribution whose RECORD lists it, a `__pycache__/x.cpython-313.pyc` to the one
    that lists `x.py`, and anything else under a top-level directory to the distribution owning that
    directory; what no distribution owns is the function's own code (key FUNCTION_CODE).
    """
    files, roots = _owners(artifact)
    sizes: dict[str, int] = {}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, name in _files(artifact):
            pyc = _PYC.match(name)
            source = f"{pyc['dir']}{pyc['stem']}.py" if pyc else name
            owner = files.get(source) or files.get(name) or roots.get(source.split("/", 1)[0], FUNCTION_CODE)
            start = buffer.tell()
            archive.write(path, name)
            info = archive.getinfo(name)
            central_entry = 46 + len(info.filename.encode()) + len(info.extra) + len(info.comment)
            sizes[owner] = sizes.get(owner, 0) + buffer.tell() - start + central_entry
    sizes[TOTAL] = len(buffer.getvalue())
    return dict(sorted(sizes.items(), key=lambda item: -item[1]))


_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[A-Za-z0-9._,-]*\])?==(?P<version>[^\s;#]+)$")


def parse_pins(lines: Iterable[str]) -> dict[str, str]:
    """`name==version` lines as {PEP 503 name: version}; comments and blank lines are skipped.

    Anything else (a range, an option, a URL) is refused: requirements.txt is installed with --no-deps
    and must say exactly what goes into the artifact.
    """
    pins: dict[str, str] = {}
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        match = _PIN.match(text)
        if match is None:
            raise ValueError(f"not an exact pin (name==version): {line.strip()!r}")
        key = canonical_name(match["name"])
        if key in pins:
            raise ValueError(f"{key} is pinned twice")
        pins[key] = match["version"]
    return pins


def read_pins(path: pathlib.Path = REQUIREMENTS_PATH) -> dict[str, str]:
    """The function's pinned dependency tree (functions/token_url/requirements.txt)."""
    return parse_pins(path.read_text(encoding="utf-8").splitlines())


IMPORTER_ONLY = frozenset({"tqdm", "tenacity"})
"""pyproject.toml dependencies of the token importer (`token-url import-tokens`) alone, not the function's."""


def function_requirements(pyproject: pathlib.Path = PYPROJECT_PATH) -> list[str]:
    """The function's top-level requirements as pyproject.toml states them, extras included.

    All of pyproject.toml's dependencies but the importer's (IMPORTER_ONLY): a dependency added there
    for the importer without being named in IMPORTER_ONLY is taken as the function's, and check_pins
    then reports it missing from requirements.txt rather than letting the artifact miss it.
    """
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    dependencies: list[str] = project["dependencies"]
    return [
        requirement
        for requirement in dependencies
        if canonical_name(re.split(r"[\[=<>!~;\s]", requirement, maxsplit=1)[0]) not in IMPORTER_ONLY
    ]


class ResolutionError(RuntimeError):
    """pip could not resolve the requirements with the pins (a conflict, or no wheel for arm64)."""


def resolve(
    requirements: Sequence[str], constraints: Mapping[str, str], *, python: pathlib.Path
) -> dict[str, str]:
    """What pip installs for `requirements` on the Lambda runtime's platform, with `constraints` held.

    {PEP 503 name: version} of every distribution pip would install (`--dry-run --report`, nothing
    installed), dependencies included. Needs the package index. Wheels are chosen for the runtime's
    platform; environment markers are evaluated by `python` (so it must be a python3.13).
    """
    with tempfile.TemporaryDirectory() as scratch:
        constraints_file = pathlib.Path(scratch) / "constraints.txt"
        constraints_file.write_text(
            "".join(f"{name}=={version}\n" for name, version in constraints.items()), encoding="utf-8"
        )
        reply = subprocess.run(  # noqa: S603 - a python found by find_python, fixed arguments
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--dry-run",
                "--ignore-installed",
                "--report",
                "-",
                *LAMBDA_PLATFORM,
                "--constraint",
                str(constraints_file),
                *requirements,
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    if reply.returncode != 0:
        raise ResolutionError(reply.stderr[-3000:])
    report = json.loads(reply.stdout)
    return {
        canonical_name(item["metadata"]["name"]): item["metadata"]["version"] for item in report["install"]
    }


def pin_problems(
    resolved: Mapping[str, str], pins: Mapping[str, str], runtime: frozenset[str] = RUNTIME_SDK
) -> list[str]:
    """How a pinned list differs from what its top-level requirements resolve to; empty if it does not.

    Every resolved distribution must be pinned at the resolved version or be the runtime's; nothing
    may be pinned that the resolution does not need, and nothing of the runtime's may be pinned.
    """
    problems: list[str] = []
    for name, version in sorted(resolved.items()):
        if name in runtime:
            continue
        if name not in pins:
            problems.append(f"{name}=={version} is required but not pinned: the artifact would lack it")
        elif pins[name] != version:
            problems.append(f"{name} is pinned at {pins[name]} but resolves to {version}")
    for name in sorted(pins):
        if name in runtime:
            problems.append(f"{name} is the runtime's and must not be packaged")
        elif name not in resolved:
            problems.append(f"{name} is pinned but nothing requires it")
    return problems


def check_pins(
    requirements_file: pathlib.Path = REQUIREMENTS_PATH,
    *,
    python: pathlib.Path,
    pyproject: pathlib.Path = PYPROJECT_PATH,
) -> list[str]:
    """Whether requirements.txt is the function's whole dependency tree (see pin_problems).

    The function's top-level requirements (pyproject.toml) are resolved by pip for the runtime's
    platform with requirements.txt as constraints: a distribution missing from the list is resolved
    anyway and reported, a version in conflict fails the resolution (ResolutionError).
    """
    pins = read_pins(requirements_file)
    packaged = {name: version for name, version in pins.items() if name not in RUNTIME_SDK}
    resolved = resolve(function_requirements(pyproject), packaged, python=python)
    return pin_problems(resolved, pins)


def host_wheels_for(
    distributions_: Iterable[Distribution], target: pathlib.Path, *, python: pathlib.Path
) -> subprocess.CompletedProcess[str]:
    """Install, for this machine's architecture, the same versions of the given distributions into `target`.

    The artifact is built for arm64; on another machine its compiled extensions cannot load, so an
    import check puts these same-version host builds in front of them (the pure-Python rest is the
    artifact's own).
    """
    pins = [f"{dist.name}=={dist.version}" for dist in distributions_]
    return pip_install(python, target, pins, no_deps=True)


def runtime_sdk_standin(target: pathlib.Path, *, python: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """Install into `target`, for this machine, boto3 as pyproject.toml pins it, with its dependencies.

    A stand-in for the Lambda runtime's own AWS SDK (/var/runtime), which the artifact leaves out: an
    import check puts `target` after the artifact on the path, as /var/runtime follows /var/task.
    """
    version = read_project_pins()["boto3"]
    return pip_install(python, target, [f"boto3=={version}"], no_deps=False)


def pip_install(
    python: pathlib.Path, target: pathlib.Path, requirements: Sequence[str], *, no_deps: bool
) -> subprocess.CompletedProcess[str]:
    """`python -m pip install` of wheels only, for this machine, into `target`; the reply says how it went."""
    command = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    command += ["--only-binary=:all:", "--target", str(target), *(["--no-deps"] if no_deps else [])]
    return subprocess.run(  # noqa: S603 - a python found by find_python, fixed arguments
        [*command, *requirements], capture_output=True, text=True, timeout=600, check=False
    )


def read_project_pins(pyproject: pathlib.Path = PYPROJECT_PATH) -> dict[str, str]:
    """pyproject.toml's `==` dependencies as {PEP 503 name: version} (the function's and the importer's)."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return parse_pins(requirement for requirement in project["dependencies"] if "==" in requirement)


def main(argv: list[str]) -> int:
    if argv != ["python-dir"]:
        print("usage: python -m devtools.sam_cli python-dir", file=sys.stderr)
        return 2
    python = find_python()
    if python is None:
        print(
            f"no python{RUNTIME_VERSION} on this machine (PATH, pyenv, /usr): sam build for the "
            f"python{RUNTIME_VERSION} runtime needs one",
            file=sys.stderr,
        )
        return 1
    print(python.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
