"""`token-url import-tokens` from the built wheel, outside the checkout: the importer needs no repository."""

from __future__ import annotations

import configparser
import os
import pathlib
import shutil
import subprocess
import sys
import tomllib
from typing import Any

import pytest

from emulator import IdentityCloudEmulator

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
IDENTIFIER = "http://www.facebook.com/profile.php?id=100000000000042"
TOKEN = "EAAB00000042ImportedFromTheWheel"


def packaged_folders() -> list[str]:
    """The folders of the packages pyproject.toml lists, where they are in the checkout."""
    with (REPO_ROOT / "pyproject.toml").open("rb") as file:
        setuptools = tomllib.load(file)["tool"]["setuptools"]
    return [setuptools.get("package-dir", {}).get(name, name) for name in setuptools["packages"]]


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The project's wheel installed, without its dependencies, into a directory of its own.

    Built from a copy of the sources, so setuptools' build directory never lands in the checkout.
    """
    source = tmp_path_factory.mktemp("source")
    shutil.copy2(REPO_ROOT / "pyproject.toml", source)
    for package in packaged_folders():
        shutil.copytree(REPO_ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(  # noqa: S603 - this interpreter's pip, fixed arguments
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(wheels),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    target = tmp_path_factory.mktemp("installed")
    wheel = next(wheels.glob("token_url-*.whl"))
    installed = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    return target


def test_the_wheel_declares_the_console_script(installed_wheel: pathlib.Path) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read(next(installed_wheel.glob("token_url-*.dist-info")) / "entry_points.txt")
    assert entry_points["console_scripts"]["token-url"] == "importer.cli:main"


def test_import_tokens_runs_from_the_wheel_outside_the_checkout(
    installed_wheel: pathlib.Path,
    emulator: IdentityCloudEmulator,
    emulator_server: Any,
    tmp_path: pathlib.Path,
) -> None:
    rows = tmp_path / "tokens.csv"
    rows.write_text(f"identifier,token\n{IDENTIFIER},{TOKEN}\n", encoding="utf-8")
    # The wheel's copy first on the path, and a working directory outside the checkout; the script
    # checks that the function's package it runs is the wheel's.
    script = (
        "import sys, token_url, importer.cli\n"
        "assert token_url.__file__.startswith(sys.argv[1]), token_url.__file__\n"
        "sys.exit(importer.cli.main(sys.argv[2:]))\n"
    )
    environment = {
        **os.environ,
        "PYTHONPATH": str(installed_wheel),
        "SOCIAL_LOGIN_BASE_URL": emulator_server.url,
        "SOCIAL_LOGIN_API_KEY": emulator.api_key,
    }
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script, str(installed_wheel), "import-tokens", "--rate", "0", str(rows)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert emulator.stored_access_tokens == {IDENTIFIER: TOKEN}
