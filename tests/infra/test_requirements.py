"""functions/token_url/requirements.txt is the function's whole dependency tree, pinned as the tests run it.

The Makefile installs it with --no-deps, so a distribution missing from it would be missing from the
artifact, and only the import check of the built artifact would notice, for the modules it imports.
Here pip's resolver decides instead: the function's top-level requirements (pyproject.toml) are
resolved for python3.13 on arm64 with the list as constraints, and every distribution they need must
be in the list at that version or be the Lambda runtime's (boto3, botocore, s3transfer,
python-dateutil, six). The resolution needs the package index, as `sam build` does.
"""

from __future__ import annotations

import importlib.metadata
import pathlib

import pytest

from devtools.sam_cli import (
    IMPORTER_ONLY,
    REQUIREMENTS_PATH,
    RUNTIME_SDK,
    ResolutionError,
    check_pins,
    read_pins,
    read_project_pins,
)


def test_requirements_are_the_whole_tree_resolved_for_the_runtime(python313: pathlib.Path) -> None:
    assert check_pins(REQUIREMENTS_PATH, python=python313) == []


def _without(name: str, tmp_path: pathlib.Path) -> pathlib.Path:
    lines = REQUIREMENTS_PATH.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(f"{name}==")]
    assert len(kept) == len(lines) - 1, name
    changed = tmp_path / "requirements.txt"
    changed.write_text("".join(kept), encoding="utf-8")
    return changed


def test_a_dependency_left_out_of_the_list_is_reported(
    python313: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    # pydantic needs annotated-types; without its line the artifact would fail on `import pydantic`.
    problems = check_pins(_without("annotated-types", tmp_path), python=python313)
    assert len(problems) == 1, problems
    assert problems[0].startswith("annotated-types==0.8.0 is required but not pinned"), problems


def test_a_top_level_requirement_left_out_of_the_list_is_reported(
    python313: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    # The top-level requirements come from pyproject.toml, not from the list under test.
    problems = check_pins(_without("requests", tmp_path), python=python313)
    assert problems == ["requests==2.34.2 is required but not pinned: the artifact would lack it"]


def test_a_runtime_package_in_the_list_is_reported(python313: pathlib.Path, tmp_path: pathlib.Path) -> None:
    changed = tmp_path / "requirements.txt"
    changed.write_text(REQUIREMENTS_PATH.read_text(encoding="utf-8") + "six==1.17.0\n", encoding="utf-8")
    assert check_pins(changed, python=python313) == ["six is the runtime's and must not be packaged"]


def test_a_version_in_conflict_fails_the_resolution(python313: pathlib.Path, tmp_path: pathlib.Path) -> None:
    # pydantic 2.14.3 requires pydantic-core==2.50.4 exactly.
    changed = tmp_path / "requirements.txt"
    text = REQUIREMENTS_PATH.read_text(encoding="utf-8")
    assert "pydantic-core==2.50.4\n" in text
    changed.write_text(text.replace("pydantic-core==2.50.4\n", "pydantic-core==2.50.3\n"), encoding="utf-8")
    with pytest.raises(ResolutionError, match="pydantic"):
        check_pins(changed, python=python313)


def test_requirements_pin_what_the_dev_environment_runs() -> None:
    # The tests run the function on .venv (pyproject.toml): the artifact must hold the same versions.
    for name, version in read_pins().items():
        assert importlib.metadata.version(name) == version, name


def test_pyproject_repeats_the_function_pins() -> None:
    pins = read_pins()
    project = read_project_pins()
    for name, version in project.items():
        if name in IMPORTER_ONLY:
            continue
        if name in RUNTIME_SDK:
            # The runtime's SDK: pinned in pyproject.toml for the dev environment, never packaged.
            assert name not in pins, name
        else:
            assert pins.get(name) == version, name
