"""The python3.13 that `sam build` and the artifact's checks need; without one, those tests are skipped."""

from __future__ import annotations

import pathlib

import pytest

from devtools.sam_cli import RUNTIME_VERSION, find_python


@pytest.fixture(scope="session")
def python313() -> pathlib.Path:
    python = find_python(RUNTIME_VERSION)
    if python is None:
        pytest.skip(
            f"no python{RUNTIME_VERSION} on this machine (PATH, pyenv, /usr): sam build cannot run here"
        )
    return python
