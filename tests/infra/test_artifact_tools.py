"""devtools.sam_cli's artifact tools without a build: package_sizes and the pinned-list checks. No network."""

from __future__ import annotations

import io
import os
import pathlib
import zipfile

import pytest

from devtools.sam_cli import (
    FUNCTION_CODE,
    TOTAL,
    function_requirements,
    package_sizes,
    parse_pins,
    pin_problems,
    zipped_size,
)

REPO = pathlib.Path(__file__).resolve().parents[2]


def _put(root: pathlib.Path, relative: str, data: bytes) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _distribution(root: pathlib.Path, name: str, version: str, files: dict[str, bytes]) -> None:
    dist_info = f"{name.replace('-', '_')}-{version}.dist-info"
    for relative, data in files.items():
        _put(root, relative, data)
    _put(root, f"{dist_info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode())
    listed = [*files, f"{dist_info}/METADATA", f"{dist_info}/RECORD"]
    _put(root, f"{dist_info}/RECORD", "".join(f"{path},,\n" for path in listed).encode())


@pytest.fixture
def artifact(tmp_path: pathlib.Path) -> pathlib.Path:
    """A built artifact in small: a package, a single-module distribution, the function, their .pyc."""
    root = tmp_path / "TokenUrlFunction"
    _distribution(
        root,
        "big-pkg",
        "1.0",
        {"big_pkg/__init__.py": b"x = 1\n", "big_pkg/blob.py": b"# " + os.urandom(60_000).hex().encode()},
    )
    _distribution(root, "single", "2.0", {"single.py": b"def f():\n    return 2\n" * 50})
    # Not in any RECORD: compileall's .pyc files, and a file under a distribution's directory.
    _put(root, "big_pkg/__pycache__/__init__.cpython-313.pyc", b"\x00" * 400)
    _put(root, "big_pkg/__pycache__/blob.cpython-313.pyc", os.urandom(30_000))
    _put(root, "big_pkg/data/extra.json", b"{}" * 500)
    _put(root, "__pycache__/single.cpython-313.pyc", b"\x01" * 300)
    _put(root, "app.py", b"def lambda_handler(event, context):\n    return {}\n" * 20)
    _put(root, "__pycache__/app.cpython-313.pyc", b"\x02" * 200)
    return root


def _zip_of(root: pathlib.Path, names: list[str]) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(names):
            archive.write(root / name, name)
    return len(buffer.getvalue())


def test_package_sizes_splits_the_zipped_artifact_by_distribution(artifact: pathlib.Path) -> None:
    sizes = package_sizes(artifact)
    assert set(sizes) == {TOTAL, FUNCTION_CODE, "big-pkg", "single"}
    # The same archive as zipped_size's, and the shares add up to it (less its 22-byte end record).
    assert sizes[TOTAL] == zipped_size(artifact)
    assert sum(size for name, size in sizes.items() if name != TOTAL) + 22 == sizes[TOTAL]
    # Each share is what that distribution's files alone zip to, .pyc and unlisted files included.
    files = sorted(path.relative_to(artifact).as_posix() for path in artifact.rglob("*") if path.is_file())
    owned = {
        "big-pkg": [name for name in files if name.startswith(("big_pkg/", "big_pkg-"))],
        "single": [name for name in files if "single" in name],
        FUNCTION_CODE: [name for name in files if "app." in name],
    }
    assert sorted(name for names in owned.values() for name in names) == files
    for owner, names in owned.items():
        assert sizes[owner] + 22 == _zip_of(artifact, names), owner
    # Largest first; random bytes do not deflate.
    assert list(sizes)[:2] == [TOTAL, "big-pkg"]
    assert sizes["big-pkg"] > 90_000


def test_package_sizes_of_an_empty_artifact(tmp_path: pathlib.Path) -> None:
    assert package_sizes(tmp_path) == {TOTAL: 22}


def test_parse_pins_takes_exact_pins_only() -> None:
    pins = parse_pins(
        ["# a comment", "", "aws-lambda-powertools[tracer]==3.37.0", "Typing_Extensions==4.16.0  # why"]
    )
    assert pins == {"aws-lambda-powertools": "3.37.0", "typing-extensions": "4.16.0"}
    for line in ("requests>=2.34", "requests", "-r other.txt", "requests==2.34.2; python_version<'3.12'"):
        with pytest.raises(ValueError, match="not an exact pin"):
            parse_pins([line])
    with pytest.raises(ValueError, match="pinned twice"):
        parse_pins(["idna==3.20", "IDNA==3.20"])


def test_pin_problems() -> None:
    resolved = {"pydantic": "2.14.3", "annotated-types": "0.8.0", "boto3": "1.44.5", "idna": "3.20"}
    assert pin_problems(resolved, {"pydantic": "2.14.3", "annotated-types": "0.8.0", "idna": "3.20"}) == []
    assert pin_problems(
        resolved, {"pydantic": "2.14.3", "idna": "3.10", "six": "1.17.0", "tqdm": "4.70.1"}
    ) == [
        "annotated-types==0.8.0 is required but not pinned: the artifact would lack it",
        "idna is pinned at 3.10 but resolves to 3.20",
        "six is the runtime's and must not be packaged",
        "tqdm is pinned but nothing requires it",
    ]


def test_function_requirements_are_pyprojects_without_the_importers(tmp_path: pathlib.Path) -> None:
    names = [requirement.split("==")[0] for requirement in function_requirements()]
    assert names == ["aws-lambda-powertools[tracer]", "pydantic", "requests", "cryptography", "boto3"]
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\ndependencies = ["tqdm==4.70.1", "rich>=13", "Tenacity==9.2.1"]\n')
    # A dependency not known to be the importer's counts as the function's (then checked against the list).
    assert function_requirements(pyproject) == ["rich>=13"]
