"""AWS SAM CLI from this repository: where it is, the Python `sam build` needs, and what a build produced.

SAM CLI lives in a virtual environment of its own (`.venv-sam`, made by `make install`), because its
pins clash with the function's. `sam build` for the python3.13 runtime (no container) needs a
`python3.13` on PATH; pyenv's shim does not count unless 3.13 is selected, so candidates are run
and only one that really is 3.13 is taken.

`python -m devtools.sam_cli python-dir` prints the directory to put first on PATH for `sam build`.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from devtools.template import TEMPLATE_PATH

REPO_ROOT = TEMPLATE_PATH.parent.parent
SAM_VENV = REPO_ROOT / ".venv-sam"
RUNTIME_VERSION = "3.13"

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


@dataclass(frozen=True)
class Distribution:
    name: str
    version: str
    files: tuple[str, ...]
    """Paths relative to the artifact, as the distribution's RECORD lists them."""

    @property
    def key(self) -> str:
        """The name as PEP 503 normalises it (`aws_lambda_powertools` is `aws-lambda-powertools`)."""
        return re.sub(r"[-_.]+", "-", self.name).lower()

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


def zipped_size(directory: pathlib.Path) -> int:
    """Bytes of `directory` zipped with deflate, as `sam deploy` uploads it."""
    target = directory.parent / f".{directory.name}.zip"
    try:
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(directory.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(directory))
        return target.stat().st_size
    finally:
        target.unlink(missing_ok=True)


def host_wheels_for(
    distributions_: Iterable[Distribution], target: pathlib.Path, *, python: pathlib.Path
) -> subprocess.CompletedProcess[str]:
    """Install, for this machine's architecture, the same versions of the given distributions into `target`.

    The artifact is built for arm64; on another machine its compiled extensions cannot load, so an
    import check puts these same-version host builds in front of them (the pure-Python rest is the
    artifact's own).
    """
    pins = [f"{dist.name}=={dist.version}" for dist in distributions_]
    return subprocess.run(  # noqa: S603 - a python found by find_python, fixed arguments
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--target",
            str(target),
            *pins,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


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
